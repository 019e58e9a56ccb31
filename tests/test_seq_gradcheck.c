/*
 * test_seq_gradcheck.c: central-difference gradient checks (ctest label gradcheck) for
 * the sequence and encoder layers: LSTM (inputs and parameters over unsorted lengths,
 * initial-state and final-state gradients), Embedding, BatchNorm2d/1d in training and
 * evaluation, global average pooling, Residual, masked NLL.
 * Float forward passes limit the accuracy: tolerances are relative, 5e-3.
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
#include "shardnet/layers.h"
#include "shardnet/rng.h"
#include "shardnet/resnet.h"
#include "shardnet/sequence.h"

#define TOL 5e-3

static void fill(float *x, size_t n, uint64_t key, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * sn_rng_uniform(31, 6, key, 0, i) - 1.0f);
}

static void check_layer(sn_layer_t *l, sn_params_t *p, const sn_ctx_t *ctx, int B, float h, const char *what)
{
    float *x = malloc((size_t)B * l->in_size * sizeof(float));
    fill(x, (size_t)B * l->in_size, 1, 1.0f);
    gc_result_t r = gradcheck_layer(l, p, ctx, x, B, h);
    fprintf(stderr, "  %-34s input %.3g  params %.3g\n", what, r.max_err_input, r.max_err_param);
    assert_true(r.max_err_input < TOL);
    assert_true(r.max_err_param < TOL);
    free(x);
}

static void test_lstm_protocol(void **s)
{
    (void)s;
    for (int L = 1; L <= 2; L++) {
        int B = 3, T = 4, F = 3, H = 4;
        sn_params_t p;
        sn_params_init(&p);
        sn_layer_t *l = sn_lstm_new(&p, "lstm", F, H, L, T, B);
        assert_non_null(l);
        assert_int_equal(sn_params_alloc(&p), 0);
        sn_layer_reset(l, 5);
        int len[3] = {2, 4, 1};
        sn_ctx_t ctx = {.training = 1, .lengths = len};
        check_layer(l, &p, &ctx, B, 5e-3f, L == 1 ? "LSTM 1 layer, lengths 2 4 1" : "LSTM 2 layers, lengths 2 4 1");
        sn_layer_free(l);
        sn_params_free(&p);
    }
}

/* loss = sum(y gy) + sum(h_n ghn) + sum(c_n gcn) as a function of h0 and c0 */
static double lstm_loss(sn_layer_t *l, const float *x, int B, int T, const int *len, const float *h0,
                        const float *c0, const float *gy, const float *ghn, const float *gcn, size_t ny, size_t nst)
{
    if (sn_lstm_forward_seq(l, x, B, T, len, h0, c0) != 0) abort();
    double s = 0.0;
    for (size_t i = 0; i < ny; i++) s += (double)l->output[i] * gy[i];
    for (size_t i = 0; i < nst; i++) s += (double)sn_lstm_h_n(l)[i] * ghn[i] + (double)sn_lstm_c_n(l)[i] * gcn[i];
    return s;
}

static void test_lstm_states(void **s)
{
    (void)s;
    int B = 3, T = 3, F = 2, H = 3, L = 2;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_lstm_new(&p, "lstm", F, H, L, T, B);
    assert_non_null(l);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 6);
    int len[3] = {3, 1, 2};
    size_t nx = (size_t)B * T * F, ny = (size_t)B * T * H, nst = (size_t)L * B * H;
    float *x = malloc(nx * sizeof(float)), *gy = malloc(ny * sizeof(float));
    float *st[2], *g[2], *dst[2];
    float *ghn = malloc(nst * sizeof(float)), *gcn = malloc(nst * sizeof(float));
    fill(x, nx, 2, 1.0f);
    fill(gy, ny, 3, 1.0f);
    fill(ghn, nst, 4, 1.0f);
    fill(gcn, nst, 5, 1.0f);
    for (int k = 0; k < 2; k++) {
        st[k] = malloc(nst * sizeof(float));
        dst[k] = malloc(nst * sizeof(float));
        fill(st[k], nst, 6 + k, 0.8f);
    }
    lstm_loss(l, x, B, T, len, st[0], st[1], gy, ghn, gcn, ny, nst);
    l->need_grad_input = 1;
    assert_int_equal(sn_lstm_backward_seq(l, gy, ghn, gcn, dst[0], dst[1]), 0);
    g[0] = dst[0];
    g[1] = dst[1];
    double err = 0.0;
    const float h = 5e-3f;
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < nst; i++) {
            float keep = st[k][i];
            st[k][i] = keep + h;
            double lp = lstm_loss(l, x, B, T, len, st[0], st[1], gy, ghn, gcn, ny, nst);
            st[k][i] = keep - h;
            double lm = lstm_loss(l, x, B, T, len, st[0], st[1], gy, ghn, gcn, ny, nst);
            st[k][i] = keep;
            double num = (lp - lm) / (2.0 * h);
            err = fmax(err, fabs(g[k][i] - num) / fmax(1.0, fabs(num)));
        }
    fprintf(stderr, "  %-34s dh0/dc0 %.3g\n", "LSTM initial/final states", err);
    assert_true(err < TOL);
    for (int k = 0; k < 2; k++) { free(st[k]); free(dst[k]); }
    free(x); free(gy); free(ghn); free(gcn);
    sn_layer_free(l);
    sn_params_free(&p);
}

