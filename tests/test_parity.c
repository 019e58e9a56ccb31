/*
 * test_parity.c: the layer library against PyTorch, in the Torch7-protocol style of the
 * reference suite (modules.py tests). Each fixture (tests/gen_fixtures.py) holds 100
 * trials of a fresh layer with PyTorch's random parameters, a random input and a random
 * output gradient; the test copies the parameters into the shardnet arena, runs
 * forward and backward, and compares output, input gradient and parameter gradients.
 *
 * What is compared. PyTorch's float32 results are one float32 evaluation among many: a
 * sum with cancellation (terms up to 100, result 0.36) comes out a few ulp of the terms
 * apart under two summation orders (FMA or not, other blocking), so requiring shardnet's
 * float32 result to be within 1e-6 of PyTorch's only passes while both happen to sum in
 * the same order (it did with OpenBLAS's SSE3 kernels and failed with its AVX-512 ones).
 * The fixtures therefore also hold every result computed in float64 from the same float32
 * inputs (the exact value e, to far below float32 precision) and, for sums, their
 * magnitude m = sum of |terms| (Linear y: |x| |W|^T + |b|, dW: |dy|^T |x|, Conv2d by
 * convolving absolute values, BatchNorm and SoftMax by first-order propagation). A result
 * r passes when
 *
 *     |r - e| <= atol + rtol |e| + gamma_n m,      gamma_n = n u / (1 - n u),  u = 2^-24,
 *
 * the classical bound on the rounding error of a float32 sum or dot product whose terms
 * each go through at most n roundings, for any summation order or blocking, with or
 * without FMA (Higham, Accuracy and Stability of Numerical Algorithms, eq. (3.5), 4.2).
 * So the check is the same for every BLAS kernel family and never depends on luck, while
 * n stays the real count (Linear y: in + 1 terms), which keeps it tight: a weight off by
 * 1e-4 or one missing term fails. n per quantity:
 *   Linear          y: in + 1 (with the bias)   dx: out   dW, db: B
 *   Conv2d          y: C K K + 1   dx: OC K K (windows covering an input)   dW, db: B OH OW
 *   MaxPool2d       y: exact (a copy, limit 0)   dx: K K (overlapping windows)
 *   SoftMax family  2C + 8: a C-term sum (or the outputs, which carry one) inside another,
 *                   plus exp, log, division and the final products
 *   BatchNorm       2B + 8: the B-term batch sums (mean, variance, sum dy, sum dy xhat), one
 *                   inside another at most, plus the few elementwise steps around them
 *   NLL losses      B + 2: a B-term sum, the log and the 1/B
 * Elementwise results (activations, NLL gradients, SoftMax y) have no sum: rtol covers
 * their few roundings. atol and rtol are the reference suite's np.allclose values (rtol
 * numpy's 1e-5): atol 1e-6 for Linear, activations, NLL, the BatchNormalization output,
 * Conv2d and MaxPool2d, 1e-5 for SoftMax/LogSoftMax, 1e-4 for the BatchNormalization input
 * gradient. Each layer prints its largest absolute errors against PyTorch's float32
 * results (reported, not tested) and against the float64 ones, and the largest ratio of
 * error to limit.
 *
 * ctest runs this program twice: with the BLAS kernels OpenBLAS picks (test_parity) and
 * with OPENBLAS_CORETYPE=SkylakeX (test_parity_avx512, skipped without AVX-512).
 *
 * Dropout has no PyTorch counterpart with the same random stream: it gets the reference
 * suite's property checks instead. This file must not regenerate or edit fixtures.
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
#include "fixture.h"
#include "kernels/kernels.h"
#include "layer_util.h"
#include "shardnet/layers.h"
#include "shardnet/loss.h"
#include "shardnet/rng.h"

#define RTOL 1e-5   /* numpy's default, as in the reference suite's np.allclose */

static const sn_ctx_t TRAIN = {.training = 1, .seed = 0, .step = 0};
static const sn_ctx_t EVAL  = {.training = 0, .seed = 0, .step = 0};

/* Tensor "t<trial>.<name>" (or "c<case>.<name>") of a fixture. */
static const fx_tensor_t *T(const fx_file_t *f, char prefix, int trial, const char *name, int dtype)
{
    char key[128];
    snprintf(key, sizeof key, "%c%d.%s", prefix, trial, name);
    return fx_get(f, key, dtype);
}
static const float *TF(const fx_file_t *f, int trial, const char *name)
{
    return T(f, 't', trial, name, FX_F32)->data;
}

/* got (n values) against fixture quantity "<prefix><trial>.<name>": PyTorch's float32
 * result, its float64 correction <name>_d and, with nterms > 0, its magnitude <name>_mag
 * (see the top of the file). */
static int vs_exact(err_stat_t *e, const char *label, const fx_file_t *f, char prefix, int trial,
                    const char *name, const float *got, size_t n, double atol, double rtol, int nterms)
{
    char key[64];
    const fx_tensor_t *ref = T(f, prefix, trial, name, FX_F32);
    snprintf(key, sizeof key, "%s_d", name);
    const fx_tensor_t *d = T(f, prefix, trial, key, FX_F32);
    const float *mag = NULL;
    if (nterms > 0) {
        snprintf(key, sizeof key, "%s_mag", name);
        const fx_tensor_t *m = T(f, prefix, trial, key, FX_F32);
        assert_int_equal(m->count, n);
        mag = m->data;
    }
    assert_int_equal(ref->count, n);
    assert_int_equal(d->count, n);
    return check_exact(e, label, got, ref->data, d->data, mag, nterms, n, atol, rtol);
}

