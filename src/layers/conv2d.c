/*
 * conv2d.c: 2-D convolution, one sample at a time with OpenMP over the samples of the
 * batch; every GEMM is a single-threaded call (BLAS, or sn_gemm_packed) on data that stays in
 * cache.
 *
 * The ways to lay out the work (plans), chosen when the layer is built:
 *  - im2col (any stride and padding): columns (C*K*K, OH*OW) in a per-thread buffer, one
 *    GEMM against W (OC, C*K*K). Its backward runs on sn_gemm_packed with the output
 *    gradient packed (small: OC x OH*OW): the weight gradient as col g^T, laid out (C*K*K,
 *    OC), and the input gradient's columns as W^T g. OpenBLAS's transposed calls for these
 *    shapes were 12% slower in the layer (the encoder's second convolution, backward 14.9 ->
 *    13.3 ms for 32 images); its forward stayed faster than the packed kernel's.
 *  - wide im2col (stride 1, no padding, few input channels): outputs are computed for all
 *    W columns of each output row, so a column row is one contiguous copy of the input
 *    (sn_im2col_wide); the K-1 junk columns per row are dropped when the output is written
 *    and are zero in the output gradient.
 *  - batched im2col (on request, SN_CONV_BATCHED: what would be im2col, with fewer output
 *    positions than output channels, the deep layers of a ResNet): the columns of all samples side by side (C*K*K, B*OH*OW),
 *    so each of forward, weight gradient and input gradient is ONE GEMM over the batch
 *    (the weight gradient's K is B*OH*OW, summed inside the GEMM: no per-sample partials,
 *    which would be B times the weights, and no thin N = OH*OW GEMMs).
 *  - shifted GEMMs (stride 1, no padding, C >= SHIFT_MIN_C): no columns at all. For each
 *    kernel offset (ki, kj) the input plane seen from offset ki*W + kj *is* the column
 *    matrix of that offset (C rows of stride H*W), so y += W[:, :, ki, kj] x_shifted is one
 *    GEMM with K = C, over N = (OH-1)*W + OW wide positions (the last one read is the last
 *    input element: nothing outside the sample is touched). The weight gradient of each
 *    offset and the input gradient (accumulated at the shifted offsets) are GEMMs too.
 *
 *  - Winograd (on request, SN_CONV_WINOGRAD, for 3x3 kernels of stride 1 and padding 1:
 *    ResNet's blocks): forward, weight gradient and input gradient by Winograd F(2x2, 3x3)
 *    over the tiles of the whole batch (kernels/winograd.c, 2.25x fewer multiply-adds); no
 *    columns. The weight gradient's chunks are summed in a fixed number of lanes.
 *
 * The im2col and batched plans of a "same" convolution (K = 2P + 1, stride 1 or 2: every 3x3
 * pad 1, 7x7 pad 3 and 1x1 of the encoders) unfold and fold with sn_im2col_flat, one flat copy
 * per column row instead of OH short ones (stride 2 through the input's four phases).
 *
 * Options (sn_conv2d_new_opts): without a bias the layer adds a zero bias it holds itself,
 * outside the parameter arena (so no "bias" tensor exists, as in PyTorch's bias=False),
 * and its gradient goes to a scratch buffer: the kernels keep one code path. The init can
 * be kaiming_normal_(mode="fan_out", nonlinearity="relu") (torchvision's ResNet) instead of
 * PyTorch's default uniform.
 *
 * The batched plan's backward reuses the columns that forward left in colb, unless a
 * backward already overwrote them with the input gradient's.
 *
 * Determinism: the weight and bias gradients of each sample go to that sample's own
 * partial buffer and are summed in sample order afterwards (batched: one GEMM, whose tiles
 * depend on the matrix shape only, and per-channel bias sums; Winograd: fixed chunks and
 * lanes, see winograd.c), so the result has the same bits whatever the thread count.
 * Columns are recomputed in backward, not stored.
 * Must not: allocate in forward/backward; register a bias when built without one.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/layers.h"
#include "shardnet/rng.h"
#include "kernels/kernels.h"

enum { PLAN_IM2COL, PLAN_WIDE, PLAN_SHIFTED, PLAN_BATCHED, PLAN_WINOGRAD };
#define SHIFT_MIN_C 8   /* below this, K = C GEMMs are too thin: use wide columns */

