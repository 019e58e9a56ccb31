/*
 * caption_train.c: the data-parallel training loop of the captioning model
 * (caption_train.h). One step: crop/flip/normalise this rank's pairs -> forward (BatchNorm
 * statistics reduced across ranks) -> backward of the token-loss sum -> one allreduce of
 * the gradients with the loss, token count and flags in the side slots -> divide by the
 * global token count -> Adadelta.
 * Must not: hold more than this rank's image rows (the default sharded mode); leave a
 * rank behind in a collective when another fails (every failure joins the step's
 * allreduce, flagged, or goes through sn_dist_agree).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "shardnet/caption_train.h"
#include "shardnet/checkpoint.h"
#include "shardnet/data.h"
#include "shardnet/dist.h"
#include "shardnet/optim.h"
#include "shardnet/rng.h"
#include "shardnet/train.h"
#include "train/runtime.h"

void sn_caption_train_defaults(sn_caption_train_config_t *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->model.encoder, sizeof c->model.encoder, "small");
    c->model.embed = 256;
    c->model.hidden = 512;
    c->model.layers = 1;
    c->model.crop = 224;
    c->epochs = 1;
    c->batch = 32;
    c->lr = 1.0f;
    c->rho = 0.9f;
    c->eps = 1e-6f;
    c->shuffle = 1;
    c->flip = 1;
    c->bleu = 1;
    c->max_tokens = 20;
    c->samples = 5;
    c->check_every = 200;
    c->progress = SN_PROGRESS_AUTO;
    c->stall_timeout = 30.0;
}

static int reduce_sum(double *v, int n, void *arg)
{
    (void)arg;
    return sn_dist_allreduce_sum_f64(v, (size_t)n);
}

/* Re-strides the captions of s to rows of L >= s->max_len tokens (padding with <pad>). */
static int widen_captions(sn_coco_set_t *s, int L)
{
    if (L == s->max_len) return SN_OK;
    int32_t *w = calloc((size_t)(s->n_captions ? s->n_captions : 1) * L, sizeof *w);
    if (!w) return SN_FAIL(SN_ENOMEM, "captions of %lld rows", (long long)s->n_captions);
    for (int64_t c = 0; c < s->n_captions; c++)
        memcpy(w + (size_t)c * L, s->captions + (size_t)c * s->max_len, (size_t)s->max_len * sizeof *w);
    free(s->captions);
    s->captions = w;
    s->max_len = L;
    return SN_OK;
}

/* Appends b to a (images and captions; b's image indices shift by a's image count; caption
 * rows take the longer of the two lengths). */
static int set_append(sn_coco_set_t *a, sn_coco_set_t *b)
{
    if (!a->images) {
        *a = *b;
        memset(b, 0, sizeof *b);
        return SN_OK;
    }
    int L = a->max_len > b->max_len ? a->max_len : b->max_len, S = a->size;
    SN_TRY(widen_captions(a, L));
    SN_TRY(widen_captions(b, L));
    size_t per = (size_t)3 * S * S;
    int64_t ni = a->n_images + b->n_images, nc = a->n_captions + b->n_captions;
    uint8_t *im = realloc(a->images, (size_t)(ni ? ni : 1) * per);
    if (im) a->images = im;
    int64_t *row = realloc(a->caption_row, (size_t)(nc ? nc : 1) * sizeof *row);
    if (row) a->caption_row = row;
    int32_t *cap = realloc(a->captions, (size_t)(nc ? nc : 1) * L * sizeof *cap);
    if (cap) a->captions = cap;
    int32_t *len = realloc(a->lengths, (size_t)(nc ? nc : 1) * sizeof *len);
    if (len) a->lengths = len;
    int32_t *img = realloc(a->image, (size_t)(nc ? nc : 1) * sizeof *img);
    if (img) a->image = img;
    if (!im || !row || !cap || !len || !img) return SN_FAIL(SN_ENOMEM, "training set of %lld images", (long long)ni);
    memcpy(a->images + (size_t)a->n_images * per, b->images, (size_t)b->n_images * per);
    for (int64_t c = 0; c < b->n_captions; c++) {
        int64_t k = a->n_captions + c;
        a->caption_row[k] = a->n_captions_total + b->caption_row[c];
        memcpy(a->captions + (size_t)k * L, b->captions + (size_t)c * L, (size_t)L * sizeof *cap);
        a->lengths[k] = b->lengths[c];
        a->image[k] = (int32_t)(a->n_images + b->image[c]);
    }
    a->n_images = ni;
    a->n_captions = nc;
    a->n_captions_total += b->n_captions_total;
    sn_coco_free(b);
    return SN_OK;
}

