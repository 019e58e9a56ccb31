/*
 * train.c: the data-parallel training loop for image classifiers (MNIST ConvNet) and
 * their evaluation. The only place where a step is assembled. Everything MPI goes
 * through dist/, everything HDF5 through data/ and checkpoint.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "shardnet/checkpoint.h"
#include "shardnet/data.h"
#include "shardnet/dist.h"
#include "shardnet/loss.h"
#include "shardnet/optim.h"
#include "shardnet/train.h"
#include "kernels/kernels.h"
#include "train/runtime.h"

void sn_train_defaults(sn_train_config_t *c)
{
    memset(c, 0, sizeof *c);
    c->epochs = 2;
    c->batch = 32;
    c->lr = 0.5f;
    c->rho = 0.9f;
    c->eps = 1e-6f;
    c->shuffle = 1;
    c->dropout = 1;
    c->check_every = 200;
    c->progress = SN_PROGRESS_AUTO;
    c->stall_timeout = 30.0;
}

int sn_train_set_threads(int requested)
{
    static int warned;
    int threads = requested > 0 ? requested : sn_dist_default_threads();
    sn_kernels_set_threads(threads);
    int cpus = sn_dist_bound_cpus();
    if (threads > cpus && sn_dist_rank() == 0 && !warned) {
        /* mpirun binds each rank to one core by default (np <= 2): a rank then runs all its
         * threads on that core, at half speed or worse, without any other sign */
        fprintf(stderr, "shardnet: warning: %d threads per rank, but rank 0 may only run on %d CPU%s (its affinity): "
                "the threads share them. Under mpirun give each rank its cores (--bind-to core --map-by slot:PE=%d, "
                "or --bind-to none); a single rank needs no mpirun.\n", threads, cpus, cpus > 1 ? "s" : "", threads);
        warned = 1;
    }
    return threads;
}

const char *sn_blas_core(void) { return sn_kernels_blas_core(); }
const char *sn_blas_better_core(void) { return sn_kernels_better_blas_core(); }

/* Normalised float images and int labels of the given local rows. x (b, C*H*W). */
static void fill_batch(float *x, int *y, int64_t *ids, const sn_image_set_t *s, const int64_t *rows, int b)
{
    size_t per = (size_t)s->channels * s->height * s->width;
    const float scale = 1.0f / 255.0f, mean = (float)s->mean, inv_std = 1.0f / (float)s->std;
    for (int i = 0; i < b; i++) {
        const uint8_t *src = s->images + (size_t)rows[i] * per;
        float *dst = x + (size_t)i * per;
        for (size_t k = 0; k < per; k++) dst[k] = ((float)src[k] * scale - mean) * inv_std;
        y[i] = s->labels[rows[i]];
        ids[i] = s->first + rows[i];
    }
}

static int argmax_row(const float *v, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[best]) best = i;
    return best;
}

/* The image size of s must be the model's input (C,H,W): anything else would overrun the batch. */
static int check_input_shape(const sn_model_t *m, const sn_image_set_t *s, const char *path, const char *split)
{
    const sn_layer_t *l = m->net;
    size_t per = (size_t)s->channels * s->height * s->width;
    int same = per == l->in_size;
    if (same && l->in_ndim == 3)
        same = s->channels == l->in_shape[0] && s->height == l->in_shape[1] && s->width == l->in_shape[2];
    if (same) return SN_OK;
    if (l->in_ndim == 3)
        return SN_FAIL(SN_EFORMAT, "%s: /%s/images are %dx%dx%d (CxHxW), the model needs %dx%dx%d", path, split,
                       s->channels, s->height, s->width, l->in_shape[0], l->in_shape[1], l->in_shape[2]);
    return SN_FAIL(SN_EFORMAT, "%s: /%s/images have %zu values each, the model needs %zu", path, split, per, l->in_size);
}

/* This rank's shard of /split (the first `limit` rows when limit > 0), checked against the
 * model. Collective. */
