/* layer_util.c: see layer_util.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "kernels/kernels.h"
#include "layer_util.h"
#include "shardnet/rng.h"

static const sn_param_spec_t *find_or_die(const sn_params_t *p, const char *name)
{
    const sn_param_spec_t *s = sn_params_find(p, name);
    if (!s) {
        fprintf(stderr, "test: no parameter named '%s'\n", name);
        exit(2);
    }
    return s;
}

float *param_value(const sn_params_t *p, const char *name)
{
    return p->values + find_or_die(p, name)->offset;
}

float *param_grad(const sn_params_t *p, const char *name)
{
    const sn_param_spec_t *s = find_or_die(p, name);
    if (!s->trainable) {
        fprintf(stderr, "test: parameter '%s' has no gradient\n", name);
        exit(2);
    }
    return p->grads + s->offset;
}

void fill_uniform(float *x, size_t n, float lo, float hi, uint64_t key)
{
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * sn_rng_uniform(key, 77, 0, 0, i);
}

int allclose(err_stat_t *s, const char *label, const float *got, const float *ref, size_t n,
             double atol, double rtol)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double lim = atol + rtol * fabs((double)ref[i]);
        if (!(d <= lim)) {   /* also catches NaN */
            if (!(d <= s->max_abs)) s->max_abs = d;
            fprintf(stderr, "%s %s[%zu]: got %.9g, reference %.9g (|diff| %.3g > %.3g)\n",
                    label, s->what, i, (double)got[i], (double)ref[i], d, lim);
            return 0;
        }
        if (d > s->max_abs) s->max_abs = d;
        if (lim > 0.0 && d / lim > s->max_ratio) s->max_ratio = d / lim;
    }
    return 1;
}

double gamma32(int n) { return n * U32 / (1.0 - n * U32); }

int check_exact(err_stat_t *s, const char *label, const float *got, const float *ref32, const float *d,
                const float *mag, int nterms, size_t n, double atol, double rtol)
{
    const double g = mag && nterms > 0 ? gamma32(nterms) : 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)ref32[i] + (double)d[i];
        double err = fabs((double)got[i] - e), err32 = fabs((double)got[i] - (double)ref32[i]);
        double lim = atol + rtol * fabs(e) + (g > 0.0 ? g * (double)mag[i] : 0.0);
        if (!(err <= lim)) {   /* also catches NaN */
            if (!(err <= s->max_abs64)) s->max_abs64 = err;
            fprintf(stderr,
                    "%s %s[%zu]: got %.9g, exact %.9g (|diff| %.3g > %.3g = %.3g + %.3g |exact| + gamma_%d %.3g);"
                    " PyTorch float32 %.9g\n",
                    label, s->what, i, (double)got[i], e, err, lim, atol, rtol, nterms, mag ? (double)mag[i] : 0.0,
                    (double)ref32[i]);
            return 0;
        }
        if (err > s->max_abs64) s->max_abs64 = err;
        if (err32 > s->max_abs || err32 != err32) s->max_abs = err32;
        if (lim > 0.0 && err / lim > s->max_ratio) s->max_ratio = err / lim;
    }
    return 1;
}

void print_errors(const char *kind, const char *layer, int trials, const err_stat_t *s, int ns)
{
    printf("%s %-30s n=%-3d max|err| vs f32 torch:", kind, layer, trials);
    for (int i = 0; i < ns; i++) printf("  %s %.2e", s[i].what, s[i].max_abs);
    printf("\n");
    printf("%s %-30s n=%-3d max|err| vs f64:      ", kind, layer, trials);
    double r = 0.0;
    for (int i = 0; i < ns; i++) {
        printf("  %s %.2e", s[i].what, s[i].max_abs64);
        if (s[i].max_ratio > r) r = s[i].max_ratio;
    }
    printf("  (worst err/limit %.2f)\n", r);
    fflush(stdout);
}

int blas_core_unavailable(void)
{
    const char *want = getenv("OPENBLAS_CORETYPE");
    if (want && !*want) want = NULL;
    if (want && strcasecmp(want, "SkylakeX") == 0) {
        __builtin_cpu_init();
        if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
              __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))) {
            printf("OPENBLAS_CORETYPE=SkylakeX asks for the AVX-512 kernels, but this CPU lacks AVX-512"
                   " (avx512f/bw/vl/dq): skipped\n");
            fflush(stdout);
            return 1;
        }
    }
    const char *core = sn_kernels_blas_core();
    if (want && (!core || strcasecmp(core, want) != 0)) {
        /* an OpenBLAS built for one target ignores OPENBLAS_CORETYPE */
        printf("OPENBLAS_CORETYPE=%s, but OpenBLAS uses %s kernels: skipped\n", want, core ? core : "unknown");
        fflush(stdout);
        return 1;
    }
    printf("BLAS kernels: %s (OPENBLAS_CORETYPE %s)\n", core ? core : "unknown", want ? want : "unset");
    fflush(stdout);
    return 0;
}

static void skipped(void **state)
{
    (void)state;
    skip();
}

int run_skipped_group(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(skipped)};
    cmocka_run_group_tests(tests, NULL, NULL);
    return 77;
}
