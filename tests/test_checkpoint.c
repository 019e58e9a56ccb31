/*
 * test_checkpoint.c: parameter/optimizer files are validated on load and written safely.
 * A file that is missing, not HDF5, truncated, of another format version, or of another
 * model shape is refused with a message naming the file and the problem, and the arenas
 * are left untouched; a failed save leaves the previous file intact.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <hdf5.h>
#include "shardnet/checkpoint.h"
#include "shardnet/layers.h"
#include "shardnet/model.h"

static char dir[256];

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

/* A MNIST ConvNet with parameters set from seed and a 7-step optimizer state. */
static void make_model(sn_model_t *m, sn_adadelta_t *o, uint64_t seed)
{
    assert_int_equal(sn_mnist_convnet_new(m, 2, 0.1f, 0.25f), 0);
    sn_layer_reset(m->net, seed);
    assert_int_equal(sn_adadelta_init(o, m->params.trainable_total, 0.5f, 0.9f, 1e-6f, 0.0f), 0);
    for (size_t i = 0; i < o->n; i++) {
        o->square_avg[i] = (float)(i % 97) * 1e-3f;
        o->acc_delta[i] = (float)(i % 89) * 1e-4f;
    }
    o->steps = 7;
}

static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void copy_file(const char *from, const char *to, long limit)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    assert_non_null(a);
    assert_non_null(b);
    int ch;
    for (long n = 0; (limit < 0 || n < limit) && (ch = fgetc(a)) != EOF; n++) fputc(ch, b);
    fclose(a);
    fclose(b);
}

static void test_round_trip(void **state)
{
    (void)state;
    char p[512];
    path_of(p, sizeof p, "good.h5");
    sn_model_t a, b;
    sn_adadelta_t oa, ob;
    make_model(&a, &oa, 1);
    make_model(&b, &ob, 2);
    memset(ob.square_avg, 0, ob.n * sizeof(float));
    sn_checkpoint_info_t info = {.world_size = 2, .threads = 3, .seed = 11, .epoch = 2, .epoch_step = 5, .step = 42,
                                 .batch = 32, .shuffle = 1, .dropout = 1, .loss_sum = 1.5, .loss_count = 64,
                                 .metrics = "{\"epoch\": 1}\n"};
    strcpy(info.model, "mnist_convnet");
    assert_int_equal(sn_checkpoint_save(p, &a.params, &oa, &info), 0);
    sn_checkpoint_info_t got;
    assert_int_equal(sn_checkpoint_load(p, &b.params, &ob, &got), 0);
    assert_memory_equal(a.params.values, b.params.values, a.params.total * sizeof(float));
    assert_memory_equal(oa.square_avg, ob.square_avg, oa.n * sizeof(float));
    assert_memory_equal(oa.acc_delta, ob.acc_delta, oa.n * sizeof(float));
    assert_int_equal(ob.steps, 7);
    assert_string_equal(got.model, "mnist_convnet");
    assert_int_equal(got.world_size, 2);
    assert_int_equal(got.step, 42);
    assert_int_equal(got.epoch_step, 5);
    assert_true(got.loss_count == 64.0);
    assert_string_equal(got.metrics, "{\"epoch\": 1}\n");
    free(got.metrics);
    sn_model_free(&a);
    sn_model_free(&b);
    sn_adadelta_free(&oa);
    sn_adadelta_free(&ob);
}

/* Loading `name` must fail with a message containing `want` and change nothing. */
static void expect_refused(const char *name, const char *want)
{
    char p[512];
    path_of(p, sizeof p, name);
    sn_model_t m;
    sn_adadelta_t o;
    make_model(&m, &o, 3);
    float *before = malloc(m.params.total * sizeof(float)), *sq = malloc(o.n * sizeof(float));
    memcpy(before, m.params.values, m.params.total * sizeof(float));
    memcpy(sq, o.square_avg, o.n * sizeof(float));
    sn_checkpoint_info_t info;
    int rc = sn_checkpoint_load(p, &m.params, &o, &info);
    printf("  %-16s -> %s\n", name, sn_error_message());
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(sn_error_message(), want));
    assert_non_null(strstr(sn_error_message(), name));
    assert_memory_equal(before, m.params.values, m.params.total * sizeof(float));
    assert_memory_equal(sq, o.square_avg, o.n * sizeof(float));
    free(before);
    free(sq);
    sn_model_free(&m);
    sn_adadelta_free(&o);
}

