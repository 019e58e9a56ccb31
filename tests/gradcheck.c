/* gradcheck.c: central-difference gradient checks (see gradcheck.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "gradcheck.h"
#include "shardnet/rng.h"

static double loss_of(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B, const float *r)
{
    if (sn_layer_forward(l, ctx, x, B) != 0) abort();
    double s = 0.0;
    for (size_t i = 0; i < (size_t)B * l->out_size; i++) s += (double)l->output[i] * r[i];
    return s;
}

static double rel_err(double a, double n)
{
    return fabs(a - n) / fmax(1.0, fabs(n));
}

gc_result_t gradcheck_layer(sn_layer_t *l, sn_params_t *p, const sn_ctx_t *ctx, float *x, int B, float h)
{
    gc_result_t res = {0.0, 0.0};
    sn_ctx_t train = {.training = 1, .seed = 0, .step = 0};
    if (!ctx) ctx = &train;
    size_t nin = (size_t)B * l->in_size, nout = (size_t)B * l->out_size;
    float *r = malloc(nout * sizeof(float));
    float *dx = malloc(nin * sizeof(float));
    for (size_t i = 0; i < nout; i++) r[i] = 2.0f * sn_rng_uniform(1234, 99, 0, 0, i) - 1.0f;

    if (p) sn_params_zero_grad(p);
    loss_of(l, ctx, x, B, r);
    l->need_grad_input = 1;
    if (sn_layer_backward(l, ctx, x, r, B) != 0) abort();
    memcpy(dx, l->grad_input, nin * sizeof(float));
    float *g = NULL;
    size_t np = p ? p->trainable_total : 0;
    if (np) {
        g = malloc(np * sizeof(float));
        memcpy(g, p->grads, np * sizeof(float));
    }
    for (size_t i = 0; i < nin; i++) {
        float keep = x[i];
        x[i] = keep + h;
        double lp = loss_of(l, ctx, x, B, r);
        x[i] = keep - h;
        double lm = loss_of(l, ctx, x, B, r);
        x[i] = keep;
        double e = rel_err(dx[i], (lp - lm) / (2.0 * h));
        if (e > res.max_err_input) res.max_err_input = e;
    }
    for (int s = 0; p && s < p->n; s++) {
        const sn_param_spec_t *sp = &p->specs[s];
        if (!sp->trainable) continue;
        for (size_t k = 0; k < sp->count; k++) {
            float *w = p->values + sp->offset + k;
            float keep = *w;
            *w = keep + h;
            double lp = loss_of(l, ctx, x, B, r);
            *w = keep - h;
            double lm = loss_of(l, ctx, x, B, r);
            *w = keep;
            double e = rel_err(g[sp->offset + k], (lp - lm) / (2.0 * h));
            if (e > res.max_err_param) res.max_err_param = e;
        }
    }
    /* leave the layer in the state of the unperturbed input */
    loss_of(l, ctx, x, B, r);
    free(r);
    free(dx);
    free(g);
    return res;
}
