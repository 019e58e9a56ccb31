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

/* Largest errors seen for one quantity of one layer (e.g. "dx" of Linear). */
typedef struct err_stat {
    const char *what;
    double      max_abs;     /* max |got - ref| against PyTorch's float32 result */
    double      max_abs64;   /* max |got - exact| against the float64 result (check_exact) */
    double      max_ratio;   /* max |got - ref| / limit of the pass/fail comparison; <= 1 passes */
} err_stat_t;
#define ERR_STAT(name) {.what = (name)}

/* np.allclose(got, ref, rtol, atol) element by element: |got - ref| <= atol + rtol |ref|.
 * Updates s; on the first failing element prints "<label> <s->what>[i]: got .. ref .."
 * and returns 0. NaN anywhere fails. */
int allclose(err_stat_t *s, const char *label, const float *got, const float *ref, size_t n,
             double atol, double rtol);

/* u = 2^-24, the unit roundoff of float32, and gamma_n = n u / (1 - n u): the bound
 * |fl(sum) - sum| <= gamma_n sum|terms| of a float32 sum or dot product whose terms each
 * go through at most n roundings (Higham, Accuracy and Stability of Numerical Algorithms,
 * 2nd ed., eq. (3.5) and sec. 4.2). It holds for every summation order and blocking, with
 * or without fused multiply-add, which is what makes it independent of the BLAS kernels. */
#define U32 0x1p-24
double gamma32(int n);

/* got against the exact (float64) value e[i] = ref32[i] + d[i] of a fixture quantity
 * (ref32: PyTorch's float32 result; d: the float64 correction, see gen_fixtures.py):
 *     |got - e| <= atol + rtol |e| + gamma32(nterms) mag[i]
 * with mag the magnitude (sum of |terms|) of the value; mag NULL or nterms 0 leaves that
 * term out. Records in s both max |got - e| and max |got - ref32| (reported, not tested:
 * it depends on the float32 summation order of both sides). On the first failing element
 * prints label, element, values and limit, and returns 0. NaN anywhere fails. */
int check_exact(err_stat_t *s, const char *label, const float *got, const float *ref32, const float *d,
                const float *mag, int nterms, size_t n, double atol, double rtol);

/* Prints "<kind> <layer> n=<trials> max|err| vs f32 torch:  y 1.2e-07  dx ..." and, when
 * any stat has float64 comparisons, a second line "... vs f64: ..." with the largest
 * ratio error / limit. */
void print_errors(const char *kind, const char *layer, int trials, const err_stat_t *s, int ns);

/* For the ctest entries that run a test under OPENBLAS_CORETYPE=SkylakeX (AVX-512
 * kernels): prints the BLAS kernel family in use and returns 1, after printing why, when
 * that family was asked for but this CPU lacks AVX-512, so the program must skip its
 * tests (OpenBLAS would die on an illegal instruction). Call before any GEMM. */
int blas_core_unavailable(void);

/* What a test program's main does when blas_core_unavailable(): runs one cmocka test that
 * skips, and returns 77 (ctest SKIP_RETURN_CODE). */
int run_skipped_group(void);

#endif