typedef struct {
    sn_layer_t base;
    int C, H, W, OC, K, S, P, OH, OW;
    int plan;
    int NW;                   /* output positions per sample as computed: OH*W (wide), else OH*OW */
    float *w, *b, *dw, *db;   /* W (OC, C, K, K), b (OC) */
    unsigned flags;           /* SN_CONV_* */
    float *own_b;             /* no bias: zeros (OC) and a scratch gradient (OC), not in the arena */
    float *wk;                /* shifted: W regrouped by offset, (K*K, OC, C) */
    float *col;               /* (threads, C*K*K, NW): im2col and wide plans */
    float *pk;                /* im2col backward: (threads, pk_n) g packed for sn_gemm_packed */
    size_t pk_n;
    float *wt;                /* im2col: W^T (C*K*K, OC), for the input gradient */
    int    flat;              /* im2col/batched with a "same" geometry: sn_im2col_flat */
    size_t phase_n;           /* its scratch per thread (stride 2: the input's phases) */
    float *phase;             /* (threads, phase_n) */
    float *ywide;             /* (threads, OC, NW): wide output / output gradient */
    float *dw_part;           /* (max_batch, OC*C*K*K + OC): per-sample weight and bias gradients */
    float *colb;              /* batched: (C*K*K, max_batch*OH*OW) columns of the whole batch */
    float *yb;                /* batched: (OC, max_batch*OH*OW) output / output gradient by channel */
    int    colb_fresh;        /* batched: colb holds the columns of the last forward's input */
    int    threads;           /* per-thread buffers allocated */
    int    forward_only;      /* built with frozen parameters: no grad_input, no dw_part */
    float *wu;                /* Winograd: transformed weights (the forward's, or the adjoint's in backward) */
    float *wscr;              /* Winograd: (threads, sn_winograd_scratch_floats) chunks of tiles */
    float *wpart;             /* Winograd: the weight gradient's partial sums, (lanes, 16, OC, C) */
} conv2d_t;

/* Threads that may run: the current budget, never more than the per-thread buffers. */
static int thread_budget(const conv2d_t *m)
{
    int nt = omp_get_max_threads();
    return nt < m->threads ? nt : m->threads;
}

/* Threads for a batch of B: never more than samples, buffers, or the current budget. */
static int team_size(const conv2d_t *m, int B)
{
    int nt = thread_budget(m);
    return nt < B ? nt : B;
}

/* y = conv(x) (adjoint 0: x (B,C,H,W) -> y (B,OC,H,W) + b), or dx = conv^T(dy) (adjoint 1) */
static void wino_run(conv2d_t *m, float *y, const float *x, int B, int adjoint)
{
    sn_winograd_weights(m->wu, m->w, m->C, m->OC, adjoint);
    if (adjoint) sn_winograd_conv(y, x, B, m->OC, m->C, m->H, m->W, m->wu, NULL, m->wscr, thread_budget(m));
    else sn_winograd_conv(y, x, B, m->C, m->OC, m->H, m->W, m->wu, m->b, m->wscr, thread_budget(m));
}

/* wide (OC, OH*W) -> y (OC, OH, OW) + bias */
static void narrow(const conv2d_t *m, float *y, const float *yw)
{
    for (int oc = 0; oc < m->OC; oc++)
        for (int oh = 0; oh < m->OH; oh++) {
            const float *src = yw + (size_t)oc * m->NW + (size_t)oh * m->W;
            float *dst = y + ((size_t)oc * m->OH + oh) * m->OW;
            for (int ow = 0; ow < m->OW; ow++) dst[ow] = src[ow] + m->b[oc];
        }
}

