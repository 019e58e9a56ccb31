/*
 * test_threads.c: every layer (and Adadelta) gives bitwise identical outputs, input
 * gradients and parameter gradients with 1, 2 and 3 OpenMP threads (memcmp, no
 * tolerance). Shapes are large enough that OpenMP loops and OpenBLAS really split the
 * work (the MNIST ConvNet's layers at batch 8..32); 3 threads give uneven splits.
 *
 * The criteria (loss/nll.c) run serially and are not repeated here. This file sets the
 * thread count through sn_kernels_set_threads, the one knob for OpenMP and OpenBLAS; it
 * must not compare against reference values (test_parity does that).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kernels.h"
#include "layer_util.h"
#include "shardnet/layers.h"
#include "shardnet/optim.h"
#include "shardnet/resnet.h"

static const int THREADS[] = {1, 2, 3};
#define NT (int)(sizeof THREADS / sizeof THREADS[0])

typedef struct run {
    float *y, *dx, *g;
} run_t;

/* One forward + backward with n threads; copies of output, grad_input and the gradients. */
static run_t run_once(sn_layer_t *l, sn_params_t *p, const sn_ctx_t *ctx, const float *x, const float *dy,
                      int B, int nthreads)
{
    sn_kernels_set_threads(nthreads);
    assert_int_equal(sn_kernels_threads(), nthreads);
    if (p) sn_params_zero_grad(p);
    run_t r = {0};
    size_t ny = (size_t)B * l->out_size, nx = (size_t)B * l->in_size;
    assert_int_equal(sn_layer_forward(l, ctx, x, B), 0);
    r.y = malloc(ny * sizeof(float));
    memcpy(r.y, l->output, ny * sizeof(float));
    l->need_grad_input = 1;
    assert_int_equal(sn_layer_backward(l, ctx, x, dy, B), 0);
    r.dx = malloc(nx * sizeof(float));
    memcpy(r.dx, l->grad_input, nx * sizeof(float));
    if (p && p->trainable_total) {
        r.g = malloc(p->trainable_total * sizeof(float));
        memcpy(r.g, p->grads, p->trainable_total * sizeof(float));
    }
    return r;
}

static void free_run(run_t *r)
{
    free(r->y);
    free(r->dx);
    free(r->g);
}

/* Runs l with every thread count and requires identical bytes; frees l and p. */
static void check_layer(const char *what, sn_layer_t *l, sn_params_t *p, const sn_ctx_t *ctx, int B)
{
    assert_non_null(l);
    size_t nx = (size_t)B * l->in_size, ny = (size_t)B * l->out_size;
    float *x = malloc(nx * sizeof(float)), *dy = malloc(ny * sizeof(float));
    fill_uniform(x, nx, -3, 3, 101);
    fill_uniform(dy, ny, -1, 1, 102);
    run_t ref = run_once(l, p, ctx, x, dy, B, THREADS[0]);
    for (int t = 1; t < NT; t++) {
        run_t r = run_once(l, p, ctx, x, dy, B, THREADS[t]);
        int same_y = memcmp(r.y, ref.y, ny * sizeof(float)) == 0;
        int same_dx = memcmp(r.dx, ref.dx, nx * sizeof(float)) == 0;
        int same_g = !ref.g || memcmp(r.g, ref.g, p->trainable_total * sizeof(float)) == 0;
        if (!same_y || !same_dx || !same_g)
            fprintf(stderr, "%s: %d threads differ from 1 in%s%s%s\n", what, THREADS[t],
                    same_y ? "" : " output", same_dx ? "" : " grad_input", same_g ? "" : " parameter gradients");
        assert_true(same_y && same_dx && same_g);
        free_run(&r);
    }
    printf("threads %-40s 1/2/3 threads bitwise identical\n", what);
    fflush(stdout);
    free_run(&ref);
    free(x);
    free(dy);
    sn_layer_free(l);
    if (p) sn_params_free(p);
}

