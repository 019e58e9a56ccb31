/*
 * activation.c: elementwise activations (ReLU, LeakyReLU, ELU, SoftPlus) with the
 * formulas and edge conventions of PyTorch (ReLU'(0) = 0, Softplus threshold 20).
 */
#include <math.h>
#include <stdlib.h>
#include "shardnet/layers.h"

typedef enum { ACT_RELU, ACT_LEAKY, ACT_ELU, ACT_SOFTPLUS } act_kind_t;

typedef struct {
    sn_layer_t base;
    act_kind_t kind;
    float a;           /* slope (LeakyReLU) or alpha (ELU) */
} act_t;

#define SOFTPLUS_THRESHOLD 20.0f

static int act_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    (void)ctx;
    act_t *m = (act_t *)l;
    float *y = l->output, a = m->a;
    long n = (long)B * (long)l->in_size;
    switch (m->kind) {
    case ACT_RELU:
        #pragma omp parallel for simd schedule(static) if (SN_PARALLEL_WORTH(n))
        for (long i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    case ACT_LEAKY:
        #pragma omp parallel for simd schedule(static) if (SN_PARALLEL_WORTH(n))
        for (long i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : x[i] * a;
        break;
    case ACT_ELU:
        #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH(8 * n))
        for (long i = 0; i < n; i++) y[i] = x[i] > 0.0f ? x[i] : a * expm1f(x[i]);
        break;
    case ACT_SOFTPLUS:
        #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH(8 * n))
        for (long i = 0; i < n; i++) y[i] = x[i] > SOFTPLUS_THRESHOLD ? x[i] : log1pf(expf(x[i]));
        break;
    }
    return SN_OK;
}

static int act_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx;
    act_t *m = (act_t *)l;
    if (!l->need_grad_input) return SN_OK;
    float *dx = l->grad_input, a = m->a;
    long n = (long)B * (long)l->in_size;
    switch (m->kind) {
    case ACT_RELU:
        #pragma omp parallel for simd schedule(static) if (SN_PARALLEL_WORTH(n))
        for (long i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    case ACT_LEAKY:
        #pragma omp parallel for simd schedule(static) if (SN_PARALLEL_WORTH(n))
        for (long i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * a;
        break;
    case ACT_ELU:   /* as PyTorch's elu_backward on the input: a e^x */
        #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH(8 * n))
        for (long i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : dy[i] * a * expf(x[i]);
        break;
    case ACT_SOFTPLUS:   /* sigmoid(x) = e^x / (e^x + 1) */
        #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH(8 * n))
        for (long i = 0; i < n; i++) {
            float z = expf(x[i]);
            dx[i] = x[i] > SOFTPLUS_THRESHOLD ? dy[i] : dy[i] * z / (z + 1.0f);
        }
        break;
    }
    return SN_OK;
}

static const sn_layer_ops_t relu_ops     = {"ReLU", act_forward, act_backward, NULL, NULL};
static const sn_layer_ops_t leaky_ops    = {"LeakyReLU", act_forward, act_backward, NULL, NULL};
static const sn_layer_ops_t elu_ops      = {"ELU", act_forward, act_backward, NULL, NULL};
static const sn_layer_ops_t softplus_ops = {"SoftPlus", act_forward, act_backward, NULL, NULL};

static sn_layer_t *act_new(const sn_layer_ops_t *ops, act_kind_t kind, const char *name, int n, float a, int max_batch)
{
    act_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "%s: out of memory", ops->kind); return NULL; }
    m->kind = kind;
    m->a = a;
    if (sn_layer_setup(&m->base, ops, name, max_batch, 1, &n, 1, &n, 1, 1)) {
        sn_layer_free(&m->base);
        return NULL;
    }
    return &m->base;
}

sn_layer_t *sn_relu_new(const char *name, int n, int max_batch)
{ return act_new(&relu_ops, ACT_RELU, name, n, 0.0f, max_batch); }
sn_layer_t *sn_leaky_relu_new(const char *name, int n, float slope, int max_batch)
{ return act_new(&leaky_ops, ACT_LEAKY, name, n, slope, max_batch); }
sn_layer_t *sn_elu_new(const char *name, int n, float alpha, int max_batch)
{ return act_new(&elu_ops, ACT_ELU, name, n, alpha, max_batch); }
sn_layer_t *sn_softplus_new(const char *name, int n, int max_batch)
{ return act_new(&softplus_ops, ACT_SOFTPLUS, name, n, 0.0f, max_batch); }