/* dy (OC, OH, OW) -> wide (OC, OH*W) with zeros in the junk columns */
static void widen(const conv2d_t *m, float *gw, const float *g)
{
    for (int oc = 0; oc < m->OC; oc++)
        for (int oh = 0; oh < m->OH; oh++) {
            float *dst = gw + (size_t)oc * m->NW + (size_t)oh * m->W;
            memcpy(dst, g + ((size_t)oc * m->OH + oh) * m->OW, (size_t)m->OW * sizeof(float));
            for (int w = m->OW; w < m->W; w++) dst[w] = 0.0f;
        }
}

/* sum of g[0..n) in 16 interleaved float lanes added in a fixed tree: one running sum is
 * a chain of dependent adds (4 cycles a value), and the bias gradients were the slowest
 * part of some backward passes. The order is fixed, so the bits do not depend on threads.
 * The 16 lanes are two 8-wide halves: a 64-byte vector type lives on the stack without
 * AVX-512, and lo + hi is the first level of the same tree. */
typedef float conv_v8 __attribute__((vector_size(32)));
static float row_sum(const float *g, int n)
{
    conv_v8 lo = {0}, hi = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        conv_v8 a, b;
        memcpy(&a, g + i, sizeof a);
        memcpy(&b, g + i + 8, sizeof b);
        lo += a;
        hi += b;
    }
    lo += hi;
    float l[8], s = 0.0f;
    memcpy(l, &lo, sizeof l);
    for (int w = 4; w >= 1; w /= 2)
        for (int j = 0; j < w; j++) l[j] += l[j + w];
    s = l[0];
    for (; i < n; i++) s += g[i];
    return s;
}

/* One sample's columns at row stride ldc, on thread t's scratch. */
static void unfold(const conv2d_t *m, float *col, int ldc, const float *x, int t)
{
    if (m->flat)
        sn_im2col_flat(col, ldc, x, m->phase ? m->phase + (size_t)t * m->phase_n : NULL, m->C, m->H, m->W, m->K,
                       m->S, m->P);
    else
        sn_im2col(col, ldc, x, m->C, m->H, m->W, m->K, m->S, m->P, m->OH, m->OW);
}

/* dx (C,H,W) = the columns folded back (col may be overwritten), on thread t's scratch. */
static void fold(const conv2d_t *m, float *dx, float *col, int ldc, int t)
{
    if (m->flat) {
        sn_col2im_flat(dx, col, ldc, m->phase ? m->phase + (size_t)t * m->phase_n : NULL, m->C, m->H, m->W, m->K,
                       m->S, m->P);
        return;
    }
    memset(dx, 0, m->base.in_size * sizeof(float));
    sn_col2im(dx, col, ldc, m->C, m->H, m->W, m->K, m->S, m->P, m->OH, m->OW);
}

/* Columns of every sample side by side: colb (C*K*K, B*HW) from x (B,C,H,W). */
static void batch_columns(const conv2d_t *m, const float *x, int B)
{
    int HW = m->OH * m->OW, NB = B * HW;
    #pragma omp parallel for schedule(static) num_threads(team_size(m, B)) \
        if (SN_PARALLEL_WORTH((size_t)NB * m->C * m->K * m->K))
    for (int b = 0; b < B; b++)
        unfold(m, m->colb + (size_t)b * HW, NB, x + (size_t)b * m->base.in_size, omp_get_thread_num());
}

/* batched plan: y (B,OC,HW) = channels_to_batch(W (OC,CKK) colb (CKK,B*HW)) + b */
static void batched_forward(conv2d_t *m, const float *x, int B)
{
    int HW = m->OH * m->OW, NB = B * HW, CKK = m->C * m->K * m->K;
    batch_columns(m, x, B);
    m->colb_fresh = 1;
    sn_gemm(0, 0, m->OC, NB, CKK, 1.0f, m->w, CKK, m->colb, NB, 0.0f, m->yb, NB);
    sn_channels_to_batch(m->base.output, m->yb, B, m->OC, HW, m->b);
}