#define CHECK(stat, name, got, n, atol, rtol, nterms)                                         \
    do {                                                                                     \
        char label_[96];                                                                     \
        snprintf(label_, sizeof label_, "%s trial %d", layer_name, t);                       \
        assert_true(vs_exact((stat), label_, f, 't', t, (name), (got), (n), (atol), (rtol), (nterms))); \
    } while (0)

/* ---- Linear -------------------------------------------------------------------------- */

static void test_linear(void **state)
{
    (void)state;
    const char *layer_name = "Linear";
    fx_file_t *f = fx_load("linear.bin");
    int n = fx_int(f, "n_trials");
    err_stat_t e[4] = {ERR_STAT("y"), ERR_STAT("dx"), ERR_STAT("dW"), ERR_STAT("db")};
    for (int t = 0; t < n; t++) {
        const fx_tensor_t *x = T(f, 't', t, "x", FX_F32), *w = T(f, 't', t, "w", FX_F32);
        int B = x->dims[0], in = x->dims[1], out = w->dims[0];
        sn_params_t p;
        sn_params_init(&p);
        sn_layer_t *l = sn_linear_new(&p, "lin", in, out, B);
        assert_non_null(l);
        assert_int_equal(sn_params_alloc(&p), 0);
        memcpy(param_value(&p, "lin.weight"), w->data, w->count * sizeof(float));
        memcpy(param_value(&p, "lin.bias"), TF(f, t, "b"), (size_t)out * sizeof(float));
        assert_int_equal(sn_layer_forward(l, &TRAIN, x->data, B), 0);
        CHECK(&e[0], "y", l->output, (size_t)B * out, 1e-6, RTOL, in + 1);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, TF(f, t, "dy"), B), 0);
        CHECK(&e[1], "dx", l->grad_input, (size_t)B * in, 1e-6, RTOL, out);
        CHECK(&e[2], "dw", param_grad(&p, "lin.weight"), w->count, 1e-6, RTOL, B);
        CHECK(&e[3], "db", param_grad(&p, "lin.bias"), (size_t)out, 1e-6, RTOL, B);
        sn_layer_free(l);
        sn_params_free(&p);
    }
    print_errors("parity", layer_name, n, e, 4);
    fx_free(f);
}

/* ---- SoftMax / LogSoftMax -------------------------------------------------------------- */

static void softmax_case(const char *file, int log)
{
    const char *layer_name = log ? "LogSoftMax" : "SoftMax";
    fx_file_t *f = fx_load(file);
    int n = fx_int(f, "n_trials");
    err_stat_t e[3] = {ERR_STAT("y"), ERR_STAT("dx"), ERR_STAT("dx(dy=1/p)")};
    for (int t = 0; t < n; t++) {
        const fx_tensor_t *x = T(f, 't', t, "x", FX_F32);
        int B = x->dims[0], C = x->dims[1];
        sn_layer_t *l = log ? sn_log_softmax_new("sm", C, B) : sn_softmax_new("sm", C, B);
        assert_non_null(l);
        assert_int_equal(sn_layer_forward(l, &TRAIN, x->data, B), 0);
        /* SoftMax y = e / sum e has relative errors only; LogSoftMax y = x - max - log sum */
        CHECK(&e[0], "y", l->output, x->count, 1e-5, RTOL, log ? 2 * C + 8 : 0);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, TF(f, t, "dy"), B), 0);
        CHECK(&e[1], "dx", l->grad_input, x->count, 1e-5, RTOL, 2 * C + 8);
        /* the reference suite's dy = 1/p, up to 1e5: dx is a difference of nearly equal
         * terms, which is what the magnitude is for */
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, TF(f, t, "dy_ref"), B), 0);
        CHECK(&e[2], "dx_ref", l->grad_input, x->count, 1e-5, RTOL, 2 * C + 8);
        sn_layer_free(l);
    }
    print_errors("parity", layer_name, n, e, 3);
    fx_free(f);
}

static void test_softmax(void **state) { (void)state; softmax_case("softmax.bin", 0); }
static void test_log_softmax(void **state) { (void)state; softmax_case("log_softmax.bin", 1); }

/* ---- BatchNormalization, alone and as Sequential(BatchNormalization, Scaling) ----------- */