static void test_refusals(void **state)
{
    (void)state;
    char good[512], p[512];
    path_of(good, sizeof good, "good.h5");
    sn_model_t a;
    sn_adadelta_t oa;
    make_model(&a, &oa, 1);
    sn_checkpoint_info_t info = {.step = 1};
    strcpy(info.model, "mnist_convnet");
    assert_int_equal(sn_checkpoint_save(good, &a.params, &oa, &info), 0);

    expect_refused("missing.h5", "cannot open");
    path_of(p, sizeof p, "garbage.h5");
    FILE *f = fopen(p, "w");
    fputs("this is not an HDF5 file\n", f);
    fclose(f);
    expect_refused("garbage.h5", "not an HDF5 file");
    path_of(p, sizeof p, "truncated.h5");
    copy_file(good, p, 600000);
    expect_refused("truncated.h5", "truncated or corrupt");

    /* another format version */
    path_of(p, sizeof p, "version.h5");
    copy_file(good, p, -1);
    hid_t h = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t at = H5Aopen(h, "format_version", H5P_DEFAULT);
    int v = 99;
    H5Awrite(at, H5T_NATIVE_INT, &v);
    H5Aclose(at);
    H5Fclose(h);
    expect_refused("version.h5", "not a shardnet checkpoint of format 1");

    /* another model: a Linear named conv1, so conv1.weight exists with another shape */
    sn_params_t q;
    sn_params_init(&q);
    sn_layer_t *l = sn_linear_new(&q, "conv1", 5, 3, 1);
    assert_int_equal(sn_params_alloc(&q), 0);
    path_of(p, sizeof p, "shape.h5");
    assert_int_equal(sn_checkpoint_save(p, &q, NULL, &info), 0);
    expect_refused("shape.h5", "conv1.weight has shape [3,5], the model needs [16,1,3,3]");
    sn_layer_free(l);
    sn_params_free(&q);
    sn_model_free(&a);
    sn_adadelta_free(&oa);
}

static void test_wrong_shape(void **state)
{
    (void)state;
    /* the same parameter names, one tensor of another shape */
    sn_params_t q;
    sn_params_init(&q);
    sn_layer_t *c1 = sn_conv2d_new(&q, "conv1", 1, 28, 28, 8, 3, 1, 0, 1);
    assert_int_equal(sn_params_alloc(&q), 0);
    char p[512];
    path_of(p, sizeof p, "conv8.h5");
    assert_int_equal(sn_checkpoint_save(p, &q, NULL, NULL), 0);
    sn_model_t m;
    make_model(&m, &(sn_adadelta_t){0}, 1);
    float *before = malloc(m.params.total * sizeof(float));
    memcpy(before, m.params.values, m.params.total * sizeof(float));
    int rc = sn_checkpoint_load(p, &m.params, NULL, NULL);
    printf("  %-16s -> %s\n", "conv8.h5", sn_error_message());
    assert_int_equal(rc, SN_EFORMAT);
    assert_non_null(strstr(sn_error_message(), "conv1.weight has shape [8,1,3,3], the model needs [16,1,3,3]"));
    assert_memory_equal(before, m.params.values, m.params.total * sizeof(float));
    free(before);
    sn_layer_free(c1);
    sn_params_free(&q);
    sn_model_free(&m);
}

/* sn_checkpoint_load_prefix: only the tensors under the prefix are read, the rest of the
 * model and of the file are ignored; a missing or misshapen tensor is named, and nothing
 * changes then. */
