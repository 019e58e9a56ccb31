/*
 * residual.c: the residual Add, y = body(x) + shortcut(x), as a container layer, so a
 * ResNet block is Sequential(Residual(body, shortcut), ReLU). shortcut NULL is the
 * identity; otherwise it is a layer of its own (1x1 conv + batch norm to change the
 * shape). The container owns both layers and frees them.
 * Must not: allocate in forward/backward; keep state beyond its children's.
 */
#include <stdlib.h>
#include "shardnet/sequence.h"

typedef struct {
    sn_layer_t  base;
    sn_layer_t *body, *shortcut;   /* shortcut may be NULL: identity */
} residual_t;

/* x (B, in) -> y (B, out) */
static int residual_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    residual_t *m = (residual_t *)l;
    SN_TRY(sn_layer_forward(m->body, ctx, x, B));
    const float *s = x;
    if (m->shortcut) {
        SN_TRY(sn_layer_forward(m->shortcut, ctx, x, B));
        s = m->shortcut->output;
    }
    size_t n = (size_t)B * l->out_size;
    const float *a = m->body->output;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) l->output[i] = a[i] + s[i];
    return SN_OK;
}

/* dy (B, out) -> dx (B, in) = body'(dy) + shortcut'(dy) */
static int residual_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    residual_t *m = (residual_t *)l;
    m->body->need_grad_input = l->need_grad_input;
    SN_TRY(sn_layer_backward(m->body, ctx, x, dy, B));
    const float *s = dy;
    if (m->shortcut) {
        m->shortcut->need_grad_input = l->need_grad_input;
        SN_TRY(sn_layer_backward(m->shortcut, ctx, x, dy, B));
        s = m->shortcut->grad_input;
    }
    if (!l->need_grad_input) return SN_OK;
    size_t n = (size_t)B * l->in_size;
    const float *a = m->body->grad_input;
    #pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) l->grad_input[i] = a[i] + s[i];
    return SN_OK;
}

static void residual_reset(sn_layer_t *l, uint64_t seed)
{
    residual_t *m = (residual_t *)l;
    sn_layer_reset(m->body, seed);
    if (m->shortcut) sn_layer_reset(m->shortcut, seed);
}

static void residual_destroy(sn_layer_t *l)
{
    residual_t *m = (residual_t *)l;
    sn_layer_free(m->body);
    sn_layer_free(m->shortcut);
}

static const sn_layer_ops_t residual_ops = {"Residual", residual_forward, residual_backward, residual_reset,
                                            residual_destroy};

sn_layer_t *sn_residual_new(const char *name, sn_layer_t *body, sn_layer_t *shortcut, int max_batch)
{
    residual_t *m = calloc(1, sizeof *m);
    if (!m) {
        SN_FAIL(SN_ENOMEM, "Residual: out of memory");
        sn_layer_free(body);
        sn_layer_free(shortcut);
        return NULL;
    }
    m->body = body;
    m->shortcut = shortcut;
    if (!body) { SN_FAIL(SN_EINVAL, "Residual '%s': the body failed to build", name ? name : "Residual"); goto fail; }
    size_t s_out = shortcut ? shortcut->out_size : body->in_size;
    if ((shortcut && shortcut->in_size != body->in_size) || s_out != body->out_size) {
        SN_FAIL(SN_EINVAL, "Residual '%s': body maps %zu -> %zu floats, shortcut %zu -> %zu", name ? name : "Residual",
                body->in_size, body->out_size, shortcut ? shortcut->in_size : body->in_size, s_out);
        goto fail;
    }
    if (body->max_batch < max_batch || (shortcut && shortcut->max_batch < max_batch)) {
        SN_FAIL(SN_EINVAL, "Residual '%s': children hold smaller batches than %d", name ? name : "Residual", max_batch);
        goto fail;
    }
    if (sn_layer_setup(&m->base, &residual_ops, name, max_batch, body->in_ndim, body->in_shape, body->out_ndim,
                       body->out_shape, 1, 1))
        goto fail;
    return &m->base;
fail:
    if (!m->base.ops) m->base.ops = &residual_ops;
    sn_layer_free(&m->base);
    return NULL;
}
