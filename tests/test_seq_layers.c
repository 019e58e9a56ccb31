/*
 * test_seq_layers.c: Embedding, BatchNorm2d / BatchNorm1d (affine), a ResNet block
 * (Residual + conv + batch norm + global average pooling) and the masked NLL against
 * PyTorch fixtures (tests/gen_seq_fixtures.py); Embedding's id checks and
 * thread-invariant scatter-add.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "seq_testutil.h"
#include "shardnet/layers.h"
#include "shardnet/sequence.h"
#include "kernels/kernels.h"

#define ATOL 1e-5

static void test_embedding_parity(void **s)
{
    (void)s;
    fx_file_t *f = fx_load("seq_embedding.snfx");
    int V = fx_int(f, "vocab"), D = fx_int(f, "dim"), B = 3, T = 4;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_embedding_new(&p, "emb", V, D, T, B);
    assert_non_null(l);
    assert_int_equal(sn_params_alloc(&p), 0);
    seq_load_params(&p, f, "emb");
    const int32_t *ids = fx_i32(f, "ids");
    /* typed API */
    assert_int_equal(sn_embedding_forward_ids(l, ids, B, T), 0);
    double ey = max_abs_diff(l->output, fx_f32(f, "y"), (size_t)B * T * D);
    assert_int_equal(sn_embedding_backward_ids(l, ids, fx_f32(f, "gy"), B, T), 0);
    double ew = max_abs_diff(p.grads, fx_f32(f, "dweight"), (size_t)V * D);
    SEQ_REPORT("Embedding y", ey);
    SEQ_REPORT("Embedding dweight (repeated ids)", ew);
    assert_true(ey == 0.0 && ew < ATOL);
    /* protocol: ids as exact-integer floats give the same numbers */
    float xf[12];
    for (int i = 0; i < B * T; i++) xf[i] = (float)ids[i];
    sn_params_zero_grad(&p);
    assert_int_equal(sn_layer_forward(l, NULL, xf, B), 0);
    assert_true(max_abs_diff(l->output, fx_f32(f, "y"), (size_t)B * T * D) == 0.0);
    assert_int_equal(sn_layer_backward(l, NULL, xf, fx_f32(f, "gy"), B), 0);
    assert_true(max_abs_diff(p.grads, fx_f32(f, "dweight"), (size_t)V * D) < ATOL);
    for (int i = 0; i < B * T; i++) assert_true(l->grad_input[i] == 0.0f);
    /* bad ids: an error with a message, nothing read out of bounds */
    int32_t bad[12];
    memcpy(bad, ids, sizeof bad);
    bad[5] = V;
    assert_int_equal(sn_embedding_forward_ids(l, bad, B, T), SN_ERANGE);
    assert_non_null(strstr(sn_error_message(), "emb"));
    bad[5] = -1;
    assert_int_equal(sn_embedding_backward_ids(l, bad, fx_f32(f, "gy"), B, T), SN_ERANGE);
    xf[3] = 2.5f;
    assert_int_equal(sn_layer_forward(l, NULL, xf, B), SN_ERANGE);
    xf[3] = NAN;
    assert_int_equal(sn_layer_forward(l, NULL, xf, B), SN_ERANGE);
    xf[3] = 1e9f;
    assert_int_equal(sn_layer_forward(l, NULL, xf, B), SN_ERANGE);
    sn_layer_free(l);
    sn_params_free(&p);
    fx_free(f);
}

/* Many repeated ids, 1 vs 2 threads: the same bits. */
static void test_embedding_thread_invariance(void **s)
{
    (void)s;
    int V = 7, D = 33, B = 8, T = 9;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_embedding_new(&p, "emb", V, D, T, B);
    assert_non_null(l);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 1);
    int32_t ids[72];
    float *dy = malloc((size_t)B * T * D * sizeof(float)), *g[2];
    for (int i = 0; i < B * T; i++) ids[i] = (i * 5) % 3 + (i % 11 == 0 ? 4 : 0);
    for (int i = 0; i < B * T * D; i++) dy[i] = sinf(0.37f * i) * 1e-3f * (float)(1 + i % 1000);
    int saved = sn_kernels_threads();
    for (int r = 0; r < 2; r++) {
        sn_kernels_set_threads(r + 1);
        sn_params_zero_grad(&p);
        assert_int_equal(sn_embedding_backward_ids(l, ids, dy, B, T), 0);
        g[r] = malloc(p.total * sizeof(float));
        memcpy(g[r], p.grads, p.total * sizeof(float));
    }
    sn_kernels_set_threads(saved);
    assert_memory_equal(g[0], g[1], p.total * sizeof(float));
    free(g[0]); free(g[1]); free(dy);
    sn_layer_free(l);
    sn_params_free(&p);
}