/* This rank's images of the concatenated training files (file f has file_images[f]): global
 * image rows [first, first+count). Rows keep globally unique caption_row values. */
static int load_train(const sn_caption_train_config_t *c, const int64_t *file_images, int64_t first, int64_t count,
                      sn_coco_set_t *out)
{
    memset(out, 0, sizeof *out);
    int64_t base = 0;
    for (int f = 0; f < c->n_data; f++) {
        int64_t ni = file_images[f];
        int64_t lo = first > base ? first : base, hi = first + count < base + ni ? first + count : base + ni;
        sn_coco_set_t part;
        int rc = sn_coco_load(c->data[f], lo < hi ? lo - base : 0, lo < hi ? hi - lo : 0, 0, &part);
        if (!rc && out->images && (part.size != out->size || part.vocab != out->vocab))
            rc = SN_FAIL(SN_EFORMAT, "%s: images %d x %d, vocabulary %d; %s has %d x %d, %d: pack every training "
                         "file with the same vocabulary and --size", c->data[f], part.size, part.size, part.vocab,
                         c->data[0], out->size, out->size, out->vocab);
        if (!rc) rc = set_append(out, &part);
        if (rc) {
            sn_coco_free(&part);
            sn_coco_free(out);
            return rc;
        }
        base += ni;
    }
    out->image_first = first;
    return SN_OK;
}

/* The vocabulary of every training file (and of --val) must be the same word list. */
static int check_vocabularies(const sn_caption_train_config_t *c, char ***words, int *V)
{
    SN_TRY(sn_coco_read_words(c->data[0], words, V));
    const char *others[SN_CAPTION_MAX_DATA + 1];
    int n = 0;
    for (int f = 1; f < c->n_data; f++) others[n++] = c->data[f];
    if (c->val) others[n++] = c->val;
    for (int k = 0; k < n; k++) {
        char **w2;
        int V2, rc = sn_coco_read_words(others[k], &w2, &V2);
        if (!rc && V2 != *V)
            rc = SN_FAIL(SN_EFORMAT, "%s has a vocabulary of %d tokens, %s one of %d: pack every file with the same "
                         "vocabulary (sn-vocab, then sn-pack --vocab)", others[k], V2, c->data[0], *V);
        for (int i = 0; !rc && i < V2; i++)
            if (strcmp(w2[i], (*words)[i]) != 0)
                rc = SN_FAIL(SN_EFORMAT, "%s: vocabulary id %d is '%s', in %s it is '%s': pack every file with the "
                             "same vocabulary", others[k], i, w2[i], c->data[0], (*words)[i]);
        sn_coco_free_words(w2, V2);
        if (rc) return rc;
    }
    return SN_OK;
}

static char *vocab_text(char *const *words, int V)
{
    size_t n = 1;
    for (int i = 0; i < V; i++) n += strlen(words[i]) + 1;
    char *t = malloc(n), *p = t;
    if (!t) return NULL;
    for (int i = 0; i < V; i++) p += sprintf(p, "%s\n", words[i]);
    return t;
}