static void test_embedding(void **s)
{
    (void)s;
    int V = 5, D = 3, B = 2, T = 4;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_embedding_new(&p, "emb", V, D, T, B);
    assert_non_null(l);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 7);
    int32_t ids[8] = {1, 4, 1, 1, 0, 4, 2, 1};
    float r[24];
    fill(r, 24, 8, 1.0f);
    assert_int_equal(sn_embedding_forward_ids(l, ids, B, T), 0);
    assert_int_equal(sn_embedding_backward_ids(l, ids, r, B, T), 0);
    double err = 0.0;
    const float h = 1e-2f;
    for (int i = 0; i < V * D; i++) {
        float keep = p.values[i];
        double lv[2];
        for (int k = 0; k < 2; k++) {
            p.values[i] = keep + (k ? -h : h);
            assert_int_equal(sn_embedding_forward_ids(l, ids, B, T), 0);
            lv[k] = 0.0;
            for (int j = 0; j < 24; j++) lv[k] += (double)l->output[j] * r[j];
        }
        p.values[i] = keep;
        double num = (lv[0] - lv[1]) / (2.0 * h);
        err = fmax(err, fabs(p.grads[i] - num) / fmax(1.0, fabs(num)));
    }
    fprintf(stderr, "  %-34s dweight %.3g\n", "Embedding (repeated ids)", err);
    assert_true(err < TOL);
    sn_layer_free(l);
    sn_params_free(&p);
}

static void test_batchnorm(void **s)
{
    (void)s;
    for (int mode = 0; mode < 2; mode++) {
        sn_ctx_t ctx = {.training = mode == 0};
        sn_params_t p;
        sn_params_init(&p);
        sn_layer_t *l2 = sn_batchnorm2d_new(&p, "bn2", 2, 3, 2, 0.9f, 3);
        sn_layer_t *l1 = sn_batchnorm1d_new(&p, "bn1", 4, 0.9f, 3);
        sn_layer_t *lr = sn_batchnorm2d_relu_new(&p, "bnr", 2, 3, 2, 0.9f, 3);
        assert_non_null(l2);
        assert_non_null(lr);
        assert_non_null(l1);
        assert_int_equal(sn_params_alloc(&p), 0);
        sn_layer_reset(l2, 0);
        sn_layer_reset(l1, 0);
        sn_layer_reset(lr, 0);
        fill(p.values, p.trainable_total, 9, 0.5f);   /* weight and bias away from 1 and 0 */
        for (size_t i = 0; i < p.trainable_total; i++) p.values[i] += 1.0f;
        if (mode == 1) {   /* evaluate with moving statistics that are not 0 and 1 */
            float x[36];
            fill(x, 36, 10, 2.0f);
            sn_ctx_t tr = {.training = 1};
            assert_int_equal(sn_layer_forward(l2, &tr, x, 3), 0);
            assert_int_equal(sn_layer_forward(l1, &tr, x, 3), 0);
            assert_int_equal(sn_layer_forward(lr, &tr, x, 3), 0);
        }
        check_layer(l2, &p, &ctx, 3, 1e-2f, mode ? "BatchNorm2d evaluate" : "BatchNorm2d training");
        check_layer(l1, &p, &ctx, 3, 1e-2f, mode ? "BatchNorm1d evaluate" : "BatchNorm1d training");
        check_layer(lr, &p, &ctx, 3, 1e-2f, mode ? "BatchNorm2d+ReLU evaluate" : "BatchNorm2d+ReLU training");
        sn_layer_free(l2);
        sn_layer_free(lr);
        sn_layer_free(l1);
        sn_params_free(&p);
    }
}

static void test_global_avgpool(void **s)
{
    (void)s;
    sn_layer_t *l = sn_global_avgpool_new("gap", 3, 2, 5, 2);
    assert_non_null(l);
    check_layer(l, NULL, NULL, 2, 1e-2f, "GlobalAvgPool");
    float x[60];
    fill(x, 60, 11, 1.0f);
    assert_int_equal(sn_layer_forward(l, NULL, x, 2), 0);
    for (int r = 0; r < 6; r++) {
        double m = 0.0;
        for (int i = 0; i < 10; i++) m += x[r * 10 + i];
        assert_true(fabs(l->output[r] - m / 10) < 1e-7);
    }
    sn_layer_free(l);
}

