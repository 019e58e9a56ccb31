/*
 * caption_gallery.c: builds the HTML galleries (gallery.h) of `shardnet caption --html`
 * (the image files themselves, inlined as they are) and `shardnet eval --model caption
 * --html` (the packed pixels of the first images, encoded to JPEG, with every reference).
 * Must not: hold more than the images shown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/error.h"
#include "caption_cmd.h"
#include "gallery.h"

/* "w1 w2 ..." of a greedy caption, malloc'd (NULL: out of memory). */
static char *caption_text(char *const *words, const int32_t *ids, int n)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    if (!f) return NULL;
    sn_caption_fprint(f, words, ids, n);
    if (fclose(f) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

/* Fills in each item's greedy caption (image i: hyp[i * max_tokens ..], len[i] tokens) and
 * writes the page. */
static int write_captioned(const char *path, const char *subtitle, sn_gallery_item_t *items, int n,
                           char *const *words, const int32_t *hyp, const int *len, int max_tokens)
{
    char **gen = calloc((size_t)(n ? n : 1), sizeof *gen);
    int rc = gen ? SN_OK : SN_FAIL(SN_ENOMEM, "%s: captions of %d images", path, n);
    for (int i = 0; !rc && i < n; i++)
        if (!(items[i].generated = gen[i] = caption_text(words, hyp + (size_t)i * max_tokens, len[i])))
            rc = SN_FAIL(SN_ENOMEM, "%s: captions", path);
    if (!rc) rc = sn_gallery_write(path, "shardnet captions", subtitle, items, n);
    for (int i = 0; gen && i < n; i++) free(gen[i]);
    free(gen);
    return rc;
}

int sn_cli_gallery_from_set(const char *path, const char *checkpoint, const sn_coco_set_t *set, char *const *words,
                            const sn_caption_eval_t *e, int max_tokens, int n)
{
    if (n > e->n_hyp) n = (int)e->n_hyp;
    int S = set->size, rc = SN_OK;
    sn_gallery_item_t *items = calloc((size_t)(n ? n : 1), sizeof *items);
    char (*titles)[32] = calloc((size_t)(n ? n : 1), sizeof *titles);
    const char **refs = malloc((size_t)(set->n_captions ? set->n_captions : 1) * sizeof *refs);
    uint8_t *rgb = malloc((size_t)(n ? n : 1) * 3 * S * S);
    if (!items || !titles || !refs || !rgb) rc = SN_FAIL(SN_ENOMEM, "%s: gallery of %d images", path, n);
    int64_t nr = 0;
    for (int i = 0; !rc && i < n; i++) {
        sn_gallery_item_t *it = &items[i];
        uint8_t *hwc = rgb + (size_t)i * 3 * S * S;
        const uint8_t *chw = set->images + (size_t)i * 3 * S * S;
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < S * S; k++) hwc[(size_t)k * 3 + c] = chw[(size_t)c * S * S + k];
        it->rgb = hwc;
        it->width = it->height = S;
        snprintf(titles[i], sizeof titles[i], "image %lld", (long long)(set->image_first + i));
        it->title = titles[i];
        it->refs = refs + nr;
        for (int64_t c = 0; c < set->n_captions; c++)
            if (set->image[c] == i) refs[nr++] = set->refs[c];
        it->n_refs = (int)(refs + nr - it->refs);
    }
    char subtitle[512];
    snprintf(subtitle, sizeof subtitle, "%s on %d images: BLEU-1..4 %.2f %.2f %.2f %.2f, perplexity %.2f; greedy "
             "captions (bold) beside the references", checkpoint, (int)e->images, 100 * e->bleu[0],
             100 * e->bleu[1], 100 * e->bleu[2], 100 * e->bleu[3], e->perplexity);
    if (!rc) rc = write_captioned(path, subtitle, items, n, words, e->hyp, e->hyp_len, max_tokens);
    free(items);
    free(titles);
    free(refs);
    free(rgb);
    return rc;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return SN_FAIL(SN_EIO, "%s: cannot open", path);
    int rc = SN_OK;
    long n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) rc = SN_FAIL(SN_EIO, "%s: cannot read", path);
    *data = rc ? NULL : malloc((size_t)n + 1);
    if (!rc && !*data) rc = SN_FAIL(SN_ENOMEM, "%s: %ld bytes", path, n);
    if (!rc && fread(*data, 1, (size_t)n, f) != (size_t)n) rc = SN_FAIL(SN_EIO, "%s: cannot read", path);
    *len = (size_t)n;
    fclose(f);
    return rc;
}

int sn_cli_gallery_from_files(const char *path, const char *checkpoint, const char *const *files, int n,
                              char *const *words, const int32_t *hyp, const int *len, int max_tokens)
{
    int rc = SN_OK;
    sn_gallery_item_t *items = calloc((size_t)n, sizeof *items);
    uint8_t **data = calloc((size_t)n, sizeof *data);
    if (!items || !data) rc = SN_FAIL(SN_ENOMEM, "%s: gallery of %d images", path, n);
    for (int i = 0; !rc && i < n; i++) {
        const char *base = strrchr(files[i], '/');
        items[i].title = base ? base + 1 : files[i];
        if ((rc = read_file(files[i], &data[i], &items[i].image_len))) break;
        items[i].image = data[i];
    }
    char subtitle[512];
    snprintf(subtitle, sizeof subtitle, "greedy captions of %s", checkpoint);
    if (!rc) rc = write_captioned(path, subtitle, items, n, words, hyp, len, max_tokens);
    for (int i = 0; data && i < n; i++) free(data[i]);
    free(items);
    free(data);
    return rc;
}