static int load_eval_shard(const sn_model_t *m, const char *path, const char *split, int64_t limit, sn_image_set_t *s)
{
    int rank = sn_dist_rank(), size = sn_dist_size();
    int64_t n = 0, begin, count;
    memset(s, 0, sizeof *s);
    int rc = sn_mnist_rows(path, split, &n);
    if (!rc && limit > 0 && limit < n) n = limit;
    if (!rc && n < size) rc = SN_FAIL(SN_EINVAL, "%s: /%s has %lld rows, fewer than the %d ranks", path, split, (long long)n, size);
    if (!rc) {
        sn_shard_range(n, rank, size, &begin, &count);
        rc = sn_mnist_load(path, split, begin, count, m->num_classes, s);
    }
    if (!rc) rc = check_input_shape(m, s, path, split);
    if (rc) sn_image_set_free(s);
    return sn_dist_agree(rc);
}

/* Evaluates on a loaded shard with the caller's batch buffers (sized for the model's
 * max_batch); sums are reduced over ranks. Allocates nothing. */
static int evaluate_shard(sn_model_t *m, const sn_image_set_t *s, float *x, int *y, int64_t *ids, int64_t *rows,
                          double *avg_loss, int64_t *correct, int64_t *total)
{
    int B = m->net->max_batch, C = m->num_classes, rc = SN_OK;
    double sums[1] = {0.0};
    int64_t counts[2] = {0, s->n};
    sn_ctx_t ctx = {.training = 0};
    for (int64_t i = 0; !rc && i < s->n; i += B) {
        int b = (int)(s->n - i < B ? s->n - i : B);
        for (int k = 0; k < b; k++) rows[k] = i + k;
        fill_batch(x, y, ids, s, rows, b);
        rc = sn_layer_forward(m->net, &ctx, x, b);
        double l = 0.0;
        if (!rc) rc = sn_nll_forward(&l, m->net->output, y, b, C);
        sums[0] += l;
        for (int k = 0; !rc && k < b; k++) counts[0] += argmax_row(m->net->output + (size_t)k * C, C) == y[k];
    }
    SN_TRY(sn_dist_agree(rc));
    SN_TRY(sn_dist_allreduce_sum_f64(sums, 1));
    SN_TRY(sn_dist_allreduce_sum_i64(counts, 2));
    *avg_loss = sums[0] / (double)counts[1];
    *correct = counts[0];
    *total = counts[1];
    return SN_OK;
}

int sn_evaluate(sn_model_t *m, const char *path, const char *split, int64_t limit,
                double *avg_loss, int64_t *correct, int64_t *total)
{
    sn_image_set_t s;
    SN_TRY(load_eval_shard(m, path, split, limit, &s));
    int B = m->net->max_batch, rc = SN_OK;
    float *x = sn_alloc((size_t)B * m->net->in_size * sizeof(float), "evaluation batch");
    int *y = calloc((size_t)B, sizeof *y);
    int64_t *ids = calloc((size_t)B, sizeof *ids), *rows = calloc((size_t)B, sizeof *rows);
    if (!x || !y || !ids || !rows) rc = SN_FAIL(SN_ENOMEM, "evaluation buffers");
    rc = sn_dist_agree(rc);
    if (!rc) rc = evaluate_shard(m, &s, x, y, ids, rows, avg_loss, correct, total);
    sn_free(x);
    free(y);
    free(ids);
    free(rows);
    sn_image_set_free(&s);
    return rc;
}

/* ---- the training loop -------------------------------------------------------------- */

typedef struct {
    sn_model_t      m;
    sn_adadelta_t   opt;
    sn_image_set_t  data;           /* this rank's training rows */
    sn_image_set_t  test;           /* this rank's test rows, loaded once */
    int             threads;
    sn_text_t       metrics;        /* JSON lines of finished epochs (kept for checkpoints) */
} run_t;

/* Every epoch has the same number of steps, so `step` steps done puts the run at step
 * step % steps_per_epoch of epoch step / steps_per_epoch + 1; loss and seconds are that
 * epoch's so far (zero at an epoch boundary). */