static const sn_ctx_t TRAIN = {.training = 1, .seed = 5, .step = 2};
static const sn_ctx_t EVAL  = {.training = 0, .seed = 5, .step = 2};

static sn_layer_t *with_params(sn_layer_t *l, sn_params_t *p)
{
    assert_non_null(l);
    assert_int_equal(sn_params_alloc(p), 0);
    sn_layer_reset(l, 42);
    return l;
}

static void test_threads_conv2d(void **state)
{
    (void)state;
    sn_params_t p;
    sn_params_init(&p);
    check_layer("Conv2d 16->32 26x26 B8", with_params(sn_conv2d_new(&p, "c", 16, 26, 26, 32, 3, 1, 0, 8), &p), &p, &TRAIN, 8);
    sn_params_init(&p);
    check_layer("Conv2d 1->16 28x28 B8", with_params(sn_conv2d_new(&p, "c", 1, 28, 28, 16, 3, 1, 0, 8), &p), &p, &TRAIN, 8);
    sn_params_init(&p);
    check_layer("Conv2d 3->8 15x13 S2 P1 B7", with_params(sn_conv2d_new(&p, "c", 3, 15, 13, 8, 3, 2, 1, 7), &p), &p, &TRAIN, 7);
    sn_params_init(&p);   /* fewer positions than channels: the batched-columns plan */
    check_layer("Conv2d 64->128 7x7 P1 B9 batched",
                with_params(sn_conv2d_new_opts(&p, "c", 64, 7, 7, 128, 3, 1, 1, SN_CONV_BATCHED, 9), &p), &p, &TRAIN, 9);
    sn_params_init(&p);   /* one sample: no per-sample team, the GEMMs tiled over the threads */
    check_layer("Conv2d 64->64 40x40 P1 B1",
                with_params(sn_conv2d_new(&p, "c", 64, 40, 40, 64, 3, 1, 1, 1), &p), &p, &TRAIN, 1);
    sn_params_init(&p);   /* Winograd: 1,275 tiles in 5 chunks, shared among the threads */
    check_layer("Conv2d 16->24 30x34 P1 B5 Winograd",
                with_params(sn_conv2d_new_opts(&p, "c", 16, 30, 34, 24, 3, 1, 1, SN_CONV_WINOGRAD, 5), &p), &p, &TRAIN, 5);
    sn_params_init(&p);
    check_layer("Conv2d 64->128 7x7 P1 B9 batched Winograd",
                with_params(sn_conv2d_new_opts(&p, "c", 64, 7, 7, 128, 3, 1, 1, SN_CONV_BATCHED | SN_CONV_WINOGRAD, 9), &p),
                &p, &TRAIN, 9);
}

/* sn_gemm inside a team of one (an inactive region: a loop whose team the data cut to one
 * thread) with a budget of 1, 2 and 3 threads: the OpenMP build of OpenBLAS must not start
 * threads of its own there, whose split of C would change the bits. The shape is one sample
 * of a 64-channel 3x3 convolution at 40x40, where it did. */
static void test_threads_gemm_team_of_one(void **state)
{
    (void)state;
    enum { M = 64, N = 1600, K = 576 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N), *c[NT];
    for (int i = 0; i < M * K; i++) a[i] = (float)(((unsigned)i * 7919u) % 1000u) / 1000.0f - 0.5f;
    for (int i = 0; i < K * N; i++) b[i] = (float)(((unsigned)i * 104729u) % 1000u) / 1000.0f - 0.5f;
    for (int t = 0; t < NT; t++) {
        sn_kernels_set_threads(THREADS[t]);
        c[t] = calloc((size_t)M * N, sizeof(float));
        #pragma omp parallel num_threads(1)
        sn_gemm(0, 0, M, N, K, 1.0f, a, K, b, N, 0.0f, c[t], N);
        assert_int_equal(sn_kernels_threads(), THREADS[t]);   /* the budget is restored */
    }
    for (int t = 1; t < NT; t++)
        if (memcmp(c[0], c[t], sizeof(float) * M * N) != 0)
            fail_msg("sn_gemm in a team of one: %d threads differ from 1", THREADS[t]);
    printf("threads %-40s 1/2/3 threads bitwise identical\n", "sn_gemm in a team of one");
    for (int t = 0; t < NT; t++) free(c[t]);
    free(a);
    free(b);
}

