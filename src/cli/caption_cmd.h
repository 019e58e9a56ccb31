/* caption_cmd.h: the captioning commands of the `shardnet` executable. */
#ifndef SHARDNET_CLI_CAPTION_CMD_H
#define SHARDNET_CLI_CAPTION_CMD_H
#include <stdint.h>
#include "shardnet/caption_train.h"

/* `shardnet train|eval --model caption ...` and `shardnet caption ...`; argv[0] is the
 * command. Returns the process exit status. */
int sn_cli_caption_main(const char *cmd, int argc, char **argv);

/* HTML galleries (caption_gallery.c): the first n images of this rank's set with their
 * greedy captions and references; or image files with their captions. */
int sn_cli_gallery_from_set(const char *path, const char *checkpoint, const sn_coco_set_t *set, char *const *words,
                            const sn_caption_eval_t *e, int max_tokens, int n);
int sn_cli_gallery_from_files(const char *path, const char *checkpoint, const char *const *files, int n,
                              char *const *words, const int32_t *hyp, const int *len, int max_tokens);

#endif