static int save_checkpoint(const sn_train_config_t *c, run_t *run, const char *path, int64_t step,
                           int64_t steps_per_epoch, const double loss[2], double seconds)
{
    int rc = SN_OK;
    int at_boundary = step % steps_per_epoch == 0;
    if (sn_dist_rank() == 0) {
        sn_checkpoint_info_t ci = {
            .world_size = sn_dist_size(), .threads = run->threads, .seed = c->seed,
            .epoch = step / steps_per_epoch + 1, .epoch_step = step % steps_per_epoch, .step = step,
            .batch = c->batch, .shuffle = c->shuffle,
            .global_shuffle = c->global_shuffle, .dropout = c->dropout, .train_limit = c->train_limit,
            .loss_sum = at_boundary ? 0.0 : loss[0], .loss_count = at_boundary ? 0.0 : loss[1],
            .seconds = at_boundary ? 0.0 : seconds, .metrics = run->metrics.text};
        snprintf(ci.model, sizeof ci.model, "%s", run->m.name);
        rc = sn_checkpoint_save(path, &run->m.params, &run->opt, &ci);
    }
    return sn_dist_agree(rc);
}

/* Loads a checkpoint on rank 0, checks it belongs to this run, and shares it. */
static int resume_from(const sn_train_config_t *c, run_t *run, sn_checkpoint_info_t *info)
{
    int rc = SN_OK;
    memset(info, 0, sizeof *info);
    if (sn_dist_rank() == 0) {
        rc = sn_checkpoint_load(c->resume, &run->m.params, &run->opt, info);
        const char *what = NULL;
        long long had = 0, have = 0;
        if (!rc && strcmp(info->model, run->m.name) != 0)
            rc = SN_FAIL(SN_EFORMAT, "%s: a checkpoint of model '%s', this run trains '%s'", c->resume, info->model, run->m.name);
        else if (!rc && (info->epoch < 1 || info->epoch_step < 0 || info->step < 0 || !(info->loss_count >= 0) ||
                         !isfinite(info->loss_sum) || !isfinite(info->seconds)))
            rc = SN_FAIL(SN_EFORMAT, "%s: corrupt run position: epoch %lld, step %lld of the epoch, %lld in all, "
                         "loss sum %g over %g", c->resume, (long long)info->epoch, (long long)info->epoch_step,
                         (long long)info->step, info->loss_sum, info->loss_count);
        else if (!rc && info->seed != c->seed) what = "--seed", had = (long long)info->seed, have = (long long)c->seed;
        else if (!rc && info->batch != c->batch) what = "--batch", had = info->batch, have = c->batch;
        else if (!rc && info->shuffle != c->shuffle) what = "--no-shuffle", had = !info->shuffle, have = !c->shuffle;
        else if (!rc && info->global_shuffle != c->global_shuffle)
            what = "--global-shuffle", had = info->global_shuffle, have = c->global_shuffle;
        else if (!rc && info->dropout != c->dropout) what = "--no-dropout", had = !info->dropout, have = !c->dropout;
        else if (!rc && info->train_limit != c->train_limit) what = "--train-limit", had = info->train_limit, have = c->train_limit;
        if (what)
            rc = SN_FAIL(SN_EINVAL, "%s: the checkpoint was made with %s %lld, this run has %lld; resume with the "
                         "same settings", c->resume, what, had, have);
    }
    SN_TRY(sn_dist_agree(rc));
    double hdr[6] = {(double)info->epoch, (double)info->epoch_step, (double)info->step,
                     info->loss_sum, info->loss_count, info->seconds};
    SN_TRY(sn_dist_bcast_f64(hdr, 6, 0));
    info->epoch = (int64_t)hdr[0];
    info->epoch_step = (int64_t)hdr[1];
    info->step = (int64_t)hdr[2];
    info->loss_sum = hdr[3];
    info->loss_count = hdr[4];
    info->seconds = hdr[5];
    SN_TRY(sn_dist_bcast_f32(run->m.params.values, run->m.params.total, 0));
    SN_TRY(sn_dist_bcast_f32(run->opt.square_avg, run->opt.n, 0));
    SN_TRY(sn_dist_bcast_f32(run->opt.acc_delta, run->opt.n, 0));
    run->opt.steps = (long)info->step;
    if (info->metrics) {
        sn_text_append(&run->metrics, info->metrics);
        free(info->metrics);
        info->metrics = NULL;
    }
    return SN_OK;
}

