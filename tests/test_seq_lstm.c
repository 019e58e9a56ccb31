/*
 * test_seq_lstm.c: the LSTM against PyTorch (fixtures from tests/gen_seq_fixtures.py):
 * outputs, final (h, c), input gradients, every parameter gradient and initial-state
 * gradients over unsorted variable lengths with 1 and 2 layers; the decoding step API
 * against the sequence forward; the protocol path with ctx->lengths; thread invariance;
 * accumulation of parameter gradients; rejected arguments.
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
#include "shardnet/sequence.h"
#include "shardnet/rng.h"
#include "kernels/kernels.h"

#define ATOL 1e-5

typedef struct {
    sn_params_t p;
    sn_layer_t *l;
    int         B, T, F, H, L;
} net_t;

/* Built one row and one step larger than the fixture, so the compact (B, T) layout of a
 * smaller call is exercised. */
static void build(net_t *n, int F, int H, int L, int T, int B)
{
    sn_params_init(&n->p);
    n->l = sn_lstm_new(&n->p, "lstm", F, H, L, T + 1, B + 1);
    assert_non_null(n->l);
    assert_int_equal(sn_params_alloc(&n->p), 0);
    sn_layer_reset(n->l, 3);
    n->B = B; n->T = T; n->F = F; n->H = H; n->L = L;
}

static void destroy(net_t *n)
{
    sn_layer_free(n->l);
    sn_params_free(&n->p);
}

static void parity_case(const char *file)
{
    fx_file_t *f = fx_load(file);
    int B = fx_int(f, "B"), T = fx_int(f, "T"), F = fx_int(f, "F"), H = fx_int(f, "H"), L = fx_int(f, "L");
    int given = fx_int(f, "given_state");
    net_t n;
    build(&n, F, H, L, T, B);
    seq_load_params(&n.p, f, "lstm");
    const int *len = fx_i32(f, "lengths");
    const float *h0 = given ? fx_f32(f, "h0") : NULL, *c0 = given ? fx_f32(f, "c0") : NULL;
    size_t LBH = (size_t)L * B * H;
    float *dh0 = calloc(LBH, sizeof(float)), *dc0 = calloc(LBH, sizeof(float));

    assert_int_equal(sn_lstm_forward_seq(n.l, fx_f32(f, "x"), B, T, len, h0, c0), 0);
    double ey = max_abs_diff(n.l->output, fx_f32(f, "y"), (size_t)B * T * H);
    double eh = max_abs_diff(sn_lstm_h_n(n.l), fx_f32(f, "hn"), LBH);
    double ec = max_abs_diff(sn_lstm_c_n(n.l), fx_f32(f, "cn"), LBH);
    sn_params_zero_grad(&n.p);
    assert_int_equal(sn_lstm_backward_seq(n.l, fx_f32(f, "gy"), fx_f32(f, "ghn"), fx_f32(f, "gcn"),
                                          given ? dh0 : NULL, given ? dc0 : NULL), 0);
    double ex = max_abs_diff(n.l->grad_input, fx_f32(f, "dx"), (size_t)B * T * F);
    double ep = seq_param_grad_err(&n.p, f, "lstm");
    double es = given ? fmax(max_abs_diff(dh0, fx_f32(f, "dh0"), LBH), max_abs_diff(dc0, fx_f32(f, "dc0"), LBH)) : 0.0;
    fprintf(stderr, "  %s: y %.3g  h_n %.3g  c_n %.3g  dx %.3g  dparams %.3g  dh0/dc0 %.3g\n", file, ey, eh, ec,
            ex, ep, es);
    assert_true(ey < ATOL && eh < ATOL && ec < ATOL);
    assert_true(ex < ATOL && ep < ATOL && es < ATOL);
    /* padding steps: exactly zero output, exactly zero input gradient */
    for (int b = 0; b < B; b++)
        for (int t = len[b]; t < T; t++) {
            for (int j = 0; j < H; j++) assert_true(n.l->output[((size_t)b * T + t) * H + j] == 0.0f);
            for (int j = 0; j < F; j++) assert_true(n.l->grad_input[((size_t)b * T + t) * F + j] == 0.0f);
        }
    free(dh0);
    free(dc0);
    destroy(&n);
    fx_free(f);
}

static void test_parity_1layer(void **s) { (void)s; parity_case("seq_lstm_l1.snfx"); }
static void test_parity_1layer_state(void **s) { (void)s; parity_case("seq_lstm_l1_state.snfx"); }
static void test_parity_2layers_state(void **s) { (void)s; parity_case("seq_lstm_l2.snfx"); }
static void test_parity_2layers_wide(void **s) { (void)s; parity_case("seq_lstm_l2_wide.snfx"); }
static void test_parity_1layer_units(void **s) { (void)s; parity_case("seq_lstm_l1_units.snfx"); }

