/*
 * linear.c: fully connected layer, y = x W^T + b. The weight gradient is one sn_gemm;
 * the forward and the input gradient pack W (as W^T, or as is) into a buffer of the
 * layer and run sn_gemm_packed, which beat the tiled OpenBLAS calls on the captioning
 * decoder's Linear(512, V) over a few hundred packed rows.
 * Must not: allocate in forward/backward.
 */
#include <math.h>
#include <stdlib.h>
#include "shardnet/layers.h"
#include "shardnet/rng.h"
#include "kernels/kernels.h"

typedef struct {
    sn_layer_t base;
    int in, out;
    float *w, *b;     /* W (out, in), b (out) */
    float *dw, *db;
    float *wpack;     /* W^T or W packed for sn_gemm_packed */
} linear_t;

/* x (B, in) -> y (B, out) */
static int linear_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    linear_t *m = (linear_t *)l;
    float *y = l->output;
    for (int i = 0; i < B; i++)
        for (int o = 0; o < m->out; o++) y[(size_t)i * m->out + o] = m->b[o];
    sn_gemm_pack_b(m->wpack, 1, m->out, m->in, m->w, m->in);
    sn_gemm_packed(B, m->out, m->in, x, m->in, m->wpack, 1.0f, y, m->out);
    return SN_OK;
}

/* dy (B, out) -> dx (B, in); dW += dy^T x; db += sum_b dy */
static int linear_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx;
    linear_t *m = (linear_t *)l;
    sn_gemm(1, 0, m->out, m->in, B, 1.0f, dy, m->out, x, m->in, 1.0f, m->dw, m->in);
    /* column sums in row order, 64 columns walking the rows together (one column at a
     * time strode a whole row per value: V = 1177 wide for the caption decoder) */
    for (int o0 = 0; o0 < m->out; o0 += 64) {
        int no = m->out - o0 < 64 ? m->out - o0 : 64;
        float s[64] = {0};
        for (int i = 0; i < B; i++) {
            const float *d = dy + (size_t)i * m->out + o0;
            for (int o = 0; o < no; o++) s[o] += d[o];
        }
        for (int o = 0; o < no; o++) m->db[o0 + o] += s[o];
    }
    if (l->need_grad_input) {
        sn_gemm_pack_b(m->wpack, 0, m->in, m->out, m->w, m->in);
        sn_gemm_packed(B, m->in, m->out, dy, m->out, m->wpack, 0.0f, l->grad_input, m->in);
    }
    return SN_OK;
}

/* PyTorch: kaiming_uniform(a=sqrt(5)) for W and U(-1/sqrt(in), 1/sqrt(in)) for b: both
 * are U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
static void linear_reset(sn_layer_t *l, uint64_t seed)
{
    linear_t *m = (linear_t *)l;
    float bound = 1.0f / sqrtf((float)m->in);
    for (size_t i = 0; i < (size_t)m->out * m->in; i++)
        m->w[i] = bound * (2.0f * sn_rng_uniform(seed, SN_RNG_INIT, l->id, 0, i) - 1.0f);
    for (int o = 0; o < m->out; o++)
        m->b[o] = bound * (2.0f * sn_rng_uniform(seed, SN_RNG_INIT, l->id, 1, (uint64_t)o) - 1.0f);
}

static void linear_destroy(sn_layer_t *l) { sn_free(((linear_t *)l)->wpack); }

static const sn_layer_ops_t linear_ops = {"Linear", linear_forward, linear_backward, linear_reset, linear_destroy};

sn_layer_t *sn_linear_new(sn_params_t *params, const char *name, int in, int out, int max_batch)
{
    linear_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "Linear: out of memory"); return NULL; }
    m->in = in;
    m->out = out;
    char pn[SN_PARAM_NAME_MAX];
    if (sn_layer_setup(&m->base, &linear_ops, name, max_batch, 1, &in, 1, &out, 1, 1)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "weight");
    if (sn_params_add(params, pn, 2, (int[]){out, in}, &m->w, &m->dw)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "bias");
    if (sn_params_add(params, pn, 1, &out, &m->b, &m->db)) goto fail;
    size_t pf = sn_gemm_packed_floats(out, in), pb = sn_gemm_packed_floats(in, out);
    if (!(m->wpack = sn_alloc((pf > pb ? pf : pb) * sizeof(float), "Linear packed weights"))) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}
