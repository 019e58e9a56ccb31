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
#include <sys/resource.h>
#include "shardnet/checkpoint.h"
#include "shardnet/data.h"
#include "shardnet/dist.h"
#include "shardnet/loss.h"
#include "shardnet/optim.h"
#include "shardnet/rng.h"
#include "shardnet/train.h"
#include "kernels/kernels.h"

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
}

int sn_train_set_threads(int requested)
{
    int threads = requested > 0 ? requested : sn_dist_default_threads();
    sn_kernels_set_threads(threads);
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

int sn_evaluate(sn_model_t *m, const char *path, const char *split, int64_t limit,
                double *avg_loss, int64_t *correct, int64_t *total)
{
    int rank = sn_dist_rank(), size = sn_dist_size();
    int64_t n = 0, begin, count;
    int rc = sn_mnist_rows(path, split, &n);
    if (!rc && limit > 0 && limit < n) n = limit;
    if (!rc && n < size) rc = SN_FAIL(SN_EINVAL, "%s: /%s has %lld rows, fewer than the %d ranks", path, split, (long long)n, size);
    sn_image_set_t s;
    memset(&s, 0, sizeof s);
    if (!rc) {
        sn_shard_range(n, rank, size, &begin, &count);
        rc = sn_mnist_load(path, split, begin, count, m->num_classes, &s);
    }
    SN_TRY(sn_dist_agree(rc));
    int B = m->net->max_batch, C = m->num_classes;
    float *x = sn_alloc((size_t)B * m->net->in_size * sizeof(float), "evaluation batch");
    int *y = calloc((size_t)B, sizeof *y);
    int64_t *ids = calloc((size_t)B, sizeof *ids), *rows = calloc((size_t)B, sizeof *rows);
    if (!x || !y || !ids || !rows) rc = SN_FAIL(SN_ENOMEM, "evaluation buffers");
    double sums[1] = {0.0};
    int64_t counts[2] = {0, count};
    sn_ctx_t ctx = {.training = 0};
    for (int64_t i = 0; !rc && i < count; i += B) {
        int b = (int)(count - i < B ? count - i : B);
        for (int k = 0; k < b; k++) rows[k] = i + k;
        fill_batch(x, y, ids, &s, rows, b);
        rc = sn_layer_forward(m->net, &ctx, x, b);
        double l = 0.0;
        if (!rc) rc = sn_nll_forward(&l, m->net->output, y, b, C);
        sums[0] += l;
        for (int k = 0; !rc && k < b; k++) counts[0] += argmax_row(m->net->output + (size_t)k * C, C) == y[k];
    }
    sn_free(x);
    free(y);
    free(ids);
    free(rows);
    sn_image_set_free(&s);
    SN_TRY(sn_dist_agree(rc));
    SN_TRY(sn_dist_allreduce_sum_f64(sums, 1));
    SN_TRY(sn_dist_allreduce_sum_i64(counts, 2));
    *avg_loss = sums[0] / (double)counts[1];
    *correct = counts[0];
    *total = counts[1];
    return SN_OK;
}

/* ---- progress output (rank 0) ---------------------------------------------------- */

typedef struct {
    int    mode;        /* SN_PROGRESS_NONE, _LINES, or bar (AUTO on a terminal) */
    int    bar;
    double start;
} progress_t;

static void progress_show(progress_t *p, int epoch, int64_t step, int64_t steps, double loss, double samples_per_s)
{
    if (p->mode == SN_PROGRESS_NONE) return;
    if (p->bar) {
        int width = 30, done = (int)(width * step / steps);
        char bar[64];
        for (int i = 0; i < width; i++) bar[i] = i < done ? '=' : (i == done ? '>' : ' ');
        bar[width] = '\0';
        fprintf(stderr, "\repoch %d [%s] %3d%% %lld/%lld  loss %.4f  %.0f samples/s ", epoch, bar,
                (int)(100 * step / steps), (long long)step, (long long)steps, loss, samples_per_s);
        if (step == steps) fputc('\n', stderr);
        fflush(stderr);
    } else {
        printf("Train epoch %d: %lld/%lld steps (%.0f%%)  loss %.6f  %.0f samples/s\n", epoch, (long long)step,
               (long long)steps, 100.0 * step / steps, loss, samples_per_s);
        fflush(stdout);
    }
}

/* ---- the training loop -------------------------------------------------------------- */

int sn_train_mnist(const sn_train_config_t *c, sn_train_result_t *r)
{
    memset(r, 0, sizeof *r);
    int rank = sn_dist_rank(), P = sn_dist_size(), B = c->batch;
    if (B < P) return SN_FAIL(SN_EINVAL, "global batch %d is smaller than the %d ranks", B, P);
    if (c->epochs < 1) return SN_FAIL(SN_EINVAL, "epochs must be >= 1, got %d", c->epochs);
    int threads = sn_train_set_threads(c->threads);

    /* this rank's part of every global batch */
    int b_loc = B / P + (rank < B % P), b_max = B / P + (B % P != 0);
    int offset = rank * (B / P) + (rank < B % P ? rank : B % P);

    sn_model_t m;
    int rc = sn_mnist_convnet_new(&m, b_max, c->dropout ? 0.1f : 0.0f, c->dropout ? 0.25f : 0.0f);
    SN_TRY(sn_dist_agree(rc));
    sn_layer_reset(m.net, c->seed);
    sn_checkpoint_info_t info;
    if (c->init && rank == 0) rc = sn_checkpoint_load(c->init, &m.params, NULL, &info);
    if ((rc = sn_dist_agree(rc))) goto out_model;
    if ((rc = sn_dist_bcast_f32(m.params.values, m.params.total, 0))) goto out_model;

    /* data: this rank's shard (or everything, for a global permutation) */
    int64_t N = 0, first = 0, n_loc = 0;
    rc = sn_mnist_rows(c->data, "train", &N);
    if (!rc && c->train_limit > 0 && c->train_limit < N) N = c->train_limit;
    if (!rc) {
        if (c->global_shuffle) n_loc = N;
        else sn_shard_range(N, rank, P, &first, &n_loc);
    }
    sn_image_set_t data;
    memset(&data, 0, sizeof data);
    if (!rc) rc = sn_mnist_load(c->data, "train", first, n_loc, m.num_classes, &data);
    if ((rc = sn_dist_agree(rc))) goto out_model;
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
        goto out_data;
    }

    sn_adadelta_t opt;
    size_t n_train = m.params.trainable_total;
    if ((rc = sn_adadelta_init(&opt, n_train, c->lr, c->rho, c->eps, c->weight_decay))) goto out_data;
    size_t in_size = m.net->in_size;
    float *x = sn_alloc((size_t)b_max * in_size * sizeof(float), "input batch");
    float *dlogp = sn_alloc((size_t)b_max * m.num_classes * sizeof(float), "loss gradient");
    int *y = calloc((size_t)b_max, sizeof *y);
    int64_t *ids = calloc((size_t)b_max, sizeof *ids), *rows = calloc((size_t)b_max, sizeof *rows);
    int64_t *perm = malloc((size_t)n_loc * sizeof *perm);
    if (!x || !dlogp || !y || !ids || !rows || !perm) {
        rc = SN_FAIL(SN_ENOMEM, "training buffers");
        goto out_buffers;
    }
    FILE *metrics = NULL, *loss_log = NULL;
    if (rank == 0 && c->metrics && !(metrics = fopen(c->metrics, "w")))
        rc = SN_FAIL(SN_EIO, "%s: cannot write the metrics file", c->metrics);
    if (rank == 0 && !rc && c->loss_log && !(loss_log = fopen(c->loss_log, "w")))
        rc = SN_FAIL(SN_EIO, "%s: cannot write the loss log", c->loss_log);
    if ((rc = sn_dist_agree(rc))) goto out_files;

    progress_t prog = {.mode = rank == 0 ? c->progress : SN_PROGRESS_NONE};
    prog.bar = prog.mode == SN_PROGRESS_AUTO && isatty(2);
    if (rank == 0)
        printf("shardnet: training %s on %s: %d rank%s x %d thread%s, global batch %d, %lld steps/epoch, "
               "%lld parameters, BLAS kernels %s\n", m.name, c->data, P, P > 1 ? "s" : "", threads,
               threads > 1 ? "s" : "", B, (long long)steps, (long long)sn_params_count(&m.params), sn_blas_core());

    int64_t step = 0;
    int stop = 0;
    const float scale = 1.0f / (float)B;
    int64_t interval = steps / 100 > 0 ? steps / 100 : 1;
    for (int epoch = 1; epoch <= c->epochs && !stop; epoch++) {
        if (!c->shuffle) for (int64_t i = 0; i < n_loc; i++) perm[i] = i;
        else if (c->global_shuffle) sn_rng_permutation(perm, n_loc, c->seed, SN_RNG_SHUFFLE, (uint64_t)epoch, 0);
        else sn_rng_permutation(perm, n_loc, c->seed, SN_RNG_SHUFFLE, (uint64_t)epoch, 1 + (uint64_t)rank);
        double t_epoch = sn_dist_wtime(), run_loss[2] = {0.0, 0.0}, epoch_loss[2] = {0.0, 0.0};
        int64_t s;
        for (s = 0; s < steps; s++) {
            if (c->max_steps > 0 && step >= c->max_steps) { stop = 1; break; }
            double t0 = sn_dist_wtime();
            const int64_t *src = c->global_shuffle ? perm + s * B + offset : perm + s * b_loc;
            memcpy(rows, src, (size_t)b_loc * sizeof *rows);
            fill_batch(x, y, ids, &data, rows, b_loc);
            sn_ctx_t ctx = {.training = 1, .seed = c->seed, .step = step, .sample_ids = ids};
            double t1 = sn_dist_wtime();
            double loss = 0.0;
            rc = sn_layer_forward(m.net, &ctx, x, b_loc);
            if (!rc) rc = sn_nll_forward(&loss, m.net->output, y, b_loc, m.num_classes);
            double t2 = sn_dist_wtime();
            if (!rc) rc = sn_nll_backward(dlogp, y, b_loc, m.num_classes, scale);
            if (!rc) rc = sn_layer_backward(m.net, &ctx, x, dlogp, b_loc);
            if (rc) break;   /* a local error: agreed on after the loop, so no rank hangs */
            double t3 = sn_dist_wtime();
            if ((rc = sn_dist_allreduce_sum_f32(m.params.grads, n_train))) break;
            double t4 = sn_dist_wtime();
            sn_adadelta_step(&opt, m.params.values, m.params.grads);
            sn_params_zero_grad(&m.params);
            double t5 = sn_dist_wtime();
            r->t_data += t1 - t0; r->t_forward += t2 - t1; r->t_backward += t3 - t2;
            r->t_allreduce += t4 - t3; r->t_optim += t5 - t4;
            step++;
            run_loss[0] += loss;
            run_loss[1] += b_loc;
            if (c->loss_log) {   /* every rank has the flag: the reduce is collective */
                double l[1] = {loss};
                if ((rc = sn_dist_allreduce_sum_f64(l, 1))) break;
                if (loss_log) fprintf(loss_log, "%lld %.9g\n", (long long)step, l[0] / B);
            }
            if (!isfinite(loss)) {
                rc = SN_FAIL(SN_ENUMERIC, "loss is %g at step %lld", loss, (long long)step);
                break;
            }
            if (c->check_every > 0 && step % c->check_every == 0 &&
                (rc = sn_dist_check_same(sn_params_hash(&m.params), "parameters"))) break;
            if ((s + 1) % interval == 0 || s + 1 == steps) {
                if ((rc = sn_dist_allreduce_sum_f64(run_loss, 2))) break;
                epoch_loss[0] += run_loss[0];
                epoch_loss[1] += run_loss[1];
                int lines_due = (s + 1) % (interval * 10) == 0 || s + 1 == steps;
                if (prog.bar || lines_due)
                    progress_show(&prog, epoch, s + 1, steps, run_loss[0] / run_loss[1],
                                  (double)(s + 1) * B / (sn_dist_wtime() - t_epoch));
                run_loss[0] = run_loss[1] = 0.0;
            }
        }
        if ((rc = sn_dist_agree(rc))) break;
        if (run_loss[1] > 0) {   /* a partial interval left by --max-steps */
            if ((rc = sn_dist_allreduce_sum_f64(run_loss, 2))) break;
            epoch_loss[0] += run_loss[0];
            epoch_loss[1] += run_loss[1];
        }
        double secs = sn_dist_wtime() - t_epoch;
        r->seconds += secs;
        r->train_loss = epoch_loss[1] > 0 ? epoch_loss[0] / epoch_loss[1] : NAN;
        double sps = (double)s * B / secs;
        if ((rc = sn_evaluate(&m, c->data, "test", c->test_limit, &r->test_loss, &r->correct, &r->test_total))) break;
        r->test_accuracy = (double)r->correct / (double)r->test_total;
        if (rank == 0) {
            printf("Epoch %d: train loss %.4f, %.1f s, %.0f samples/s\n", epoch, r->train_loss, secs, sps);
            printf("Test set: Average loss: %.4f, Accuracy: %lld/%lld (%.0f%%)\n", r->test_loss,
                   (long long)r->correct, (long long)r->test_total, 100.0 * r->test_accuracy);
            fflush(stdout);
            if (metrics) {
                fprintf(metrics, "{\"epoch\": %d, \"steps\": %lld, \"train_loss\": %.6f, \"test_loss\": %.6f, "
                        "\"test_accuracy\": %.6f, \"correct\": %lld, \"test_total\": %lld, \"seconds\": %.3f, "
                        "\"samples_per_s\": %.1f, \"ranks\": %d, \"threads\": %d}\n",
                        epoch, (long long)step, r->train_loss, r->test_loss, r->test_accuracy,
                        (long long)r->correct, (long long)r->test_total, secs, sps, P, threads);
                fflush(metrics);
            }
        }
    }
    r->steps = step;
    r->samples_per_s = r->seconds > 0 ? (double)step * B / r->seconds : 0.0;
    if (!rc) rc = sn_dist_check_same(sn_params_hash(&m.params), "final parameters");
    r->params_hash = sn_params_hash(&m.params);
    struct rusage ru;
    r->peak_rss_mb = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss / 1024.0 : 0.0;   /* KiB on Linux */
    if (!rc) rc = sn_dist_allreduce_max_f64(&r->peak_rss_mb, 1);
    if (!rc && rank == 0)
        printf("shardnet: %lld steps, parameters identical on all %d ranks (hash %016llx)\n", (long long)step, P,
               (unsigned long long)r->params_hash);
    if (!rc && c->save) {
        sn_checkpoint_info_t ci = {.world_size = P, .threads = threads, .seed = c->seed, .epoch = c->epochs, .step = step};
        snprintf(ci.model, sizeof ci.model, "%s", m.name);
        if (rank == 0) rc = sn_checkpoint_save(c->save, &m.params, &opt, &ci);
        rc = sn_dist_agree(rc);
    }
    if (!rc && c->min_accuracy > 0 && r->test_accuracy < c->min_accuracy)
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
    sn_adadelta_free(&opt);
out_data:
    sn_image_set_free(&data);
out_model:
    sn_model_free(&m);
    return rc;
}
