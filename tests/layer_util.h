/*
 * layer_util.h: helpers shared by the layer-library tests (parity, gradient checks,
 * thread invariance, benchmark): parameter look-up by name, deterministic random fills,
 * and an np.allclose-style comparison that remembers the largest error it saw.
 *
 * These helpers only read and compare; they must not hide a failure: every comparison
 * returns 0 on a mismatch after printing which element differed and by how much.
 */
#ifndef SHARDNET_TEST_LAYER_UTIL_H
#define SHARDNET_TEST_LAYER_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include "shardnet/params.h"

/* The value / gradient tensor registered as `name`; aborts the test run if absent. */
float *param_value(const sn_params_t *p, const char *name);
float *param_grad(const sn_params_t *p, const char *name);

/* x[i] = uniform in [lo, hi), keyed by (key, i): the same on every run and thread count. */
void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t key);

/* Largest error seen for one quantity of one layer (e.g. "dx" of Linear). */
typedef struct err_stat {
    const char *what;
    double      max_abs;     /* max |got - ref| */
    double      max_ratio;   /* max |got - ref| / (atol + rtol |ref|); <= 1 passes */
} err_stat_t;

/* np.allclose(got, ref, rtol, atol) element by element: |got - ref| <= atol + rtol |ref|.
 * Updates s; on the first failing element prints "<label> <s->what>[i]: got .. ref .."
 * and returns 0. NaN anywhere fails. */
int allclose(err_stat_t *s, const char *label, const float *got, const float *ref, size_t n,
             double atol, double rtol);

/* The same with a limit per element: |got[i] - ref[i]| <= lim[i]. */
int allclose_lim(err_stat_t *s, const char *label, const float *got, const float *ref, size_t n,
                 const double *lim);

/* Prints one line "parity <layer> n=<trials>  y 1.2e-07  dx ..." with the max abs errors. */
void print_errors(const char *kind, const char *layer, int trials, const err_stat_t *s, int ns);

#endif
