/*
 * test_gradcheck.c: central-difference gradient checks of every layer and criterion
 * (ctest label gradcheck). The analytic input and parameter gradients of L = sum(y * r)
 * are compared with (L(v+h) - L(v-h)) / 2h (tests/gradcheck.c) in relative terms,
 * |analytic - numeric| / max(1, |numeric|).
 *
 * Layers are float32, so the step is large (h = 1e-2) and the bound loose (TOL): the
 * check is for wrong formulas, which give errors of order 1, not for rounding. Kinks are
 * avoided by construction: ReLU-family inputs stay at least 5h from 0, MaxPool2d inputs
 * are distinct multiples of 0.1 (a window's maximum never changes under +-h), SoftPlus
 * inputs keep away from its threshold. Inputs are fixed (counter-based RNG), so a failure
 * reproduces exactly. This file must not compare against stored reference values.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "gradcheck.h"
#include "kernels/kernels.h"
#include "layer_util.h"
#include "shardnet/layers.h"
#include "shardnet/loss.h"
#include "shardnet/rng.h"

#define H   1e-2f
#define TOL 1e-3

static const sn_ctx_t TRAIN = {.training = 1, .seed = 7, .step = 3};
static const sn_ctx_t EVAL  = {.training = 0, .seed = 7, .step = 3};

/* Runs the check on layer l (built with max_batch >= B, parameters in p or NULL), prints
 * one line, asserts both errors are below TOL, frees the layer and the parameters. */
static void check(const char *what, sn_layer_t *l, sn_params_t *p, const sn_ctx_t *ctx, float *x, int B)
{
    assert_non_null(l);
    gc_result_t r = gradcheck_layer(l, p, ctx, x, B, H);
    printf("gradcheck %-34s input %.2e  params %.2e\n", what, r.max_err_input, r.max_err_param);
    fflush(stdout);
    assert_true(r.max_err_input < TOL);
    assert_true(r.max_err_param < TOL);
    sn_layer_free(l);
    if (p) sn_params_free(p);
}

/* x uniform in [lo, hi) with |x| >= gap (moved away from the kink at 0). */
static float *input(size_t n, float lo, float hi, float gap, uint64_t key)
{
    float *x = malloc(n * sizeof(float));
    fill_uniform(x, n, lo, hi, key);
    for (size_t i = 0; i < n; i++)
        if (fabsf(x[i]) < gap) x[i] = x[i] < 0.0f ? -gap - 0.1f : gap + 0.1f;
    return x;
}

static void test_gc_linear(void **state)
{
    (void)state;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_linear_new(&p, "lin", 5, 4, 3);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 1);
    float *x = input(15, -1, 1, 0, 1);
    check("Linear 5->4", l, &p, &TRAIN, x, 3);
    free(x);
}

static void conv_case(int C, int Hh, int W, int OC, int K, int S, int P, int B, unsigned flags)
{
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_conv2d_new_opts(&p, "conv", C, Hh, W, OC, K, S, P, flags, B);
    assert_non_null(l);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 2);
    float *x = input((size_t)B * C * Hh * W, -1, 1, 0, 2);
    char what[80];
    snprintf(what, sizeof what, "Conv2d %dx%dx%d->%d K%d S%d P%d%s%s", C, Hh, W, OC, K, S, P,
             flags & SN_CONV_BATCHED ? " batched" : "", flags & SN_CONV_WINOGRAD ? " Winograd" : "");
    check(what, l, &p, &TRAIN, x, B);
    free(x);
}

