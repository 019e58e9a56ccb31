/* test_smoke.c: the MNIST ConvNet builder (parameter count, one forward/backward step), error messages,
 * and the choice of OpenBLAS kernels (the CLI re-runs itself with OPENBLAS_CORETYPE on that answer). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kernels.h"
#include "shardnet/layers.h"
#include "shardnet/loss.h"
#include "shardnet/model.h"

static void test_convnet_step(void **state)
{
    (void)state;
    int B = 4;
    sn_model_t model;
    assert_int_equal(sn_mnist_convnet_new(&model, B, 0.1f, 0.25f), 0);
    sn_layer_t *net = model.net;
    sn_params_t p = model.params;
    assert_int_equal((int)sn_params_count(&p), 300426);
    sn_layer_reset(net, 0);
    float *x = calloc((size_t)B * 784, sizeof(float));
    for (int i = 0; i < B * 784; i++) x[i] = (float)((i * 37) % 101) / 101.0f;
    sn_ctx_t ctx = {.training = 1, .seed = 0, .step = 0};
    assert_int_equal(sn_layer_forward(net, &ctx, x, B), 0);
    int target[4] = {1, 2, 3, 4};
    double loss;
    assert_int_equal(sn_nll_forward(&loss, net->output, target, B, 10), 0);
    assert_true(loss / B > 1.5 && loss / B < 3.5);
    float dl[40];
    assert_int_equal(sn_nll_backward(dl, target, B, 10, 1.0f / B), 0);
    net->need_grad_input = 0;
    assert_int_equal(sn_layer_backward(net, &ctx, x, dl, B), 0);
    double gsum = 0;
    for (size_t i = 0; i < p.trainable_total; i++) gsum += p.grads[i] * p.grads[i];
    assert_true(gsum > 0.0);
    free(x);
    sn_model_free(&model);
}

/* A message may wrap the previous one: the context goes in front, nothing is garbled. */
static void test_error_wraps_previous(void **state)
{
    (void)state;
    char inner[600];
    memset(inner, 'x', sizeof inner - 1);
    inner[sizeof inner - 1] = '\0';
    assert_int_equal(SN_FAIL(SN_EIO, "inner %s", inner), SN_EIO);
    assert_int_equal(SN_FAIL(SN_EFORMAT, "outer.h5: %s", sn_error_message()), SN_EFORMAT);
    const char *m = sn_error_message();
    assert_non_null(strstr(m, ": outer.h5: test_smoke.c:"));
    const char *in = strstr(m, ": inner ");
    assert_non_null(in);
    assert_int_equal(strspn(in + 8, "x"), strlen(in + 8));   /* the inner text, cut at the buffer's end */
    assert_true(strlen(in + 8) > 100);
}

/* A generic or AVX2-only family on a CPU with AVX-512 is replaced by SkylakeX, a generic one
 * on an AVX2 CPU by Haswell; a family that already matches the CPU is kept. */
static void test_blas_core_choice(void **state)
{
    (void)state;
    static const struct { const char *core; int avx512, avx2; const char *want; } cases[] = {
        {"Prescott", 1, 1, "SkylakeX"}, {"Sandybridge", 1, 1, "SkylakeX"}, {"Haswell", 1, 1, "SkylakeX"},
        {"Zen", 1, 1, "SkylakeX"},      {"ZEN", 1, 1, "SkylakeX"},         {"Prescott", 0, 1, "Haswell"},
        {"Nehalem", 0, 1, "Haswell"},   {"Core2", 0, 1, "Haswell"},        {"Haswell", 0, 1, NULL},
        {"Zen", 0, 1, NULL},            {"SkylakeX", 1, 1, NULL},          {"Cooperlake", 1, 1, NULL},
        {"Prescott", 0, 0, NULL},       {"Neoversen1", 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = sn_kernels_blas_core_for(cases[i].core, cases[i].avx512, cases[i].avx2);
        if (!cases[i].want) assert_null(got);
        else assert_string_equal(got, cases[i].want);
    }
    assert_null(sn_kernels_blas_core_for(NULL, 1, 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_convnet_step), cmocka_unit_test(test_error_wraps_previous),
                                       cmocka_unit_test(test_blas_core_choice)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