typedef struct {
    sn_caption_model_t m;
    sn_adadelta_t      opt;
    sn_coco_set_t      data, val;
    char             **words;
    int                V, threads;
    char               config[256];
    char              *vocab;
    sn_text_t          metrics;
    float             *cache;      /* frozen encoder: (n_images, F) body features */
} run_t;

static int save_checkpoint(const sn_caption_train_config_t *c, run_t *run, const char *path, int64_t step,
                           int64_t steps_per_epoch, const double loss[2], double seconds)
{
    int rc = SN_OK, at_boundary = step % steps_per_epoch == 0;
    if (sn_dist_rank() == 0) {
        sn_checkpoint_info_t ci = {
            .world_size = sn_dist_size(), .threads = run->threads, .seed = c->seed,
            .epoch = step / steps_per_epoch + 1, .epoch_step = step % steps_per_epoch, .step = step,
            .batch = c->batch, .shuffle = c->shuffle, .global_shuffle = c->global_shuffle, .dropout = c->flip,
            .train_limit = c->train_limit, .loss_sum = at_boundary ? 0.0 : loss[0],
            .loss_count = at_boundary ? 0.0 : loss[1], .seconds = at_boundary ? 0.0 : seconds,
            .metrics = run->metrics.text, .config = run->config, .vocab = run->vocab};
        snprintf(ci.model, sizeof ci.model, "caption");
        rc = sn_checkpoint_save(path, &run->m.params, &run->opt, &ci);
    }
    return sn_dist_agree(rc);
}

static int resume_from(const sn_caption_train_config_t *c, run_t *run, sn_checkpoint_info_t *at)
{
    int rc = SN_OK;
    memset(at, 0, sizeof *at);
    if (sn_dist_rank() == 0) {
        rc = sn_checkpoint_load(c->resume, &run->m.params, &run->opt, at);
        if (!rc && strcmp(at->model, "caption") != 0)
            rc = SN_FAIL(SN_EFORMAT, "%s: a checkpoint of model '%s', this run trains 'caption'", c->resume, at->model);
        else if (!rc && (!at->config || strcmp(at->config, run->config) != 0))
            rc = SN_FAIL(SN_EINVAL, "%s: the checkpoint's model is '%s', this run builds '%s'", c->resume,
                         at->config ? at->config : "(none)", run->config);
        else if (!rc && (at->seed != c->seed || at->batch != c->batch || at->shuffle != c->shuffle ||
                         at->global_shuffle != c->global_shuffle || at->dropout != c->flip ||
                         at->train_limit != c->train_limit))
            rc = SN_FAIL(SN_EINVAL, "%s: made with --seed %llu --batch %d, shuffle %d, global shuffle %d, flip %d, "
                         "--train-limit %lld; resume with the same settings", c->resume,
                         (unsigned long long)at->seed, at->batch, at->shuffle, at->global_shuffle, at->dropout,
                         (long long)at->train_limit);
        else if (!rc && (at->epoch < 1 || at->epoch_step < 0 || at->step < 0))
            rc = SN_FAIL(SN_EFORMAT, "%s: corrupt run position", c->resume);
    }
    SN_TRY(sn_dist_agree(rc));
    double hdr[6] = {(double)at->epoch, (double)at->epoch_step, (double)at->step, at->loss_sum, at->loss_count,
                     at->seconds};
    SN_TRY(sn_dist_bcast_f64(hdr, 6, 0));
    at->epoch = (int64_t)hdr[0];
    at->epoch_step = (int64_t)hdr[1];
    at->step = (int64_t)hdr[2];
    at->loss_sum = hdr[3];
    at->loss_count = hdr[4];
    at->seconds = hdr[5];
    SN_TRY(sn_dist_bcast_f32(run->m.params.values, run->m.params.total, 0));
    SN_TRY(sn_dist_bcast_f32(run->opt.square_avg, run->opt.n, 0));
    SN_TRY(sn_dist_bcast_f32(run->opt.acc_delta, run->opt.n, 0));
    run->opt.steps = (long)at->step;
    if (at->metrics) sn_text_append(&run->metrics, at->metrics);
    sn_checkpoint_info_free(at);
    return SN_OK;
}