static void bn_case(const char *file, int two_d)
{
    fx_file_t *f = fx_load(file);
    const fx_tensor_t *xt = fx_get(f, "train_x", FX_F32);
    int B = xt->dims[0], C = xt->dims[1];
    size_t n = xt->count;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = two_d ? sn_batchnorm2d_new(&p, "bn", C, xt->dims[2], xt->dims[3], 0.9f, B)
                          : sn_batchnorm1d_new(&p, "bn", C, 0.9f, B);
    assert_non_null(l);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 0);
    seq_load_params(&p, f, "bn");
    const float *rm = p.values + sn_params_find(&p, "bn.running_mean")->offset;
    const float *rv = p.values + sn_params_find(&p, "bn.running_var")->offset;
    const float *dw = p.grads + sn_params_find(&p, "bn.weight")->offset;
    const float *db = p.grads + sn_params_find(&p, "bn.bias")->offset;
    const char *modes[2] = {"train", "eval"};
    char k[64];
    for (int m = 0; m < 2; m++) {
        sn_ctx_t ctx = {.training = m == 0};
        sn_params_zero_grad(&p);
#define FX(name) (snprintf(k, sizeof k, "%s_%s", modes[m], name), fx_f32(f, k))
        assert_int_equal(sn_layer_forward(l, &ctx, FX("x"), B), 0);
        double ey = max_abs_diff(l->output, FX("y"), n);
        double er = max_abs_diff(rm, FX("running_mean"), C);
        er = fmax(er, max_abs_diff(rv, FX("running_var"), C));
        assert_int_equal(sn_layer_backward(l, &ctx, FX("x"), FX("gy"), B), 0);
        double ex = max_abs_diff(l->grad_input, FX("dx"), n);
        double ep = max_abs_diff(dw, FX("dweight"), C);
        ep = fmax(ep, max_abs_diff(db, FX("dbias"), C));
#undef FX
        fprintf(stderr, "  %s %s: y %.3g  running stats %.3g  dx %.3g  dweight/dbias %.3g\n", file, modes[m], ey, er,
                ex, ep);
        assert_true(ey < ATOL && er < ATOL && ex < ATOL && ep < ATOL);
    }
    sn_layer_free(l);
    sn_params_free(&p);
    fx_free(f);
}

static void test_batchnorm2d_parity(void **s) { (void)s; bn_case("seq_bn2d.snfx", 1); }

/* The fused BatchNorm2d + ReLU gives the bits of BatchNorm2d followed by ReLU: output,
 * input gradient, parameter gradients and moving statistics, training and evaluate. */