static void test_threads_linear(void **state)
{
    (void)state;
    sn_params_t p;
    sn_params_init(&p);
    check_layer("Linear 4608->64 B32", with_params(sn_linear_new(&p, "l", 4608, 64, 32), &p), &p, &TRAIN, 32);
    sn_params_init(&p);
    check_layer("Linear 64->10 B32", with_params(sn_linear_new(&p, "l", 64, 10, 32), &p), &p, &TRAIN, 32);
    sn_params_init(&p);
    check_layer("Linear 300->500 B17", with_params(sn_linear_new(&p, "l", 300, 500, 17), &p), &p, &TRAIN, 17);
}

static void test_threads_pool(void **state)
{
    (void)state;
    check_layer("MaxPool2d 32x24x24 K2 S2 B8", sn_maxpool2d_new("m", 32, 24, 24, 2, 2, 8), NULL, &TRAIN, 8);
    check_layer("MaxPool2d 5x13x11 K3 S1 B7", sn_maxpool2d_new("m", 5, 13, 11, 3, 1, 7), NULL, &TRAIN, 7);
    check_layer("MaxPool2d 64x56x56 K3 S2 P1 B4", sn_maxpool2d_pad_new("m", 64, 56, 56, 3, 2, 1, 4), NULL, &TRAIN, 4);
}

/* ResNet blocks with a downsample (convs without bias, batch norm, residual add) and a
 * whole ResNet-18 body at 32x32, in training mode. */
static void test_threads_resnet(void **state)
{
    (void)state;
    sn_params_t p;
    sn_params_init(&p);
    check_layer("ResNet BasicBlock 16->32 /2 20x20 B6",
                with_params(sn_resnet_block_new(&p, "b", 0, 16, 20, 32, 2, 6), &p), &p, &TRAIN, 6);
    sn_params_init(&p);
    check_layer("ResNet Bottleneck 32->16->64 /2 15x15 B5",
                with_params(sn_resnet_block_new(&p, "b", 1, 32, 15, 16, 2, 5), &p), &p, &TRAIN, 5);
    sn_params_init(&p);
    check_layer("ResNet-18 body 32x32 B4", with_params(sn_resnet_body_new(&p, "e", 18, 32, 4, NULL), &p), &p,
                &TRAIN, 4);
}

static void test_threads_elementwise(void **state)
{
    (void)state;
    enum { N = 4097, B = 8 };
    check_layer("ReLU", sn_relu_new("a", N, B), NULL, &TRAIN, B);
    check_layer("LeakyReLU", sn_leaky_relu_new("a", N, 0.02f, B), NULL, &TRAIN, B);
    check_layer("ELU", sn_elu_new("a", N, 0.7f, B), NULL, &TRAIN, B);
    check_layer("SoftPlus", sn_softplus_new("a", N, B), NULL, &TRAIN, B);
    check_layer("Dropout train", sn_dropout_new("d", N, 0.25f, B), NULL, &TRAIN, B);
    check_layer("Dropout evaluate", sn_dropout_new("d", N, 0.25f, B), NULL, &EVAL, B);
}

static void test_threads_softmax(void **state)
{
    (void)state;
    check_layer("SoftMax 1000 B16", sn_softmax_new("s", 1000, 16), NULL, &TRAIN, 16);
    check_layer("LogSoftMax 1000 B16", sn_log_softmax_new("s", 1000, 16), NULL, &TRAIN, 16);
}