static void test_gc_conv2d(void **state)
{
    (void)state;
    conv_case(2, 5, 6, 3, 3, 1, 0, 2, 0);
    conv_case(2, 7, 5, 2, 3, 2, 1, 2, 0);
    conv_case(1, 6, 6, 2, 2, 2, 1, 3, 0);
    conv_case(3, 4, 4, 20, 3, 1, 1, 2, SN_CONV_BATCHED);   /* fewer positions than channels */
    conv_case(4, 6, 6, 12, 1, 2, 0, 2, SN_CONV_BATCHED);
    conv_case(3, 5, 7, 4, 3, 1, 1, 2, SN_CONV_WINOGRAD);   /* odd sizes: half-used tiles */
    conv_case(3, 4, 4, 20, 3, 1, 1, 2, SN_CONV_WINOGRAD | SN_CONV_BATCHED);   /* Winograd takes precedence */
    /* bias=False, kaiming init (ResNet's convs): only the weight is registered and checked */
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_conv2d_new_opts(&p, "conv", 3, 7, 6, 4, 3, 2, 1, SN_CONV_NO_BIAS | SN_CONV_KAIMING_OUT, 2);
    assert_non_null(l);
    assert_int_equal(p.n, 1);
    assert_null(sn_params_find(&p, "conv.bias"));
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 4);
    float *x = input((size_t)2 * 3 * 7 * 6, -1, 1, 0, 4);
    check("Conv2d 3x7x6->4 K3 S2 P1 no bias", l, &p, &TRAIN, x, 2);
    free(x);
}

/* Distinct values 0.1 apart in a random order: no ties, no maximum changes under +-h. */
static float *distinct_input(size_t n, uint64_t key)
{
    int64_t *perm = malloc(n * sizeof *perm);
    sn_rng_permutation(perm, (int64_t)n, key, 9, 0, 0);
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = 0.1f * (float)perm[i] - 0.05f * (float)n;
    free(perm);
    return x;
}

static void test_gc_maxpool2d(void **state)
{
    (void)state;
    const int cases[3][5] = {{2, 5, 5, 2, 2}, {2, 5, 6, 3, 1}, {1, 7, 7, 3, 2}};   /* C H W K S */
    for (int c = 0; c < 3; c++) {
        int C = cases[c][0], Hh = cases[c][1], W = cases[c][2], K = cases[c][3], S = cases[c][4], B = 2;
        float *x = distinct_input((size_t)B * C * Hh * W, (uint64_t)c);
        char what[80];
        snprintf(what, sizeof what, "MaxPool2d %dx%dx%d K%d S%d", C, Hh, W, K, S);
        check(what, sn_maxpool2d_new("pool", C, Hh, W, K, S, B), NULL, &TRAIN, x, B);
        free(x);
    }
    const int padded[3][6] = {{2, 6, 6, 3, 2, 1}, {2, 5, 7, 3, 1, 1}, {1, 7, 6, 2, 2, 1}};   /* C H W K S P */
    for (int c = 0; c < 3; c++) {
        int C = padded[c][0], Hh = padded[c][1], W = padded[c][2], K = padded[c][3], S = padded[c][4];
        int P = padded[c][5], B = 2;
        float *x = distinct_input((size_t)B * C * Hh * W, (uint64_t)(10 + c));
        char what[80];
        snprintf(what, sizeof what, "MaxPool2d %dx%dx%d K%d S%d P%d", C, Hh, W, K, S, P);
        check(what, sn_maxpool2d_pad_new("pool", C, Hh, W, K, S, P, B), NULL, &TRAIN, x, B);
        free(x);
    }
}

static void test_gc_activations(void **state)
{
    (void)state;
    enum { B = 3, N = 7 };
    float *x = input(B * N, -3, 3, 5 * H, 3);
    check("ReLU", sn_relu_new("a", N, B), NULL, &TRAIN, x, B);
    check("LeakyReLU(0.1)", sn_leaky_relu_new("a", N, 0.1f, B), NULL, &TRAIN, x, B);
    check("ELU(1.3)", sn_elu_new("a", N, 1.3f, B), NULL, &TRAIN, x, B);
    free(x);
    /* both SoftPlus branches: |x| up to 25, away from the threshold 20 */
    x = input(B * N, -25, 25, 0, 4);
    for (int i = 0; i < B * N; i++)
        if (fabsf(x[i] - 20.0f) < 5 * H) x[i] = 21.0f;
    check("SoftPlus", sn_softplus_new("a", N, B), NULL, &TRAIN, x, B);
    free(x);
}

