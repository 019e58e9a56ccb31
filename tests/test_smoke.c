/* test_smoke.c: builds the MNIST ConvNet shape out of library layers and runs a step. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include "shardnet/layers.h"
#include "shardnet/loss.h"

static void test_convnet_step(void **state)
{
    (void)state;
    sn_params_t p;
    sn_params_init(&p);
    int B = 4;
    sn_layer_t *net = sn_sequential_new("net", B);
    assert_int_equal(sn_sequential_add(net, sn_conv2d_new(&p, "conv1", 1, 28, 28, 16, 3, 1, 0, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_relu_new("relu1", 16 * 26 * 26, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_conv2d_new(&p, "conv2", 16, 26, 26, 32, 3, 1, 0, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_relu_new("relu2", 32 * 24 * 24, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_maxpool2d_new("pool", 32, 24, 24, 2, 2, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_dropout_new("drop1", 32 * 12 * 12, 0.1f, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_flatten_new("flat", 3, (int[]){32, 12, 12}, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_linear_new(&p, "fc1", 4608, 64, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_relu_new("relu3", 64, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_dropout_new("drop2", 64, 0.25f, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_linear_new(&p, "fc2", 64, 10, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_log_softmax_new("logp", 10, B)), 0);
    assert_int_equal(sn_params_alloc(&p), 0);
    assert_int_equal((int)p.trainable_total >= 300426, 1);
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
    sn_layer_free(net);
    sn_params_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_convnet_step)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
