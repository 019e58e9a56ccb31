/*
 * batchnorm2d.c: per-channel batch normalisation with affine parameters over
 * (B, C, HW): BatchNorm2d for NCHW images and, with HW = 1, BatchNorm1d(affine) over
 * (B, C) for the encoder's embedding. One implementation serves both because the
 * per-channel math is identical.
 *
 * Statistics and the parameter-gradient sums are accumulated in double, one channel per
 * loop iteration (OpenMP static over channels), so results do not depend on the thread
 * count. Each (sample, channel) plane is summed in 8 interleaved double lanes combined in
 * a fixed order (plane_sum*): one running double sum was a chain of dependent adds, 4
 * cycles per value, and made BatchNorm a sixth of the captioning encoder's time. The moving statistics are non-trainable buffers in the parameter arena, so
 * checkpoints carry them.
 *
 * Synchronised mode (ctx->reduce_sum set, training): the per-channel sums are summed
 * over the data-parallel group, so the statistics are those of the global batch (two
 * reductions in forward: the sums, then the squared deviations about the global mean,
 * as the local two-pass formula; one in backward: sum dy and sum dy xhat). Parameter
 * gradients keep the local sums: the trainer's allreduce adds them up. The moving
 * statistics then come out equal on every rank.
 * With relu set (sn_batchnorm2d_relu_new) the output is max(0, y), and backward first
 * masks dy into grad_input channel by channel, where the statistics pass then finds it in
 * cache: ReLU's own passes over the activations are gone, its numbers are unchanged.
 * Must not: allocate in forward/backward; touch the moving statistics in evaluate mode;
 * call reduce_sum a different number of times on different ranks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/sequence.h"
#include "shardnet/layers.h"

/* Eight interleaved double lanes as two vectors of four (lanes 0-3, 4-7): a single
 * 64-byte double vector is one register with AVX-512 but not with AVX2, where GCC spilled
 * it to the stack at every step and BatchNorm ran at a quarter of its AVX-512 speed. */
typedef float  bn_v4f __attribute__((vector_size(16)));
typedef double bn_v4d __attribute__((vector_size(32)));

/* Macros, not functions: vector arguments and results would change the ABI on targets
 * without wide registers (-Wpsabi). BN_CVT8 loads x[0..8) as doubles into lo, hi;
 * BN_LANES adds the eight lanes in a fixed tree. */
#define BN_CVT8(lo, hi, p)                                          \
    do {                                                            \
        bn_v4f f0_, f1_;                                            \
        memcpy(&f0_, (p), sizeof f0_);                              \
        memcpy(&f1_, (p) + 4, sizeof f1_);                          \
        (lo) = __builtin_convertvector(f0_, bn_v4d);                \
        (hi) = __builtin_convertvector(f1_, bn_v4d);                \
    } while (0)
#define BN_LANES(lo, hi) ((((lo)[0] + (lo)[1]) + ((lo)[2] + (lo)[3])) + (((hi)[0] + (hi)[1]) + ((hi)[2] + (hi)[3])))

/* sum of x[0..n) in double */
static double plane_sum(const float *x, int n)
{
    bn_v4d lo = {0}, hi = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        bn_v4d a, b;
        BN_CVT8(a, b, x + i);
        lo += a;
        hi += b;
    }
    double s = BN_LANES(lo, hi);
    for (; i < n; i++) s += x[i];
    return s;
}

/* sum of (x - mu)^2 in double */
static double plane_sum_sqdev(const float *x, int n, double mu)
{
    bn_v4d lo = {0}, hi = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        bn_v4d a, b;
        BN_CVT8(a, b, x + i);
        a -= mu;
        b -= mu;
        lo += a * a;
        hi += b * b;
    }
    double s = BN_LANES(lo, hi);
    for (; i < n; i++) {
        double d = x[i] - mu;
        s += d * d;
    }
    return s;
}

/* *a += sum dy, *ax += sum dy * xhat with xhat = (x - mean) * rstd in float */
static void plane_sum_dy(const float *dy, const float *x, int n, float mean, float rstd, double *a, double *ax)
{
    bn_v4d lo = {0}, hi = {0}, xlo = {0}, xhi = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        float xh[8];
        for (int j = 0; j < 8; j++) xh[j] = (x[i + j] - mean) * rstd;
        bn_v4d g0, g1, h0, h1;
        BN_CVT8(g0, g1, dy + i);
        BN_CVT8(h0, h1, xh);
        lo += g0;
        hi += g1;
        xlo += g0 * h0;
        xhi += g1 * h1;
    }
    double s = BN_LANES(lo, hi), sx = BN_LANES(xlo, xhi);
    for (; i < n; i++) {
        s += dy[i];
        sx += (double)dy[i] * ((x[i] - mean) * rstd);
    }
    *a += s;
    *ax += sx;
}

typedef struct {
    sn_layer_t base;
    int    C, HW;
    float  alpha;
    float *gamma, *beta, *dgamma, *dbeta;   /* (C) */
    float *moving_mean, *moving_var;        /* (C), buffers */
    float *mean, *rstd;                     /* (C), of the last forward */
    double *red;                            /* (2C + 1) synchronised sums */
    double count;                           /* values per channel of the last forward's statistics */
    int    forward_only;                    /* built with frozen parameters: no backward */
    int    relu;                            /* followed by ReLU */
    int    used_batch_stats;
} bn2d_t;

