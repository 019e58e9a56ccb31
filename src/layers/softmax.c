/* softmax.c: row-wise SoftMax and LogSoftMax over (B, n), max-subtracted, sums in double;
 * exps through sn_vexpf (glibc's vector expf), staged in the output row. */
#include <math.h>
#include <stdlib.h>
#include "shardnet/layers.h"
#include "kernels/kernels.h"

typedef struct {
    sn_layer_t base;
    int log;
} softmax_t;

static int softmax_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    softmax_t *m = (softmax_t *)l;
    int n = (int)l->in_size;
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH(8 * (size_t)B * n))
    for (int b = 0; b < B; b++) {
        const float *xr = x + (size_t)b * n;
        float *yr = l->output + (size_t)b * n;
        float mx = xr[0];
        for (int i = 1; i < n; i++) mx = xr[i] > mx ? xr[i] : mx;
        for (int i = 0; i < n; i++) yr[i] = xr[i] - mx;
        sn_vexpf(yr, yr, (size_t)n);
        double sum = 0.0;
        for (int i = 0; i < n; i++) sum += yr[i];
        if (m->log) {
            float lse = (float)log(sum);
            for (int i = 0; i < n; i++) yr[i] = (xr[i] - mx) - lse;
        } else {
            for (int i = 0; i < n; i++) yr[i] = (float)(yr[i] / sum);
        }
    }
    return SN_OK;
}

/* softmax: dx = y * (dy - <dy, y>);  log-softmax: dx = dy - exp(y) * sum(dy) */
static int softmax_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx; (void)x;
    softmax_t *m = (softmax_t *)l;
    if (!l->need_grad_input) return SN_OK;
    int n = (int)l->in_size;
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH(8 * (size_t)B * n))
    for (int b = 0; b < B; b++) {
        const float *yr = l->output + (size_t)b * n, *g = dy + (size_t)b * n;
        float *dx = l->grad_input + (size_t)b * n;
        double s = 0.0;
        if (m->log) {
            for (int i = 0; i < n; i++) s += g[i];
            sn_vexpf(dx, yr, (size_t)n);   /* dx may not alias g: grad_input is the layer's own */
            for (int i = 0; i < n; i++) dx[i] = g[i] - dx[i] * (float)s;
        } else {
            for (int i = 0; i < n; i++) s += (double)g[i] * yr[i];
            for (int i = 0; i < n; i++) dx[i] = yr[i] * (g[i] - (float)s);
        }
    }
    return SN_OK;
}

static const sn_layer_ops_t softmax_ops = {"SoftMax", softmax_forward, softmax_backward, NULL, NULL};
static const sn_layer_ops_t log_softmax_ops = {"LogSoftMax", softmax_forward, softmax_backward, NULL, NULL};

static sn_layer_t *softmax_new(const sn_layer_ops_t *ops, int log, const char *name, int n, int max_batch)
{
    softmax_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "%s: out of memory", ops->kind); return NULL; }
    m->log = log;
    if (sn_layer_setup(&m->base, ops, name, max_batch, 1, &n, 1, &n, 1, 1)) {
        sn_layer_free(&m->base);
        return NULL;
    }
    return &m->base;
}

sn_layer_t *sn_softmax_new(const char *name, int n, int max_batch)
{ return softmax_new(&softmax_ops, 0, name, n, max_batch); }
sn_layer_t *sn_log_softmax_new(const char *name, int n, int max_batch)
{ return softmax_new(&log_softmax_ops, 1, name, n, max_batch); }