static void test_gc_softmax(void **state)
{
    (void)state;
    enum { B = 3, N = 6 };
    float *x = input(B * N, -3, 3, 0, 5);
    check("SoftMax", sn_softmax_new("s", N, B), NULL, &TRAIN, x, B);
    check("LogSoftMax", sn_log_softmax_new("s", N, B), NULL, &TRAIN, x, B);
    free(x);
}

static void test_gc_dropout(void **state)
{
    (void)state;
    enum { B = 3, N = 8 };
    float *x = input(B * N, -2, 2, 0, 6);
    /* the mask is a function of (seed, layer, step, sample): fixed under perturbation */
    check("Dropout(0.3) train", sn_dropout_new("d", N, 0.3f, B), NULL, &TRAIN, x, B);
    check("Dropout(0.3) evaluate", sn_dropout_new("d", N, 0.3f, B), NULL, &EVAL, x, B);
    free(x);
}

static sn_layer_t *batchnorm(sn_params_t *p, int n, int B, int affine)
{
    sn_params_init(p);
    sn_layer_t *bn = sn_batchnorm_new(p, "bn", n, 0.9f, B), *l = bn;
    if (affine) {
        l = sn_sequential_new("seq", B);
        assert_int_equal(sn_sequential_add(l, bn), 0);
        assert_int_equal(sn_sequential_add(l, sn_scaling_new(p, "sc", n, B)), 0);
    }
    assert_int_equal(sn_params_alloc(p), 0);
    sn_layer_reset(l, 0);
    /* non-trivial moving statistics (evaluate mode) and affine parameters */
    fill_uniform(param_value(p, "bn.running_mean"), (size_t)n, -1, 1, 11);
    fill_uniform(param_value(p, "bn.running_var"), (size_t)n, 0.5f, 2, 12);
    if (affine) {
        fill_uniform(param_value(p, "sc.weight"), (size_t)n, 0.5f, 2, 13);
        fill_uniform(param_value(p, "sc.bias"), (size_t)n, -1, 1, 14);
    }
    return l;
}

static void test_gc_batchnorm(void **state)
{
    (void)state;
    enum { B = 6, N = 4 };
    sn_params_t p;
    float *x = input(B * N, -2, 2, 0, 7);
    check("BatchNormalization train", batchnorm(&p, N, B, 0), &p, &TRAIN, x, B);
    check("BatchNormalization evaluate", batchnorm(&p, N, B, 0), &p, &EVAL, x, B);
    check("BatchNorm+Scaling train", batchnorm(&p, N, B, 1), &p, &TRAIN, x, B);
    check("BatchNorm+Scaling evaluate", batchnorm(&p, N, B, 1), &p, &EVAL, x, B);
    free(x);
    /* Scaling alone */
    sn_params_init(&p);
    sn_layer_t *l = sn_scaling_new(&p, "sc", N, B);
    assert_int_equal(sn_params_alloc(&p), 0);
    fill_uniform(param_value(&p, "sc.weight"), N, 0.5f, 2, 15);
    fill_uniform(param_value(&p, "sc.bias"), N, -1, 1, 16);
    x = input(B * N, -2, 2, 0, 8);
    check("Scaling", l, &p, &TRAIN, x, B);
    free(x);
}

/* A smooth stack: the container's forward/backward chaining and the arena layout. */
static void test_gc_sequential(void **state)
{
    (void)state;
    enum { B = 3 };
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_sequential_new("net", B);
    assert_int_equal(sn_sequential_add(l, sn_conv2d_new(&p, "conv", 1, 5, 5, 2, 3, 1, 1, B)), 0);
    assert_int_equal(sn_sequential_add(l, sn_elu_new("elu", 2 * 5 * 5, 1.0f, B)), 0);
    assert_int_equal(sn_sequential_add(l, sn_flatten_new("flat", 3, (int[]){2, 5, 5}, B)), 0);
    assert_int_equal(sn_sequential_add(l, sn_linear_new(&p, "fc", 50, 4, B)), 0);
    assert_int_equal(sn_sequential_add(l, sn_log_softmax_new("logp", 4, B)), 0);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 3);
    float *x = input(B * 25, -1, 1, 0, 9);
    check("Sequential(Conv,ELU,Flatten,Linear,LogSoftMax)", l, &p, &TRAIN, x, B);
    free(x);
}