/* Synchronised statistics of a training forward: mean and rstd over the global batch,
 * moving statistics updated. N = this rank's values per channel. */
static int bn2d_sync_stats(bn2d_t *m, const sn_ctx_t *ctx, const float *x, int B)
{
    int C = m->C, HW = m->HW;
    double *sum = m->red;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) s += plane_sum(x + ((size_t)b * C + c) * HW, HW);
        sum[c] = s;
    }
    sum[C] = (double)B * HW;
    SN_TRY(ctx->reduce_sum(sum, C + 1, ctx->reduce_arg));
    double N = sum[C];
    if (N < 2)
        return SN_FAIL(SN_EINVAL, "BatchNorm '%s': training needs 2 or more values per channel, got %.0f",
                       m->base.name, N);
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        double mu = sum[c] / N, ss = 0.0;
        for (int b = 0; b < B; b++) ss += plane_sum_sqdev(x + ((size_t)b * C + c) * HW, HW, mu);
        m->mean[c] = (float)mu;
        sum[C + c] = ss;   /* sum[c] is still needed for the mean above: disjoint halves */
    }
    SN_TRY(ctx->reduce_sum(sum + C, C, ctx->reduce_arg));
    for (int c = 0; c < C; c++) {
        double ss = sum[C + c];
        m->rstd[c] = (float)(1.0 / sqrt(ss / N + SN_BN_EPS));
        m->moving_mean[c] = m->alpha * m->moving_mean[c] + (1.0f - m->alpha) * m->mean[c];
        m->moving_var[c] = m->alpha * m->moving_var[c] + (1.0f - m->alpha) * (float)(ss / (N - 1));
    }
    m->count = N;
    return SN_OK;
}

static void bn2d_apply(bn2d_t *m, const float *x, int B, int c)
{
    int C = m->C, HW = m->HW;
    float a = m->gamma[c] * m->rstd[c], sh = m->beta[c] - m->mean[c] * a;
    for (int b = 0; b < B; b++) {
        const float *xc = x + ((size_t)b * C + c) * HW;
        float *yc = m->base.output + ((size_t)b * C + c) * HW;
        if (m->relu)
            for (int i = 0; i < HW; i++) {
                float v = xc[i] * a + sh;
                yc[i] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int i = 0; i < HW; i++) yc[i] = xc[i] * a + sh;
    }
}

/* x (B, C, HW) -> y (B, C, HW) */
static int bn2d_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    bn2d_t *m = (bn2d_t *)l;
    int C = m->C, HW = m->HW;
    size_t N = (size_t)B * HW;
    m->used_batch_stats = ctx && ctx->training;
    m->count = (double)N;
    if (m->used_batch_stats && ctx->reduce_sum) {
        SN_TRY(bn2d_sync_stats(m, ctx, x, B));
        #pragma omp parallel for schedule(static)
        for (int c = 0; c < C; c++) bn2d_apply(m, x, B, c);
        return SN_OK;
    }
    if (m->used_batch_stats && N < 2)
        return SN_FAIL(SN_EINVAL, "BatchNorm '%s': training needs 2 or more values per channel, got %zu",
                       l->name, N);
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mean, rstd;
        if (m->used_batch_stats) {
            double s = 0.0, ss = 0.0;
            for (int b = 0; b < B; b++) s += plane_sum(x + ((size_t)b * C + c) * HW, HW);
            double mu = s / (double)N;
            for (int b = 0; b < B; b++) ss += plane_sum_sqdev(x + ((size_t)b * C + c) * HW, HW, mu);
            mean = (float)mu;
            rstd = (float)(1.0 / sqrt(ss / (double)N + SN_BN_EPS));
            m->moving_mean[c] = m->alpha * m->moving_mean[c] + (1.0f - m->alpha) * mean;
            m->moving_var[c] = m->alpha * m->moving_var[c] + (1.0f - m->alpha) * (float)(ss / (double)(N - 1));
        } else {
            mean = m->moving_mean[c];
            rstd = (float)(1.0 / sqrt((double)m->moving_var[c] + SN_BN_EPS));
        }
        m->mean[c] = mean;
        m->rstd[c] = rstd;
        bn2d_apply(m, x, B, c);
    }
    return SN_OK;
}

/* xhat = (x - mean) rstd; dgamma += sum dy xhat; dbeta += sum dy;
 * training: dx = gamma rstd (dy - mean(dy) - xhat mean(dy xhat));  evaluate: dx = gamma rstd dy */
