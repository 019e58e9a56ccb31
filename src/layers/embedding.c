/*
 * embedding.c: Embedding(vocab, dim): a table lookup forward, a scatter-add backward.
 *
 * The scatter-add is deterministic: threads own disjoint slices of the embedding
 * dimension and every thread walks all tokens in order, so each dW element receives its
 * additions in token order whatever the thread count (repeated ids simply add up).
 * Ids are validated before anything is written: a bad id is an SN_ERANGE error, never
 * an out-of-bounds access. Must not: allocate in forward/backward, use atomics.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/sequence.h"
#include "shardnet/rng.h"

typedef struct {
    sn_layer_t base;
    int        vocab, dim, T;
    float     *w, *dw;   /* (vocab, dim) */
    int32_t   *ids;      /* (max_batch, T) ids of the last protocol call */
} embedding_t;

static int check_ids(const embedding_t *m, const int32_t *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->vocab)
            return SN_FAIL(SN_ERANGE, "Embedding '%s': id %d at position %zu outside 0..%d", m->base.name,
                           (int)ids[i], i, m->vocab - 1);
    return SN_OK;
}

int sn_embedding_forward_ids(sn_layer_t *l, const int32_t *ids, int B, int T)
{
    embedding_t *m = (embedding_t *)l;
    if (B < 1 || B > l->max_batch || T < 1 || T > m->T)
        return SN_FAIL(SN_EINVAL, "Embedding '%s': batch %d / length %d outside 1..%d / 1..%d", l->name, B, T,
                       l->max_batch, m->T);
    size_t n = (size_t)B * T, D = (size_t)m->dim;
    SN_TRY(check_ids(m, ids, n));
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) memcpy(l->output + i * D, m->w + (size_t)ids[i] * D, D * sizeof(float));
    return SN_OK;
}

int sn_embedding_backward_ids(sn_layer_t *l, const int32_t *ids, const float *dy, int B, int T)
{
    embedding_t *m = (embedding_t *)l;
    if (B < 1 || B > l->max_batch || T < 1 || T > m->T)
        return SN_FAIL(SN_EINVAL, "Embedding '%s': batch %d / length %d outside 1..%d / 1..%d", l->name, B, T,
                       l->max_batch, m->T);
    size_t n = (size_t)B * T;
    int D = m->dim;
    SN_TRY(check_ids(m, ids, n));
    #pragma omp parallel
    {
        /* this thread's slice [d0, d1) of the embedding dimension */
        int nt = omp_get_num_threads(), id = omp_get_thread_num();
        int d0 = (int)((long)D * id / nt), d1 = (int)((long)D * (id + 1) / nt);
        for (size_t i = 0; i < n; i++) {
            float *row = m->dw + (size_t)ids[i] * D;
            const float *g = dy + i * D;
            for (int d = d0; d < d1; d++) row[d] += g[d];
        }
    }
    return SN_OK;
}

/* ---- the layer protocol: ids arrive as floats holding exact integers ------------------ */

static int float_ids(embedding_t *m, const float *x, int B)
{
    size_t n = (size_t)B * m->T;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (!(v >= 0.0f && v < (float)m->vocab) || v != floorf(v))
            return SN_FAIL(SN_ERANGE, "Embedding '%s': input %g at position %zu is not an id in 0..%d",
                           m->base.name, (double)v, i, m->vocab - 1);
        m->ids[i] = (int32_t)v;
    }
    return SN_OK;
}

static int embedding_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    embedding_t *m = (embedding_t *)l;
    SN_TRY(float_ids(m, x, B));
    return sn_embedding_forward_ids(l, m->ids, B, m->T);
}

static int embedding_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx;
    embedding_t *m = (embedding_t *)l;
    SN_TRY(float_ids(m, x, B));
    if (l->need_grad_input) memset(l->grad_input, 0, (size_t)B * l->in_size * sizeof(float));
    return sn_embedding_backward_ids(l, m->ids, dy, B, m->T);
}

/* PyTorch: N(0, 1), here by Box-Muller on two counter-based uniforms per element. */
static void embedding_reset(sn_layer_t *l, uint64_t seed)
{
    embedding_t *m = (embedding_t *)l;
    size_t n = (size_t)m->vocab * m->dim;
    for (size_t i = 0; i < n; i++) {
        double u1 = sn_rng_uniform(seed, SN_RNG_INIT, l->id, 0, i);
        double u2 = sn_rng_uniform(seed, SN_RNG_INIT, l->id, 1, i);
        m->w[i] = (float)(sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2));
    }
}

static void embedding_destroy(sn_layer_t *l) { free(((embedding_t *)l)->ids); }

static const sn_layer_ops_t embedding_ops = {"Embedding", embedding_forward, embedding_backward,
                                             embedding_reset, embedding_destroy};

sn_layer_t *sn_embedding_new(sn_params_t *params, const char *name, int vocab, int dim, int T, int max_batch)
{
    embedding_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "Embedding: out of memory"); return NULL; }
    m->vocab = vocab;
    m->dim = dim;
    m->T = T;
    char pn[SN_PARAM_NAME_MAX];
    if (sn_layer_setup(&m->base, &embedding_ops, name, max_batch, 1, &T, 2, (int[]){T, dim}, 1, 1)) goto fail;
    if (vocab < 1) { SN_FAIL(SN_EINVAL, "Embedding '%s': vocabulary of %d", m->base.name, vocab); goto fail; }
    if (!(m->ids = calloc((size_t)max_batch * T, sizeof *m->ids))) {
        SN_FAIL(SN_ENOMEM, "Embedding '%s': out of memory", m->base.name);
        goto fail;
    }
    sn_layer_param_name(pn, sizeof pn, &m->base, "weight");
    if (sn_params_add(params, pn, 2, (int[]){vocab, dim}, &m->w, &m->dw)) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}