static void batchnorm_case(int affine)
{
    const char *layer_name = affine ? "Sequential(BatchNorm,Scaling)" : "BatchNormalization";
    fx_file_t *f = fx_load(affine ? "bn_scaling.bin" : "batchnorm.bin");
    int n = fx_int(f, "n_trials");
    err_stat_t e[10] = {ERR_STAT("y"),      ERR_STAT("dx"),     ERR_STAT("mean"),        ERR_STAT("var"),
                        ERR_STAT("y_eval"), ERR_STAT("dx_eval"), ERR_STAT("dgamma"),     ERR_STAT("dbeta"),
                        ERR_STAT("dgamma_eval"), ERR_STAT("dbeta_eval")};
    for (int t = 0; t < n; t++) {
        const fx_tensor_t *x = T(f, 't', t, "x", FX_F32);
        int B = x->dims[0], C = x->dims[1];
        float alpha = TF(f, t, "alpha")[0];
        sn_params_t p;
        sn_params_init(&p);
        sn_layer_t *bn = sn_batchnorm_new(&p, "bn", C, alpha, B), *l = bn;
        assert_non_null(bn);
        if (affine) {
            l = sn_sequential_new("seq", B);
            assert_non_null(l);
            assert_int_equal(sn_sequential_add(l, bn), 0);
            assert_int_equal(sn_sequential_add(l, sn_scaling_new(&p, "sc", C, B)), 0);
        }
        assert_int_equal(sn_params_alloc(&p), 0);
        sn_layer_reset(l, 0);
        memcpy(param_value(&p, "bn.running_mean"), TF(f, t, "rm0"), (size_t)C * sizeof(float));
        memcpy(param_value(&p, "bn.running_var"), TF(f, t, "rv0"), (size_t)C * sizeof(float));
        if (affine) {
            memcpy(param_value(&p, "sc.weight"), TF(f, t, "gamma"), (size_t)C * sizeof(float));
            memcpy(param_value(&p, "sc.bias"), TF(f, t, "beta"), (size_t)C * sizeof(float));
        }
        const float *dy = TF(f, t, "dy");
        const int nt = 2 * B + 8;
        assert_int_equal(sn_layer_forward(l, &TRAIN, x->data, B), 0);
        CHECK(&e[0], "y", l->output, x->count, 1e-6, RTOL, nt);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, dy, B), 0);
        CHECK(&e[1], "dx", l->grad_input, x->count, 1e-4, RTOL, nt);
        CHECK(&e[2], "rm", param_value(&p, "bn.running_mean"), (size_t)C, 1e-6, RTOL, nt);
        CHECK(&e[3], "rv", param_value(&p, "bn.running_var"), (size_t)C, 1e-6, RTOL, nt);
        if (affine) {
            CHECK(&e[6], "dgamma", param_grad(&p, "sc.weight"), (size_t)C, 1e-6, RTOL, nt);
            CHECK(&e[7], "dbeta", param_grad(&p, "sc.bias"), (size_t)C, 1e-6, RTOL, nt);
            sn_params_zero_grad(&p);
        }
        /* evaluate: the moving statistics just updated, the batch's are not used */
        assert_int_equal(sn_layer_forward(l, &EVAL, x->data, B), 0);
        CHECK(&e[4], "y_eval", l->output, x->count, 1e-6, RTOL, nt);
        assert_int_equal(sn_layer_backward(l, &EVAL, x->data, dy, B), 0);
        CHECK(&e[5], "dx_eval", l->grad_input, x->count, 1e-6, RTOL, nt);
        if (affine) {
            CHECK(&e[8], "dgamma_eval", param_grad(&p, "sc.weight"), (size_t)C, 1e-6, RTOL, nt);
            CHECK(&e[9], "dbeta_eval", param_grad(&p, "sc.bias"), (size_t)C, 1e-6, RTOL, nt);
        }
        sn_layer_free(l);
        sn_params_free(&p);
    }
    print_errors("parity", layer_name, n, e, affine ? 10 : 6);
    fx_free(f);
}

static void test_batchnorm(void **state) { (void)state; batchnorm_case(0); }
static void test_batchnorm_scaling(void **state) { (void)state; batchnorm_case(1); }

/* ---- activations ------------------------------------------------------------------------ */

static void activation_case(const char *file, const char *layer_name)
{
    fx_file_t *f = fx_load(file);
    int n = fx_int(f, "n_trials");
    err_stat_t e[2] = {ERR_STAT("y"), ERR_STAT("dx")};
    for (int t = 0; t < n; t++) {
        const fx_tensor_t *x = T(f, 't', t, "x", FX_F32);
        int B = x->dims[0], C = x->dims[1];
        sn_layer_t *l;
        if (strcmp(layer_name, "ReLU") == 0) l = sn_relu_new("act", C, B);
        else if (strcmp(layer_name, "LeakyReLU") == 0) l = sn_leaky_relu_new("act", C, TF(f, t, "a")[0], B);
        else if (strcmp(layer_name, "ELU") == 0) l = sn_elu_new("act", C, TF(f, t, "a")[0], B);
        else l = sn_softplus_new("act", C, B);
        assert_non_null(l);
        assert_int_equal(sn_layer_forward(l, &TRAIN, x->data, B), 0);
        CHECK(&e[0], "y", l->output, x->count, 1e-6, RTOL, 0);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, TF(f, t, "dy"), B), 0);
        CHECK(&e[1], "dx", l->grad_input, x->count, 1e-6, RTOL, 0);
        sn_layer_free(l);
    }
    print_errors("parity", layer_name, n, e, 2);
    fx_free(f);
}

static void test_relu(void **state) { (void)state; activation_case("relu.bin", "ReLU"); }
static void test_leaky_relu(void **state) { (void)state; activation_case("leaky_relu.bin", "LeakyReLU"); }
static void test_elu(void **state) { (void)state; activation_case("elu.bin", "ELU"); }
static void test_softplus(void **state) { (void)state; activation_case("softplus.bin", "SoftPlus"); }

/* ---- criteria ------------------------------------------------------------------------- */

static float *one_hot(const int32_t *target, int B, int C)
{
    float *oh = calloc((size_t)B * C, sizeof(float));
    for (int i = 0; i < B; i++) oh[(size_t)i * C + target[i]] = 1.0f;
    return oh;
}

