/*
 * conv2d.c: 2-D convolution, one sample at a time: im2col into a per-thread column
 * buffer that stays in cache, then a single-threaded GEMM per sample, with OpenMP over
 * the samples of the batch.
 *
 * Stride 1 without padding (the MNIST convolutions) uses "wide" columns: outputs for all W
 * columns of each output row, so a column row is one contiguous copy of the input (see
 * sn_im2col_wide); the K-1 junk columns per row are dropped when the output is written and
 * are zero in the output gradient, so they change nothing.
 *
 * Determinism: the weight and bias gradients of each sample go to that sample's own
 * partial buffer and are summed in sample order afterwards, so the result has the same
 * bits whatever the thread count. The columns are recomputed in backward rather than
 * stored: that is cheaper than streaming C*K*K*OH*OW floats per sample through memory.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/layers.h"
#include "shardnet/rng.h"
#include "kernels/kernels.h"

typedef struct {
    sn_layer_t base;
    int C, H, W, OC, K, S, P, OH, OW;
    float *w, *b, *dw, *db;   /* W (OC, C*K*K), b (OC) */
    int    wide;              /* stride 1, no padding: wide columns */
    int    NW;                /* columns per sample: OH*W if wide, else OH*OW */
    float *col;               /* (threads, C*K*K, NW) */
    float *ywide;             /* (threads, OC, NW): wide output / output gradient */
    float *dw_part;           /* (max_batch, OC*C*K*K + OC): per-sample weight and bias gradients */
    int    threads;           /* column buffers allocated */
} conv2d_t;

/* Threads for a batch of B: never more than samples, buffers, or the current budget. */
static int team_size(const conv2d_t *m, int B)
{
    int nt = omp_get_max_threads();
    if (nt > m->threads) nt = m->threads;
    return nt < B ? nt : B;
}

/* x (B,C,H,W) -> y (B,OC,OH,OW) */
static int conv2d_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    conv2d_t *m = (conv2d_t *)l;
    int HW = m->OH * m->OW, CKK = m->C * m->K * m->K, NW = m->NW;
    int nt = team_size(m, B);
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int b = 0; b < B; b++) {
        int t = omp_get_thread_num();
        float *col = m->col + (size_t)t * CKK * NW;
        float *y = l->output + (size_t)b * l->out_size;
        const float *xb = x + (size_t)b * l->in_size;
        if (!m->wide) {
            sn_im2col(col, HW, xb, m->C, m->H, m->W, m->K, m->S, m->P, m->OH, m->OW);
            for (int oc = 0; oc < m->OC; oc++)
                for (int i = 0; i < HW; i++) y[(size_t)oc * HW + i] = m->b[oc];
            sn_gemm(0, 0, m->OC, HW, CKK, 1.0f, m->w, CKK, col, HW, 1.0f, y, HW);
            continue;
        }
        float *yw = m->ywide + (size_t)t * m->OC * NW;
        sn_im2col_wide(col, xb, m->C, m->H, m->W, m->K, m->OH);
        sn_gemm(0, 0, m->OC, NW, CKK, 1.0f, m->w, CKK, col, NW, 0.0f, yw, NW);
        for (int oc = 0; oc < m->OC; oc++)
            for (int oh = 0; oh < m->OH; oh++) {
                const float *src = yw + (size_t)oc * NW + (size_t)oh * m->W;
                float *dst = y + (size_t)oc * HW + (size_t)oh * m->OW;
                for (int ow = 0; ow < m->OW; ow++) dst[ow] = src[ow] + m->b[oc];
            }
    }
    return SN_OK;
}

/* dy (B,OC,OH,OW) -> dx (B,C,H,W); dW += sum_b dy_b col_b^T; db += sum dy */
static int conv2d_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx;
    conv2d_t *m = (conv2d_t *)l;
    int HW = m->OH * m->OW, CKK = m->C * m->K * m->K, nw = m->OC * CKK, NW = m->NW;
    int nt = team_size(m, B);
    #pragma omp parallel for schedule(static) num_threads(nt)
    for (int b = 0; b < B; b++) {
        int t = omp_get_thread_num();
        float *col = m->col + (size_t)t * CKK * NW;
        const float *g = dy + (size_t)b * l->out_size, *xb = x + (size_t)b * l->in_size;
        float *part = m->dw_part + (size_t)b * (nw + m->OC);
        for (int oc = 0; oc < m->OC; oc++) {
            float s = 0.0f;
            for (int i = 0; i < HW; i++) s += g[(size_t)oc * HW + i];
            part[nw + oc] = s;
        }
        if (m->wide) {   /* the output gradient, widened with zeros in the junk columns */
            float *gw = m->ywide + (size_t)t * m->OC * NW;
            for (int oc = 0; oc < m->OC; oc++)
                for (int oh = 0; oh < m->OH; oh++) {
                    float *dst = gw + (size_t)oc * NW + (size_t)oh * m->W;
                    memcpy(dst, g + (size_t)oc * HW + (size_t)oh * m->OW, (size_t)m->OW * sizeof(float));
                    for (int w = m->OW; w < m->W; w++) dst[w] = 0.0f;
                }
            g = gw;
            sn_im2col_wide(col, xb, m->C, m->H, m->W, m->K, m->OH);
        } else {
            sn_im2col(col, HW, xb, m->C, m->H, m->W, m->K, m->S, m->P, m->OH, m->OW);
        }
        sn_gemm(0, 1, m->OC, CKK, NW, 1.0f, g, NW, col, NW, 0.0f, part, CKK);
        if (l->need_grad_input) {
            float *dx = l->grad_input + (size_t)b * l->in_size;
            sn_gemm(1, 0, CKK, NW, m->OC, 1.0f, m->w, CKK, g, NW, 0.0f, col, NW);
            memset(dx, 0, l->in_size * sizeof(float));
            if (m->wide) sn_col2im_wide(dx, col, m->C, m->H, m->W, m->K, m->OH);
            else sn_col2im(dx, col, HW, m->C, m->H, m->W, m->K, m->S, m->P, m->OH, m->OW);
        }
    }
    /* sum the per-sample partials in sample order, in parallel over weights */
    #pragma omp parallel for schedule(static) if (nw > 4096)
    for (int k = 0; k < nw + m->OC; k++) {
        float s = 0.0f;
        for (int b = 0; b < B; b++) s += m->dw_part[(size_t)b * (nw + m->OC) + k];
        if (k < nw) m->dw[k] += s;
        else m->db[k - nw] += s;
    }
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
    sn_free(m->ywide);
    sn_free(m->dw_part);
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
    /* one column buffer per thread that may run (omp_set_num_threads may grow later: the
     * forward/backward cap their team at m->threads) */
    m->threads = omp_get_max_threads() > omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
    m->wide = stride == 1 && pad == 0 && K > 1;
    m->NW = m->wide ? m->OH * W : m->OH * m->OW;
    size_t ckk = (size_t)C * K * K;
    if (!(m->col = sn_alloc((size_t)m->threads * ckk * m->NW * sizeof(float), "Conv2d columns"))) goto fail;
    if (m->wide && !(m->ywide = sn_alloc((size_t)m->threads * OC * m->NW * sizeof(float), "Conv2d wide output")))
        goto fail;
    if (!(m->dw_part = sn_alloc((size_t)max_batch * (OC * ckk + OC) * sizeof(float), "Conv2d partial gradients"))) goto fail;
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