/* batched plan: dY (OC, B*HW); db += row sums; dW += dY colb^T; dcol = W^T dY folded into dx */
static void batched_backward(conv2d_t *m, const float *x, const float *dy, int B)
{
    sn_layer_t *l = &m->base;
    int HW = m->OH * m->OW, NB = B * HW, CKK = m->C * m->K * m->K;
    sn_batch_to_channels(m->yb, dy, B, m->OC, HW);
    if (!m->own_b) {   /* without a bias (ResNet), nobody reads db */
        #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH((size_t)m->OC * NB))
        for (int oc = 0; oc < m->OC; oc++) m->db[oc] += row_sum(m->yb + (size_t)oc * NB, NB);
    }
    if (!m->colb_fresh) batch_columns(m, x, B);
    sn_gemm(0, 1, m->OC, CKK, NB, 1.0f, m->yb, NB, m->colb, NB, 1.0f, m->dw, CKK);
    if (!l->need_grad_input) return;
    m->colb_fresh = 0;   /* the input gradient's columns replace them */
    sn_gemm(1, 0, CKK, NB, m->OC, 1.0f, m->w, CKK, m->yb, NB, 0.0f, m->colb, NB);
    #pragma omp parallel for schedule(static) num_threads(team_size(m, B)) if (SN_PARALLEL_WORTH((size_t)NB * CKK))
    for (int b = 0; b < B; b++)
        fold(m, l->grad_input + (size_t)b * l->in_size, m->colb + (size_t)b * HW, NB, omp_get_thread_num());
}

/* Winograd plan: db += sums of dy (sample order), dW += its Winograd gradient, dx */
static void winograd_backward(conv2d_t *m, const float *x, const float *dy, int B)
{
    sn_layer_t *l = &m->base;
    int HW = m->H * m->W;
    if (!m->own_b) {
        #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH((size_t)m->OC * B * HW))
        for (int oc = 0; oc < m->OC; oc++) {
            float s = 0.0f;
            for (int b = 0; b < B; b++) s += row_sum(dy + ((size_t)b * m->OC + oc) * HW, HW);
            m->db[oc] += s;
        }
    }
    sn_winograd_wgrad(m->dw, x, dy, B, m->C, m->OC, m->H, m->W, m->wpart, m->wscr, thread_budget(m));
    if (l->need_grad_input) wino_run(m, l->grad_input, dy, B, 1);
}

/* Sample b of the per-sample plans' forward, on thread t's scratch. */
static void forward_sample(conv2d_t *m, const float *x, int b, int t)
{
    sn_layer_t *l = &m->base;
    int HW = m->OH * m->OW, CKK = m->C * m->K * m->K, NW = m->NW, KK = m->K * m->K;
    int N = (m->OH - 1) * m->W + m->OW, plane = m->H * m->W;
    float *y = l->output + (size_t)b * l->out_size;
    const float *xb = x + (size_t)b * l->in_size;
    float *col = m->col ? m->col + (size_t)t * CKK * NW : NULL;
    float *yw = m->ywide ? m->ywide + (size_t)t * m->OC * NW : NULL;
    switch (m->plan) {
    case PLAN_IM2COL:
        unfold(m, col, HW, xb, t);
        for (int oc = 0; oc < m->OC; oc++)
            for (int i = 0; i < HW; i++) y[(size_t)oc * HW + i] = m->b[oc];
        sn_gemm(0, 0, m->OC, HW, CKK, 1.0f, m->w, CKK, col, HW, 1.0f, y, HW);
        break;
    case PLAN_WIDE:
        sn_im2col_wide(col, xb, m->C, m->H, m->W, m->K, m->OH);
        sn_gemm(0, 0, m->OC, NW, CKK, 1.0f, m->w, CKK, col, NW, 0.0f, yw, NW);
        narrow(m, y, yw);
        break;
    case PLAN_SHIFTED:
        for (int k = 0; k < KK; k++)
            sn_gemm(0, 0, m->OC, N, m->C, 1.0f, m->wk + (size_t)k * m->OC * m->C, m->C,
                    xb + (k / m->K) * m->W + k % m->K, plane, k ? 1.0f : 0.0f, yw, NW);
        narrow(m, y, yw);
        break;
    }
}

