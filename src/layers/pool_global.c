/*
 * pool_global.c: global average pooling, (B, C, H, W) -> (B, C): the mean over each
 * channel's H*W values (PyTorch's AdaptiveAvgPool2d(1) followed by flatten), the last
 * step of a CNN encoder before its Linear. Sums run in double, one (b, c) per iteration.
 * Must not: allocate in forward/backward.
 */
#include <stdlib.h>
#include "shardnet/sequence.h"

typedef struct {
    sn_layer_t base;
    int        C, HW;
} gap_t;

/* x (B, C, HW) -> y (B, C) */
static int gap_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    gap_t *m = (gap_t *)l;
    int HW = m->HW, n = B * m->C;
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * HW;
        double s = 0.0;
        for (int i = 0; i < HW; i++) s += xr[i];
        l->output[r] = (float)(s / HW);
    }
    return SN_OK;
}

/* dy (B, C) -> dx (B, C, HW) = dy / HW */
static int gap_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx; (void)x;
    gap_t *m = (gap_t *)l;
    if (!l->need_grad_input) return SN_OK;
    int HW = m->HW, n = B * m->C;
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < n; r++) {
        float g = dy[r] / (float)HW;
        float *dx = l->grad_input + (size_t)r * HW;
        for (int i = 0; i < HW; i++) dx[i] = g;
    }
    return SN_OK;
}

static const sn_layer_ops_t gap_ops = {"GlobalAvgPool", gap_forward, gap_backward, NULL, NULL};

sn_layer_t *sn_global_avgpool_new(const char *name, int C, int H, int W, int max_batch)
{
    gap_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "GlobalAvgPool: out of memory"); return NULL; }
    m->C = C;
    m->HW = H * W;
    if (sn_layer_setup(&m->base, &gap_ops, name, max_batch, 3, (int[]){C, H, W}, 1, &C, 1, 1)) {
        sn_layer_free(&m->base);
        return NULL;
    }
    return &m->base;
}
