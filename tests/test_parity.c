/*
 * test_parity.c: the layer library against PyTorch, in the Torch7-protocol style of the
 * reference suite (modules.py tests). Each fixture (tests/gen_fixtures.py) holds 100
 * trials of a fresh layer with PyTorch's random parameters, a random input and a random
 * output gradient; the test copies the parameters into the shardnet arena, runs
 * forward and backward, and compares output, input gradient and parameter gradients.
 *
 * Tolerances are the reference suite's np.allclose(ref, got, atol) with numpy's default
 * rtol 1e-5: atol 1e-6 for Linear, activations, NLL and the BatchNormalization output,
 * 1e-5 for SoftMax/LogSoftMax, 1e-4 for the BatchNormalization input gradient. Conv2d
 * and MaxPool2d (not in the reference suite) use atol 1e-5 with their long sums scaled
 * in (see test_conv2d). Each test prints one line with its largest absolute errors.
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
    char key[64];
    snprintf(key, sizeof key, "%c%d.%s", prefix, trial, name);
    return fx_get(f, key, dtype);
}
static const float *TF(const fx_file_t *f, int trial, const char *name)
{
    return T(f, 't', trial, name, FX_F32)->data;
}

#define CHECK(stat, ...)                                                          \
    do {                                                                          \
        char label_[96];                                                          \
        snprintf(label_, sizeof label_, "%s trial %d", layer_name, t);            \
        assert_true(allclose((stat), label_, __VA_ARGS__));                       \
    } while (0)

/* ---- Linear -------------------------------------------------------------------------- */

static void test_linear(void **state)
{
    (void)state;
    const char *layer_name = "Linear";
    fx_file_t *f = fx_load("linear.bin");
    int n = fx_int(f, "n_trials");
    err_stat_t e[4] = {{"y", 0, 0}, {"dx", 0, 0}, {"dW", 0, 0}, {"db", 0, 0}};
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
        CHECK(&e[0], l->output, TF(f, t, "y"), (size_t)B * out, 1e-6, RTOL);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, TF(f, t, "dy"), B), 0);
        CHECK(&e[1], l->grad_input, TF(f, t, "dx"), (size_t)B * in, 1e-6, RTOL);
        CHECK(&e[2], param_grad(&p, "lin.weight"), TF(f, t, "dw"), w->count, 1e-6, RTOL);
        CHECK(&e[3], param_grad(&p, "lin.bias"), TF(f, t, "db"), (size_t)out, 1e-6, RTOL);
        sn_layer_free(l);
        sn_params_free(&p);
    }
    print_errors("parity", layer_name, n, e, 4);
    fx_free(f);
}

/* ---- SoftMax / LogSoftMax -------------------------------------------------------------- */

/* Limits for the input gradient under the reference suite's dy = 1/p (up to 1e5): then
 * dx = y (dy - <dy, y>) (SoftMax) or dy - e^y sum(dy) (LogSoftMax) is a difference of
 * nearly equal terms, and one float32 rounding of y or of the sum (PyTorch uses Sleef's
 * expf and float sums, shardnet sums in double) moves it by ulp(|dy|), up to 1e-2: no two
 * float32 implementations agree within 1e-5 there. The limit adds 8 unit roundoffs of the
 * terms' magnitude to the reference tolerance: a forward-error bound, still far below any
 * formula or indexing error. */
static void softmax_grad_limits(double *lim, const float *y, const float *dy, const float *ref,
                                int B, int n, int log)
{
    const double u = 0x1p-24;
    for (int b = 0; b < B; b++) {
        const float *yr = y + (size_t)b * n, *g = dy + (size_t)b * n;
        double s = 0.0;
        for (int i = 0; i < n; i++) s += log ? fabs((double)g[i]) : fabs((double)g[i] * yr[i]);
        for (int i = 0; i < n; i++) {
            size_t k = (size_t)b * n + i;
            double terms = log ? fabs((double)g[i]) + exp((double)yr[i]) * s : (fabs((double)g[i]) + s) * yr[i];
            lim[k] = 1e-5 + RTOL * fabs((double)ref[k]) + 8.0 * u * terms;
        }
    }
}