/* x (B,C,H,W) -> y (B,OC,OH,OW) */
static int conv2d_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    conv2d_t *m = (conv2d_t *)l;
    if (m->plan == PLAN_WINOGRAD) {
        wino_run(m, l->output, x, B, 0);
        return SN_OK;
    }
    if (m->plan == PLAN_BATCHED) {
        batched_forward(m, x, B);
        return SN_OK;
    }
    int KK = m->K * m->K;
    if (m->plan == PLAN_SHIFTED)   /* regroup W (OC, C, K, K) as (K*K, OC, C) */
        for (int k = 0; k < KK; k++)
            for (int oc = 0; oc < m->OC; oc++)
                for (int c = 0; c < m->C; c++)
                    m->wk[((size_t)k * m->OC + oc) * m->C + c] = m->w[((size_t)oc * m->C + c) * KK + k];
    /* one sample: no team of one, so that its GEMMs share their tiles among the threads */
    if (B == 1) {
        forward_sample(m, x, 0, 0);
        return SN_OK;
    }
    #pragma omp parallel for schedule(static) num_threads(team_size(m, B))
    for (int b = 0; b < B; b++) forward_sample(m, x, b, omp_get_thread_num());
    return SN_OK;
}

/* Sample b of the per-sample plans' backward: its weight and bias gradient partials, and dx,
 * on thread t's scratch. */
static void backward_sample(conv2d_t *m, const float *x, const float *dy, int b, int t)
{
    sn_layer_t *l = &m->base;
    int HW = m->OH * m->OW, CKK = m->C * m->K * m->K, nw = m->OC * CKK, NW = m->NW, KK = m->K * m->K;
    int N = (m->OH - 1) * m->W + m->OW, plane = m->H * m->W;
    const float *g = dy + (size_t)b * l->out_size, *xb = x + (size_t)b * l->in_size;
    float *part = m->dw_part + (size_t)b * (nw + m->OC);
    float *dx = l->need_grad_input ? l->grad_input + (size_t)b * l->in_size : NULL;
    float *col = m->col ? m->col + (size_t)t * CKK * NW : NULL;
    float *gw = m->ywide ? m->ywide + (size_t)t * m->OC * NW : NULL;
    for (int oc = 0; !m->own_b && oc < m->OC; oc++) part[nw + oc] = row_sum(g + (size_t)oc * HW, HW);
    if (dx && m->plan != PLAN_IM2COL) memset(dx, 0, l->in_size * sizeof(float));
    switch (m->plan) {
    case PLAN_IM2COL: {   /* partial weight gradient laid out (C*K*K, OC): col g^T */
        float *pk = m->pk + (size_t)t * m->pk_n;
        unfold(m, col, HW, xb, t);
        sn_gemm_pack_b(pk, 1, m->OC, HW, g, HW);
        sn_gemm_packed(CKK, m->OC, HW, col, HW, pk, 0.0f, part, m->OC);
        if (!dx) break;
        sn_gemm_pack_b(pk, 0, HW, m->OC, g, HW);   /* dcol = W^T g */
        sn_gemm_packed(CKK, HW, m->OC, m->wt, m->OC, pk, 0.0f, col, HW);
        fold(m, dx, col, HW, t);
        break;
    }
    case PLAN_WIDE:
        widen(m, gw, g);
        sn_im2col_wide(col, xb, m->C, m->H, m->W, m->K, m->OH);
        sn_gemm(0, 1, m->OC, CKK, NW, 1.0f, gw, NW, col, NW, 0.0f, part, CKK);
        if (!dx) break;
        sn_gemm(1, 0, CKK, NW, m->OC, 1.0f, m->w, CKK, gw, NW, 0.0f, col, NW);
        sn_col2im_wide(dx, col, m->C, m->H, m->W, m->K, m->OH);
        break;
    case PLAN_SHIFTED:   /* partial weight gradient laid out (K*K, OC, C) */
        widen(m, gw, g);
        for (int k = 0; k < KK; k++) {
            const float *xs = xb + (k / m->K) * m->W + k % m->K;
            sn_gemm(0, 1, m->OC, m->C, N, 1.0f, gw, NW, xs, plane, 0.0f, part + (size_t)k * m->OC * m->C, m->C);
            if (dx)   /* junk columns of gw are zero: they add nothing */
                sn_gemm(1, 0, m->C, N, m->OC, 1.0f, m->wk + (size_t)k * m->OC * m->C, m->C, gw, NW, 1.0f,
                        dx + (xs - xb), plane);
        }
        break;
    }
}