static void test_threads_batchnorm(void **state)
{
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        const sn_ctx_t *ctx = mode ? &EVAL : &TRAIN;
        sn_params_t p;
        sn_params_init(&p);
        check_layer(mode ? "BatchNormalization 257 B32 evaluate" : "BatchNormalization 257 B32 train",
                    with_params(sn_batchnorm_new(&p, "bn", 257, 0.9f, 32), &p), &p, ctx, 32);
        sn_params_init(&p);
        sn_layer_t *s = sn_sequential_new("seq", 32);
        assert_int_equal(sn_sequential_add(s, sn_batchnorm_new(&p, "bn", 257, 0.9f, 32)), 0);
        assert_int_equal(sn_sequential_add(s, sn_scaling_new(&p, "sc", 257, 32)), 0);
        check_layer(mode ? "BatchNorm+Scaling 257 B32 evaluate" : "BatchNorm+Scaling 257 B32 train",
                    with_params(s, &p), &p, ctx, 32);
    }
}

/* The whole MNIST ConvNet as one Sequential: the chaining adds nothing thread-dependent. */
static void test_threads_convnet(void **state)
{
    (void)state;
    enum { B = 8 };
    sn_params_t p;
    sn_params_init(&p);
    sn_layer_t *n = sn_sequential_new("net", B);
    assert_int_equal(sn_sequential_add(n, sn_conv2d_new(&p, "conv1", 1, 28, 28, 16, 3, 1, 0, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_relu_new("relu1", 16 * 26 * 26, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_conv2d_new(&p, "conv2", 16, 26, 26, 32, 3, 1, 0, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_relu_new("relu2", 32 * 24 * 24, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_maxpool2d_new("pool", 32, 24, 24, 2, 2, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_dropout_new("drop1", 32 * 12 * 12, 0.1f, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_flatten_new("flat", 3, (int[]){32, 12, 12}, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_linear_new(&p, "fc1", 4608, 64, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_relu_new("relu3", 64, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_dropout_new("drop2", 64, 0.25f, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_linear_new(&p, "fc2", 64, 10, B)), 0);
    assert_int_equal(sn_sequential_add(n, sn_log_softmax_new("logp", 10, B)), 0);
    check_layer("MNIST ConvNet B8", with_params(n, &p), &p, &TRAIN, B);
}

static void test_threads_adadelta(void **state)
{
    (void)state;
    enum { N = 100003, STEPS = 3 };
    float *p0 = malloc(N * sizeof(float)), *g = malloc(N * sizeof(float)), *res[NT];
    fill_uniform(p0, N, -1, 1, 201);
    for (int t = 0; t < NT; t++) {
        sn_kernels_set_threads(THREADS[t]);
        sn_adadelta_t o;
        assert_int_equal(sn_adadelta_init(&o, N, 0.5f, 0.9f, 1e-6f, 0.01f), 0);
        res[t] = malloc(N * sizeof(float));
        memcpy(res[t], p0, N * sizeof(float));
        for (int s = 0; s < STEPS; s++) {
            fill_uniform(g, N, -1, 1, 300 + (uint64_t)s);
            sn_adadelta_step(&o, res[t], g);
        }
        sn_adadelta_free(&o);
        if (t > 0) assert_memory_equal(res[t], res[0], N * sizeof(float));
    }
    printf("threads %-40s 1/2/3 threads bitwise identical\n", "Adadelta");
    for (int t = 0; t < NT; t++) free(res[t]);
    free(p0);
    free(g);
}

int main(void)
{
    if (blas_core_unavailable()) return run_skipped_group();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_conv2d),
        cmocka_unit_test(test_threads_gemm_team_of_one),
        cmocka_unit_test(test_threads_linear),
        cmocka_unit_test(test_threads_pool),
        cmocka_unit_test(test_threads_resnet),
        cmocka_unit_test(test_threads_elementwise),
        cmocka_unit_test(test_threads_softmax),
        cmocka_unit_test(test_threads_batchnorm),
        cmocka_unit_test(test_threads_convnet),
        cmocka_unit_test(test_threads_adadelta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