static void test_batchnorm2d_relu_fused(void **s)
{
    (void)s;
    fx_file_t *f = fx_load("seq_bn2d.snfx");
    const fx_tensor_t *xt = fx_get(f, "train_x", FX_F32);
    int B = xt->dims[0], C = xt->dims[1], H = xt->dims[2], W = xt->dims[3];
    size_t n = xt->count;
    sn_params_t p[2];
    sn_layer_t *bn[2], *relu = sn_relu_new("relu", C * H * W, B);
    assert_non_null(relu);
    for (int k = 0; k < 2; k++) {
        sn_params_init(&p[k]);
        bn[k] = k ? sn_batchnorm2d_relu_new(&p[k], "bn", C, H, W, 0.9f, B) : sn_batchnorm2d_new(&p[k], "bn", C, H, W, 0.9f, B);
        assert_non_null(bn[k]);
        assert_int_equal(sn_params_alloc(&p[k]), 0);
        sn_layer_reset(bn[k], 0);
        seq_load_params(&p[k], f, "bn");
    }
    float *dy = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) dy[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    for (int m = 0; m < 2; m++) {
        sn_ctx_t ctx = {.training = m == 0};
        const float *x = fx_f32(f, m ? "eval_x" : "train_x");
        for (int k = 0; k < 2; k++) sn_params_zero_grad(&p[k]);
        assert_int_equal(sn_layer_forward(bn[0], &ctx, x, B), 0);
        assert_int_equal(sn_layer_forward(relu, &ctx, bn[0]->output, B), 0);
        assert_int_equal(sn_layer_backward(relu, &ctx, bn[0]->output, dy, B), 0);
        assert_int_equal(sn_layer_backward(bn[0], &ctx, x, relu->grad_input, B), 0);
        assert_int_equal(sn_layer_forward(bn[1], &ctx, x, B), 0);
        assert_int_equal(sn_layer_backward(bn[1], &ctx, x, dy, B), 0);
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++) zeros += relu->output[i] == 0.0f;
        assert_true(zeros > n / 8 && zeros < n - n / 8);   /* the mask matters */
        assert_memory_equal(bn[1]->output, relu->output, n * sizeof(float));
        assert_memory_equal(bn[1]->grad_input, bn[0]->grad_input, n * sizeof(float));
        assert_memory_equal(p[1].values, p[0].values, p[0].total * sizeof(float));
        assert_memory_equal(p[1].grads, p[0].grads, p[0].trainable_total * sizeof(float));
    }
    free(dy);
    for (int k = 0; k < 2; k++) {
        sn_layer_free(bn[k]);
        sn_params_free(&p[k]);
    }
    sn_layer_free(relu);
    fx_free(f);
}
static void test_batchnorm1d_parity(void **s) { (void)s; bn_case("seq_bn1d.snfx", 0); }

