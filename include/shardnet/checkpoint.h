/*
 * checkpoint.h: parameters (and optimizer state) in HDF5.
 *
 * Layout: /params/<name> float32 datasets with each tensor's shape (names as registered,
 * e.g. /params/conv1.weight [16,1,3,3]); optional /optim/square_avg and /optim/acc_delta
 * float32 [trainable floats] (the optimizer's two arenas, attributes steps and optimizer =
 * "adadelta" or "adam": then they hold exp_avg_sq and exp_avg); attributes on / :
 * magic "shardnet", format_version, shardnet_version, and the fields of
 * sn_checkpoint_info_t (model, world_size, threads, seed, epoch, epoch_step, step, batch,
 * shuffle, global_shuffle, dropout, train_limit, loss_sum, loss_count, seconds, metrics,
 * model_config), and for captioning models the vocabulary as /vocab_text.
 * The RNG needs no state: every random number is a function of (seed, step, sample).
 * A file written by h5py with the /params/<name> datasets of PyTorch's state_dict (same
 * names and shapes) is a valid --init file. Files are written to a temporary name and
 * renamed, so an interrupted write never replaces a good file.
 */
#ifndef SHARDNET_CHECKPOINT_H
#define SHARDNET_CHECKPOINT_H
#include <stdint.h>
#include "shardnet/optim.h"
#include "shardnet/params.h"

#define SN_CHECKPOINT_MAGIC   "shardnet"
#define SN_CHECKPOINT_VERSION 1

/* Everything besides the arenas that a resumed run needs to continue exactly. */
typedef struct sn_checkpoint_info {
    char     model[32];
    int      world_size, threads;
    uint64_t seed;
    int64_t  epoch;               /* the epoch in progress, 1-based */
    int64_t  epoch_step;          /* steps of that epoch already done */
    int64_t  step;                /* optimizer steps done in total */
    int      batch, shuffle, global_shuffle, dropout;
    int64_t  train_limit;
    double   loss_sum, loss_count; /* this epoch's loss so far (for its mean) */
    double   seconds;              /* this epoch's training time so far */
    char    *metrics;              /* JSON lines of the finished epochs; load: malloc'd or NULL */
    char    *config;               /* model configuration "key=value ..." (attribute model_config);
                                      load: malloc'd or NULL */
    char    *vocab;                /* the vocabulary, tokens in id order each followed by '\n'
                                      (dataset /vocab_text, uint8); load: malloc'd or NULL */
} sn_checkpoint_info_t;

/* Frees the strings a load returned. */
void sn_checkpoint_info_free(sn_checkpoint_info_t *info);
/* Reads only the attributes and the vocabulary (no tensors): to build the model a
 * checkpoint belongs to before loading it. */
int sn_checkpoint_peek(const char *path, sn_checkpoint_info_t *info);

/* opt may be NULL (parameters only). */
int sn_checkpoint_save(const char *path, const sn_params_t *p, const sn_adadelta_t *opt,
                       const sn_checkpoint_info_t *info);
/* Loads every tensor of p from /params (shapes must match exactly); opt may be NULL. */
int sn_checkpoint_load(const char *path, sn_params_t *p, sn_adadelta_t *opt, sn_checkpoint_info_t *info);

/* Loads only the tensors of p whose names start with `prefix` (e.g. "encoder.body." for a
 * ResNet body from data-prep/convert_torchvision.py) from /params; datasets of the file
 * that p does not have, and tensors of p outside the prefix, are left alone. A missing
 * dataset, a shape that differs, or a non-finite value fails naming the tensor, and then
 * nothing of p changes; so does a prefix that matches no tensor of p (SN_EINVAL). *loaded
 * (may be NULL) receives the number of tensors loaded. */
int sn_checkpoint_load_prefix(const char *path, sn_params_t *p, const char *prefix, int *loaded);

#endif
