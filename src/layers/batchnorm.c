/*
 * batchnorm.c: BatchNormalization over (B, n) without affine parameters, and Scaling
 * (the per-feature affine that, composed with it, gives BatchNorm1d(affine=True)).
 * Statistics are accumulated in double. The moving statistics are non-trainable
 * buffers in the parameter arena, so checkpoints carry them.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/layers.h"

typedef struct {
    sn_layer_t base;
    float alpha;
    float *moving_mean, *moving_var;   /* (n), buffers */
    float *mean, *rstd;                /* (n), of the last training forward */
    int    used_batch_stats;
} batchnorm_t;

/* x (B, n) -> y (B, n) */
static int batchnorm_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    batchnorm_t *m = (batchnorm_t *)l;
    int n = (int)l->in_size;
    m->used_batch_stats = ctx && ctx->training;
    if (m->used_batch_stats && B < 2)
        return SN_FAIL(SN_EINVAL, "BatchNormalization '%s': training needs a batch of 2 or more, got %d", l->name, B);
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH((size_t)B * n))
    for (int j = 0; j < n; j++) {
        float mean, rstd;
        if (m->used_batch_stats) {
            double s = 0.0, ss = 0.0;
            for (int b = 0; b < B; b++) s += x[(size_t)b * n + j];
            double mu = s / B;
            for (int b = 0; b < B; b++) {
                double d = x[(size_t)b * n + j] - mu;
                ss += d * d;
            }
            double var = ss / B;
            mean = (float)mu;
            rstd = (float)(1.0 / sqrt(var + SN_BN_EPS));
            m->mean[j] = mean;
            m->rstd[j] = rstd;
            m->moving_mean[j] = m->alpha * m->moving_mean[j] + (1.0f - m->alpha) * mean;
            m->moving_var[j] = m->alpha * m->moving_var[j] + (1.0f - m->alpha) * (float)(ss / (B - 1));
        } else {
            mean = m->moving_mean[j];
            rstd = 1.0f / sqrtf(m->moving_var[j] + SN_BN_EPS);
            m->rstd[j] = rstd;
        }
        for (int b = 0; b < B; b++) l->output[(size_t)b * n + j] = (x[(size_t)b * n + j] - mean) * rstd;
    }
    return SN_OK;
}

/* training: dx = rstd/B * (B dy - sum(dy) - xhat sum(dy xhat));  evaluate: dx = dy rstd */
static int batchnorm_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx; (void)x;
    batchnorm_t *m = (batchnorm_t *)l;
    if (!l->need_grad_input) return SN_OK;
    int n = (int)l->in_size;
    const float *y = l->output;   /* xhat */
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH((size_t)B * n))
    for (int j = 0; j < n; j++) {
        float rstd = m->rstd[j];
        if (!m->used_batch_stats) {
            for (int b = 0; b < B; b++) l->grad_input[(size_t)b * n + j] = dy[(size_t)b * n + j] * rstd;
            continue;
        }
        double sdy = 0.0, sdyx = 0.0;
        for (int b = 0; b < B; b++) {
            sdy += dy[(size_t)b * n + j];
            sdyx += (double)dy[(size_t)b * n + j] * y[(size_t)b * n + j];
        }
        double mdy = sdy / B, mdyx = sdyx / B;
        for (int b = 0; b < B; b++) {
            size_t i = (size_t)b * n + j;
            l->grad_input[i] = (float)(rstd * (dy[i] - mdy - y[i] * mdyx));
        }
    }
    return SN_OK;
}

static void batchnorm_reset(sn_layer_t *l, uint64_t seed)
{
    (void)seed;
    batchnorm_t *m = (batchnorm_t *)l;
    for (size_t j = 0; j < l->in_size; j++) {
        m->moving_mean[j] = 0.0f;
        m->moving_var[j] = 1.0f;
    }
}

static void batchnorm_destroy(sn_layer_t *l)
{
    batchnorm_t *m = (batchnorm_t *)l;
    sn_free(m->mean);
    sn_free(m->rstd);
}

static const sn_layer_ops_t batchnorm_ops = {"BatchNormalization", batchnorm_forward, batchnorm_backward,
                                             batchnorm_reset, batchnorm_destroy};

sn_layer_t *sn_batchnorm_new(sn_params_t *params, const char *name, int n, float alpha, int max_batch)
{
    batchnorm_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "BatchNormalization: out of memory"); return NULL; }
    m->alpha = alpha;
    char pn[SN_PARAM_NAME_MAX];
    if (sn_layer_setup(&m->base, &batchnorm_ops, name, max_batch, 1, &n, 1, &n, 1, 1)) goto fail;
    if (!(m->mean = sn_alloc((size_t)n * sizeof(float), "batch mean"))) goto fail;
    if (!(m->rstd = sn_alloc((size_t)n * sizeof(float), "batch rstd"))) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "running_mean");
    if (sn_params_add(params, pn, 1, &n, &m->moving_mean, NULL)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "running_var");
    if (sn_params_add(params, pn, 1, &n, &m->moving_var, NULL)) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}

/* ---- Scaling: y = gamma * x + beta, per feature ---------------------------------- */

typedef struct {
    sn_layer_t base;
    float *gamma, *beta, *dgamma, *dbeta;
} scaling_t;

static int scaling_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    scaling_t *m = (scaling_t *)l;
    size_t n = l->in_size;
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH((size_t)B * n))
    for (int b = 0; b < B; b++)
        for (size_t j = 0; j < n; j++) l->output[b * n + j] = m->gamma[j] * x[b * n + j] + m->beta[j];
    return SN_OK;
}

static int scaling_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx;
    scaling_t *m = (scaling_t *)l;
    int n = (int)l->in_size;
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH((size_t)B * n))
    for (int j = 0; j < n; j++) {
        double sg = 0.0, sb = 0.0;
        for (int b = 0; b < B; b++) {
            sg += (double)dy[(size_t)b * n + j] * x[(size_t)b * n + j];
            sb += dy[(size_t)b * n + j];
        }
        m->dgamma[j] += (float)sg;
        m->dbeta[j] += (float)sb;
        if (l->need_grad_input)
            for (int b = 0; b < B; b++) l->grad_input[(size_t)b * n + j] = dy[(size_t)b * n + j] * m->gamma[j];
    }
    return SN_OK;
}

static void scaling_reset(sn_layer_t *l, uint64_t seed)
{
    (void)seed;
    scaling_t *m = (scaling_t *)l;
    for (size_t j = 0; j < l->in_size; j++) {
        m->gamma[j] = 1.0f;
        m->beta[j] = 0.0f;
    }
}

static const sn_layer_ops_t scaling_ops = {"Scaling", scaling_forward, scaling_backward, scaling_reset, NULL};

sn_layer_t *sn_scaling_new(sn_params_t *params, const char *name, int n, int max_batch)
{
    scaling_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "Scaling: out of memory"); return NULL; }
    char pn[SN_PARAM_NAME_MAX];
    if (sn_layer_setup(&m->base, &scaling_ops, name, max_batch, 1, &n, 1, &n, 1, 1)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "weight");
    if (sn_params_add(params, pn, 1, &n, &m->gamma, &m->dgamma)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "bias");
    if (sn_params_add(params, pn, 1, &n, &m->beta, &m->dbeta)) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}