int sn_train_mnist(const sn_train_config_t *c, sn_train_result_t *r)
{
    memset(r, 0, sizeof *r);
    int rank = sn_dist_rank(), P = sn_dist_size(), B = c->batch;
    if (B < P) return SN_FAIL(SN_EINVAL, "global batch %d is smaller than the %d ranks", B, P);
    if (c->epochs < 1) return SN_FAIL(SN_EINVAL, "epochs must be >= 1, got %d", c->epochs);
    run_t run;
    memset(&run, 0, sizeof run);
    run.threads = sn_train_set_threads(c->threads);

    /* this rank's part of every global batch */
    int b_loc = B / P + (rank < B % P), b_max = B / P + (B % P != 0);
    int offset = rank * (B / P) + (rank < B % P ? rank : B % P);

    sn_model_t *m = &run.m;
    int rc = sn_mnist_convnet_new(m, b_max, c->dropout ? 0.1f : 0.0f, c->dropout ? 0.25f : 0.0f);
    if ((rc = sn_dist_agree(rc))) goto out;
    size_t n_train = m->params.trainable_total;
    if ((rc = sn_dist_agree(sn_adadelta_init(&run.opt, n_train, c->lr, c->rho, c->eps, c->weight_decay)))) goto out;
    sn_layer_reset(m->net, c->seed);
    if (c->init && rank == 0) rc = sn_checkpoint_load(c->init, &m->params, NULL, NULL);
    if ((rc = sn_dist_agree(rc))) goto out;
    if ((rc = sn_dist_bcast_f32(m->params.values, m->params.total, 0))) goto out;
    sn_checkpoint_info_t at;
    memset(&at, 0, sizeof at);
    at.epoch = 1;
    if (c->resume && (rc = resume_from(c, &run, &at))) goto out;

    /* data: this rank's shard (or everything, for a global permutation) */
    int64_t N = 0, first = 0, n_loc = 0;
    rc = sn_mnist_rows(c->data, "train", &N);
    if (!rc && c->train_limit > 0 && c->train_limit < N) N = c->train_limit;
    if (!rc) {
        if (c->global_shuffle) n_loc = N;
        else sn_shard_range(N, rank, P, &first, &n_loc);
    }
    if (!rc) rc = sn_mnist_load(c->data, "train", first, n_loc, m->num_classes, &run.data);
    if (!rc) rc = check_input_shape(m, &run.data, c->data, "train");
    if ((rc = sn_dist_agree(rc))) goto out;
    if ((rc = load_eval_shard(m, c->data, "test", c->test_limit, &run.test))) goto out;   /* before any output */
    int64_t steps = c->global_shuffle ? N / B : INT64_MAX;
    if (!c->global_shuffle)
        for (int q = 0; q < P; q++) {
            int64_t qb, qn;
            sn_shard_range(N, q, P, &qb, &qn);
            int64_t s = qn / (B / P + (q < B % P));
            if (s < steps) steps = s;
        }
    if (steps < 1) {
        rc = SN_FAIL(SN_EINVAL, "%s: %lld training rows are fewer than one global batch of %d", c->data, (long long)N, B);
        goto out;
    }
    if (c->resume && at.epoch <= c->epochs && at.epoch_step >= steps) {
        rc = SN_FAIL(SN_EINVAL, "%s: the checkpoint is at step %lld of an epoch, but an epoch of %s has %lld steps "
                     "(other data or --train-limit?)", c->resume, (long long)at.epoch_step, c->data, (long long)steps);
        goto out;
    }

    size_t in_size = m->net->in_size;
    float *x = sn_alloc((size_t)b_max * in_size * sizeof(float), "input batch");
    float *dlogp = sn_alloc((size_t)b_max * m->num_classes * sizeof(float), "loss gradient");
    int *y = calloc((size_t)b_max, sizeof *y);
    int64_t *ids = calloc((size_t)b_max, sizeof *ids), *rows = calloc((size_t)b_max, sizeof *rows);
    int64_t *perm = malloc((size_t)n_loc * sizeof *perm);
    FILE *metrics = NULL, *loss_log = NULL;
    if (!x || !dlogp || !y || !ids || !rows || !perm) rc = SN_FAIL(SN_ENOMEM, "training buffers");
    if (!rc) rc = sn_open_run_outputs(rank, c->metrics, run.metrics.text, c->loss_log, c->resume != NULL, &metrics,
                                      &loss_log);
    if ((rc = sn_dist_agree(rc))) goto out_buffers;

    sn_progress_t prog = {.mode = rank == 0 ? c->progress : SN_PROGRESS_NONE};
    prog.bar = prog.mode == SN_PROGRESS_AUTO && isatty(2);
    if (rank == 0) {
        printf("shardnet: training %s on %s: %d rank%s x %d thread%s, global batch %d, %lld steps/epoch, "
               "%lld parameters, BLAS kernels %s\n", m->name, c->data, P, P > 1 ? "s" : "", run.threads,
               run.threads > 1 ? "s" : "", B, (long long)steps, (long long)sn_params_count(&m->params), sn_blas_core());
        if (c->resume)
            printf("shardnet: resumed from %s at epoch %lld, step %lld of the epoch (%lld steps done)\n", c->resume,
                   (long long)at.epoch, (long long)at.epoch_step, (long long)at.step);
        fflush(stdout);
    }

    sn_saved_signals_t saved;
    sn_catch_stop_signals(&saved);
    int64_t step = at.step;
    int stop = 0;
    double part_loss[2] = {at.loss_sum, at.loss_count}, part_secs = at.seconds;   /* the epoch so far */
    const float scale = 1.0f / (float)B;
    for (int epoch = (int)at.epoch; epoch <= c->epochs && !stop && !rc; epoch++) {
        sn_epoch_order(perm, n_loc, c->shuffle, c->global_shuffle, c->seed, epoch, rank);
        int resumed = epoch == at.epoch && c->resume;
        int64_t s = resumed ? at.epoch_step : 0;
        double t_epoch = sn_dist_wtime() - (resumed ? at.seconds : 0.0);
        sn_epoch_loss_t el;
        sn_epoch_loss_begin(&el, steps, resumed ? (double[2]){at.loss_sum, at.loss_count} : NULL);
        for (; s < steps; s++) {
            if (c->max_steps > 0 && step >= c->max_steps) { stop = 1; break; }
            sn_maybe_inject_fault(rank, step);
            double t0 = sn_dist_wtime();
            const int64_t *src = c->global_shuffle ? perm + s * B + offset : perm + s * b_loc;
            memcpy(rows, src, (size_t)b_loc * sizeof *rows);
            fill_batch(x, y, ids, &run.data, rows, b_loc);
            sn_ctx_t ctx = {.training = 1, .seed = c->seed, .step = step, .sample_ids = ids};
            double t1 = sn_dist_wtime();
            double loss = 0.0;
            int lrc = sn_layer_forward(m->net, &ctx, x, b_loc);
            if (!lrc) lrc = sn_nll_forward(&loss, m->net->output, y, b_loc, m->num_classes);
            double t2 = sn_dist_wtime();
            if (!lrc) lrc = sn_nll_backward(dlogp, y, b_loc, m->num_classes, scale);
            if (!lrc) lrc = sn_layer_backward(m->net, &ctx, x, dlogp, b_loc);
            double t3 = sn_dist_wtime();
            sn_step_sums_t sum;
            if ((rc = sn_step_sync(m->params.grads, n_train, loss, b_loc, lrc, 0, step, epoch, c->stall_timeout,
                                   c->checkpoint, &sum))) break;
            double t4 = sn_dist_wtime();
            double loss_g = sum.loss;
            int stop_request = sum.stop;
            sn_adadelta_step(&run.opt, m->params.values, m->params.grads);
            sn_params_zero_grad(&m->params);
            double t5 = sn_dist_wtime();
            r->t_data += t1 - t0; r->t_forward += t2 - t1; r->t_backward += t3 - t2;
            r->t_allreduce += t4 - t3; r->t_optim += t5 - t4;
            step++;
            if ((rc = sn_step_log_check(loss_log, step, loss_g / B, c->check_every, &m->params))) break;
            sn_epoch_loss_add(&el, &prog, epoch, s, steps, loss_g, B, (double)(s + 1) * B, t_epoch);
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
        if (rc || s < steps) {
            if (!rc && stop && !r->stopped_by_signal) {   /* --max-steps inside an epoch: report the partial epoch */
                r->seconds += sn_dist_wtime() - t_epoch;
                r->train_loss = part_loss[1] > 0 ? part_loss[0] / part_loss[1] : NAN;
                rc = evaluate_shard(m, &run.test, x, y, ids, rows, &r->test_loss, &r->correct, &r->test_total);
                r->test_accuracy = r->test_total ? (double)r->correct / (double)r->test_total : 0.0;
                if (!rc && rank == 0)
                    printf("Test set: Average loss: %.4f, Accuracy: %lld/%lld (%.0f%%)\n", r->test_loss,
                           (long long)r->correct, (long long)r->test_total, 100.0 * r->test_accuracy);
            }
            break;
        }
        double secs = sn_dist_wtime() - t_epoch;
        r->seconds += secs;
        r->train_loss = part_loss[1] > 0 ? part_loss[0] / part_loss[1] : NAN;
        double sps = (double)steps * B / secs;
        if ((rc = evaluate_shard(m, &run.test, x, y, ids, rows, &r->test_loss, &r->correct, &r->test_total))) break;
        r->test_accuracy = (double)r->correct / (double)r->test_total;
        double rss = sn_rss_now_mb();   /* the largest rank's: shows any growth from epoch to epoch */
        if ((rc = sn_dist_allreduce_max_f64(&rss, 1))) break;
        char line[512];
        snprintf(line, sizeof line,
                 "{\"epoch\": %d, \"steps\": %lld, \"train_loss\": %.6f, \"test_loss\": %.6f, \"test_accuracy\": %.6f, "
                 "\"correct\": %lld, \"test_total\": %lld, \"seconds\": %.3f, \"samples_per_s\": %.1f, \"ranks\": %d, "
                 "\"threads\": %d, \"rss_mb\": %.1f}\n", epoch, (long long)step, r->train_loss, r->test_loss, r->test_accuracy,
                 (long long)r->correct, (long long)r->test_total, secs, sps, P, run.threads, rss);
        sn_text_append(&run.metrics, line);
        if (rank == 0) {
            printf("Epoch %d: train loss %.4f, %.1f s, %.0f samples/s, resident memory %.0f MB (largest rank)\n", epoch,
                   r->train_loss, secs, sps, rss);
            printf("Test set: Average loss: %.4f, Accuracy: %lld/%lld (%.0f%%)\n", r->test_loss,
                   (long long)r->correct, (long long)r->test_total, 100.0 * r->test_accuracy);
            fflush(stdout);
            if (metrics) {
                fputs(line, metrics);
                fflush(metrics);
            }
        }
        /* an epoch-end checkpoint written before this epoch's metrics existed: rewrite it */
        if (c->checkpoint && c->checkpoint_every > 0 && step % c->checkpoint_every == 0 &&
            (rc = save_checkpoint(c, &run, c->checkpoint, step, steps, part_loss, part_secs))) break;
    }
    sn_restore_signals(&saved);
    r->steps = step;
    r->samples_per_s = r->seconds > 0 ? (double)(step - at.step) * B / r->seconds : 0.0;
    if (rc) {
        rc = sn_dist_agree(rc);
        goto out_files;
    }
    if ((rc = sn_dist_check_same(sn_params_hash(&m->params), "final parameters"))) goto out_files;
    r->params_hash = sn_params_hash(&m->params);
    r->peak_rss_mb = sn_peak_rss_mb();
    if ((rc = sn_dist_allreduce_max_f64(&r->peak_rss_mb, 1))) goto out_files;
    if (rank == 0)
        printf("shardnet: %lld steps, parameters identical on all %d ranks (hash %016llx)\n", (long long)step, P,
               (unsigned long long)r->params_hash);
    if (c->checkpoint && !r->stopped_by_signal) {   /* the end of the run (or of --max-steps) */
        if ((rc = save_checkpoint(c, &run, c->checkpoint, step, steps, part_loss, part_secs))) goto out_files;
        r->checkpoint_written = 1;
    }
    if (c->save && (rc = save_checkpoint(c, &run, c->save, step, steps, part_loss, part_secs))) goto out_files;
    if (c->min_accuracy > 0 && !r->stopped_by_signal && r->test_accuracy < c->min_accuracy)
        rc = SN_FAIL(SN_ENUMERIC, "test accuracy %.4f is below the required %.4f", r->test_accuracy, c->min_accuracy);
out_files:
    if (metrics) fclose(metrics);
    if (loss_log) fclose(loss_log);
out_buffers:
    sn_free(x);
    sn_free(dlogp);
    free(y);
    free(ids);
    free(rows);
    free(perm);
out:
    sn_text_free(&run.metrics);
    sn_adadelta_free(&run.opt);
    sn_image_set_free(&run.data);
    sn_image_set_free(&run.test);
    sn_model_free(m);
    return rc;
}
