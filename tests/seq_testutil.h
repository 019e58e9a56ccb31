/*
 * seq_testutil.h: helpers shared by the sequence-layer tests: loading PyTorch
 * parameters from a fixture into the arena by name, comparing parameter gradients,
 * and printing the measured error so the test log records it.
 * Must not: hide a failure (every comparison asserts).
 */
#ifndef SHARDNET_TEST_SEQ_TESTUTIL_H
#define SHARDNET_TEST_SEQ_TESTUTIL_H
#include <stdio.h>
#include <string.h>
#include "fixture.h"
#include "shardnet/params.h"

/* The fixture key of an arena name: what follows the first '.' of "layer.param". */
static inline const char *seq_key(const char *param_name, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strncmp(param_name, prefix, n) == 0 && param_name[n] == '.') return param_name + n + 1;
    return NULL;
}

/* Copies fixture tensor <key> into every trainable parameter named "<prefix>.<key>". */
static inline void seq_load_params(sn_params_t *p, const fx_file_t *f, const char *prefix)
{
    for (int i = 0; i < p->n; i++) {
        const sn_param_spec_t *s = &p->specs[i];
        const char *key = seq_key(s->name, prefix);
        if (!key || !s->trainable) continue;
        const fx_tensor_t *t = fx_get(f, key, FX_F32);
        assert_int_equal(t->count, s->count);
        memcpy(p->values + s->offset, t->data, s->count * sizeof(float));
    }
}

/* Largest |grad - fixture "d<key>"| over the trainable parameters under prefix. */
static inline double seq_param_grad_err(const sn_params_t *p, const fx_file_t *f, const char *prefix)
{
    double e = 0.0;
    char dk[SN_PARAM_NAME_MAX + 2];
    for (int i = 0; i < p->n; i++) {
        const sn_param_spec_t *s = &p->specs[i];
        const char *key = seq_key(s->name, prefix);
        if (!key || !s->trainable) continue;
        snprintf(dk, sizeof dk, "d%s", key);
        const fx_tensor_t *t = fx_get(f, dk, FX_F32);
        assert_int_equal(t->count, s->count);
        double d = max_abs_diff(p->grads + s->offset, t->data, s->count);
        if (d > e) e = d;
    }
    return e;
}

#define SEQ_REPORT(what, err) fprintf(stderr, "  %-36s max abs err %.3g\n", (what), (double)(err))

#endif