/* dy (B,OC,OH,OW) -> dx (B,C,H,W); dW += sum_b dW_b; db += sum dy */
static int conv2d_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx;
    conv2d_t *m = (conv2d_t *)l;
    if (m->forward_only)
        return SN_FAIL(SN_EINVAL, "Conv2d '%s' was built forward-only (frozen parameters): no backward", l->name);
    int CKK = m->C * m->K * m->K, nw = m->OC * CKK, KK = m->K * m->K;
    if (m->own_b) memset(m->db, 0, (size_t)m->OC * sizeof(float));   /* scratch: nobody reads it */
    if (m->plan == PLAN_BATCHED) {
        batched_backward(m, x, dy, B);
        return SN_OK;
    }
    if (m->plan == PLAN_WINOGRAD) {
        winograd_backward(m, x, dy, B);
        return SN_OK;
    }
    if (m->plan == PLAN_IM2COL && l->need_grad_input)
        for (int oc = 0; oc < m->OC; oc++)
            for (int k = 0; k < CKK; k++) m->wt[(size_t)k * m->OC + oc] = m->w[(size_t)oc * CKK + k];
    if (B == 1) backward_sample(m, x, dy, 0, 0);   /* as in forward */
    else {
        #pragma omp parallel for schedule(static) num_threads(team_size(m, B))
        for (int b = 0; b < B; b++) backward_sample(m, x, dy, b, omp_get_thread_num());
    }
    /* sum the per-sample partials in sample order, in parallel over blocks of weights (a
     * block's running sums walk the samples together: contiguous and vectorised); without
     * a bias nobody reads the bias gradient */
    int nk = nw + (m->own_b ? 0 : m->OC), nblk = (nk + 255) / 256;
    #pragma omp parallel for schedule(static) if (nw > 4096)
    for (int kb = 0; kb < nblk; kb++) {
        int k0 = kb * 256, kn = nk - k0 < 256 ? nk - k0 : 256;
        float s[256];
        memcpy(s, m->dw_part + k0, (size_t)kn * sizeof(float));
        for (int b = 1; b < B; b++) {
            const float *pb = m->dw_part + (size_t)b * (nw + m->OC) + k0;
            for (int j = 0; j < kn; j++) s[j] += pb[j];
        }
        for (int j = 0; j < kn; j++) {
            int k = k0 + j;
            if (k >= nw) m->db[k - nw] += s[j];
            else if (m->plan == PLAN_IM2COL) m->dw[(size_t)(k % m->OC) * CKK + k / m->OC] += s[j];   /* (CKK, OC) */
            else if (m->plan != PLAN_SHIFTED) m->dw[k] += s[j];
            else {   /* (K*K, OC, C) -> (OC, C, K, K) */
                int off = k / (m->OC * m->C), rest = k % (m->OC * m->C);
                m->dw[(size_t)rest * KK + off] += s[j];
            }
        }
    }
    return SN_OK;
}

/* PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b, fan_in = C*K*K.
 * SN_CONV_KAIMING_OUT: W ~ N(0, 2 / fan_out), fan_out = OC*K*K (Box-Muller on two uniforms). */