static void softmax_case(const char *file, int log)
{
    const char *layer_name = log ? "LogSoftMax" : "SoftMax";
    fx_file_t *f = fx_load(file);
    int n = fx_int(f, "n_trials");
    err_stat_t e[3] = {{"y", 0, 0}, {"dx", 0, 0}, {"dx(dy=1/p)", 0, 0}};
    for (int t = 0; t < n; t++) {
        const fx_tensor_t *x = T(f, 't', t, "x", FX_F32);
        int B = x->dims[0], C = x->dims[1];
        sn_layer_t *l = log ? sn_log_softmax_new("sm", C, B) : sn_softmax_new("sm", C, B);
        assert_non_null(l);
        assert_int_equal(sn_layer_forward(l, &TRAIN, x->data, B), 0);
        CHECK(&e[0], l->output, TF(f, t, "y"), x->count, 1e-5, RTOL);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, TF(f, t, "dy"), B), 0);
        CHECK(&e[1], l->grad_input, TF(f, t, "dx"), x->count, 1e-5, RTOL);
        /* the reference suite's dy */
        const float *dy_ref = TF(f, t, "dy_ref"), *dx_ref = TF(f, t, "dx_ref");
        double *lim = malloc(x->count * sizeof(double));
        softmax_grad_limits(lim, TF(f, t, "y"), dy_ref, dx_ref, B, C, log);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, dy_ref, B), 0);
        char label[64];
        snprintf(label, sizeof label, "%s trial %d", layer_name, t);
        assert_true(allclose_lim(&e[2], label, l->grad_input, dx_ref, x->count, lim));
        free(lim);
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
    err_stat_t e[10] = {{"y", 0, 0}, {"dx", 0, 0}, {"mean", 0, 0}, {"var", 0, 0}, {"y_eval", 0, 0},
                        {"dx_eval", 0, 0}, {"dgamma", 0, 0}, {"dbeta", 0, 0}, {"dgamma_eval", 0, 0},
                        {"dbeta_eval", 0, 0}};
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
        assert_int_equal(sn_layer_forward(l, &TRAIN, x->data, B), 0);
        CHECK(&e[0], l->output, TF(f, t, "y"), x->count, 1e-6, RTOL);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, dy, B), 0);
        CHECK(&e[1], l->grad_input, TF(f, t, "dx"), x->count, 1e-4, RTOL);
        CHECK(&e[2], param_value(&p, "bn.running_mean"), TF(f, t, "rm"), (size_t)C, 1e-6, RTOL);
        CHECK(&e[3], param_value(&p, "bn.running_var"), TF(f, t, "rv"), (size_t)C, 1e-6, RTOL);
        if (affine) {
            CHECK(&e[6], param_grad(&p, "sc.weight"), TF(f, t, "dgamma"), (size_t)C, 1e-6, RTOL);
            CHECK(&e[7], param_grad(&p, "sc.bias"), TF(f, t, "dbeta"), (size_t)C, 1e-6, RTOL);
            sn_params_zero_grad(&p);
        }
        /* evaluate: the moving statistics just updated, the batch's are not used */
        assert_int_equal(sn_layer_forward(l, &EVAL, x->data, B), 0);
        CHECK(&e[4], l->output, TF(f, t, "y_eval"), x->count, 1e-6, RTOL);
        assert_int_equal(sn_layer_backward(l, &EVAL, x->data, dy, B), 0);
        CHECK(&e[5], l->grad_input, TF(f, t, "dx_eval"), x->count, 1e-6, RTOL);
        if (affine) {
            CHECK(&e[8], param_grad(&p, "sc.weight"), TF(f, t, "dgamma_eval"), (size_t)C, 1e-6, RTOL);
            CHECK(&e[9], param_grad(&p, "sc.bias"), TF(f, t, "dbeta_eval"), (size_t)C, 1e-6, RTOL);
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
    err_stat_t e[2] = {{"y", 0, 0}, {"dx", 0, 0}};
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
        CHECK(&e[0], l->output, TF(f, t, "y"), x->count, 1e-6, RTOL);
        assert_int_equal(sn_layer_backward(l, &TRAIN, x->data, TF(f, t, "dy"), B), 0);
        CHECK(&e[1], l->grad_input, TF(f, t, "dx"), x->count, 1e-6, RTOL);
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
    err_stat_t e[6] = {{"loss", 0, 0}, {"dx", 0, 0}, {"loss_onehot", 0, 0}, {"dx_onehot", 0, 0},
                       {"logsoftmax", 0, 0}, {"dlogits", 0, 0}};
    for (int t = 0; t < n; t++) {
        const fx_tensor_t *x = T(f, 't', t, unstable ? "p" : "logp", FX_F32);
        int B = x->dims[0], C = x->dims[1];
        const int32_t *target = T(f, 't', t, "target", FX_I32)->data;
        const float *dref = TF(f, t, unstable ? "dp" : "dlogp");
        float scale = 1.0f / (float)B, *oh = one_hot(target, B, C);
        float *dx = malloc(x->count * sizeof(float));
        double sum;
        float loss;
        if (unstable) assert_int_equal(sn_nll_unstable_forward(&sum, x->data, target, B, C), 0);
        else assert_int_equal(sn_nll_forward(&sum, x->data, target, B, C), 0);
        loss = (float)(sum / B);
        CHECK(&e[0], &loss, TF(f, t, "loss"), 1, 1e-6, RTOL);
        if (unstable) assert_int_equal(sn_nll_unstable_backward(dx, x->data, target, B, C, scale), 0);
        else assert_int_equal(sn_nll_backward(dx, target, B, C, scale), 0);
        CHECK(&e[1], dx, dref, x->count, 1e-6, RTOL);

        if (unstable) assert_int_equal(sn_nll_unstable_onehot_forward(&sum, x->data, oh, B, C), 0);
        else assert_int_equal(sn_nll_onehot_forward(&sum, x->data, oh, B, C), 0);
        loss = (float)(sum / B);
        CHECK(&e[2], &loss, TF(f, t, "loss"), 1, 1e-6, RTOL);
        memset(dx, 0xff, x->count * sizeof(float));   /* NaN: every element must be written */
        if (unstable) assert_int_equal(sn_nll_unstable_onehot_backward(dx, x->data, oh, B, C, scale), 0);
        else assert_int_equal(sn_nll_onehot_backward(dx, oh, B, C, scale), 0);
        CHECK(&e[3], dx, dref, x->count, 1e-6, RTOL);

        if (!unstable) {   /* LogSoftMax + NLLCriterion, the ConvNet's head, on the logits */
            sn_layer_t *l = sn_log_softmax_new("logp", C, B);
            assert_non_null(l);
            const float *logits = TF(f, t, "logits");
            assert_int_equal(sn_layer_forward(l, &TRAIN, logits, B), 0);
            CHECK(&e[4], l->output, x->data, x->count, 1e-5, RTOL);
            assert_int_equal(sn_nll_backward(dx, target, B, C, scale), 0);
            assert_int_equal(sn_layer_backward(l, &TRAIN, logits, dx, B), 0);
            CHECK(&e[5], l->grad_input, TF(f, t, "dlogits"), x->count, 1e-6, RTOL);
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

/* Convolution outputs and gradients are sums of up to B*OH*OW products of values up to 10,
 * so float32 rounding grows with their length: the tolerance is atol 1e-5 + rtol 1e-5 of
 * the tensor's largest magnitude (not of each element), which still catches any wrong
 * index, missing term or padding mistake (those give errors of order 1). */
static int allclose_scaled(err_stat_t *e, const char *label, const float *got, const float *ref, size_t n)
{
    double mx = 0.0;
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs((double)ref[i]));
    return allclose(e, label, got, ref, n, 1e-5 + 1e-5 * mx, 0.0);
}

static void test_conv2d(void **state)
{
    (void)state;
    fx_file_t *f = fx_load("conv2d.bin");
    int n = fx_int(f, "n_cases");
    err_stat_t e[4] = {{"y", 0, 0}, {"dx", 0, 0}, {"dW", 0, 0}, {"db", 0, 0}};
    for (int c = 0; c < n; c++) {
        const int32_t *g = T(f, 'c', c, "geom", FX_I32)->data;
        int B = g[0], C = g[1], H = g[2], W = g[3], OC = g[4], K = g[5], S = g[6], P = g[7];
        char label[96];
        snprintf(label, sizeof label, "Conv2d B%d %dx%dx%d -> %d K%d S%d P%d", B, C, H, W, OC, K, S, P);
        sn_params_t p;
        sn_params_init(&p);
        sn_layer_t *l = sn_conv2d_new(&p, "conv", C, H, W, OC, K, S, P, B);
        assert_non_null(l);
        assert_int_equal(sn_params_alloc(&p), 0);
        const fx_tensor_t *y = T(f, 'c', c, "y", FX_F32), *w = T(f, 'c', c, "w", FX_F32);
        assert_int_equal((int)l->out_size * B, (int)y->count);
        memcpy(param_value(&p, "conv.weight"), w->data, w->count * sizeof(float));
        memcpy(param_value(&p, "conv.bias"), T(f, 'c', c, "b", FX_F32)->data, (size_t)OC * sizeof(float));
        const float *x = T(f, 'c', c, "x", FX_F32)->data;
        assert_int_equal(sn_layer_forward(l, &TRAIN, x, B), 0);
        assert_true(allclose_scaled(&e[0], label, l->output, y->data, y->count));
        assert_int_equal(sn_layer_backward(l, &TRAIN, x, T(f, 'c', c, "dy", FX_F32)->data, B), 0);
        assert_true(allclose_scaled(&e[1], label, l->grad_input, T(f, 'c', c, "dx", FX_F32)->data, (size_t)B * l->in_size));
        assert_true(allclose_scaled(&e[2], label, param_grad(&p, "conv.weight"), T(f, 'c', c, "dw", FX_F32)->data, w->count));
        assert_true(allclose_scaled(&e[3], label, param_grad(&p, "conv.bias"), T(f, 'c', c, "db", FX_F32)->data, (size_t)OC));
        sn_layer_free(l);
        sn_params_free(&p);
    }
    print_errors("parity", "Conv2d", n, e, 4);
    fx_free(f);
}

static void test_maxpool2d(void **state)
{
    (void)state;
    fx_file_t *f = fx_load("maxpool2d.bin");
    int n = fx_int(f, "n_cases");
    err_stat_t e[2] = {{"y", 0, 0}, {"dx", 0, 0}};
    for (int c = 0; c < n; c++) {
        const int32_t *g = T(f, 'c', c, "geom", FX_I32)->data;
        int B = g[0], C = g[1], H = g[2], W = g[3], K = g[4], S = g[5];
        char label[96];
        snprintf(label, sizeof label, "MaxPool2d B%d %dx%dx%d K%d S%d", B, C, H, W, K, S);
        sn_layer_t *l = sn_maxpool2d_new("pool", C, H, W, K, S, B);
        assert_non_null(l);
        const fx_tensor_t *y = T(f, 'c', c, "y", FX_F32);
        assert_int_equal((int)l->out_size * B, (int)y->count);
        const float *x = T(f, 'c', c, "x", FX_F32)->data;
        assert_int_equal(sn_layer_forward(l, &TRAIN, x, B), 0);
        /* a maximum is a copy and a gradient a sum of at most K*K copies: exact or nearly */
        assert_true(allclose(&e[0], label, l->output, y->data, y->count, 0.0, 0.0));
        assert_int_equal(sn_layer_backward(l, &TRAIN, x, T(f, 'c', c, "dy", FX_F32)->data, B), 0);
        assert_true(allclose(&e[1], label, l->grad_input, T(f, 'c', c, "dx", FX_F32)->data,
                             (size_t)B * l->in_size, 1e-6, RTOL));
        sn_layer_free(l);
    }
    print_errors("parity", "MaxPool2d", n, e, 2);
    fx_free(f);
}

/* Backward adds parameter gradients to the arena: two backward passes give twice PyTorch's. */
static void test_param_grads_accumulate(void **state)
{
    (void)state;
    const char *layer_name = "Linear (accumulate)";
    fx_file_t *f = fx_load("linear.bin");
    err_stat_t e[2] = {{"2dW", 0, 0}, {"2db", 0, 0}};
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
        float *dw2 = malloc(w->count * sizeof(float)), db2[16];
        for (size_t i = 0; i < w->count; i++) dw2[i] = 2.0f * TF(f, t, "dw")[i];
        for (int o = 0; o < out; o++) db2[o] = 2.0f * TF(f, t, "db")[o];
        CHECK(&e[0], param_grad(&p, "lin.weight"), dw2, w->count, 2e-6, RTOL);
        CHECK(&e[1], param_grad(&p, "lin.bias"), db2, (size_t)out, 2e-6, RTOL);
        free(dw2);
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
        cmocka_unit_test(test_maxpool2d),
        cmocka_unit_test(test_param_grads_accumulate),
        cmocka_unit_test(test_dropout_properties),
        cmocka_unit_test(test_dropout_independence),
        cmocka_unit_test(test_dropout_mask_keyed_by_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
