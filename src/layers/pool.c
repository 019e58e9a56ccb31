/*
 * pool.c: MaxPool2d (floor mode, optional implicit -inf padding as PyTorch's MaxPool2d
 * padding=P: a window only looks at the input elements it covers) and Flatten.
 * Must not: allocate in forward/backward.
 */
#include <stdlib.h>
#include <string.h>
#include "shardnet/layers.h"

typedef struct {
    sn_layer_t base;
    int C, H, W, K, S, P, OH, OW;
    int32_t *argmax;   /* (max_batch, C, OH, OW): flat index into the sample's (C,H,W) */
} maxpool_t;

/* Max of the window rows r0..r1-1, columns c0..c1-1 (already clipped to the plane, never
 * empty), as PyTorch picks it: the first maximum wins, a NaN replaces anything (so the last
 * NaN wins). Returns the flat index (within the channel plane) of the chosen element. */
static inline int window_max(const float *xc, int W, int r0, int r1, int c0, int c1, float *out)
{
    int best = r0 * W + c0;
    float v = xc[best];
    for (int r = r0; r < r1; r++) {
        const float *row = xc + (size_t)r * W;
        for (int c = c0; c < c1; c++)
            if (row[c] > v || row[c] != row[c]) {
                v = row[c];
                best = r * W + c;
            }
    }
    *out = v;
    return best;
}

/* Outputs ow0..ow1-1 of one output row of a 3x3 stride-2 window whose nine inputs are all
 * inside the plane, into y[0..] and am[0..]: x0 points at the window's top row, column 0 of
 * the plane, idx0 is that row's flat index; c0 = 2*ow0 - P is the first window's left column. The same choice as window_max (first maximum, last
 * NaN), branch-free with constant offsets so that GCC vectorises it across ow: the scalar,
 * data-dependent branches made ResNet's stem pooling cost as much as a convolution. */
static void window3s2_row(const float *x0, int W, int idx0, int c0, int ow0, int ow1, float *y, int32_t *am)
{
    for (int ow = ow0; ow < ow1; ow++) {
        int c = c0 + 2 * (ow - ow0), best = idx0 + c;
        const float *p = x0 + c;
        float v = p[0];
        for (int k = 1; k < 9; k++) {
            int off = (k / 3) * W + k % 3;
            float xv = p[off];
            int take = (xv > v) | (xv != xv);
            v = take ? xv : v;
            best = take ? idx0 + c + off : best;
        }
        y[ow - ow0] = v;
        am[ow - ow0] = best;
    }
}

/* x (B,C,H,W) -> y (B,C,OH,OW); argmax keeps the chosen input of every output */
static int maxpool_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    maxpool_t *m = (maxpool_t *)l;
    int C = m->C, H = m->H, W = m->W, K = m->K, S = m->S, P = m->P, OH = m->OH, OW = m->OW;
    long planes = (long)B * C;
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH((size_t)B * l->in_size))
    for (long pl = 0; pl < planes; pl++) {
        const float *xc = x + (size_t)pl * H * W;
        float *y = l->output + (size_t)pl * OH * OW;
        int32_t *am = m->argmax + (size_t)pl * OH * OW;
        int base = (int)(pl % C) * H * W;
        if (K == 2 && S == 2 && P == 0) {
            /* the common case, unrolled: four candidates in reading order */
            for (int oh = 0; oh < OH; oh++) {
                const float *r0 = xc + (size_t)(2 * oh) * W, *r1 = r0 + W;
                for (int ow = 0; ow < OW; ow++) {
                    int j = 2 * ow, idx = 2 * oh * W + j;
                    float v = r0[j];
                    if (r0[j + 1] > v || r0[j + 1] != r0[j + 1]) { v = r0[j + 1]; idx = 2 * oh * W + j + 1; }
                    if (r1[j] > v || r1[j] != r1[j])             { v = r1[j];     idx = (2 * oh + 1) * W + j; }
                    if (r1[j + 1] > v || r1[j + 1] != r1[j + 1]) { v = r1[j + 1]; idx = (2 * oh + 1) * W + j + 1; }
                    y[oh * OW + ow] = v;
                    am[oh * OW + ow] = base + idx;
                }
            }
            continue;
        }
        /* 3x3 stride 2: outputs [olo, ohi) have their whole window inside the plane */
        int olo = K == 3 && S == 2 ? (P + 1) / 2 : OW, ohi = K == 3 && S == 2 ? (W - 3 + P) / 2 + 1 : OW;
        if (ohi > OW) ohi = OW;
        for (int oh = 0; oh < OH; oh++) {
            int r0 = oh * S - P, r1 = r0 + K;
            if (r0 >= 0 && r1 <= H && olo < ohi) {
                window3s2_row(xc + (size_t)r0 * W, W, base + r0 * W, 2 * olo - P, olo, ohi, y + oh * OW + olo,
                              am + oh * OW + olo);
                for (int ow = 0; ow < OW; ow++) {   /* the border outputs */
                    if (ow == olo) ow = ohi;
                    if (ow >= OW) break;
                    int c0 = ow * S - P, c1 = c0 + K;
                    if (c0 < 0) c0 = 0;
                    if (c1 > W) c1 = W;
                    am[oh * OW + ow] = base + window_max(xc, W, r0, r1, c0, c1, &y[oh * OW + ow]);
                }
                continue;
            }
            if (r0 < 0) r0 = 0;
            if (r1 > H) r1 = H;
            for (int ow = 0; ow < OW; ow++) {
                int c0 = ow * S - P, c1 = c0 + K;
                if (c0 < 0) c0 = 0;
                if (c1 > W) c1 = W;
                am[oh * OW + ow] = base + window_max(xc, W, r0, r1, c0, c1, &y[oh * OW + ow]);
            }
        }
    }
    return SN_OK;
}