/* conv-bn-relu-conv-bn + 1x1 conv shortcut, ReLU, global average pooling. */
static void test_resblock_parity(void **s)
{
    (void)s;
    fx_file_t *f = fx_load("seq_resblock.snfx");
    int B = 2, C = 3, OC = 4, S = 5;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *body = sn_sequential_new("body", B);
    assert_int_equal(sn_sequential_add(body, sn_conv2d_new(&p, "blk.conv1", C, S, S, OC, 3, 1, 1, B)), 0);
    assert_int_equal(sn_sequential_add(body, sn_batchnorm2d_new(&p, "blk.bn1", OC, S, S, 0.9f, B)), 0);
    assert_int_equal(sn_sequential_add(body, sn_relu_new("relu1", OC * S * S, B)), 0);
    assert_int_equal(sn_sequential_add(body, sn_conv2d_new(&p, "blk.conv2", OC, S, S, OC, 3, 1, 1, B)), 0);
    assert_int_equal(sn_sequential_add(body, sn_batchnorm2d_new(&p, "blk.bn2", OC, S, S, 0.9f, B)), 0);
    sn_layer_t *sc = sn_conv2d_new(&p, "blk.sc", C, S, S, OC, 1, 1, 0, B);
    sn_layer_t *net = sn_sequential_new("net", B);
    assert_int_equal(sn_sequential_add(net, sn_residual_new("res", body, sc, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_relu_new("relu2", OC * S * S, B)), 0);
    assert_int_equal(sn_sequential_add(net, sn_global_avgpool_new("gap", OC, S, S, B)), 0);
    assert_int_equal(net->out_size, (size_t)OC);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(net, 0);
    seq_load_params(&p, f, "blk");
    sn_ctx_t ctx = {.training = 1};
    float x[2 * 3 * 5 * 5];
    memcpy(x, fx_f32(f, "x"), sizeof x);
    sn_params_zero_grad(&p);
    assert_int_equal(sn_layer_forward(net, &ctx, x, B), 0);
    double ey = max_abs_diff(net->output, fx_f32(f, "y"), (size_t)B * OC);
    assert_int_equal(sn_layer_backward(net, &ctx, x, fx_f32(f, "gy"), B), 0);
    double ex = max_abs_diff(net->grad_input, fx_f32(f, "dx"), sizeof x / sizeof x[0]);
    double ep = seq_param_grad_err(&p, f, "blk");
    fprintf(stderr, "  ResNet block + global avg pool: y %.3g  dx %.3g  dparams %.3g\n", ey, ex, ep);
    assert_true(ey < ATOL && ex < ATOL && ep < ATOL);
    /* shapes that cannot be added are refused */
    sn_layer_t *b2 = sn_relu_new("r", 10, B), *s2 = sn_relu_new("s", 12, B);
    assert_null(sn_residual_new("bad", b2, s2, B));
    sn_layer_free(net);
    sn_params_free(&p);
    fx_free(f);
}

static void test_masked_nll_parity(void **s)
{
    (void)s;
    fx_file_t *f = fx_load("seq_masked_nll.snfx");
    const fx_tensor_t *lt = fx_get(f, "logp", FX_F32);
    int B = lt->dims[0], T = lt->dims[1], V = lt->dims[2];
    const int *tg = fx_i32(f, "target"), *len = fx_i32(f, "lengths");
    const double *li = fx_get(f, "loss_ignore", FX_F64)->data, *lp = fx_get(f, "loss_packed", FX_F64)->data;
    float *g = malloc(lt->count * sizeof(float));
    double sum;
    int cnt;
    /* ignore_index only, lengths only, both: the same real tokens here */
    const int *lens[3] = {NULL, len, len};
    int ign[3] = {0, -1, 0};
    const double *ref[3] = {li, lp, lp};
    const char *gref[3] = {"grad_ignore", "grad_packed", "grad_packed"};
    for (int c = 0; c < 3; c++) {
        assert_int_equal(sn_masked_nll_forward(&sum, &cnt, lt->data, tg, lens[c], ign[c], B, T, V), 0);
        int expect = 0;
        for (int b = 0; b < B; b++) expect += len[b];
        assert_int_equal(cnt, expect);
        assert_int_equal(sn_masked_nll_backward(g, tg, lens[c], ign[c], B, T, V, 1.0f / cnt), 0);
        double el = fabs(sum / cnt - ref[c][0]), eg = max_abs_diff(g, fx_f32(f, gref[c]), lt->count);
        fprintf(stderr, "  masked NLL (%s): loss %.3g  grad %.3g\n",
                c == 0 ? "ignore_index" : c == 1 ? "lengths" : "both", el, eg);
        assert_true(el < 1e-6 && eg < 1e-7);
    }
    /* padding targets are never read with lengths: any value there is fine */
    int *tg2 = malloc((size_t)B * T * sizeof(int));
    memcpy(tg2, tg, (size_t)B * T * sizeof(int));
    tg2[(size_t)2 * T + T - 1] = 12345;   /* row 2 has length 1 */
    assert_int_equal(sn_masked_nll_forward(&sum, &cnt, lt->data, tg2, len, -1, B, T, V), 0);
    assert_true(fabs(sum / cnt - lp[0]) < 1e-6);
    double ce = fx_get(f, "loss_packed_ce", FX_F64)->data ? ((const double *)fx_get(f, "loss_packed_ce", FX_F64)->data)[0] : 0.0;
    fprintf(stderr, "  masked NLL vs cross_entropy on packed scores: %.3g\n", fabs(sum / cnt - ce));
    assert_true(fabs(sum / cnt - ce) < 1e-6);
    /* ...but a real target out of range is an error */
    assert_int_equal(sn_masked_nll_forward(&sum, &cnt, lt->data, tg2, NULL, -1, B, T, V), SN_ERANGE);
    assert_int_equal(sn_masked_nll_backward(g, tg2, NULL, 0, B, T, V, 1.0f), SN_ERANGE);
    free(tg2);
    free(g);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_embedding_parity),
        cmocka_unit_test(test_embedding_thread_invariance),
        cmocka_unit_test(test_batchnorm2d_parity),
        cmocka_unit_test(test_batchnorm2d_relu_fused),
        cmocka_unit_test(test_batchnorm1d_parity),
        cmocka_unit_test(test_resblock_parity),
        cmocka_unit_test(test_masked_nll_parity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
