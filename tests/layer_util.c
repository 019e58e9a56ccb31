/* layer_util.c: see layer_util.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
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

static int check_one(err_stat_t *s, const char *label, const float *got, const float *ref, size_t n,
                     double atol, double rtol, const double *lims)
{
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)ref[i]);
        double lim = lims ? lims[i] : atol + rtol * fabs((double)ref[i]);
        if (!(d <= lim)) {   /* also catches NaN */
            if (!(d <= s->max_abs)) s->max_abs = d;
            fprintf(stderr, "%s %s[%zu]: got %.9g, reference %.9g (|diff| %.3g > %.3g)\n",
                    label, s->what, i, (double)got[i], (double)ref[i], d, lim);
            return 0;
        }
        if (d > s->max_abs) s->max_abs = d;
        if (d / lim > s->max_ratio) s->max_ratio = d / lim;
    }
    return 1;
}

int allclose(err_stat_t *s, const char *label, const float *got, const float *ref, size_t n,
             double atol, double rtol)
{
    return check_one(s, label, got, ref, n, atol, rtol, NULL);
}

int allclose_lim(err_stat_t *s, const char *label, const float *got, const float *ref, size_t n,
                 const double *lim)
{
    return check_one(s, label, got, ref, n, 0.0, 0.0, lim);
}

void print_errors(const char *kind, const char *layer, int trials, const err_stat_t *s, int ns)
{
    printf("%s %-34s n=%-3d max|err|:", kind, layer, trials);
    for (int i = 0; i < ns; i++) printf("  %s %.2e", s[i].what, s[i].max_abs);
    printf("\n");
    fflush(stdout);
}