/* Class indices and one-hot rows must give the same loss and gradient (mean: scale 1/B). */
static void nll_case(int unstable)
{
    const char *layer_name = unstable ? "NLLCriterionUnstable" : "NLLCriterion";
    fx_file_t *f = fx_load(unstable ? "nll_unstable.bin" : "nll.bin");
    int n = fx_int(f, "n_trials");
    err_stat_t e[6] = {ERR_STAT("loss"),      ERR_STAT("dx"),         ERR_STAT("loss_onehot"),
                       ERR_STAT("dx_onehot"), ERR_STAT("logsoftmax"), ERR_STAT("dlogits")};
    for (int t = 0; t < n; t++) {
        const fx_tensor_t *x = T(f, 't', t, unstable ? "p" : "logp", FX_F32);
        int B = x->dims[0], C = x->dims[1];
        const int32_t *target = T(f, 't', t, "target", FX_I32)->data;
        const char *dname = unstable ? "dp" : "dlogp";
        float scale = 1.0f / (float)B, *oh = one_hot(target, B, C);
        float *dx = malloc(x->count * sizeof(float));
        double sum;
        float loss;
        if (unstable) assert_int_equal(sn_nll_unstable_forward(&sum, x->data, target, B, C), 0);
        else assert_int_equal(sn_nll_forward(&sum, x->data, target, B, C), 0);
        loss = (float)(sum / B);
        CHECK(&e[0], "loss", &loss, 1, 1e-6, RTOL, B + 2);
        if (unstable) assert_int_equal(sn_nll_unstable_backward(dx, x->data, target, B, C, scale), 0);
        else assert_int_equal(sn_nll_backward(dx, target, B, C, scale), 0);
        CHECK(&e[1], dname, dx, x->count, 1e-6, RTOL, 0);

        if (unstable) assert_int_equal(sn_nll_unstable_onehot_forward(&sum, x->data, oh, B, C), 0);
        else assert_int_equal(sn_nll_onehot_forward(&sum, x->data, oh, B, C), 0);
        loss = (float)(sum / B);
        CHECK(&e[2], "loss", &loss, 1, 1e-6, RTOL, B + 2);
        memset(dx, 0xff, x->count * sizeof(float));   /* NaN: every element must be written */
        if (unstable) assert_int_equal(sn_nll_unstable_onehot_backward(dx, x->data, oh, B, C, scale), 0);
        else assert_int_equal(sn_nll_onehot_backward(dx, oh, B, C, scale), 0);
        CHECK(&e[3], dname, dx, x->count, 1e-6, RTOL, 0);

        if (!unstable) {   /* LogSoftMax + NLLCriterion, the ConvNet's head, on the logits */
            sn_layer_t *l = sn_log_softmax_new("logp", C, B);
            assert_non_null(l);
            const float *logits = TF(f, t, "logits");
            assert_int_equal(sn_layer_forward(l, &TRAIN, logits, B), 0);
            CHECK(&e[4], "logp", l->output, x->count, 1e-5, RTOL, 2 * C + 8);
            assert_int_equal(sn_nll_backward(dx, target, B, C, scale), 0);
            assert_int_equal(sn_layer_backward(l, &TRAIN, logits, dx, B), 0);
            CHECK(&e[5], "dlogits", l->grad_input, x->count, 1e-6, RTOL, 2 * C + 8);
            sn_layer_free(l);
        }
        free(oh);
        free(dx);
    }
    print_errors("parity", layer_name, n, e, unstable ? 4 : 6);
    fx_free(f);
}

static void test_nll_unstable(void **state) { (void)state; nll_case(1); }
static void test_nll(void **state) { (void)state; nll_case(0); }

static void test_nll_rejects_bad_targets(void **state)
{
    (void)state;
    float logp[6] = {0}, d[6];
    double s;
    int bad[2] = {0, 3}, neg[2] = {-1, 0};
    assert_int_equal(sn_nll_forward(&s, logp, bad, 2, 3), SN_ERANGE);
    assert_int_equal(sn_nll_backward(d, neg, 2, 3, 0.5f), SN_ERANGE);
    assert_int_equal(sn_nll_unstable_forward(&s, logp, bad, 2, 3), SN_ERANGE);
    assert_int_equal(sn_nll_unstable_backward(d, logp, neg, 2, 3, 0.5f), SN_ERANGE);
    assert_non_null(strstr(sn_error_message(), "target -1"));
}

/* ---- Conv2d and MaxPool2d ----------------------------------------------------------------- */

/* Conv2d cases of `file` (geometry, weights and results from gen_fixtures.py). */
static void conv2d_cases(const char *file, const char *kind, unsigned flags)
{
    fx_file_t *f = fx_load(file);
    int n = fx_int(f, "n_cases");
    err_stat_t e[4] = {ERR_STAT("y"), ERR_STAT("dx"), ERR_STAT("dW"), ERR_STAT("db")};
    for (int c = 0; c < n; c++) {
        const int32_t *g = T(f, 'c', c, "geom", FX_I32)->data;
        int B = g[0], C = g[1], H = g[2], W = g[3], OC = g[4], K = g[5], S = g[6], P = g[7];
        char label[96];
        snprintf(label, sizeof label, "Conv2d B%d %dx%dx%d -> %d K%d S%d P%d", B, C, H, W, OC, K, S, P);
        sn_params_t p;
        sn_params_init(&p);
        sn_layer_t *l = sn_conv2d_new_opts(&p, "conv", C, H, W, OC, K, S, P, flags, B);
        assert_non_null(l);
        assert_int_equal(sn_params_alloc(&p), 0);
        const fx_tensor_t *y = T(f, 'c', c, "y", FX_F32), *w = T(f, 'c', c, "w", FX_F32);
        assert_int_equal((int)l->out_size * B, (int)y->count);
        memcpy(param_value(&p, "conv.weight"), w->data, w->count * sizeof(float));
        memcpy(param_value(&p, "conv.bias"), T(f, 'c', c, "b", FX_F32)->data, (size_t)OC * sizeof(float));
        const float *x = T(f, 'c', c, "x", FX_F32)->data;
        int OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
        assert_int_equal(sn_layer_forward(l, &TRAIN, x, B), 0);
        assert_true(vs_exact(&e[0], label, f, 'c', c, "y", l->output, y->count, 1e-6, RTOL, C * K * K + 1));
        assert_int_equal(sn_layer_backward(l, &TRAIN, x, T(f, 'c', c, "dy", FX_F32)->data, B), 0);
        assert_true(vs_exact(&e[1], label, f, 'c', c, "dx", l->grad_input, (size_t)B * l->in_size, 1e-6, RTOL,
                             OC * K * K));
        assert_true(vs_exact(&e[2], label, f, 'c', c, "dw", param_grad(&p, "conv.weight"), w->count, 1e-6, RTOL,
                             B * OH * OW));
        assert_true(vs_exact(&e[3], label, f, 'c', c, "db", param_grad(&p, "conv.bias"), (size_t)OC, 1e-6, RTOL,
                             B * OH * OW));
        sn_layer_free(l);
        sn_params_free(&p);
    }
    print_errors("parity", kind, n, e, 4);
    fx_free(f);
}