static void fill(float *x, size_t n, uint64_t key, float scale)
{
    for (size_t i = 0; i < n; i++) x[i] = scale * (2.0f * sn_rng_uniform(77, 5, key, 0, i) - 1.0f);
}

/* Greedy decoding feeds one step at a time: the same numbers as the sequence forward. */
static void test_step_equals_sequence(void **s)
{
    (void)s;
    int B = 3, T = 6, F = 5, H = 8, L = 2;
    net_t n;
    build(&n, F, H, L, T, B);
    size_t LBH = (size_t)L * B * H;
    float *x = malloc((size_t)B * T * F * sizeof(float)), *xt = malloc((size_t)B * F * sizeof(float));
    float *h0 = malloc(LBH * sizeof(float)), *c0 = malloc(LBH * sizeof(float));
    float *h = malloc(LBH * sizeof(float)), *c = malloc(LBH * sizeof(float));
    fill(x, (size_t)B * T * F, 1, 1.0f);
    fill(h0, LBH, 2, 0.5f);
    fill(c0, LBH, 3, 0.5f);
    for (int with_state = 0; with_state < 2; with_state++) {
        assert_int_equal(sn_lstm_forward_seq(n.l, x, B, T, NULL, with_state ? h0 : NULL, with_state ? c0 : NULL), 0);
        if (with_state) {
            memcpy(h, h0, LBH * sizeof(float));
            memcpy(c, c0, LBH * sizeof(float));
        } else {
            memset(h, 0, LBH * sizeof(float));
            memset(c, 0, LBH * sizeof(float));
        }
        double e = 0.0;
        for (int t = 0; t < T; t++) {
            for (int b = 0; b < B; b++) memcpy(xt + (size_t)b * F, x + ((size_t)b * T + t) * F, (size_t)F * sizeof(float));
            assert_int_equal(sn_lstm_step(n.l, xt, h, c, B), 0);
            const float *top = h + (size_t)(L - 1) * B * H;
            for (int b = 0; b < B; b++)
                for (int j = 0; j < H; j++)
                    e = fmax(e, fabs(top[(size_t)b * H + j] - n.l->output[((size_t)b * T + t) * H + j]));
        }
        e = fmax(e, max_abs_diff(h, sn_lstm_h_n(n.l), LBH));
        e = fmax(e, max_abs_diff(c, sn_lstm_c_n(n.l), LBH));
        fprintf(stderr, "  step API vs sequence (%s initial state): max abs diff %.3g\n", with_state ? "given" : "zero", e);
        assert_true(e <= 1e-6);
    }
    free(x); free(xt); free(h0); free(c0); free(h); free(c);
    destroy(&n);
}

/* The protocol entry points with ctx->lengths give the explicit API's numbers. */
static void test_protocol_matches_explicit(void **s)
{
    (void)s;
    int B = 4, T = 5, F = 3, H = 6;
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *l = sn_lstm_new(&p, "lstm", F, H, 1, T, B);
    assert_non_null(l);
    assert_int_equal(l->in_size, (size_t)T * F);
    assert_int_equal(l->out_size, (size_t)T * H);
    assert_int_equal(sn_params_alloc(&p), 0);
    sn_layer_reset(l, 9);
    int len[4] = {2, 5, 1, 4};
    size_t nx = (size_t)B * T * F, ny = (size_t)B * T * H;
    float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    float *y1 = malloc(ny * sizeof(float)), *dx1 = malloc(nx * sizeof(float)), *g1 = malloc(p.total * sizeof(float));
    fill(x, nx, 4, 1.0f);
    fill(dy, ny, 5, 1.0f);
    sn_params_zero_grad(&p);
    assert_int_equal(sn_lstm_forward_seq(l, x, B, T, len, NULL, NULL), 0);
    assert_int_equal(sn_lstm_backward_seq(l, dy, NULL, NULL, NULL, NULL), 0);
    memcpy(y1, l->output, ny * sizeof(float));
    memcpy(dx1, l->grad_input, nx * sizeof(float));
    memcpy(g1, p.grads, p.total * sizeof(float));
    sn_params_zero_grad(&p);
    sn_ctx_t ctx = {.training = 1, .lengths = len};
    assert_int_equal(sn_layer_forward(l, &ctx, x, B), 0);
    assert_int_equal(sn_layer_backward(l, &ctx, x, dy, B), 0);
    assert_memory_equal(y1, l->output, ny * sizeof(float));
    assert_memory_equal(dx1, l->grad_input, nx * sizeof(float));
    assert_memory_equal(g1, p.grads, p.total * sizeof(float));
    /* a second backward adds the same gradients again: parameter gradients accumulate */
    assert_int_equal(sn_layer_backward(l, &ctx, x, dy, B), 0);
    for (size_t i = 0; i < p.trainable_total; i++) assert_true(fabsf(p.grads[i] - 2.0f * g1[i]) <= 1e-6f * (1.0f + fabsf(g1[i])));
    free(x); free(dy); free(y1); free(dx1); free(g1);
    sn_layer_free(l);
    sn_params_free(&p);
}

