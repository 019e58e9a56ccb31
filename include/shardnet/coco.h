/*
 * coco.h: caption datasets (coco_<split>.h5 of sn-pack, layout in DESIGN.md) read by shard.
 *
 * A rank reads a contiguous range of image rows (one hyperslab: the file keeps one image
 * per chunk) and every caption of those images, so its memory is about the dataset
 * divided by the number of ranks. Images stay uint8; the trainer crops, flips and
 * normalises one batch at a time.
 */
#ifndef SHARDNET_COCO_H
#define SHARDNET_COCO_H
#include <stdint.h>

enum { SN_COCO_REFS = 1 };   /* also read /caption_tokens */

typedef struct sn_coco_set {
    int64_t  n_captions_total;                   /* in the file (the files, once appended) */
    int      size, max_len, vocab;               /* image side S, caption row length L, V */
    int64_t  image_first, n_images;              /* this set's image rows [first, first + n) */
    uint8_t *images;                             /* (n_images, 3, S, S) */
    int64_t  n_captions;                         /* the captions of those images, file order */
    int64_t *caption_row;                        /* (n_captions) their rows in the file */
    int32_t *captions;                           /* (n_captions, L) */
    int32_t *lengths;                            /* (n_captions) */
    int32_t *image;                              /* (n_captions) local image index */
    char   **refs;                               /* (n_captions) /caption_tokens (SN_COCO_REFS) */
} sn_coco_set_t;

/* Images and captions in the file, with the layout checked. */
int  sn_coco_count(const char *path, int64_t *n_images, int64_t *n_captions);
/* Reads image rows [first, first + count) and their captions; flags SN_COCO_*. Every
 * caption is checked: length 2..L, ids inside the vocabulary. */
int  sn_coco_load(const char *path, int64_t first, int64_t count, int flags, sn_coco_set_t *out);
void sn_coco_free(sn_coco_set_t *s);
/* The vocabulary (/vocab) alone: V malloc'd strings in *words (free with sn_coco_free_words). */
int  sn_coco_read_words(const char *path, char ***words, int *vocab);
void sn_coco_free_words(char **words, int vocab);

#endif
