/*
 * layer.c: the generic half of the layer protocol: argument checks, dispatch, the
 * common set-up of a layer's shape and buffers. Knows nothing of specific layers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/layer.h"

int sn_layer_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    if (B < 1 || B > l->max_batch)
        return SN_FAIL(SN_EINVAL, "%s '%s': batch %d outside 1..%d", l->ops->kind, l->name, B, l->max_batch);
    return l->ops->forward(l, ctx, x, B);
}

int sn_layer_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    if (B < 1 || B > l->max_batch)
        return SN_FAIL(SN_EINVAL, "%s '%s': batch %d outside 1..%d", l->ops->kind, l->name, B, l->max_batch);
    return l->ops->backward(l, ctx, x, dy, B);
}

void sn_layer_reset(sn_layer_t *l, uint64_t seed)
{
    if (l->ops->reset) l->ops->reset(l, seed);
}

void sn_layer_free(sn_layer_t *l)
{
    if (!l) return;
    if (l->ops && l->ops->destroy) l->ops->destroy(l);
    sn_layer_release(l);
    free(l);
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

int sn_layer_setup(sn_layer_t *l, const sn_layer_ops_t *ops, const char *name, int max_batch,
                   int in_ndim, const int *in_shape, int out_ndim, const int *out_shape,
                   int alloc_output, int alloc_grad_input)
{
    l->ops = ops;
    snprintf(l->name, sizeof l->name, "%s", name ? name : ops->kind);
    l->id = name_hash(l->name);
    if (max_batch < 1) return SN_FAIL(SN_EINVAL, "%s '%s': max_batch %d < 1", ops->kind, l->name, max_batch);
    if (in_ndim < 1 || in_ndim > SN_MAX_DIMS || out_ndim < 1 || out_ndim > SN_MAX_DIMS)
        return SN_FAIL(SN_EINVAL, "%s '%s': bad number of dimensions", ops->kind, l->name);
    l->max_batch = max_batch;
    l->need_grad_input = 1;
    l->in_ndim = in_ndim;
    l->out_ndim = out_ndim;
    l->in_size = l->out_size = 1;
    for (int d = 0; d < in_ndim; d++) {
        if (in_shape[d] < 1) return SN_FAIL(SN_EINVAL, "%s '%s': input dimension %d is %d", ops->kind, l->name, d, in_shape[d]);
        l->in_shape[d] = in_shape[d];
        l->in_size *= (size_t)in_shape[d];
    }
    for (int d = 0; d < out_ndim; d++) {
        if (out_shape[d] < 1) return SN_FAIL(SN_EINVAL, "%s '%s': output dimension %d is %d", ops->kind, l->name, d, out_shape[d]);
        l->out_shape[d] = out_shape[d];
        l->out_size *= (size_t)out_shape[d];
    }
    if (alloc_output && !(l->output = sn_alloc((size_t)max_batch * l->out_size * sizeof(float), l->name)))
        return SN_ENOMEM;
    if (alloc_grad_input && !(l->grad_input = sn_alloc((size_t)max_batch * l->in_size * sizeof(float), l->name)))
        return SN_ENOMEM;
    l->owns_output = alloc_output;
    l->owns_grad_input = alloc_grad_input;
    return SN_OK;
}

void sn_layer_release(sn_layer_t *l)
{
    if (l->owns_output) sn_free(l->output);
    if (l->owns_grad_input) sn_free(l->grad_input);
    l->output = l->grad_input = NULL;
    l->owns_output = l->owns_grad_input = 0;
}

void sn_layer_param_name(char *out, size_t n, const sn_layer_t *l, const char *suffix)
{
    snprintf(out, n, "%s.%s", l->name, suffix);
}