/* 1, 2 and 3 threads give the same bits (OpenBLAS splits M and N, never K; the recurrent
 * products share their packed panels among the threads): at H = 40 and at H = 64, which
 * fills several panels per gate exactly. */
static void thread_invariance(int H)
{
    int B = 6, T = 7, F = 24, L = 2;
    enum { RUNS = 3 };
    net_t n;
    build(&n, F, H, L, T, B);
    int len[6] = {7, 3, 1, 7, 5, 2};
    size_t nx = (size_t)B * T * F, ny = (size_t)B * T * H, LBH = (size_t)L * B * H;
    float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float)), *dhn = malloc(LBH * sizeof(float));
    float *out[RUNS], *dx[RUNS], *g[RUNS], *dh0[RUNS];
    fill(x, nx, 6, 1.0f);
    fill(dy, ny, 7, 1.0f);
    fill(dhn, LBH, 8, 1.0f);
    int saved = sn_kernels_threads();
    for (int r = 0; r < RUNS; r++) {
        sn_kernels_set_threads(r + 1);
        out[r] = malloc(ny * sizeof(float));
        dx[r] = malloc(nx * sizeof(float));
        g[r] = malloc(n.p.total * sizeof(float));
        dh0[r] = malloc(LBH * sizeof(float));
        sn_params_zero_grad(&n.p);
        assert_int_equal(sn_lstm_forward_seq(n.l, x, B, T, len, NULL, NULL), 0);
        assert_int_equal(sn_lstm_backward_seq(n.l, dy, dhn, NULL, dh0[r], NULL), 0);
        memcpy(out[r], n.l->output, ny * sizeof(float));
        memcpy(dx[r], n.l->grad_input, nx * sizeof(float));
        memcpy(g[r], n.p.grads, n.p.total * sizeof(float));
    }
    sn_kernels_set_threads(saved);
    for (int r = 1; r < RUNS; r++) {
        assert_memory_equal(out[0], out[r], ny * sizeof(float));
        assert_memory_equal(dx[0], dx[r], nx * sizeof(float));
        assert_memory_equal(g[0], g[r], n.p.total * sizeof(float));
        assert_memory_equal(dh0[0], dh0[r], LBH * sizeof(float));
    }
    for (int r = 0; r < RUNS; r++) { free(out[r]); free(dx[r]); free(g[r]); free(dh0[r]); }
    free(x); free(dy); free(dhn);
    destroy(&n);
}

static void test_thread_invariance(void **s)
{
    (void)s;
    thread_invariance(40);
    thread_invariance(64);
}

static void test_rejects_bad_arguments(void **s)
{
    (void)s;
    net_t n;
    build(&n, 2, 3, 1, 4, 2);
    float x[3 * 5 * 2] = {0};
    assert_int_equal(sn_lstm_forward_seq(n.l, x, 2, 4, (int[]){0, 2}, NULL, NULL), SN_EINVAL);
    assert_int_equal(sn_lstm_forward_seq(n.l, x, 2, 4, (int[]){2, 5}, NULL, NULL), SN_EINVAL);
    assert_int_equal(sn_lstm_forward_seq(n.l, x, 2, 6, NULL, NULL, NULL), SN_EINVAL);   /* T > max_T */
    assert_int_equal(sn_lstm_forward_seq(n.l, x, 4, 4, NULL, NULL, NULL), SN_EINVAL);   /* B > max_batch */
    assert_int_equal(sn_lstm_step(n.l, x, x, x, 0), SN_EINVAL);
    assert_non_null(strstr(sn_error_message(), "lstm"));
    destroy(&n);
    sn_params_t p;
    sn_params_init(&p);
    assert_null(sn_lstm_new(&p, "bad", 0, 3, 1, 4, 2));
    sn_params_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity_1layer),
        cmocka_unit_test(test_parity_1layer_state),
        cmocka_unit_test(test_parity_2layers_state),
        cmocka_unit_test(test_parity_2layers_wide),
        cmocka_unit_test(test_parity_1layer_units),
        cmocka_unit_test(test_step_equals_sequence),
        cmocka_unit_test(test_protocol_matches_explicit),
        cmocka_unit_test(test_thread_invariance),
        cmocka_unit_test(test_rejects_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