static void test_conv2d(void **state)
{
    (void)state;
    conv2d_cases("conv2d.bin", "Conv2d", 0);
}

/* fewer output positions than channels: the whole batch's columns in one GEMM */
static void test_conv2d_batched(void **state)
{
    (void)state;
    conv2d_cases("conv2d_batched.bin", "Conv2d batched", SN_CONV_BATCHED);
}

/* 3x3, stride 1, padding 1 by Winograd F(2x2, 3x3): the transforms round partial sums before
 * the products, yet y and dx stay within the direct sum's bound (worst 6% of it here). */
static void test_conv2d_winograd(void **state)
{
    (void)state;
    conv2d_cases("conv2d_winograd.bin", "Conv2d Winograd", SN_CONV_WINOGRAD | SN_CONV_BATCHED);
}

/* MaxPool2d cases of `file`; geom holds the padding as its 7th value when `padded`. */
static void maxpool2d_cases(const char *file, int padded)
{
    fx_file_t *f = fx_load(file);
    int n = fx_int(f, "n_cases");
    err_stat_t e[2] = {ERR_STAT("y"), ERR_STAT("dx")};
    for (int c = 0; c < n; c++) {
        const int32_t *g = T(f, 'c', c, "geom", FX_I32)->data;
        int B = g[0], C = g[1], H = g[2], W = g[3], K = g[4], S = g[5], P = padded ? g[6] : 0;
        char label[96];
        snprintf(label, sizeof label, "MaxPool2d B%d %dx%dx%d K%d S%d P%d", B, C, H, W, K, S, P);
        sn_layer_t *l = padded ? sn_maxpool2d_pad_new("pool", C, H, W, K, S, P, B)
                               : sn_maxpool2d_new("pool", C, H, W, K, S, B);
        assert_non_null(l);
        const fx_tensor_t *y = T(f, 'c', c, "y", FX_F32);
        assert_int_equal((int)l->out_size * B, (int)y->count);
        const float *x = T(f, 'c', c, "x", FX_F32)->data;
        assert_int_equal(sn_layer_forward(l, &TRAIN, x, B), 0);
        /* a maximum is a copy: exact; a gradient sums the windows an input is the maximum of */
        assert_true(vs_exact(&e[0], label, f, 'c', c, "y", l->output, y->count, 0.0, 0.0, 0));
        assert_int_equal(sn_layer_backward(l, &TRAIN, x, T(f, 'c', c, "dy", FX_F32)->data, B), 0);
        assert_true(vs_exact(&e[1], label, f, 'c', c, "dx", l->grad_input, (size_t)B * l->in_size, 1e-6, RTOL,
                             K * K));
        sn_layer_free(l);
    }
    print_errors("parity", padded ? "MaxPool2d padded" : "MaxPool2d", n, e, 2);
    fx_free(f);
}

/* The flat im2col of "same" convolutions (K = 2P + 1, stride 1 or 2) gives the columns of
 * sn_im2col, and its fold the sums of sn_col2im, bit for bit: odd and even sizes, planes
 * smaller than the kernel, 1x1 to 7x7, columns at a row stride wider than one sample. */
static void test_im2col_flat(void **state)
{
    (void)state;
    int checked = 0;
    for (int S = 1; S <= 2; S++)
        for (int K = 1; K <= 7; K += 2)
            for (int H = 1; H <= 9; H++)
                for (int W = 1; W <= 9; W += 2 + (H & 1)) {
                    int C = 2, P = K / 2, OH = (H + 2 * P - K) / S + 1, OW = (W + 2 * P - K) / S + 1;
                    assert_true(sn_im2col_flat_ok(H, W, K, S, P));
                    int n = OH * OW, ldc = n + 3, rows = C * K * K;
                    size_t nx = (size_t)C * H * W, ncol = (size_t)rows * ldc;
                    float *x = malloc(nx * sizeof(float)), *ref = calloc(ncol, sizeof(float));
                    float *got = calloc(ncol, sizeof(float)), *g2 = malloc(ncol * sizeof(float));
                    float *dref = calloc(nx, sizeof(float)), *dgot = malloc(nx * sizeof(float));
                    float *phase = malloc((sn_im2col_flat_floats(C, H, W, S) + 1) * sizeof(float));
                    for (size_t i = 0; i < nx; i++) x[i] = 1.0f + (float)((i * 2654435761u) % 1000) / 997.0f;
                    sn_im2col(ref, ldc, x, C, H, W, K, S, P, OH, OW);
                    sn_im2col_flat(got, ldc, x, phase, C, H, W, K, S, P);
                    for (int r = 0; r < rows; r++)
                        assert_memory_equal(got + (size_t)r * ldc, ref + (size_t)r * ldc, (size_t)n * sizeof(float));
                    for (size_t i = 0; i < ncol; i++) g2[i] = 0.5f + (float)((i * 40503u) % 1000) / 991.0f;
                    sn_col2im(dref, g2, ldc, C, H, W, K, S, P, OH, OW);
                    for (size_t i = 0; i < nx; i++) dgot[i] = NAN;   /* every element must be written */
                    sn_col2im_flat(dgot, g2, ldc, phase, C, H, W, K, S, P);
                    assert_memory_equal(dgot, dref, nx * sizeof(float));
                    free(x); free(ref); free(got); free(g2); free(dref); free(dgot); free(phase);
                    checked++;
                }
    printf("im2col flat: %d geometries, columns and folds bitwise equal to im2col/col2im\n", checked);
}