/* Frozen encoder: the body features of every image of this rank, once (centre crop). */
static int fill_cache(run_t *run, float *x)
{
    sn_caption_model_t *m = &run->m;
    const sn_coco_set_t *s = &run->data;
    int B = m->max_batch, crop = m->crop, S = s->size, o = (S - crop) / 2, rc = SN_OK;
    size_t per = (size_t)3 * crop * crop;
    for (int64_t i = 0; !rc && i < s->n_images; i += B) {
        int b = (int)(s->n_images - i < B ? s->n_images - i : B);
        for (int k = 0; k < b; k++)
            sn_caption_image(x + (size_t)k * per, s->images + (size_t)(i + k) * 3 * S * S, S, crop, o, o, 0);
        rc = sn_caption_body_features(m, x, b, run->cache + (size_t)i * m->features);
    }
    return rc;
}

static void print_validation(int epoch, const sn_caption_eval_t *e, int bleu)
{
    printf("Epoch %d validation: ", epoch);
    printf("loss %.4f, perplexity %.2f over %lld tokens of %lld captions", e->loss, e->perplexity,
           (long long)e->tokens, (long long)e->captions);
    if (bleu)
        printf("; BLEU-1..4 %.2f %.2f %.2f %.2f on %lld images", 100 * e->bleu[0], 100 * e->bleu[1],
               100 * e->bleu[2], 100 * e->bleu[3], (long long)e->images);
    printf("\n");
    fflush(stdout);
}

