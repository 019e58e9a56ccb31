/*
 * caption_train.h: data-parallel training and evaluation of the captioning model
 * (caption.h) on coco_<split>.h5 files (coco.h).
 *
 * Semantics (the reference recipe of /work/shared/bench/torch_caption.py):
 *   - a step's global batch is `batch` caption-image pairs; rank r takes its part of it
 *     (batch/P, the first batch%P ranks one more) from the captions of its own images;
 *   - training transform: a random crop x crop window of the S x S image (the same
 *     offsets for the three channels), a horizontal flip with probability 1/2, /255,
 *     ImageNet mean/std; evaluation: the centre crop. Crop offsets and flips are
 *     functions of (seed, epoch, caption row), so they do not depend on P;
 *   - the loss is the mean over the real tokens of the GLOBAL batch: each rank
 *     back-propagates its token-loss sum, the allreduce adds the gradients and the
 *     token counts, and the sum is divided by the global count before the optimizer;
 *   - BatchNorm statistics are synchronised across ranks (sn_ctx_t.reduce_sum): every
 *     layer normalises with the global batch's mean and variance, so P ranks x B/P
 *     train exactly as 1 rank x B, and the moving statistics are identical on every
 *     rank (checked with the parameter hash, which covers the buffers);
 *   - a frozen encoder (--freeze-encoder) runs its body in evaluation mode on the
 *     centre crop, once per image: the features are cached, later epochs only run the
 *     head and the decoder.
 * Checkpoints: the model configuration and the vocabulary travel in the file, so
 * `shardnet caption` and `shardnet eval` need nothing else.
 */
#ifndef SHARDNET_CAPTION_TRAIN_H
#define SHARDNET_CAPTION_TRAIN_H
#include <stdint.h>
#include <stdio.h>
#include "shardnet/bleu.h"
#include "shardnet/caption.h"
#include "shardnet/coco.h"

#define SN_CAPTION_MAX_DATA 8

typedef struct sn_caption_train_config {
    const char *data[SN_CAPTION_MAX_DATA];   /* training files, one vocabulary */
    int         n_data;
    const char *val;                         /* evaluated after every epoch (optional) */
    sn_caption_config_t model;               /* encoder, embed, hidden, layers, crop, freeze */
    const char *encoder_weights;             /* HDF5 with encoder.body.* tensors (converter) */
    int         epochs, batch;
    float       lr, rho, eps;               /* Adadelta; with adam: lr, eps */
    int         adam;                        /* Adam (betas 0.9, 0.999) instead of Adadelta */
    uint64_t    seed;
    int         threads;
    int         shuffle, global_shuffle, flip;
    int64_t     max_steps;
    int64_t     train_limit, val_limit;       /* images (0: all) */
    int         bleu;                        /* greedy decoding + BLEU at each evaluation */
    int         max_tokens;                  /* greedy decoding length (20) */
    int         samples;                     /* captions printed after the final evaluation */
    const char *metrics, *loss_log, *save, *checkpoint, *resume, *init;
    int64_t     checkpoint_every;
    int         progress, check_every;
    double      stall_timeout;
} sn_caption_train_config_t;

typedef struct sn_caption_eval {
    double   loss, perplexity;      /* teacher-forced, mean over real tokens */
    int64_t  tokens, captions, images;
    double   bleu[4];               /* fractions; zero unless BLEU was asked for */
    /* this rank's greedy captions (BLEU runs only): image i's tokens hyp[i * max_tokens ..] */
    int32_t *hyp;
    int     *hyp_len;
    int64_t  n_hyp;
} sn_caption_eval_t;

enum { SN_CAPTION_WARMUP_STEPS = 3 };

typedef struct sn_caption_train_result {
    int64_t  steps;
    double   train_loss;
    sn_caption_eval_t val;          /* the last evaluation (without hypotheses) */
    double   seconds, images_per_s, tokens_per_s;
    /* over the steps after the first SN_CAPTION_WARMUP_STEPS of this run (first touches of
     * the buffers, BLAS's own set-up), step time only: how benchmarks count; 0 if none */
    double   steady_images_per_s;
    double   t_data, t_forward, t_backward, t_allreduce, t_optim;
    double   peak_rss_mb;
    uint64_t params_hash;
    int      stopped_by_signal, checkpoint_written;
} sn_caption_train_result_t;

void sn_caption_train_defaults(sn_caption_train_config_t *c);
int  sn_train_caption(const sn_caption_train_config_t *c, sn_caption_train_result_t *r);

/* Evaluates m on this rank's part of a set (all ranks call it; sums reduced): loss and
 * perplexity over every caption, and with want_bleu greedy captions of every image and
 * corpus BLEU-1..4 against all references (/caption_tokens; words outside the
 * vocabulary never match). words: the model's vocabulary. */
int  sn_caption_evaluate(sn_caption_model_t *m, const sn_coco_set_t *set, char *const *words, int want_bleu,
                         int max_tokens, sn_caption_eval_t *out);
void sn_caption_eval_free(sn_caption_eval_t *e);
/* The words of ids[0..n) joined by single spaces, as a caption is printed everywhere. */
void sn_caption_fprint(FILE *f, char *const *words, const int32_t *ids, int n);
/* "  image ROW: greedy caption" and one reference, for the first n of this rank's images. */
void sn_caption_print_samples(FILE *f, const sn_coco_set_t *set, char *const *words, const sn_caption_eval_t *e,
                              int max_tokens, int n);

/* The crop x crop window of image (3, S, S) uint8 at (y, x), mirrored if flip, to
 * normalised float (3, crop, crop). */
void sn_caption_image(float *dst, const uint8_t *src, int S, int crop, int y, int x, int flip);

/* Model configuration <-> checkpoint attribute text ("encoder=small embed=256 ..."). */
void sn_caption_config_format(const sn_caption_config_t *c, char *out, size_t n);
int  sn_caption_config_parse(const char *text, sn_caption_config_t *c);

#endif