/* ---- criteria: d(scale * loss_sum)/dx against central differences --------------------- */

typedef enum { NLL, NLL_ONEHOT, UNSTABLE, UNSTABLE_ONEHOT } crit_t;

static double crit_loss(crit_t k, const float *x, const int *t, const float *oh, int B, int C)
{
    double s = 0.0;
    int rc = k == NLL ? sn_nll_forward(&s, x, t, B, C)
           : k == NLL_ONEHOT ? sn_nll_onehot_forward(&s, x, oh, B, C)
           : k == UNSTABLE ? sn_nll_unstable_forward(&s, x, t, B, C)
           : sn_nll_unstable_onehot_forward(&s, x, oh, B, C);
    assert_int_equal(rc, 0);
    return s;
}

static void test_gc_criteria(void **state)
{
    (void)state;
    enum { B = 4, C = 5 };
    const char *names[4] = {"NLLCriterion", "NLLCriterion one-hot", "NLLCriterionUnstable",
                            "NLLCriterionUnstable one-hot"};
    int t[B] = {0, 3, 4, 1};
    float oh[B * C] = {0}, x[B * C], g[B * C];
    for (int i = 0; i < B; i++) oh[i * C + t[i]] = 1.0f;
    const float scale = 1.0f / B, h = 1e-3f;
    for (int k = 0; k < 4; k++) {
        /* log-probabilities in [-4, -0.1]; probabilities in [0.2, 0.9] (inside the clip) */
        fill_uniform(x, B * C, k < 2 ? -4.0f : 0.2f, k < 2 ? -0.1f : 0.9f, 20 + (uint64_t)k);
        int rc = k == NLL ? sn_nll_backward(g, t, B, C, scale)
               : k == NLL_ONEHOT ? sn_nll_onehot_backward(g, oh, B, C, scale)
               : k == UNSTABLE ? sn_nll_unstable_backward(g, x, t, B, C, scale)
               : sn_nll_unstable_onehot_backward(g, x, oh, B, C, scale);
        assert_int_equal(rc, 0);
        double worst = 0.0;
        for (int i = 0; i < B * C; i++) {
            float keep = x[i];
            x[i] = keep + h;
            double lp = crit_loss((crit_t)k, x, t, oh, B, C);
            x[i] = keep - h;
            double lm = crit_loss((crit_t)k, x, t, oh, B, C);
            x[i] = keep;
            /* the perturbed values are floats: divide by the step actually taken */
            double num = scale * (lp - lm) / ((double)(keep + h) - (double)(keep - h));
            worst = fmax(worst, fabs(g[i] - num) / fmax(1.0, fabs(num)));
        }
        printf("gradcheck %-34s input %.2e\n", names[k], worst);
        assert_true(worst < 1e-3);
    }
}

int main(void)
{
    if (blas_core_unavailable()) return run_skipped_group();
    /* The shapes here are tiny: one thread keeps OpenMP start-up costs out of the run time
     * on a busy machine. The bits do not depend on it (test_threads checks that). */
    sn_kernels_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gc_linear),
        cmocka_unit_test(test_gc_conv2d),
        cmocka_unit_test(test_gc_maxpool2d),
        cmocka_unit_test(test_gc_activations),
        cmocka_unit_test(test_gc_softmax),
        cmocka_unit_test(test_gc_dropout),
        cmocka_unit_test(test_gc_batchnorm),
        cmocka_unit_test(test_gc_sequential),
        cmocka_unit_test(test_gc_criteria),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
