/*
 * gradcheck.h: finite-difference gradient checks for layers.
 *
 * The loss is L = sum(y * r) for a fixed random r, so dL/dy = r. Analytic gradients
 * (input and every trainable parameter) are compared with central differences
 * (L(x+h) - L(x-h)) / 2h evaluated in double from float forward passes.
 */
#ifndef SHARDNET_TEST_GRADCHECK_H
#define SHARDNET_TEST_GRADCHECK_H
#include "shardnet/layer.h"
#include "shardnet/params.h"

typedef struct gc_result {
    double max_err_input;   /* max |analytic - numeric| / max(1, |numeric|) */
    double max_err_param;
} gc_result_t;

/* Checks layer l (parameters in p, may be NULL) on input x (B, in_size) with step h.
 * Input elements within `kink` of a non-differentiable point can be skipped by the
 * caller by choosing x away from them. ctx may be NULL (training mode, seed 0). */
gc_result_t gradcheck_layer(sn_layer_t *l, sn_params_t *p, const sn_ctx_t *ctx, float *x, int B, float h);

#endif