static void test_residual(void **s)
{
    (void)s;
    int B = 2, C = 2, S = 3;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *body = sn_sequential_new("body", B);
    assert_int_equal(sn_sequential_add(body, sn_conv2d_new(&p, "c1", C, S, S, C, 3, 1, 1, B)), 0);
    assert_int_equal(sn_sequential_add(body, sn_batchnorm2d_new(&p, "bn", C, S, S, 0.9f, B)), 0);
    sn_layer_t *res = sn_residual_new("res", body, NULL, B);   /* identity shortcut */
    assert_non_null(res);
    sn_layer_t *body2 = sn_conv2d_new(&p, "c2", C, S, S, 3, 3, 1, 1, B);
    sn_layer_t *res2 = sn_residual_new("res2", body2, sn_conv2d_new(&p, "sc", C, S, S, 3, 1, 1, 0, B), B);
    assert_non_null(res2);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(res, 1);
    sn_layer_reset(res2, 2);
    check_layer(res, &p, NULL, B, 1e-2f, "Residual, identity shortcut");
    check_layer(res2, &p, NULL, B, 1e-2f, "Residual, 1x1 conv shortcut");
    sn_layer_free(res);
    sn_layer_free(res2);
    sn_params_free(&p);
}

/* torchvision's two ResNet blocks with a downsample (stride 2, channels change), in
 * training mode: conv (no bias), batch norm, ReLU, residual add, ReLU; every parameter.
 * h = 3e-3: batch norm over 18 values per channel curves the loss strongly, so h = 1e-2
 * leaves an O(h^2) truncation error near TOL (5e-3 at 1e-2, 5e-4 at 3e-3, as h^2 predicts).
 * One thread: some 600 forwards of tiny layers would mostly time OpenMP fork/join on a
 * busy machine (test_threads checks that the thread count changes no bit). */
static void test_resnet_blocks(void **s)
{
    (void)s;
    int B = 2, threads = sn_kernels_threads();
    sn_kernels_set_threads(1);
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *basic = sn_resnet_block_new(&p, "layer2.0", 0, 3, 6, 4, 2, B);
    sn_layer_t *bottle = sn_resnet_block_new(&p, "layer3.0", 1, 4, 5, 2, 2, B);
    assert_non_null(basic);
    assert_non_null(bottle);
    assert_non_null(sn_params_find(&p, "layer2.0.downsample.0.weight"));
    assert_non_null(sn_params_find(&p, "layer3.0.bn3.running_var"));
    assert_null(sn_params_find(&p, "layer2.0.conv1.bias"));
    assert_int_equal((int)bottle->out_size, 8 * 3 * 3);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(basic, 3);
    sn_layer_reset(bottle, 4);
    check_layer(basic, &p, NULL, B, 3e-3f, "ResNet BasicBlock 3->4 /2, downsample");
    check_layer(bottle, &p, NULL, B, 3e-3f, "ResNet Bottleneck 4->2->8 /2, downsample");
    sn_layer_free(basic);
    sn_layer_free(bottle);
    sn_params_free(&p);
    sn_kernels_set_threads(threads);
}

static void test_masked_nll(void **s)
{
    (void)s;
    int B = 3, T = 4, V = 5;
    float lp[60], g[60];
    fill(lp, 60, 12, 2.0f);
    int tg[12] = {1, 2, 0, 0, 4, 4, 3, 1, 2, 0, 0, 0};
    int len[3] = {2, 4, 1};
    double sum, sp, sm;
    int cnt;
    assert_int_equal(sn_masked_nll_forward(&sum, &cnt, lp, tg, len, 0, B, T, V), 0);
    assert_int_equal(cnt, 7);
    assert_int_equal(sn_masked_nll_backward(g, tg, len, 0, B, T, V, 1.0f / cnt), 0);
    double err = 0.0;
    const float h = 1e-2f;
    for (int i = 0; i < 60; i++) {
        float keep = lp[i];
        lp[i] = keep + h;
        assert_int_equal(sn_masked_nll_forward(&sp, &cnt, lp, tg, len, 0, B, T, V), 0);
        lp[i] = keep - h;
        assert_int_equal(sn_masked_nll_forward(&sm, &cnt, lp, tg, len, 0, B, T, V), 0);
        lp[i] = keep;
        err = fmax(err, fabs(g[i] - (sp - sm) / cnt / (2.0 * h)));
    }
    fprintf(stderr, "  %-34s dlogp %.3g\n", "masked NLL", err);
    assert_true(err < TOL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lstm_protocol),
        cmocka_unit_test(test_lstm_states),
        cmocka_unit_test(test_embedding),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_global_avgpool),
        cmocka_unit_test(test_residual),
        cmocka_unit_test(test_resnet_blocks),
        cmocka_unit_test(test_masked_nll),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
