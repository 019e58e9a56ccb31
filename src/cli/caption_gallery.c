/*
 * caption_gallery.c: builds the HTML galleries of `shardnet caption --html` and
 * `shardnet eval --model caption --html`.
 * Must not: hold more than the images shown.
 */
#include "shardnet/error.h"
#include "caption_cmd.h"

int sn_cli_gallery_from_set(const char *path, const char *checkpoint, const sn_coco_set_t *set, char *const *words,
                            const sn_caption_eval_t *e, int max_tokens, int n)
{
    (void)checkpoint; (void)set; (void)words; (void)e; (void)max_tokens; (void)n;
    return SN_FAIL(SN_EINVAL, "%s: HTML output is not available in this build", path);
}

int sn_cli_gallery_from_files(const char *path, const char *checkpoint, const char *const *files, int n,
                              char *const *words, const int32_t *hyp, const int *len, int max_tokens)
{
    (void)checkpoint; (void)files; (void)n; (void)words; (void)hyp; (void)len; (void)max_tokens;
    return SN_FAIL(SN_EINVAL, "%s: HTML output is not available in this build", path);
}