/* sn_gemm_pack_b's panels, P[panel][k][NR] = op(B)(k, panel * NR + j), zero past N, against
 * that definition (bitwise: a copy), for both layouts; shapes around the 8 x 8 blocks of the
 * transposed copy and the panel width (whole blocks, tails in k, partial panels, one row).
 * Then sn_gemm_packed on those panels against a double-precision product. */
static void test_gemm_pack_b(void **state)
{
    (void)state;
    const int Ns[] = {1, 7, 8, 9, 16, 17, 33, 40}, Ks[] = {1, 5, 8, 9, 16, 27, 64, 67};
    int NR = sn_gemm_packed_nr(), checked = 0;
    for (int ni = 0; ni < 8; ni++)
        for (int ki = 0; ki < 8; ki++)
            for (int trans = 0; trans < 2; trans++) {
                int N = Ns[ni], K = Ks[ki], M = 7, ldb = (trans ? K : N) + 3, npan = (N + NR - 1) / NR;
                size_t nb = (size_t)(trans ? N : K) * ldb, np = sn_gemm_packed_floats(N, K);
                assert_int_equal(np, (size_t)npan * NR * K);
                float *b = malloc(nb * sizeof(float)), *pk = malloc(np * sizeof(float)), *a = malloc(sizeof(float) * M * K);
                float *c = malloc(sizeof(float) * M * N);
                for (size_t i = 0; i < nb; i++) b[i] = (float)((i * 2654435761u) % 1000) / 997.0f - 0.5f;
                for (int i = 0; i < M * K; i++) a[i] = (float)((i * 40503u) % 1000) / 991.0f - 0.5f;
                for (size_t i = 0; i < np; i++) pk[i] = NAN;   /* every element must be written */
                sn_gemm_pack_b(pk, trans, N, K, b, ldb);
                for (int p = 0; p < npan; p++)
                    for (int k = 0; k < K; k++)
                        for (int j = 0; j < NR; j++) {
                            int n = p * NR + j;
                            float want = n >= N ? 0.0f : trans ? b[(size_t)n * ldb + k] : b[(size_t)k * ldb + n];
                            float got = pk[((size_t)p * K + k) * NR + j];
                            if (memcmp(&got, &want, sizeof got) != 0)
                                fail_msg("pack_b trans %d N %d K %d: panel %d k %d lane %d is %g, not %g", trans, N, K,
                                         p, k, j, got, want);
                        }
                sn_gemm_packed(M, N, K, a, K, pk, 0.0f, c, N);
                for (int i = 0; i < M; i++)
                    for (int n = 0; n < N; n++) {
                        double want = 0.0, mag = 0.0;
                        for (int k = 0; k < K; k++) {
                            double bk = trans ? b[(size_t)n * ldb + k] : b[(size_t)k * ldb + n];
                            want += (double)a[i * K + k] * bk;
                            mag += fabs((double)a[i * K + k] * bk);
                        }
                        if (fabs(c[i * N + n] - want) > 1e-6 * (mag + 1.0))
                            fail_msg("gemm_packed trans %d N %d K %d: C[%d][%d] %g, not %g", trans, N, K, i, n,
                                     c[i * N + n], want);
                    }
                free(b); free(pk); free(a); free(c);
                checked++;
            }
    printf("gemm pack_b: %d shapes, panels bitwise equal to their definition, products within rounding\n", checked);
}

/* Ties and NaNs, as PyTorch's CPU kernel picks: the first maximum in reading order, a NaN over
 * anything, the last NaN of a window. Values from {0, 1, 2} (ties everywhere, like pooling
 * after a ReLU) and some NaNs; the 3x3 stride-2 fast path and the generic path against a
 * brute-force reference, through the output and the input gradient (where each output's
 * gradient lands). */
static void test_maxpool2d_ties_nan(void **state)
{
    (void)state;
    const int geoms[][5] = {{12, 12, 3, 2, 1}, {13, 11, 3, 2, 1}, {13, 13, 3, 2, 0}, {9, 10, 2, 2, 1}, {7, 9, 3, 1, 1}};
    for (size_t gi = 0; gi < sizeof geoms / sizeof geoms[0]; gi++) {
        int B = 2, C = 3, H = geoms[gi][0], W = geoms[gi][1], K = geoms[gi][2], S = geoms[gi][3], P = geoms[gi][4];
        sn_layer_t *l = sn_maxpool2d_pad_new("pool", C, H, W, K, S, P, B);
        assert_non_null(l);
        size_t nin = (size_t)B * l->in_size, nout = (size_t)B * l->out_size;
        float *x = malloc(nin * sizeof(float)), *dy = malloc(nout * sizeof(float));
        float *y = malloc(nout * sizeof(float)), *dx = calloc(nin, sizeof(float));
        for (size_t i = 0; i < nin; i++) {
            uint32_t h = (uint32_t)(i * 2654435761u) >> 7;
            x[i] = h % 23 == 0 ? NAN : (float)(h % 3);
        }
        for (size_t o = 0; o < nout; o++) dy[o] = (float)(o + 1);
        int OH = l->out_shape[1], OW = l->out_shape[2];
        for (int p = 0; p < B * C; p++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    const float *xc = x + (size_t)p * H * W;
                    int best = -1;
                    for (int r = oh * S - P; r < oh * S - P + K; r++)
                        for (int c = ow * S - P; c < ow * S - P + K; c++) {
                            if (r < 0 || r >= H || c < 0 || c >= W) continue;
                            float v = xc[r * W + c];
                            if (best < 0 || v > xc[best] || v != v) best = r * W + c;
                        }
                    size_t o = ((size_t)p * OH + oh) * OW + ow;
                    y[o] = xc[best];
                    dx[(size_t)p * H * W + best] += dy[o];
                }
        assert_int_equal(sn_layer_forward(l, &TRAIN, x, B), 0);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x, dy, B), 0);
        assert_memory_equal(l->output, y, nout * sizeof(float));   /* NaN bits included */
        assert_memory_equal(l->grad_input, dx, nin * sizeof(float));
        free(x); free(dy); free(y); free(dx);
        sn_layer_free(l);
    }
}

