/*
 * sequential.c: a container of layers that is itself a layer. Child i reads child
 * i-1's output; backward runs in reverse and hands each child the next one's
 * grad_input. The container's output/grad_input are its ends' buffers (no copies).
 */
#include <stdlib.h>
#include "shardnet/layers.h"

typedef struct {
    sn_layer_t   base;
    sn_layer_t **children;
    int          n, cap;
} sequential_t;

static int sequential_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    sequential_t *s = (sequential_t *)l;
    if (s->n == 0) return SN_FAIL(SN_EINVAL, "Sequential '%s' has no layers", l->name);
    const float *in = x;
    for (int i = 0; i < s->n; i++) {
        SN_TRY(sn_layer_forward(s->children[i], ctx, in, B));
        in = s->children[i]->output;
    }
    l->output = s->children[s->n - 1]->output;
    return SN_OK;
}

static int sequential_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    sequential_t *s = (sequential_t *)l;
    s->children[0]->need_grad_input = l->need_grad_input;
    const float *g = dy;
    for (int i = s->n - 1; i >= 0; i--) {
        const float *in = i > 0 ? s->children[i - 1]->output : x;
        SN_TRY(sn_layer_backward(s->children[i], ctx, in, g, B));
        g = s->children[i]->grad_input;
    }
    l->grad_input = s->children[0]->grad_input;
    return SN_OK;
}

static void sequential_reset(sn_layer_t *l, uint64_t seed)
{
    sequential_t *s = (sequential_t *)l;
    for (int i = 0; i < s->n; i++) sn_layer_reset(s->children[i], seed);
}

static void sequential_destroy(sn_layer_t *l)
{
    sequential_t *s = (sequential_t *)l;
    for (int i = 0; i < s->n; i++) sn_layer_free(s->children[i]);
    free(s->children);
}

static const sn_layer_ops_t sequential_ops = {"Sequential", sequential_forward, sequential_backward,
                                              sequential_reset, sequential_destroy};

sn_layer_t *sn_sequential_new(const char *name, int max_batch)
{
    sequential_t *s = calloc(1, sizeof *s);
    if (!s) { SN_FAIL(SN_ENOMEM, "Sequential: out of memory"); return NULL; }
    int one = 1;
    if (sn_layer_setup(&s->base, &sequential_ops, name, max_batch, 1, &one, 1, &one, 0, 0)) {
        sn_layer_free(&s->base);
        return NULL;
    }
    return &s->base;
}

int sn_sequential_add(sn_layer_t *l, sn_layer_t *child)
{
    sequential_t *s = (sequential_t *)l;
    if (!child) return SN_FAIL(SN_EINVAL, "Sequential '%s': cannot add a layer that failed to build", l->name);
    if (child->max_batch < l->max_batch) {
        sn_layer_free(child);
        return SN_FAIL(SN_EINVAL, "Sequential '%s': layer '%s' holds batches of %d, the container %d",
                       l->name, child->name, child->max_batch, l->max_batch);
    }
    if (s->n > 0 && s->children[s->n - 1]->out_size != child->in_size) {
        sn_layer_t *prev = s->children[s->n - 1];
        size_t got = child->in_size;
        sn_layer_free(child);
        return SN_FAIL(SN_EINVAL, "Sequential '%s': layer '%s' gives %zu values per sample, the next expects %zu",
                       l->name, prev->name, prev->out_size, got);
    }
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        sn_layer_t **c = realloc(s->children, (size_t)cap * sizeof *c);
        if (!c) {
            sn_layer_free(child);
            return SN_FAIL(SN_ENOMEM, "Sequential: out of memory");
        }
        s->children = c;
        s->cap = cap;
    }
    s->children[s->n++] = child;
    sn_layer_t *first = s->children[0];
    l->in_ndim = first->in_ndim;
    l->in_size = first->in_size;
    for (int d = 0; d < first->in_ndim; d++) l->in_shape[d] = first->in_shape[d];
    l->out_ndim = child->out_ndim;
    l->out_size = child->out_size;
    for (int d = 0; d < child->out_ndim; d++) l->out_shape[d] = child->out_shape[d];
    l->output = child->output;
    l->grad_input = first->grad_input;
    return SN_OK;
}

int sn_sequential_count(const sn_layer_t *l) { return ((const sequential_t *)l)->n; }

sn_layer_t *sn_sequential_get(const sn_layer_t *l, int i)
{
    const sequential_t *s = (const sequential_t *)l;
    return i >= 0 && i < s->n ? s->children[i] : NULL;
}
