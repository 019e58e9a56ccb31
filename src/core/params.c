/*
 * params.c: the parameter registry and its two arenas (values, gradients).
 * Trainable tensors are laid out first, buffers without gradients (batch-norm moving
 * statistics) after them, so the allreduce and the optimizer see one contiguous prefix.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/error.h"
#include "shardnet/params.h"

void sn_params_init(sn_params_t *p) { memset(p, 0, sizeof *p); }

int sn_params_add(sn_params_t *p, const char *name, int ndim, const int *shape, float **value, float **grad)
{
    if (p->values)
        return SN_FAIL(SN_EINVAL, "parameter '%s' added after the arenas were allocated", name);
    if (ndim < 1 || ndim > SN_PARAM_MAX_DIMS)
        return SN_FAIL(SN_EINVAL, "parameter '%s': %d dimensions (1..%d allowed)", name, ndim, SN_PARAM_MAX_DIMS);
    if (sn_params_find(p, name))
        return SN_FAIL(SN_EINVAL, "parameter '%s' registered twice", name);
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        sn_param_spec_t *s = realloc(p->specs, (size_t)cap * sizeof *s);
        if (!s) return SN_FAIL(SN_ENOMEM, "cannot grow the parameter registry");
        p->specs = s;
        p->cap = cap;
    }
    sn_param_spec_t *s = &p->specs[p->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ndim = ndim;
    s->count = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] <= 0) return SN_FAIL(SN_EINVAL, "parameter '%s': dimension %d is %d", name, d, shape[d]);
        s->shape[d] = shape[d];
        s->count *= (size_t)shape[d];
    }
    s->value = value;
    s->grad = grad;
    s->trainable = grad != NULL && !p->frozen;
    return SN_OK;
}

int sn_params_alloc(sn_params_t *p)
{
    size_t off = 0;
    for (int pass = 1; pass >= 0; pass--) {    /* trainable first, then buffers */
        for (int i = 0; i < p->n; i++)
            if (p->specs[i].trainable == pass) {
                p->specs[i].offset = off;
                /* 16-float alignment keeps every tensor on its own cache line */
                off += (p->specs[i].count + 15) / 16 * 16;
            }
        if (pass) {
            p->trainable_total = off;
            off += SN_PARAMS_SIDE_SLOTS;       /* travel with the gradients, see params.h */
        }
    }
    p->total = off;
    p->values = sn_alloc(off * sizeof(float), "the parameter arena");
    p->grads = sn_alloc(off * sizeof(float), "the gradient arena");
    if (!p->values || !p->grads) return SN_ENOMEM;
    for (int i = 0; i < p->n; i++) {
        sn_param_spec_t *s = &p->specs[i];
        *s->value = p->values + s->offset;
        if (s->grad) *s->grad = p->grads + s->offset;
    }
    return SN_OK;
}

/* Only the trainable prefix and the side slots: nothing writes the buffers' part (their
 * gradient pointers are NULL, or those of frozen tensors, whose layers are forward-only). */
void sn_params_zero_grad(sn_params_t *p)
{
    if (p->grads) memset(p->grads, 0, (p->trainable_total + SN_PARAMS_SIDE_SLOTS) * sizeof(float));
}

void sn_params_free(sn_params_t *p)
{
    sn_free(p->values);
    sn_free(p->grads);
    free(p->specs);
    memset(p, 0, sizeof *p);
}

uint64_t sn_params_hash(const sn_params_t *p)
{
    uint64_t h = 1469598103934665603ULL;
    const unsigned char *b = (const unsigned char *)p->values;
    for (size_t i = 0; i < p->total * sizeof(float); i++) {
        h ^= b[i];
        h *= 1099511628211ULL;
    }
    return h;
}

const sn_param_spec_t *sn_params_find(const sn_params_t *p, const char *name)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->specs[i].name, name) == 0) return &p->specs[i];
    return NULL;
}

size_t sn_params_count(const sn_params_t *p)
{
    size_t n = 0;
    for (int i = 0; i < p->n; i++)
        if (p->specs[i].trainable) n += p->specs[i].count;
    return n;
}