int sn_train_caption(const sn_caption_train_config_t *c, sn_caption_train_result_t *r)
{
    memset(r, 0, sizeof *r);
    int rank = sn_dist_rank(), P = sn_dist_size(), B = c->batch, rc = SN_OK;
    if (c->n_data < 1) return SN_FAIL(SN_EINVAL, "no training data (--data coco_train.h5)");
    if (B < P) return SN_FAIL(SN_EINVAL, "global batch %d is smaller than the %d ranks", B, P);
    if (c->epochs < 1) return SN_FAIL(SN_EINVAL, "epochs must be >= 1, got %d", c->epochs);
    run_t run;
    memset(&run, 0, sizeof run);
    run.threads = sn_train_set_threads(c->threads);
    int b_loc = B / P + (rank < B % P), b_max = B / P + (B % P != 0);
    int offset = rank * (B / P) + (rank < B % P ? rank : B % P);
    float *x = NULL, *feat = NULL;
    int32_t *caps = NULL;
    int *lens = NULL;
    int64_t *perm = NULL;
    FILE *metrics = NULL, *loss_log = NULL;
    int64_t NI = 0, NC = 0, first = 0, count = 0;

    /* data: the vocabulary, this rank's images, the validation shard */
    if (rank == 0) rc = check_vocabularies(c, &run.words, &run.V);
    if ((rc = sn_dist_agree(rc))) goto out;
    if (rank != 0 && (rc = sn_coco_read_words(c->data[0], &run.words, &run.V))) goto agree;
    int64_t file_images[SN_CAPTION_MAX_DATA];
    for (int f = 0; !rc && f < c->n_data; f++) {
        int64_t nc;
        if (!(rc = sn_coco_count(c->data[f], &file_images[f], &nc))) { NI += file_images[f]; NC += nc; }
    }
    if (!rc && c->train_limit > 0 && c->train_limit < NI) NI = c->train_limit;
    first = 0;
    count = NI;
    if (!rc && !c->global_shuffle) sn_shard_range(NI, rank, P, &first, &count);
    if (!rc) rc = load_train(c, file_images, first, count, &run.data);
    if (!rc && c->model.crop > run.data.size)
        rc = SN_FAIL(SN_EINVAL, "--crop %d is larger than the images of %s (%d x %d)", c->model.crop, c->data[0],
                     run.data.size, run.data.size);
    if (!rc && c->val) {
        int64_t vi, vc;
        rc = sn_coco_count(c->val, &vi, &vc);
        if (!rc && c->val_limit > 0 && c->val_limit < vi) vi = c->val_limit;
        int64_t vf, vn;
        sn_shard_range(vi, rank, P, &vf, &vn);
        if (!rc) rc = sn_coco_load(c->val, vf, vn, SN_COCO_REFS, &run.val);
        if (!rc && c->model.crop > run.val.size)
            rc = SN_FAIL(SN_EINVAL, "--crop %d is larger than the images of %s", c->model.crop, c->val);
    }
agree:
    if ((rc = sn_dist_agree(rc))) goto out;

    /* the model */
    sn_caption_config_t mc = c->model;
    mc.vocab = run.V;
    mc.max_batch = b_max;   /* evaluation runs batches of the same size: memory follows the batch */
    mc.max_len = run.data.max_len > run.val.max_len ? run.data.max_len : run.val.max_len;
    rc = sn_caption_model_build(&run.m, &mc);
    sn_caption_model_t *m = &run.m;
    if (!rc) {
        sn_caption_config_t saved = m->cfg;
        saved.max_len = run.data.max_len;
        saved.image_size = run.data.size;
        sn_caption_config_format(&saved, run.config, sizeof run.config);
        if (!(run.vocab = vocab_text(run.words, run.V))) rc = SN_FAIL(SN_ENOMEM, "vocabulary text");
    }
    if ((rc = sn_dist_agree(rc))) goto out;
    size_t n_train = m->params.trainable_total;
    rc = c->adam ? sn_adam_init(&run.opt, n_train, c->lr, 0.9f, 0.999f, c->eps, 0.0f)
                 : sn_adadelta_init(&run.opt, n_train, c->lr, c->rho, c->eps, 0.0f);
    if ((rc = sn_dist_agree(rc))) goto out;
    sn_caption_model_reset(m, c->seed);
    if (rank == 0 && c->encoder_weights) {
        int loaded = 0;
        rc = sn_checkpoint_load_prefix(c->encoder_weights, &m->params, "encoder.body.", &loaded);
        if (!rc) printf("shardnet: encoder body from %s (%d tensors)\n", c->encoder_weights, loaded);
    }
    if (rank == 0 && c->init && !rc) rc = sn_checkpoint_load(c->init, &m->params, NULL, NULL);
    if ((rc = sn_dist_agree(rc))) goto out;
    if ((rc = sn_dist_bcast_f32(m->params.values, m->params.total, 0))) goto out;
    sn_checkpoint_info_t at;
    memset(&at, 0, sizeof at);
    at.epoch = 1;
    if (c->resume && (rc = resume_from(c, &run, &at))) goto out;

    /* steps per epoch: every rank the same number */
    int64_t steps;
    if (c->global_shuffle) steps = run.data.n_captions / B;
    else {
        double s = (double)(run.data.n_captions / b_loc);
        double neg = -s;
        if ((rc = sn_dist_allreduce_max_f64(&neg, 1))) goto out;
        steps = (int64_t)-neg;
    }
    if (steps < 1) {
        rc = sn_dist_agree(SN_FAIL(SN_EINVAL, "%lld training captions%s are fewer than one global batch of %d",
                                   (long long)run.data.n_captions, c->global_shuffle ? "" : " on some rank", B));
        goto out;
    }
    int crop = m->crop, S = run.data.size, L = run.data.max_len, F = m->features;
    size_t per = (size_t)3 * crop * crop;
    x = sn_alloc((size_t)mc.max_batch * per * sizeof(float), "image batch");
    int ML = m->max_len;   /* the model's row stride (>= L when --val has longer captions) */
    caps = calloc((size_t)b_max * ML, sizeof *caps);
    lens = malloc((size_t)b_max * sizeof *lens);
    perm = malloc((size_t)(run.data.n_captions ? run.data.n_captions : 1) * sizeof *perm);
    if (mc.freeze_encoder) {
        run.cache = sn_alloc((size_t)(run.data.n_images ? run.data.n_images : 1) * F * sizeof(float), "feature cache");
        feat = sn_alloc((size_t)b_max * F * sizeof(float), "feature batch");
    }
    if (!x || !caps || !lens || !perm || (mc.freeze_encoder && (!run.cache || !feat)))
        rc = SN_FAIL(SN_ENOMEM, "training buffers");
    if (!rc) rc = sn_open_run_outputs(rank, c->metrics, run.metrics.text, c->loss_log, c->resume != NULL, &metrics,
                                      &loss_log);
    if ((rc = sn_dist_agree(rc))) goto out;

    sn_progress_t prog = {.mode = rank == 0 ? c->progress : SN_PROGRESS_NONE};
    prog.bar = prog.mode == SN_PROGRESS_AUTO && isatty(2);
    if (rank == 0) {
        printf("shardnet: training caption (%s) on %lld images, %lld captions, vocabulary %d: %d rank%s x %d thread%s, "
               "global batch %d, %lld steps/epoch, %lld trained parameters, BatchNorm synchronised across ranks, "
               "BLAS kernels %s\n", run.config, (long long)NI, (long long)NC, run.V, P, P > 1 ? "s" : "", run.threads,
               run.threads > 1 ? "s" : "", B, (long long)steps, (long long)sn_params_count(&m->params), sn_blas_core());
        if (c->resume)
            printf("shardnet: resumed from %s at epoch %lld, step %lld of the epoch (%lld steps done)\n", c->resume,
                   (long long)at.epoch, (long long)at.epoch_step, (long long)at.step);
        fflush(stdout);
    }

    sn_saved_signals_t saved;
    sn_catch_stop_signals(&saved);
    int64_t step = at.step, tokens_done = 0;
    double steady_s = 0.0;   /* step time after the warm-up steps */
    int stop = 0;
    double part_loss[2] = {at.loss_sum, at.loss_count}, part_secs = at.seconds;
    for (int epoch = (int)at.epoch; epoch <= c->epochs && !stop && !rc; epoch++) {
        int64_t n_loc = run.data.n_captions;
        sn_epoch_order(perm, n_loc, c->shuffle, c->global_shuffle, c->seed, epoch, rank);
        int resumed = epoch == at.epoch && c->resume;
        int64_t s = resumed ? at.epoch_step : 0;
        double t_epoch = sn_dist_wtime() - (resumed ? at.seconds : 0.0);
        sn_epoch_loss_t el;
        sn_epoch_loss_begin(&el, steps, resumed ? (double[2]){at.loss_sum, at.loss_count} : NULL);
        if (mc.freeze_encoder && epoch == (int)at.epoch && (rc = sn_dist_agree(fill_cache(&run, x)))) break;
        for (; s < steps; s++) {
            if (c->max_steps > 0 && step >= c->max_steps) { stop = 1; break; }
            sn_maybe_inject_fault(rank, step);
            double t0 = sn_dist_wtime();
            const int64_t *src = c->global_shuffle ? perm + s * B + offset : perm + s * b_loc;
            for (int k = 0; k < b_loc; k++) {
                int64_t cap = src[k];
                int32_t img = run.data.image[cap];
                uint64_t key = (uint64_t)run.data.caption_row[cap];
                if (mc.freeze_encoder)
                    memcpy(feat + (size_t)k * F, run.cache + (size_t)img * F, (size_t)F * sizeof(float));
                else {
                    uint64_t u = sn_rng_u64(c->seed, SN_RNG_AUGMENT, (uint64_t)epoch, key, 0);
                    int span = S - crop + 1;
                    int y = (int)((u & 0xffffffffu) % (uint64_t)span), xo = (int)((u >> 32) % (uint64_t)span);
                    int flip = c->flip && (sn_rng_u64(c->seed, SN_RNG_AUGMENT, (uint64_t)epoch, key, 1) & 1);
                    sn_caption_image(x + (size_t)k * per, run.data.images + (size_t)img * 3 * S * S, S, crop, y, xo,
                                     flip);
                }
                memcpy(caps + (size_t)k * ML, run.data.captions + (size_t)cap * L, (size_t)L * sizeof *caps);
                lens[k] = run.data.lengths[cap];
            }
            /* one rank: its batch is the global batch, no reduction needed */
            sn_ctx_t ctx = {.training = 1, .seed = c->seed, .step = step, .reduce_sum = P > 1 ? reduce_sum : NULL};
            double t1 = sn_dist_wtime();
            double loss = 0.0;
            int64_t ntok = 0;
            int lrc = mc.freeze_encoder
                ? sn_caption_forward_loss_features(m, &ctx, feat, caps, lens, b_loc, &loss, &ntok)
                : sn_caption_forward_loss(m, &ctx, x, caps, lens, b_loc, &loss, &ntok);
            double t2 = sn_dist_wtime();
            if (!lrc) lrc = sn_caption_backward(m, 1.0f);
            double t3 = sn_dist_wtime();
            /* the mean over the global batch's real tokens: the summed gradients / their count */
            sn_step_sums_t sum;
            if ((rc = sn_step_sync(m->params.grads, n_train, loss, (double)ntok, lrc, 1, step, epoch, c->stall_timeout,
                                   c->checkpoint, &sum))) break;
            double t4 = sn_dist_wtime();
            double loss_g = sum.loss, tokens_g = sum.count;
            int stop_request = sum.stop;
            sn_adadelta_step(&run.opt, m->params.values, m->params.grads);
            sn_params_zero_grad(&m->params);
            double t5 = sn_dist_wtime();
            r->t_data += t1 - t0; r->t_forward += t2 - t1; r->t_backward += t3 - t2;
            r->t_allreduce += t4 - t3; r->t_optim += t5 - t4;
            if (step - at.step >= SN_CAPTION_WARMUP_STEPS) steady_s += t5 - t0;
            step++;
            tokens_done += (int64_t)tokens_g;
            if ((rc = sn_step_log_check(loss_log, step, loss_g / tokens_g, c->check_every, &m->params))) break;
            /* the epoch's loss: mean over steps of the step's token mean, as the reference reports it */
            sn_epoch_loss_add(&el, &prog, epoch, s, steps, loss_g / tokens_g, 1, (double)(s + 1) * B, t_epoch);
            sn_epoch_loss_part(&el, part_loss);
            part_secs = sn_dist_wtime() - t_epoch;
            int due = c->checkpoint && c->checkpoint_every > 0 && step % c->checkpoint_every == 0;
            if (c->checkpoint && (due || stop_request)) {
                if ((rc = save_checkpoint(c, &run, c->checkpoint, step, steps, part_loss, part_secs))) break;
                r->checkpoint_written = 1;
            }
            if (stop_request) {
                stop = 1;
                r->stopped_by_signal = 1;
                if (rank == 0) sn_report_stop(step, c->checkpoint);
                break;
            }
        }
        if (rc) break;
        double secs = sn_dist_wtime() - t_epoch;
        r->seconds += secs;
        r->train_loss = part_loss[1] > 0 ? part_loss[0] / part_loss[1] : NAN;
        if (s < steps && !(stop && !r->stopped_by_signal)) break;   /* stopped by a signal: no evaluation */
        int64_t done_steps = s - (resumed ? at.epoch_step : 0);
        sn_caption_eval_free(&r->val);
        if (c->val && (rc = sn_caption_evaluate(m, &run.val, run.words, c->bleu, c->max_tokens, &r->val))) break;
        double rss = sn_rss_now_mb();
        if ((rc = sn_dist_allreduce_max_f64(&rss, 1))) break;
        char line[768], val[256] = "";
        if (c->val)
            snprintf(val, sizeof val, "\"val_loss\": %.6f, \"val_perplexity\": %.4f, \"bleu\": [%.6f, %.6f, %.6f, %.6f], ",
                     r->val.loss, r->val.perplexity, r->val.bleu[0], r->val.bleu[1], r->val.bleu[2], r->val.bleu[3]);
        snprintf(line, sizeof line,
                 "{\"epoch\": %d, \"steps\": %lld, \"train_loss\": %.6f, %s\"seconds\": %.3f, \"images_per_s\": %.2f, "
                 "\"ranks\": %d, \"threads\": %d, \"rss_mb\": %.1f}\n", epoch, (long long)step, r->train_loss, val, secs,
                 (double)done_steps * B / secs, P, run.threads, rss);
        sn_text_append(&run.metrics, line);
        if (rank == 0) {
            printf("Epoch %d: train loss %.4f, %.1f s, %.1f images/s, resident memory %.0f MB (largest rank)\n", epoch,
                   r->train_loss, secs, (double)done_steps * B / secs, rss);
            if (c->val) print_validation(epoch, &r->val, c->bleu);
            if (metrics) {
                fputs(line, metrics);
                fflush(metrics);
            }
        }
        if (c->checkpoint && c->checkpoint_every > 0 && step % c->checkpoint_every == 0 &&
            (rc = save_checkpoint(c, &run, c->checkpoint, step, steps, part_loss, part_secs))) break;
        if (stop) break;
    }
    sn_restore_signals(&saved);
    r->steps = step;
    r->images_per_s = r->seconds > 0 ? (double)(step - at.step) * B / r->seconds : 0.0;
    r->tokens_per_s = r->seconds > 0 ? (double)tokens_done / r->seconds : 0.0;
    r->steady_images_per_s = steady_s > 0 ? (double)(step - at.step - SN_CAPTION_WARMUP_STEPS) * B / steady_s : 0.0;
    if (rc) {
        rc = sn_dist_agree(rc);
        goto out;
    }
    if (rank == 0 && c->val && c->bleu && c->samples > 0 && !r->stopped_by_signal && r->val.n_hyp) {
        printf("Sample captions (greedy), beside one reference:\n");
        sn_caption_print_samples(stdout, &run.val, run.words, &r->val, c->max_tokens, c->samples);
    }
    sn_caption_eval_free(&r->val);
    if ((rc = sn_dist_check_same(sn_params_hash(&m->params), "final parameters"))) goto out;
    r->params_hash = sn_params_hash(&m->params);
    r->peak_rss_mb = sn_peak_rss_mb();
    if ((rc = sn_dist_allreduce_max_f64(&r->peak_rss_mb, 1))) goto out;
    if (rank == 0)
        printf("shardnet: %lld steps, parameters and BatchNorm statistics identical on all %d ranks (hash %016llx)\n",
               (long long)step, P, (unsigned long long)r->params_hash);
    if (c->checkpoint && !r->stopped_by_signal) {
        if ((rc = save_checkpoint(c, &run, c->checkpoint, step, steps, part_loss, part_secs))) goto out;
        r->checkpoint_written = 1;
    }
    if (c->save) rc = save_checkpoint(c, &run, c->save, step, steps, part_loss, part_secs);
out:
    if (metrics) fclose(metrics);
    if (loss_log) fclose(loss_log);
    sn_free(x);
    sn_free(feat);
    sn_free(run.cache);
    free(caps);
    free(lens);
    free(perm);
    free(run.vocab);
    sn_text_free(&run.metrics);
    sn_coco_free_words(run.words, run.V);
    sn_coco_free(&run.data);
    sn_coco_free(&run.val);
    sn_adadelta_free(&run.opt);
    sn_caption_model_free(&run.m);
    return rc;
}