static int maxpool_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx; (void)x;
    maxpool_t *m = (maxpool_t *)l;
    if (!l->need_grad_input) return SN_OK;
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH((size_t)B * l->in_size))
    for (int b = 0; b < B; b++) {
        float *dx = l->grad_input + (size_t)b * l->in_size;
        memset(dx, 0, l->in_size * sizeof(float));
        const float *g = dy + (size_t)b * l->out_size;
        const int32_t *am = m->argmax + (size_t)b * l->out_size;
        for (size_t o = 0; o < l->out_size; o++) dx[am[o]] += g[o];
    }
    return SN_OK;
}

static void maxpool_destroy(sn_layer_t *l) { sn_free(((maxpool_t *)l)->argmax); }

static const sn_layer_ops_t maxpool_ops = {"MaxPool2d", maxpool_forward, maxpool_backward, NULL, maxpool_destroy};

sn_layer_t *sn_maxpool2d_pad_new(const char *name, int C, int H, int W, int K, int stride, int pad,
                                 int max_batch)
{
    maxpool_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "MaxPool2d: out of memory"); return NULL; }
    m->base.ops = &maxpool_ops;
    /* pad <= K/2 (as PyTorch demands) keeps every window on at least one input element */
    if (K < 1 || stride < 1 || pad < 0 || 2 * pad > K || H + 2 * pad < K || W + 2 * pad < K) {
        SN_FAIL(SN_EINVAL, "MaxPool2d '%s': kernel %d stride %d padding %d does not fit %dx%d "
                "(need padding <= kernel/2)", name, K, stride, pad, H, W);
        goto fail;
    }
    m->C = C; m->H = H; m->W = W; m->K = K; m->S = stride; m->P = pad;
    m->OH = (H + 2 * pad - K) / stride + 1;
    m->OW = (W + 2 * pad - K) / stride + 1;
    if (sn_layer_setup(&m->base, &maxpool_ops, name, max_batch, 3, (int[]){C, H, W},
                       3, (int[]){C, m->OH, m->OW}, 1, 1)) goto fail;
    if (!(m->argmax = sn_alloc((size_t)max_batch * m->base.out_size * sizeof(int32_t), "MaxPool2d argmax"))) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}

sn_layer_t *sn_maxpool2d_new(const char *name, int C, int H, int W, int K, int stride, int max_batch)
{
    return sn_maxpool2d_pad_new(name, C, H, W, K, stride, 0, max_batch);
}

/* Flatten: the output is the input seen as (B, C*H*W); the gradient passes through. */
static int flatten_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx; (void)B;
    l->output = (float *)x;
    return SN_OK;
}

static int flatten_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx; (void)x; (void)B;
    l->grad_input = (float *)dy;
    return SN_OK;
}

static const sn_layer_ops_t flatten_ops = {"Flatten", flatten_forward, flatten_backward, NULL, NULL};

sn_layer_t *sn_flatten_new(const char *name, int ndim, const int *shape, int max_batch)
{
    sn_layer_t *l = calloc(1, sizeof *l);
    if (!l) { SN_FAIL(SN_ENOMEM, "Flatten: out of memory"); return NULL; }
    int n = 1;
    for (int d = 0; d < ndim; d++) n *= shape[d];
    if (sn_layer_setup(l, &flatten_ops, name, max_batch, ndim, shape, 1, &n, 0, 0)) {
        sn_layer_free(l);
        return NULL;
    }
    return l;
}
