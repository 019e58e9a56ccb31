/*
 * coco_json.h: loading a COCO captions JSON (captions_<split>.json) into flat arrays.
 *
 * Reads the file once, records its sha256, parses it with cJSON, copies what the
 * data-prep tools need (images: id, file_name; annotations: id, image_id, caption) into
 * arrays that own their strings, and frees the parse tree. Checks, in file order:
 *   - malformed JSON               -> SN_EFORMAT, "FILE: malformed JSON at line L, column C"
 *   - a missing/mistyped structural field (images, annotations, id, file_name, caption)
 *                                  -> SN_EFORMAT naming the entry
 *   - a caption without image (no image_id, or an image_id not among the images),
 *     an empty caption (only whitespace), a caption that is not valid UTF-8
 *                                  -> skipped and counted, or SN_EINVAL when opts->strict.
 * Must not print (skipped captions are reported through opts->on_skip), tokenize, or know
 * about MPI: callers decide which rank loads.
 */
#ifndef SN_DP_COCO_JSON_H
#define SN_DP_COCO_JSON_H
#include <stdint.h>

typedef struct dp_coco_image {
    int64_t     id;         /* COCO image id */
    const char *file_name;
} dp_coco_image_t;

typedef struct dp_coco_caption {
    int64_t     id;         /* COCO annotation id */
    int64_t     image_id;   /* COCO image id */
    int64_t     image_row;  /* index of that image in dp_coco_t.images */
    const char *caption;    /* UTF-8, as in the file (not lower-cased) */
} dp_coco_caption_t;

enum { DP_SKIP_NO_IMAGE = 0, DP_SKIP_EMPTY = 1, DP_SKIP_BAD_UTF8 = 2, DP_SKIP_KINDS = 3 };

typedef struct dp_coco {
    dp_coco_image_t   *images;      /* [n_images], file order */
    int64_t            n_images;
    dp_coco_caption_t *captions;    /* [n_captions], file order, skipped ones left out */
    int64_t            n_captions;
    int64_t            n_skipped[DP_SKIP_KINDS];
    char               sha256[65];  /* of the file's bytes, lower-case hex */
    int64_t            file_bytes;
    char              *strings;     /* owns every string above */
} dp_coco_t;

typedef struct dp_coco_opts {
    int   strict;  /* 1: a bad caption is an error; 0: skip and count it */
    /* Called once per skipped caption with a one-line reason naming the file and the
     * annotation id (may be NULL). */
    void (*on_skip)(void *ctx, int kind, const char *message);
    void *ctx;
} dp_coco_opts_t;

/* Loads path into out (zeroed first). opts may be NULL (skip silently). On error out is
 * left empty and the message names the file. */
int  dp_coco_load(const char *path, const dp_coco_opts_t *opts, dp_coco_t *out);
void dp_coco_free(dp_coco_t *c);
const char *dp_coco_skip_name(int kind);

#endif