static void test_load_prefix(void **state)
{
    (void)state;
    sn_model_t m;
    make_model(&m, &(sn_adadelta_t){0}, 3);
    char p[512];
    path_of(p, sizeof p, "prefix_src.h5");
    assert_int_equal(sn_checkpoint_save(p, &m.params, NULL, NULL), 0);
    /* a model with conv2 of the file's shape and a tensor the file lacks */
    sn_params_t q;
    sn_params_init(&q);
    sn_layer_t *a = sn_conv2d_new(&q, "conv2", 16, 26, 26, 32, 3, 1, 0, 1);
    sn_layer_t *b = sn_linear_new(&q, "head", 4, 3, 1);
    assert_int_equal(sn_params_alloc(&q), 0);
    sn_layer_reset(a, 9);
    sn_layer_reset(b, 9);
    float *before = malloc(q.total * sizeof(float));
    memcpy(before, q.values, q.total * sizeof(float));
    int n = -1;
    assert_int_equal(sn_checkpoint_load_prefix(p, &q, "conv2.", &n), 0);
    assert_int_equal(n, 2);
    const sn_param_spec_t *w = sn_params_find(&q, "conv2.weight"), *mw = sn_params_find(&m.params, "conv2.weight");
    assert_memory_equal(q.values + w->offset, m.params.values + mw->offset, w->count * sizeof(float));
    const sn_param_spec_t *h = sn_params_find(&q, "head.weight");
    assert_memory_equal(q.values + h->offset, before + h->offset, h->count * sizeof(float));
    memcpy(q.values, before, q.total * sizeof(float));
    /* a tensor under the prefix that the file lacks */
    assert_int_equal(sn_checkpoint_load_prefix(p, &q, "", &n), SN_EFORMAT);
    printf("  %-16s -> %s\n", "prefix ''", sn_error_message());
    assert_non_null(strstr(sn_error_message(), "no dataset /params/head.weight"));
    assert_int_equal(n, 0);
    assert_memory_equal(before, q.values, q.total * sizeof(float));
    /* no tensor of the model under the prefix */
    assert_int_equal(sn_checkpoint_load_prefix(p, &q, "encoder.", &n), SN_EINVAL);
    assert_non_null(strstr(sn_error_message(), "no tensor whose name starts with 'encoder.'"));
    /* a tensor of another shape */
    sn_params_t r;
    sn_params_init(&r);
    sn_layer_t *c = sn_conv2d_new(&r, "conv2", 16, 26, 26, 8, 3, 1, 0, 1);
    assert_int_equal(sn_params_alloc(&r), 0);
    assert_int_equal(sn_checkpoint_load_prefix(p, &r, "conv2", &n), SN_EFORMAT);
    printf("  %-16s -> %s\n", "prefix 'conv2'", sn_error_message());
    assert_non_null(strstr(sn_error_message(), "conv2.weight has shape [32,16,3,3], the model needs [8,16,3,3]"));
    sn_layer_free(c);
    sn_params_free(&r);
    free(before);
    sn_layer_free(a);
    sn_layer_free(b);
    sn_params_free(&q);
    sn_model_free(&m);
}

static void test_failed_save_keeps_previous(void **state)
{
    (void)state;
    char good[512], keep[512];
    path_of(good, sizeof good, "good.h5");
    path_of(keep, sizeof keep, "keep.h5");
    copy_file(good, keep, -1);
    sn_model_t a;
    sn_adadelta_t oa;
    make_model(&a, &oa, 5);
    /* a folder that does not exist: the save fails and nothing is created */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.h5", dir);
    assert_int_not_equal(sn_checkpoint_save(bad, &a.params, &oa, NULL), 0);
    assert_non_null(strstr(sn_error_message(), "cannot create"));
    /* a target that is a directory: the rename fails, the temporary file is removed */
    char asdir[600];
    snprintf(asdir, sizeof asdir, "%s/adir", dir);
    mkdir(asdir, 0755);
    assert_int_not_equal(sn_checkpoint_save(asdir, &a.params, &oa, NULL), 0);
    assert_true(files_equal(good, keep));
    sn_model_free(&a);
    sn_adadelta_free(&oa);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/sn-checkpoint-test-%ld", (long)getpid());
    mkdir(dir, 0755);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_load_prefix),
        cmocka_unit_test(test_failed_save_keeps_previous),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) rc = rc ? rc : 1;
    return rc;
}
