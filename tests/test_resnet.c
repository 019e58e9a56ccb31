/*
 * test_resnet.c: the ResNet bodies of include/shardnet/resnet.h against torchvision
 * (tests/gen_resnet_parity.py writes the reference data when ctest runs, see
 * tests/resnet.cmake). Parameters come from data-prep/convert_torchvision.py files via
 * sn_checkpoint_load_prefix, so the converter, the names and the loader are tested too.
 *   eval:  ResNet-18 and ResNet-50 features (2, F) of two real COCO images in evaluation
 *          mode (running statistics) match torchvision's within atol 1e-4, rtol 1e-4;
 *   train: ResNet-18 in training mode (batch statistics): the features, and after a
 *          backward of L = sum(y * r) the image gradient and every parameter gradient,
 *          match torchvision's.
 * Also: bad depths and prefixes are refused with a message. This file must not relax a
 * tolerance to make a difference pass: a mismatch is a failure.
 *
 *   test_resnet <dir holding resnet_parity.h5, resnet18.h5, resnet50.h5>
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
#include <hdf5.h>
#include "shardnet/checkpoint.h"
#include "shardnet/resnet.h"

#define ATOL 1e-4
#define RTOL 1e-4
/* gradients: normwise per tensor, max|g - ref| <= GTOL * max|ref| (a batch-statistics backward
 * through 18 layers sums in a different order than PyTorch; a wrong formula is off by O(1)) */
#define GTOL 1e-3

static const char *dir;

/* Dataset `name` of file `path` as float32 (malloc'd); *count its number of values. */
static float *read_ds(const char *path, const char *name, size_t *count)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) fail_msg("%s: no dataset %s", path, name);
    hid_t s = H5Dget_space(d);
    hssize_t n = H5Sget_simple_extent_npoints(s);
    float *v = malloc((size_t)n * sizeof(float));
    assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    H5Sclose(s);
    H5Dclose(d);
    H5Fclose(f);
    *count = (size_t)n;
    return v;
}

typedef struct {
    sn_params_t p;
    sn_layer_t *net;
    int         F;
} body_t;

/* ResNet-depth with its parameters from <dir>/resnet<depth>.h5 (after a reset, so every
 * value that the file does not overwrite would show). */
static void load_body(body_t *b, int depth, int size, int B)
{
    char path[1024];
    sn_params_init(&b->p);
    b->net = sn_resnet_body_new(&b->p, "encoder.body", depth, size, B, &b->F);
    if (!b->net) fail_msg("%s", sn_error_message());
    assert_int_equal(sn_params_alloc(&b->p), 0);
    sn_layer_reset(b->net, 5);
    snprintf(path, sizeof path, "%s/resnet%d.h5", dir, depth);
    int loaded = 0;
    if (sn_checkpoint_load_prefix(path, &b->p, "encoder.body.", &loaded)) fail_msg("%s", sn_error_message());
    assert_int_equal(loaded, b->p.n);
}

static void free_body(body_t *b)
{
    sn_layer_free(b->net);
    sn_params_free(&b->p);
}

/* np.allclose(got, ref, RTOL, ATOL); prints the largest absolute and relative errors. */
static int close_enough(const char *what, const float *got, const float *ref, size_t n)
{
    double max_abs = 0.0, max_rel = 0.0;
    size_t bad = n;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]), rel = e / fmax(fabs((double)ref[i]), 1e-30);
        if (e > max_abs) max_abs = e;
        if (rel > max_rel && fabs((double)ref[i]) > ATOL) max_rel = rel;
        if (!(e <= ATOL + RTOL * fabs((double)ref[i])) && bad == n) bad = i;
    }
    printf("%-26s n=%-5zu max abs err %.3e  max rel err %.3e (|ref| > atol)\n", what, n, max_abs, max_rel);
    if (bad < n)
        printf("%s[%zu]: got %.8g, torchvision %.8g (atol %g, rtol %g)\n", what, bad, got[bad], ref[bad], ATOL, RTOL);
    fflush(stdout);
    return bad == n;
}

static void eval_case(int depth)
{
    char path[1024], name[64], what[64];
    snprintf(path, sizeof path, "%s/resnet_parity.h5", dir);
    size_t nx, ny;
    float *x = read_ds(path, "x", &nx);
    snprintf(name, sizeof name, "resnet%d/y_eval", depth);
    float *y = read_ds(path, name, &ny);
    int B = 2, size = (int)lround(sqrt((double)nx / (3.0 * B)));
    assert_int_equal((size_t)3 * B * size * size, nx);
    body_t b;
    load_body(&b, depth, size, B);
    assert_int_equal((size_t)B * b.F, ny);
    sn_ctx_t ctx = {.training = 0, .seed = 1};
    assert_int_equal(sn_layer_forward(b.net, &ctx, x, B), 0);
    snprintf(what, sizeof what, "ResNet-%d eval %dx%d", depth, size, size);
    assert_true(close_enough(what, b.net->output, y, ny));
    free_body(&b);
    free(x);
    free(y);
}

