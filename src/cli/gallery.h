/*
 * gallery.h: a self-contained HTML page of captioned images, written by
 * `shardnet caption ... --html FILE` and `shardnet eval --model caption ... --html FILE`.
 *
 * One card per image in a responsive grid: the photo, the generated caption in large
 * type, the reference captions below in smaller grey text. Images are inlined as base64
 * data: URIs and the CSS is inline, so the file can be mailed or opened offline; there is
 * no JavaScript. All text is HTML-escaped (& < > " ') and the page declares UTF-8.
 * The file is written under a temporary name next to it and renamed when complete.
 */
#ifndef SN_CLI_GALLERY_H
#define SN_CLI_GALLERY_H
#include <stddef.h>
#include <stdint.h>

typedef struct sn_gallery_item {
    const char *title;            /* small line above the caption (file name, image id); may be NULL */
    /* the image, either as an encoded file ... */
    const uint8_t *image;         /* bytes of a JPEG or PNG file, inlined as they are */
    size_t         image_len;
    const char    *mime;          /* "image/jpeg" or "image/png"; NULL: from the magic bytes */
    /* ... or, when image is NULL, as pixels encoded to JPEG (quality 90) */
    const uint8_t *rgb;           /* (height, width, 3) interleaved RGB */
    int            width, height;
    /* neither: the card shows a grey "no image" box */
    const char        *generated; /* the model's caption; may be NULL */
    const char *const *refs;      /* [n_refs] reference captions */
    int                n_refs;
} sn_gallery_item_t;

/* Writes the page of items [n] to path. heading is the page title (NULL: "Captions"),
 * subtitle one line under it (may be NULL), e.g. the model and its BLEU. Returns 0 or an
 * SN_E* code; sn_error_message() names path (and the item for a bad item). On failure no
 * file named path is created or replaced. */
int sn_gallery_write(const char *path, const char *heading, const char *subtitle,
                     const sn_gallery_item_t *items, int n);

#endif
