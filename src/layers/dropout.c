/*
 * dropout.c: inverted dropout with masks from the counter-based RNG.
 * Element e of the sample with global index s at step t is kept iff
 * uniform(seed, DROPOUT, layer, t, s * n + e) >= p, so the mask depends neither on
 * the thread count nor on which rank holds the sample.
 */
#include <stdlib.h>
#include "shardnet/layers.h"
#include "shardnet/rng.h"

typedef struct {
    sn_layer_t base;
    float p, scale;
    float *mask;       /* (max_batch, n): 0 or 1/(1-p); valid after a training forward */
    int active;        /* the last forward applied a mask */
} dropout_t;

static int dropout_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    dropout_t *m = (dropout_t *)l;
    size_t n = l->in_size;
    m->active = ctx && ctx->training && m->p > 0.0f;
    if (!m->active) {
        for (size_t i = 0; i < (size_t)B * n; i++) l->output[i] = x[i];
        return SN_OK;
    }
    uint64_t step = (uint64_t)ctx->step;
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH(8 * (size_t)B * n))
    for (int b = 0; b < B; b++) {
        uint64_t s = ctx->sample_ids ? (uint64_t)ctx->sample_ids[b] : (uint64_t)b;
        float *mk = m->mask + (size_t)b * n, *y = l->output + (size_t)b * n;
        const float *xb = x + (size_t)b * n;
        for (size_t e = 0; e < n; e++) {
            float u = sn_rng_uniform(ctx->seed, SN_RNG_DROPOUT, l->id, step, s * n + e);
            mk[e] = u >= m->p ? m->scale : 0.0f;
            y[e] = xb[e] * mk[e];
        }
    }
    return SN_OK;
}

static int dropout_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx; (void)x;
    dropout_t *m = (dropout_t *)l;
    if (!l->need_grad_input) return SN_OK;
    size_t n = (size_t)B * l->in_size;
    if (!m->active) {
        for (size_t i = 0; i < n; i++) l->grad_input[i] = dy[i];
        return SN_OK;
    }
    #pragma omp parallel for simd schedule(static) if (SN_PARALLEL_WORTH(n))
    for (size_t i = 0; i < n; i++) l->grad_input[i] = dy[i] * m->mask[i];
    return SN_OK;
}

static void dropout_destroy(sn_layer_t *l) { sn_free(((dropout_t *)l)->mask); }

static const sn_layer_ops_t dropout_ops = {"Dropout", dropout_forward, dropout_backward, NULL, dropout_destroy};

sn_layer_t *sn_dropout_new(const char *name, int n, float p, int max_batch)
{
    dropout_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "Dropout: out of memory"); return NULL; }
    m->base.ops = &dropout_ops;
    if (!(p >= 0.0f && p < 1.0f)) {
        SN_FAIL(SN_EINVAL, "Dropout '%s': p = %g, expected 0 <= p < 1", name, (double)p);
        goto fail;
    }
    m->p = p;
    m->scale = 1.0f / (1.0f - p);
    if (sn_layer_setup(&m->base, &dropout_ops, name, max_batch, 1, &n, 1, &n, 1, 1)) goto fail;
    if (!(m->mask = sn_alloc((size_t)max_batch * n * sizeof(float), "Dropout mask"))) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}