static void test_maxpool2d(void **state)
{
    (void)state;
    maxpool2d_cases("maxpool2d.bin", 0);
}

/* PyTorch's padding=P: implicit -inf around the plane, windows clipped at the border. */
static void test_maxpool2d_pad(void **state)
{
    (void)state;
    maxpool2d_cases("maxpool2d_pad.bin", 1);
    /* padding above K/2 would leave windows on padding only: refused, as PyTorch does */
    assert_null(sn_maxpool2d_pad_new("pool", 2, 5, 5, 3, 2, 2, 1));
    assert_non_null(strstr(sn_error_message(), "padding"));
}

/* Backward adds parameter gradients to the arena: two backward passes give twice the exact
 * gradient, within the bound of 2 B terms (the second pass adds one rounding per term). */
static void test_param_grads_accumulate(void **state)
{
    (void)state;
    const char *layer_name = "Linear (accumulate)";
    fx_file_t *f = fx_load("linear.bin");
    err_stat_t e[2] = {ERR_STAT("2dW"), ERR_STAT("2db")};
    for (int t = 0; t < 5; t++) {
        const fx_tensor_t *x = T(f, 't', t, "x", FX_F32), *w = T(f, 't', t, "w", FX_F32);
        int B = x->dims[0], in = x->dims[1], out = w->dims[0];
        sn_params_t p;
        sn_params_init(&p);
        sn_layer_t *l = sn_linear_new(&p, "lin", in, out, B);
        assert_int_equal(sn_params_alloc(&p), 0);
        memcpy(param_value(&p, "lin.weight"), w->data, w->count * sizeof(float));
        assert_int_equal(sn_layer_forward(l, &TRAIN, x->data, B), 0);
        for (int k = 0; k < 2; k++) assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, TF(f, t, "dy"), B), 0);
        const char *names[2] = {"dw", "db"};
        const float *got[2] = {param_grad(&p, "lin.weight"), param_grad(&p, "lin.bias")};
        size_t cnt[2] = {w->count, (size_t)out};
        for (int q = 0; q < 2; q++) {
            char key[32];
            /* doubling is exact in float32 and float64 */
            float *ref2 = malloc(cnt[q] * sizeof(float)), *d2 = malloc(cnt[q] * sizeof(float)),
                  *m2 = malloc(cnt[q] * sizeof(float));
            const float *ref = TF(f, t, names[q]);
            snprintf(key, sizeof key, "%s_d", names[q]);
            const float *d = TF(f, t, key);
            snprintf(key, sizeof key, "%s_mag", names[q]);
            const float *m = TF(f, t, key);
            for (size_t i = 0; i < cnt[q]; i++) {
                ref2[i] = 2.0f * ref[i];
                d2[i] = 2.0f * d[i];
                m2[i] = 2.0f * m[i];
            }
            char label[64];
            snprintf(label, sizeof label, "%s trial %d", layer_name, t);
            assert_true(check_exact(&e[q], label, got[q], ref2, d2, m2, B + 1, cnt[q], 2e-6, RTOL));
            free(ref2);
            free(d2);
            free(m2);
        }
        sn_layer_free(l);
        sn_params_free(&p);
    }
    fx_free(f);
}

/* ---- Dropout: the reference suite's property checks ----------------------------------------- */

static int is_close(float a, float b) { return fabsf(a - b) <= 1e-8f + 1e-5f * fabsf(b); }

