/*
 * conv2d.c: 2-D convolution as im2col + one GEMM over the whole batch.
 *
 * The columns of all samples sit side by side, col (C*K*K, B*OH*OW), so forward,
 * the weight gradient and the input gradient are each a single large GEMM (better
 * BLAS efficiency than B small ones, and no per-thread partial sums: the result does
 * not depend on the thread count). The column buffer is reused for the input gradient
 * once the weight gradient has consumed it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/layers.h"
#include "shardnet/rng.h"
#include "kernels/kernels.h"

typedef struct {
    sn_layer_t base;
    int C, H, W, OC, K, S, P, OH, OW;
    float *w, *b, *dw, *db;   /* W (OC, C, K, K), b (OC) */
    float *col;               /* (C*K*K, max_batch*OH*OW) */
    float *ych;               /* (OC, max_batch*OH*OW): channel-major output / output gradient */
} conv2d_t;

/* x (B,C,H,W) -> y (B,OC,OH,OW) */
static int conv2d_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    conv2d_t *m = (conv2d_t *)l;
    int HW = m->OH * m->OW, CKK = m->C * m->K * m->K, N = B * HW;
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        sn_im2col(m->col + (size_t)b * HW, N, x + (size_t)b * l->in_size,
                  m->C, m->H, m->W, m->K, m->S, m->P, m->OH, m->OW);
    sn_gemm(0, 0, m->OC, N, CKK, 1.0f, m->w, CKK, m->col, N, 0.0f, m->ych, N);
    sn_channels_to_batch(l->output, m->ych, B, m->OC, HW, m->b);
    return SN_OK;
}

/* dy (B,OC,OH,OW) -> dx (B,C,H,W); dW += dY col^T; db += sum dY */
static int conv2d_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx;
    (void)x;   /* the columns of x are still in m->col from forward */
    conv2d_t *m = (conv2d_t *)l;
    int HW = m->OH * m->OW, CKK = m->C * m->K * m->K, N = B * HW;
    sn_batch_to_channels(m->ych, dy, B, m->OC, HW);
    sn_gemm(0, 1, m->OC, CKK, N, 1.0f, m->ych, N, m->col, N, 1.0f, m->dw, CKK);
    #pragma omp parallel for schedule(static)
    for (int oc = 0; oc < m->OC; oc++) {
        const float *r = m->ych + (size_t)oc * N;
        double s = 0.0;
        for (int i = 0; i < N; i++) s += r[i];
        m->db[oc] += (float)s;
    }
    if (!l->need_grad_input) return SN_OK;
    sn_gemm(1, 0, CKK, N, m->OC, 1.0f, m->w, CKK, m->ych, N, 0.0f, m->col, N);
    memset(l->grad_input, 0, (size_t)B * l->in_size * sizeof(float));
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        sn_col2im(l->grad_input + (size_t)b * l->in_size, m->col + (size_t)b * HW, N,
                  m->C, m->H, m->W, m->K, m->S, m->P, m->OH, m->OW);
    return SN_OK;
}

/* PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b, fan_in = C*K*K. */
static void conv2d_reset(sn_layer_t *l, uint64_t seed)
{
    conv2d_t *m = (conv2d_t *)l;
    size_t fan_in = (size_t)m->C * m->K * m->K;
    float bound = 1.0f / sqrtf((float)fan_in);
    for (size_t i = 0; i < (size_t)m->OC * fan_in; i++)
        m->w[i] = bound * (2.0f * sn_rng_uniform(seed, SN_RNG_INIT, l->id, 0, i) - 1.0f);
    for (int o = 0; o < m->OC; o++)
        m->b[o] = bound * (2.0f * sn_rng_uniform(seed, SN_RNG_INIT, l->id, 1, (uint64_t)o) - 1.0f);
}

static void conv2d_destroy(sn_layer_t *l)
{
    conv2d_t *m = (conv2d_t *)l;
    sn_free(m->col);
    sn_free(m->ych);
}

static const sn_layer_ops_t conv2d_ops = {"Conv2d", conv2d_forward, conv2d_backward, conv2d_reset, conv2d_destroy};

sn_layer_t *sn_conv2d_new(sn_params_t *params, const char *name, int C, int H, int W,
                          int OC, int K, int stride, int pad, int max_batch)
{
    conv2d_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "Conv2d: out of memory"); return NULL; }
    m->base.ops = &conv2d_ops;
    if (C < 1 || OC < 1 || K < 1 || stride < 1 || pad < 0 || H + 2 * pad < K || W + 2 * pad < K) {
        SN_FAIL(SN_EINVAL, "Conv2d '%s': bad geometry C=%d H=%d W=%d OC=%d K=%d stride=%d pad=%d",
                name, C, H, W, OC, K, stride, pad);
        goto fail;
    }
    m->C = C; m->H = H; m->W = W; m->OC = OC; m->K = K; m->S = stride; m->P = pad;
    m->OH = (H + 2 * pad - K) / stride + 1;
    m->OW = (W + 2 * pad - K) / stride + 1;
    if (sn_layer_setup(&m->base, &conv2d_ops, name, max_batch, 3, (int[]){C, H, W},
                       3, (int[]){OC, m->OH, m->OW}, 1, 1)) goto fail;
    size_t n = (size_t)max_batch * m->OH * m->OW;
    if (!(m->col = sn_alloc((size_t)C * K * K * n * sizeof(float), "Conv2d columns"))) goto fail;
    if (!(m->ych = sn_alloc((size_t)OC * n * sizeof(float), "Conv2d output"))) goto fail;
    char pn[SN_PARAM_NAME_MAX];
    sn_layer_param_name(pn, sizeof pn, &m->base, "weight");
    if (sn_params_add(params, pn, 4, (int[]){OC, C, K, K}, &m->w, &m->dw)) goto fail;
    sn_layer_param_name(pn, sizeof pn, &m->base, "bias");
    if (sn_params_add(params, pn, 1, &OC, &m->b, &m->db)) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}