static int bn2d_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    bn2d_t *m = (bn2d_t *)l;
    if (m->forward_only)
        return SN_FAIL(SN_EINVAL, "BatchNorm '%s' was built forward-only (frozen parameters): no backward", l->name);
    int C = m->C, HW = m->HW;
    int sync = m->used_batch_stats && ctx && ctx->reduce_sum;
    double *sdy = m->red, *sdyx = m->red + C;
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mean = m->mean[c], rstd = m->rstd[c];
        double a = 0.0, ax = 0.0;
        for (int b = 0; b < B; b++) {
            size_t o = ((size_t)b * C + c) * HW;
            if (m->relu) {   /* ReLU's backward: dy where the output is positive */
                const float *y = l->output + o, *g = dy + o;
                float *gr = l->grad_input + o;
                for (int i = 0; i < HW; i++) gr[i] = y[i] > 0.0f ? g[i] : 0.0f;
                plane_sum_dy(gr, x + o, HW, mean, rstd, &a, &ax);
            } else {
                plane_sum_dy(dy + o, x + o, HW, mean, rstd, &a, &ax);
            }
        }
        m->dgamma[c] += (float)ax;   /* local sums: the gradient allreduce adds the ranks' */
        m->dbeta[c] += (float)a;
        sdy[c] = a;
        sdyx[c] = ax;
    }
    if (!l->need_grad_input) return SN_OK;
    if (sync) SN_TRY(ctx->reduce_sum(m->red, 2 * C, ctx->reduce_arg));
    double N = m->count;
    const float *g = m->relu ? l->grad_input : dy;   /* masked in place: read, then overwritten */
    #pragma omp parallel for schedule(static)
    for (int c = 0; c < C; c++) {
        float mean = m->mean[c], rstd = m->rstd[c];
        double k = (double)m->gamma[c] * rstd;
        double mdy = m->used_batch_stats ? sdy[c] / N : 0.0, mdyx = m->used_batch_stats ? sdyx[c] / N : 0.0;
        /* per element in float, as PyTorch: k (dy - mean(dy)) - k mean(dy xhat) rstd (x - mean) */
        float kf = (float)k, mdyf = (float)mdy, kx = (float)(k * mdyx * rstd);
        for (int b = 0; b < B; b++) {
            size_t o = ((size_t)b * C + c) * HW;
            const float *gc = g + o, *xc = x + o;
            float *dx = l->grad_input + o;
            for (int i = 0; i < HW; i++) dx[i] = kf * (gc[i] - mdyf) - kx * (xc[i] - mean);
        }
    }
    return SN_OK;
}

static void bn2d_reset(sn_layer_t *l, uint64_t seed)
{
    (void)seed;
    bn2d_t *m = (bn2d_t *)l;
    for (int c = 0; c < m->C; c++) {
        m->gamma[c] = 1.0f;
        m->beta[c] = 0.0f;
        m->moving_mean[c] = 0.0f;
        m->moving_var[c] = 1.0f;
    }
}

static void bn2d_destroy(sn_layer_t *l)
{
    bn2d_t *m = (bn2d_t *)l;
    sn_free(m->mean);
    sn_free(m->rstd);
    sn_free(m->red);
}

static const sn_layer_ops_t bn2d_ops = {"BatchNorm", bn2d_forward, bn2d_backward, bn2d_reset, bn2d_destroy};

static sn_layer_t *bn_new(sn_params_t *params, const char *name, int ndim, const int *shape, int C, int HW,
                          float alpha, int max_batch)
{
    bn2d_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "BatchNorm: out of memory"); return NULL; }
    m->C = C;
    m->HW = HW;
    m->alpha = alpha;
    char pn[SN_PARAM_NAME_MAX];
    m->forward_only = params->frozen;   /* a frozen encoder's: no input gradient buffer */
    if (sn_layer_setup(&m->base, &bn2d_ops, name, max_batch, ndim, shape, ndim, shape, 1, !m->forward_only)) goto fail;
    if (!(m->mean = sn_alloc((size_t)C * sizeof(float), "batch mean"))) goto fail;
    if (!(m->rstd = sn_alloc((size_t)C * sizeof(float), "batch rstd"))) goto fail;
    if (!(m->red = sn_alloc((2 * (size_t)C + 1) * sizeof(double), "batch statistics sums"))) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "weight");
    if (sn_params_add(params, pn, 1, &C, &m->gamma, &m->dgamma)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "bias");
    if (sn_params_add(params, pn, 1, &C, &m->beta, &m->dbeta)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "running_mean");
    if (sn_params_add(params, pn, 1, &C, &m->moving_mean, NULL)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "running_var");
    if (sn_params_add(params, pn, 1, &C, &m->moving_var, NULL)) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}

sn_layer_t *sn_batchnorm2d_new(sn_params_t *params, const char *name, int C, int H, int W, float alpha,
                               int max_batch)
{
    return bn_new(params, name, 3, (int[]){C, H, W}, C, H * W, alpha, max_batch);
}

sn_layer_t *sn_batchnorm2d_relu_new(sn_params_t *params, const char *name, int C, int H, int W, float alpha,
                                    int max_batch)
{
    sn_layer_t *l = bn_new(params, name, 3, (int[]){C, H, W}, C, H * W, alpha, max_batch);
    if (l) ((bn2d_t *)l)->relu = 1;
    return l;
}

sn_layer_t *sn_batchnorm1d_new(sn_params_t *params, const char *name, int n, float alpha, int max_batch)
{
    return bn_new(params, name, 1, &n, n, 1, alpha, max_batch);
}