static void test_eval_resnet18(void **state) { (void)state; eval_case(18); }
static void test_eval_resnet50(void **state) { (void)state; eval_case(50); }

static void test_train_resnet18(void **state)
{
    (void)state;
    char path[1024], name[128];
    snprintf(path, sizeof path, "%s/resnet_parity.h5", dir);
    size_t nx, ny, nr;
    float *x = read_ds(path, "x", &nx);
    float *y = read_ds(path, "resnet18/y_train", &ny);
    float *r = read_ds(path, "resnet18/r", &nr);
    int B = 2, size = (int)lround(sqrt((double)nx / (3.0 * B)));
    body_t b;
    load_body(&b, 18, size, B);
    sn_ctx_t ctx = {.training = 1, .seed = 1};
    assert_int_equal(sn_layer_forward(b.net, &ctx, x, B), 0);
    assert_true(close_enough("ResNet-18 train features", b.net->output, y, ny));
    sn_params_zero_grad(&b.p);
    assert_int_equal(sn_layer_backward(b.net, &ctx, x, r, B), 0);
    double worst = 0.0;
    const char *worst_name = "";
    int checked = 0;
    for (int i = -1; i < b.p.n; i++) {   /* -1: the image gradient */
        const sn_param_spec_t *s = i < 0 ? NULL : &b.p.specs[i];
        if (s && !s->grad) continue;   /* running statistics */
        const char *tname = s ? s->name : "input";
        snprintf(name, sizeof name, s ? "resnet18/grad/%s" : "resnet18/dx", tname);
        size_t n;
        float *g = read_ds(path, name, &n);
        assert_int_equal(n, s ? s->count : nx);
        const float *got = s ? b.p.grads + s->offset : b.net->grad_input;
        double scale = 0.0, err = 0.0;
        for (size_t k = 0; k < n; k++) {
            scale = fmax(scale, fabs((double)g[k]));
            err = fmax(err, fabs((double)got[k] - g[k]));
        }
        double ratio = err / fmax(scale, 1e-30);
        if (ratio > worst) { worst = ratio; worst_name = tname; }
        if (!(err <= GTOL * scale))
            fail_msg("gradient of %s: max |err| %.3e, max |grad| %.3e, ratio %.3e > %g", tname, err, scale, ratio,
                     GTOL);
        checked++;
        free(g);
    }
    printf("ResNet-18 train gradients: %d tensors, worst max|err|/max|grad| %.3e (%s)\n", checked, worst, worst_name);
    assert_int_equal(checked, 61);   /* the image, 20 conv weights, 20 batch-norm weights and biases */
    free_body(&b);
    free(x);
    free(y);
    free(r);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    sn_params_t p;
    sn_params_init(&p);
    int F = -1;
    assert_null(sn_resnet_body_new(&p, "enc", 20, 64, 2, &F));
    assert_non_null(strstr(sn_error_message(), "depth 20"));
    assert_null(sn_resnet_body_new(&p, "enc", 18, 0, 2, &F));
    assert_null(sn_resnet_body_new(&p, "enc", 18, 64, 0, &F));
    assert_null(sn_resnet_body_new(&p, "a.very.long.prefix.that.does.not.fit", 18, 64, 2, &F));
    assert_non_null(strstr(sn_error_message(), "longer than"));
    assert_int_equal(F, -1);
    sn_params_free(&p);
    /* an empty prefix gives the bare Sequential names; 152 builds (not run here) */
    sn_params_init(&p);
    sn_layer_t *l = sn_resnet_body_new(&p, "", 152, 32, 1, &F);
    assert_non_null(l);
    assert_int_equal(F, 2048);
    assert_int_equal(p.n, 775);
    assert_string_equal(p.specs[0].name, "0.weight");
    assert_string_equal(p.specs[p.n - 1].name, "7.2.bn3.running_var");
    sn_layer_free(l);
    sn_params_free(&p);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <folder of resnet_parity.h5 and resnet18/50.h5>\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_eval_resnet18),
        cmocka_unit_test(test_eval_resnet50),
        cmocka_unit_test(test_train_resnet18),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