static void test_dropout_properties(void **state)
{
    (void)state;
    enum { B = 2, N = 4 };
    float x[B * N], dy[B * N];
    for (int t = 0; t < 100; t++) {
        float p = 0.3f + 0.4f * sn_rng_uniform(5, 1, (uint64_t)t, 0, 0);
        sn_ctx_t ctx = {.training = 1, .seed = 11, .step = t};
        fill_uniform(x, B * N, -5, 5, 1000 + (uint64_t)t);
        fill_uniform(dy, B * N, -5, 5, 2000 + (uint64_t)t);
        sn_layer_t *l = sn_dropout_new("drop", N, p, B);
        assert_non_null(l);
        /* 1. every output is 0 or the input scaled by 1/(1-p) */
        assert_int_equal(sn_layer_forward(l, &ctx, x, B), 0);
        for (int i = 0; i < B * N; i++)
            assert_true(is_close(l->output[i], 0.0f) || is_close(l->output[i] * (1.0f - p), x[i]));
        /* 2. so is every input gradient, and it is zero exactly where the output is */
        assert_int_equal(sn_layer_backward(l, &ctx, x, dy, B), 0);
        for (int i = 0; i < B * N; i++) {
            assert_true(is_close(l->grad_input[i], 0.0f) || is_close(l->grad_input[i] * (1.0f - p), dy[i]));
            assert_int_equal(l->output[i] == 0.0f, l->grad_input[i] == 0.0f);
        }
        /* 3. evaluate mode is the identity, forward and backward */
        assert_int_equal(sn_layer_forward(l, &EVAL, x, B), 0);
        assert_memory_equal(l->output, x, sizeof x);
        assert_int_equal(sn_layer_backward(l, &EVAL, x, dy, B), 0);
        assert_memory_equal(l->grad_input, dy, sizeof dy);
        sn_layer_free(l);
        /* 4. p = 0 is the identity in training too */
        l = sn_dropout_new("drop", N, 0.0f, B);
        assert_int_equal(sn_layer_forward(l, &ctx, x, B), 0);
        assert_memory_equal(l->output, x, sizeof x);
        sn_layer_free(l);
        /* 5. p = 0.5 on inputs and gradients away from 0: the zeroed elements agree */
        l = sn_dropout_new("drop", N, 0.5f, B);
        fill_uniform(x, B * N, 5, 10, 3000 + (uint64_t)t);
        fill_uniform(dy, B * N, 5, 10, 4000 + (uint64_t)t);
        assert_int_equal(sn_layer_forward(l, &ctx, x, B), 0);
        assert_int_equal(sn_layer_backward(l, &ctx, x, dy, B), 0);
        for (int i = 0; i < B * N; i++)
            assert_int_equal(is_close(l->output[i], 0.0f), is_close(l->grad_input[i], 0.0f));
        sn_layer_free(l);
    }
    printf("parity %-34s n=100 property checks passed\n", "Dropout");
}

/* The mask is drawn per element, not per row or column: 1000x1 and 1x1000 inputs with p=0.8
 * keep about 20% of the elements each (binomial: 200 +- 13; accept 130..270). */
static void test_dropout_independence(void **state)
{
    (void)state;
    const int shapes[2][2] = {{1000, 1}, {1, 1000}};
    for (int s = 0; s < 2; s++) {
        int B = shapes[s][0], N = shapes[s][1];
        float *x = malloc(1000 * sizeof(float));
        fill_uniform(x, 1000, 5, 10, 77 + (uint64_t)s);
        sn_layer_t *l = sn_dropout_new("drop", N, 0.8f, B);
        assert_non_null(l);
        for (int step = 0; step < 3; step++) {
            sn_ctx_t ctx = {.training = 1, .seed = 3, .step = step};
            assert_int_equal(sn_layer_forward(l, &ctx, x, B), 0);
            int kept = 0;
            for (int i = 0; i < 1000; i++) kept += l->output[i] != 0.0f;
            assert_true(kept != 0 && kept != 1000);
            assert_in_range(kept, 130, 270);
        }
        sn_layer_free(l);
        free(x);
    }
}

/* A sample's mask is a function of (seed, layer, step, global sample index): the same sample
 * in another batch position gets the same mask; another step gets a different one. */
static void test_dropout_mask_keyed_by_sample(void **state)
{
    (void)state;
    enum { N = 64 };
    float x[3 * N];
    for (int i = 0; i < 3 * N; i++) x[i] = 1.0f;
    sn_layer_t *l = sn_dropout_new("drop", N, 0.5f, 3);
    int64_t ids_a[3] = {10, 11, 12}, ids_b[3] = {12, 10, 11};
    sn_ctx_t a = {.training = 1, .seed = 9, .step = 4, .sample_ids = ids_a};
    sn_ctx_t b = {.training = 1, .seed = 9, .step = 4, .sample_ids = ids_b};
    sn_ctx_t c = {.training = 1, .seed = 9, .step = 5, .sample_ids = ids_a};
    float ya[3 * N];
    assert_int_equal(sn_layer_forward(l, &a, x, 3), 0);
    memcpy(ya, l->output, sizeof ya);
    assert_int_equal(sn_layer_forward(l, &b, x, 3), 0);
    assert_memory_equal(l->output + 1 * N, ya + 0 * N, N * sizeof(float));   /* sample 10 */
    assert_memory_equal(l->output + 0 * N, ya + 2 * N, N * sizeof(float));   /* sample 12 */
    assert_int_equal(sn_layer_forward(l, &c, x, 3), 0);
    assert_true(memcmp(l->output, ya, sizeof ya) != 0);
    sn_layer_free(l);
}

int main(void)
{
    if (blas_core_unavailable()) return run_skipped_group();
    /* The shapes here are tiny: one thread keeps OpenMP start-up costs out of the run time
     * on a busy machine. The bits do not depend on it (test_threads checks that). */
    sn_kernels_set_threads(1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_log_softmax),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_batchnorm_scaling),
        cmocka_unit_test(test_relu),
        cmocka_unit_test(test_leaky_relu),
        cmocka_unit_test(test_elu),
        cmocka_unit_test(test_softplus),
        cmocka_unit_test(test_nll_unstable),
        cmocka_unit_test(test_nll),
        cmocka_unit_test(test_nll_rejects_bad_targets),
        cmocka_unit_test(test_conv2d),
        cmocka_unit_test(test_conv2d_batched),
        cmocka_unit_test(test_conv2d_winograd),
        cmocka_unit_test(test_maxpool2d),
        cmocka_unit_test(test_maxpool2d_pad),
        cmocka_unit_test(test_maxpool2d_ties_nan),
        cmocka_unit_test(test_im2col_flat),
        cmocka_unit_test(test_gemm_pack_b),
        cmocka_unit_test(test_param_grads_accumulate),
        cmocka_unit_test(test_dropout_properties),
        cmocka_unit_test(test_dropout_independence),
        cmocka_unit_test(test_dropout_mask_keyed_by_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