static void conv2d_reset(sn_layer_t *l, uint64_t seed)
{
    conv2d_t *m = (conv2d_t *)l;
    size_t fan_in = (size_t)m->C * m->K * m->K, nw = (size_t)m->OC * fan_in;
    float bound = 1.0f / sqrtf((float)fan_in);
    if (m->flags & SN_CONV_KAIMING_OUT) {
        double std = sqrt(2.0 / ((double)m->OC * m->K * m->K));
        for (size_t i = 0; i < nw; i++) {
            double u1 = 1.0 - (double)sn_rng_uniform(seed, SN_RNG_INIT, l->id, 2, i);   /* (0, 1] */
            double u2 = sn_rng_uniform(seed, SN_RNG_INIT, l->id, 3, i);
            m->w[i] = (float)(std * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
        }
    } else {
        for (size_t i = 0; i < nw; i++)
            m->w[i] = bound * (2.0f * sn_rng_uniform(seed, SN_RNG_INIT, l->id, 0, i) - 1.0f);
    }
    for (int o = 0; o < m->OC; o++)
        m->b[o] = (m->flags & SN_CONV_NO_BIAS) ? 0.0f
                  : bound * (2.0f * sn_rng_uniform(seed, SN_RNG_INIT, l->id, 1, (uint64_t)o) - 1.0f);
}

static void conv2d_destroy(sn_layer_t *l)
{
    conv2d_t *m = (conv2d_t *)l;
    sn_free(m->wk);
    sn_free(m->col);
    sn_free(m->pk);
    sn_free(m->wt);
    sn_free(m->phase);
    sn_free(m->ywide);
    sn_free(m->dw_part);
    sn_free(m->colb);
    sn_free(m->yb);
    sn_free(m->own_b);
    sn_free(m->wu);
    sn_free(m->wscr);
    sn_free(m->wpart);
}

static const sn_layer_ops_t conv2d_ops = {"Conv2d", conv2d_forward, conv2d_backward, conv2d_reset, conv2d_destroy};

sn_layer_t *sn_conv2d_new_opts(sn_params_t *params, const char *name, int C, int H, int W,
                               int OC, int K, int stride, int pad, unsigned flags, int max_batch)
{
    conv2d_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "Conv2d: out of memory"); return NULL; }
    m->base.ops = &conv2d_ops;
    m->flags = flags;
    if (flags & ~(unsigned)(SN_CONV_NO_BIAS | SN_CONV_KAIMING_OUT | SN_CONV_BATCHED | SN_CONV_WINOGRAD)) {
        SN_FAIL(SN_EINVAL, "Conv2d '%s': unknown option bits 0x%x", name, flags);
        goto fail;
    }
    if (C < 1 || OC < 1 || K < 1 || stride < 1 || pad < 0 || H + 2 * pad < K || W + 2 * pad < K) {
        SN_FAIL(SN_EINVAL, "Conv2d '%s': bad geometry C=%d H=%d W=%d OC=%d K=%d stride=%d pad=%d",
                name, C, H, W, OC, K, stride, pad);
        goto fail;
    }
    m->C = C; m->H = H; m->W = W; m->OC = OC; m->K = K; m->S = stride; m->P = pad;
    m->OH = (H + 2 * pad - K) / stride + 1;
    m->OW = (W + 2 * pad - K) / stride + 1;
    m->forward_only = params->frozen;   /* a frozen encoder's: no gradient buffers */
    if (sn_layer_setup(&m->base, &conv2d_ops, name, max_batch, 3, (int[]){C, H, W},
                       3, (int[]){OC, m->OH, m->OW}, 1, !m->forward_only)) goto fail;
    /* one buffer per thread that may run (the team is capped at m->threads) */
    m->threads = omp_get_max_threads() > omp_get_num_procs() ? omp_get_max_threads() : omp_get_num_procs();
    int unpadded = stride == 1 && pad == 0 && K > 1;
    m->plan = !unpadded ? PLAN_IM2COL : (C >= SHIFT_MIN_C ? PLAN_SHIFTED : PLAN_WIDE);
    if ((flags & SN_CONV_BATCHED) && m->plan == PLAN_IM2COL && m->OH * m->OW < OC) m->plan = PLAN_BATCHED;
    m->NW = m->plan == PLAN_IM2COL || m->plan == PLAN_BATCHED ? m->OH * m->OW : m->OH * W;
    size_t ckk = (size_t)C * K * K;
    if ((flags & SN_CONV_WINOGRAD) && K == 3 && stride == 1 && pad == 1) {
        m->plan = PLAN_WINOGRAD;
        if (!(m->wu = sn_alloc(sn_winograd_weights_floats(C, OC) * sizeof(float), "Conv2d Winograd weights")) ||
            !(m->wscr = sn_alloc((size_t)m->threads * sn_winograd_scratch_floats(C, OC) * sizeof(float),
                                 "Conv2d Winograd tiles")))
            goto fail;
        if (!m->forward_only &&
            !(m->wpart = sn_alloc(sn_winograd_wgrad_floats(C, OC) * sizeof(float),
                                  "Conv2d Winograd weight-gradient sums")))
            goto fail;
    }
    if ((m->plan == PLAN_IM2COL || m->plan == PLAN_BATCHED) && sn_im2col_flat_ok(H, W, K, stride, pad)) {
        m->flat = 1;
        m->phase_n = sn_im2col_flat_floats(C, H, W, stride);
        if (m->phase_n && !(m->phase = sn_alloc((size_t)m->threads * m->phase_n * sizeof(float), "Conv2d input phases")))
            goto fail;
    }
    if (m->plan == PLAN_BATCHED) {   /* columns B*HW*CKK < weights B*OC*CKK: less than the partials */
        size_t nb = (size_t)max_batch * m->OH * m->OW;
        if (!(m->colb = sn_alloc(ckk * nb * sizeof(float), "Conv2d batch columns"))) goto fail;
        if (!(m->yb = sn_alloc((size_t)OC * nb * sizeof(float), "Conv2d output by channel"))) goto fail;
    }
    if (m->plan != PLAN_SHIFTED && m->plan != PLAN_BATCHED && m->plan != PLAN_WINOGRAD &&
        !(m->col = sn_alloc((size_t)m->threads * ckk * m->NW * sizeof(float), "Conv2d columns"))) goto fail;
    if (m->plan == PLAN_IM2COL && !m->forward_only) {   /* backward: g^T and g packed, W^T */
        int hw = m->OH * m->OW;
        size_t bt = sn_gemm_packed_floats(OC, hw), bn = sn_gemm_packed_floats(hw, OC);
        m->pk_n = bt > bn ? bt : bn;
        if (!(m->pk = sn_alloc((size_t)m->threads * m->pk_n * sizeof(float), "Conv2d packed gradients"))) goto fail;
        if (!(m->wt = sn_alloc((size_t)OC * ckk * sizeof(float), "Conv2d transposed weights"))) goto fail;
    }
    if ((m->plan == PLAN_WIDE || m->plan == PLAN_SHIFTED) &&
        !(m->ywide = sn_alloc((size_t)m->threads * OC * m->NW * sizeof(float), "Conv2d wide output"))) goto fail;
    if (m->plan == PLAN_SHIFTED && !(m->wk = sn_alloc((size_t)OC * ckk * sizeof(float), "Conv2d weights by offset")))
        goto fail;
    if (m->plan != PLAN_BATCHED && m->plan != PLAN_WINOGRAD && !m->forward_only &&
        !(m->dw_part = sn_alloc((size_t)max_batch * (OC * ckk + OC) * sizeof(float), "Conv2d partial gradients")))
        goto fail;
    char pn[SN_PARAM_NAME_MAX];
    sn_layer_param_name(pn, sizeof pn, &m->base, "weight");
    if (sn_params_add(params, pn, 4, (int[]){OC, C, K, K}, &m->w, &m->dw)) goto fail;
    if (flags & SN_CONV_NO_BIAS) {
        if (!(m->own_b = sn_alloc((size_t)2 * OC * sizeof(float), "Conv2d zero bias"))) goto fail;
        m->b = m->own_b;
        m->db = m->own_b + OC;
        return &m->base;
    }
    sn_layer_param_name(pn, sizeof pn, &m->base, "bias");
    if (sn_params_add(params, pn, 1, &OC, &m->b, &m->db)) goto fail;
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}

sn_layer_t *sn_conv2d_new(sn_params_t *params, const char *name, int C, int H, int W,
                          int OC, int K, int stride, int pad, int max_batch)
{
    return sn_conv2d_new_opts(params, name, C, H, W, OC, K, stride, pad, 0, max_batch);
}
