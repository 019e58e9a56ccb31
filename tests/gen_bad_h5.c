/*
 * gen_bad_h5.c: writes the corpus of broken HDF5 inputs that tests/bad_inputs.sh feeds to
 * `shardnet train` and `shardnet eval`.
 *
 *   gen_bad_h5 OUT_DIR
 *
 * data-good.h5 is a small valid MNIST-layout file (96 train, 48 test rows); every other
 * data-*.h5 is that file with exactly one thing wrong (a dataset missing, of another type
 * or shape, zero rows, a label out of range, a corrupt chunk, ...). ckpt-good.h5 is a valid
 * checkpoint of the MNIST ConvNet (with optimizer state, made with the CLI's default
 * settings) and every other ckpt-*.h5 is broken in one way. Files that need no HDF5 (empty,
 * not HDF5, a directory, truncated copies of the real data) are made by the driver.
 * The names are the contract with bad_inputs.sh.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>
#include "shardnet/checkpoint.h"
#include "shardnet/layers.h"
#include "shardnet/model.h"

#define TRAIN_ROWS 96
#define TEST_ROWS  48

static const char *g_dir;

static void die(const char *what, const char *name)
{
    fprintf(stderr, "gen_bad_h5: %s: %s failed\n", name, what);
    exit(1);
}

static const char *path_of(const char *name)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", g_dir, name);
    return buf;
}

/* Creates dataset `name` (intermediate groups too) of `type` and shape dims, filled with fill. */
static void put_ds(hid_t f, const char *name, hid_t type, int ndim, const hsize_t *dims, int chunked, const void *data)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (chunked) {
        hsize_t chunk[8];
        for (int i = 0; i < ndim; i++) chunk[i] = dims[i];
        H5Pset_chunk(dcpl, ndim, chunk);
        H5Pset_deflate(dcpl, 6);
    }
    hid_t s = ndim < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, s, lcpl, dcpl, H5P_DEFAULT);
    if (d < 0) die("H5Dcreate2", name);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= dims[i];
    void *zeros = NULL;
    if (!data) data = zeros = calloc(n ? n : 1, H5Tget_size(type));
    if (n && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) die("H5Dwrite", name);
    free(zeros);
    H5Dclose(d);
    H5Sclose(s);
    H5Pclose(dcpl);
    H5Pclose(lcpl);
}

/* Replaces dataset `name` by a zero-filled one of another type or shape. */
static void replace_ds(hid_t f, const char *name, hid_t type, int ndim, const hsize_t *dims)
{
    if (H5Ldelete(f, name, H5P_DEFAULT) < 0) die("H5Ldelete", name);
    put_ds(f, name, type, ndim, dims, 0, NULL);
}

static void put_attr(hid_t obj, const char *name, hid_t type, int ndim, const hsize_t *dims, const void *value)
{
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t s = ndim < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(ndim, dims, NULL);
    hid_t a = H5Acreate2(obj, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0 || H5Awrite(a, type, value) < 0) die("writing attribute", name);
    H5Aclose(a);
    H5Sclose(s);
}

/* One byte of dataset `name` (a uint8 [N]) at row. */
static void poke_u8(hid_t f, const char *name, hsize_t row, uint8_t value)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), fs = H5Dget_space(d);
    hsize_t one = 1;
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &row, NULL, &one, NULL);
    hid_t ms = H5Screate_simple(1, &one, NULL);
    if (H5Dwrite(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, &value) < 0) die("H5Dwrite", name);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
}

/* A valid MNIST-layout file: digit-like noise, labels 0..9 in turn. */
static void write_good_data(const char *name, int compressed)
{
    hid_t f = H5Fcreate(path_of(name), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) die("H5Fcreate", name);
    const char *splits[2] = {"train", "test"};
    const hsize_t rows[2] = {TRAIN_ROWS, TEST_ROWS};
    for (int s = 0; s < 2; s++) {
        uint8_t *img = malloc(rows[s] * 784), *lab = malloc(rows[s]);
        uint32_t x = 12345u + (uint32_t)s;
        for (hsize_t i = 0; i < rows[s] * 784; i++) {
            x = x * 1664525u + 1013904223u;
            img[i] = (uint8_t)(x >> 24);
        }
        for (hsize_t i = 0; i < rows[s]; i++) lab[i] = (uint8_t)(i % 10);
        char dn[64];
        hsize_t di[3] = {rows[s], 28, 28}, dl[1] = {rows[s]};
        snprintf(dn, sizeof dn, "/%s/images", splits[s]);
        put_ds(f, dn, H5T_STD_U8LE, 3, di, compressed, img);
        snprintf(dn, sizeof dn, "/%s/labels", splits[s]);
        put_ds(f, dn, H5T_STD_U8LE, 1, dl, 0, lab);
        free(img);
        free(lab);
    }
    double mean = 0.1307, std = 0.3081;
    put_attr(f, "normalize_mean", H5T_NATIVE_DOUBLE, -1, NULL, &mean);
    put_attr(f, "normalize_std", H5T_NATIVE_DOUBLE, -1, NULL, &std);
    H5Fclose(f);
}

static void copy_file(const char *from, const char *to, long limit)
{
    char a[4096];
    snprintf(a, sizeof a, "%s", path_of(from));
    FILE *in = fopen(a, "rb"), *out = fopen(path_of(to), "wb");
    if (!in || !out) die("copy", to);
    int ch;
    for (long n = 0; (limit < 0 || n < limit) && (ch = fgetc(in)) != EOF; n++) fputc(ch, out);
    fclose(in);
    fclose(out);
}

static long file_size(const char *name)
{
    FILE *f = fopen(path_of(name), "rb");
    if (!f) die("fopen", name);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    return n;
}

/* A copy of `from` named `to`, opened read-write for one change. */
static hid_t variant(const char *from, const char *to)
{
    copy_file(from, to, -1);
    hid_t f = H5Fopen(path_of(to), H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) die("H5Fopen", to);
    return f;
}

static void data_corpus(void)
{
    write_good_data("data-good.h5", 0);
    hid_t f;
    hsize_t d[5];

    f = variant("data-good.h5", "data-no-train-images.h5");
    H5Ldelete(f, "/train/images", H5P_DEFAULT);
    H5Fclose(f);

    f = variant("data-good.h5", "data-no-test-labels.h5");
    H5Ldelete(f, "/test/labels", H5P_DEFAULT);
    H5Fclose(f);

    f = variant("data-good.h5", "data-no-train-group.h5");
    H5Ldelete(f, "/train", H5P_DEFAULT);
    H5Fclose(f);

    f = variant("data-good.h5", "data-images-group.h5");   /* a group where a dataset belongs */
    H5Ldelete(f, "/train/images", H5P_DEFAULT);
    H5Gclose(H5Gcreate2(f, "/train/images", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    H5Fclose(f);

    d[0] = TRAIN_ROWS, d[1] = 28, d[2] = 28;
    f = variant("data-good.h5", "data-images-float32.h5");
    replace_ds(f, "/train/images", H5T_IEEE_F32LE, 3, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-images-int16.h5");
    replace_ds(f, "/train/images", H5T_STD_I16LE, 3, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-labels-int8.h5");
    replace_ds(f, "/train/labels", H5T_STD_I8LE, 1, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-test-images-float64.h5");
    d[0] = TEST_ROWS;
    replace_ds(f, "/test/images", H5T_IEEE_F64LE, 3, d);
    H5Fclose(f);

    f = variant("data-good.h5", "data-images-2d.h5");
    d[0] = TRAIN_ROWS, d[1] = 28;
    replace_ds(f, "/train/images", H5T_STD_U8LE, 2, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-labels-2d.h5");
    d[0] = TRAIN_ROWS, d[1] = 1;
    replace_ds(f, "/train/labels", H5T_STD_U8LE, 2, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-images-5d.h5");
    d[0] = TRAIN_ROWS, d[1] = 1, d[2] = 1, d[3] = 28, d[4] = 28;
    replace_ds(f, "/train/images", H5T_STD_U8LE, 5, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-images-scalar.h5");
    replace_ds(f, "/train/images", H5T_STD_U8LE, -1, NULL);
    H5Fclose(f);
    f = variant("data-good.h5", "data-images-32x32.h5");   /* valid layout, not the model's input */
    d[0] = TRAIN_ROWS, d[1] = 32, d[2] = 32;
    replace_ds(f, "/train/images", H5T_STD_U8LE, 3, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-test-images-3ch.h5");
    d[0] = TEST_ROWS, d[1] = 3, d[2] = 28, d[3] = 28;
    replace_ds(f, "/test/images", H5T_STD_U8LE, 4, d);
    H5Fclose(f);

    f = variant("data-good.h5", "data-rows-mismatch.h5");
    d[0] = TRAIN_ROWS - 1;
    replace_ds(f, "/train/labels", H5T_STD_U8LE, 1, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-zero-rows.h5");
    d[0] = 0, d[1] = 28, d[2] = 28;
    replace_ds(f, "/train/images", H5T_STD_U8LE, 3, d);
    replace_ds(f, "/train/labels", H5T_STD_U8LE, 1, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-test-zero-rows.h5");
    replace_ds(f, "/test/images", H5T_STD_U8LE, 3, d);
    replace_ds(f, "/test/labels", H5T_STD_U8LE, 1, d);
    H5Fclose(f);
    f = variant("data-good.h5", "data-few-rows.h5");   /* fewer rows than one batch of 32 */
    d[0] = 10, d[1] = 28, d[2] = 28;
    replace_ds(f, "/train/images", H5T_STD_U8LE, 3, d);
    replace_ds(f, "/train/labels", H5T_STD_U8LE, 1, d);
    H5Fclose(f);

    f = variant("data-good.h5", "data-label-10.h5");     /* row 60: in rank 1's half of 2 */
    poke_u8(f, "/train/labels", 60, 10);
    H5Fclose(f);
    f = variant("data-good.h5", "data-label-255.h5");
    poke_u8(f, "/train/labels", 5, 255);
    H5Fclose(f);
    f = variant("data-good.h5", "data-test-label-10.h5"); /* row 40: rank 1's half of the test set */
    poke_u8(f, "/test/labels", 40, 10);
    H5Fclose(f);

    f = variant("data-good.h5", "data-std-zero.h5");
    double zero = 0.0;
    put_attr(f, "normalize_std", H5T_NATIVE_DOUBLE, -1, NULL, &zero);
    H5Fclose(f);
    f = variant("data-good.h5", "data-mean-nan.h5");
    double nan_ = NAN;
    put_attr(f, "normalize_mean", H5T_NATIVE_DOUBLE, -1, NULL, &nan_);
    H5Fclose(f);

    /* a deflate-compressed chunk whose bytes are garbage: HDF5 opens it, the read fails */
    write_good_data("data-corrupt-chunk.h5", 1);
    f = H5Fopen(path_of("data-corrupt-chunk.h5"), H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t ds = H5Dopen2(f, "/train/images", H5P_DEFAULT);
    hid_t sp = H5Dget_space(ds);
    haddr_t addr = 0;
    hsize_t size = 0, offset[3];
    unsigned mask;
    if (H5Dget_chunk_info(ds, sp, 0, offset, &mask, &addr, &size) < 0) die("H5Dget_chunk_info", "data-corrupt-chunk.h5");
    H5Sclose(sp);
    H5Dclose(ds);
    H5Fclose(f);
    FILE *raw = fopen(path_of("data-corrupt-chunk.h5"), "r+b");
    if (!raw || fseek(raw, (long)addr, SEEK_SET) != 0) die("fopen", "data-corrupt-chunk.h5");
    for (hsize_t i = 0; i < size; i++) fputc((int)(i * 7 + 3) & 0xff, raw);
    fclose(raw);

    copy_file("data-good.h5", "data-truncated.h5", file_size("data-good.h5") / 2);
}

/* ---- checkpoints ------------------------------------------------------------------ */

static void ckpt_corpus(void)
{
    sn_model_t m;
    sn_adadelta_t o;
    if (sn_mnist_convnet_new(&m, 1, 0.1f, 0.25f)) die("sn_mnist_convnet_new", "model");
    sn_layer_reset(m.net, 7);
    if (sn_adadelta_init(&o, m.params.trainable_total, 0.5f, 0.9f, 1e-6f, 0.0f)) die("sn_adadelta_init", "optimizer");
    /* the settings of a CLI run with defaults, at the start of epoch 1 */
    sn_checkpoint_info_t info = {.world_size = 1, .threads = 1, .seed = 0, .epoch = 1, .batch = 32, .shuffle = 1,
                                 .dropout = 1, .loss_count = 0};
    snprintf(info.model, sizeof info.model, "%s", m.name);
    if (sn_checkpoint_save(path_of("ckpt-good.h5"), &m.params, &o, &info)) die(sn_error_message(), "ckpt-good.h5");
    if (sn_checkpoint_save(path_of("ckpt-no-optim.h5"), &m.params, NULL, &info)) die(sn_error_message(), "ckpt-no-optim.h5");

    copy_file("ckpt-good.h5", "ckpt-truncated.h5", file_size("ckpt-good.h5") / 2);
    copy_file("ckpt-good.h5", "ckpt-header-only.h5", 800);

    /* another model: a Linear named conv1, so /params/conv1.weight exists with another shape */
    sn_params_t q;
    sn_params_init(&q);
    sn_layer_t *l = sn_linear_new(&q, "conv1", 5, 3, 1);
    if (!l || sn_params_alloc(&q)) die("sn_linear_new", "ckpt-other-model.h5");
    sn_layer_reset(l, 1);
    if (sn_checkpoint_save(path_of("ckpt-other-model.h5"), &q, NULL, &info)) die(sn_error_message(), "ckpt-other-model.h5");
    sn_layer_free(l);
    sn_params_free(&q);

    hid_t f, g;
    int v;
    hsize_t d[4];
    f = variant("ckpt-good.h5", "ckpt-version.h5");
    v = 99;
    put_attr(f, "format_version", H5T_NATIVE_INT, -1, NULL, &v);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-version-array.h5");   /* an attribute of 4 values, read as one */
    int four[4] = {1, 1, 1, 1};
    d[0] = 4;
    put_attr(f, "format_version", H5T_NATIVE_INT, 1, d, four);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-magic-array.h5");     /* 16 fixed-length strings */
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 9);
    char magic[16][9];
    for (int i = 0; i < 16; i++) memcpy(magic[i], "shardnet", 9);
    d[0] = 16;
    put_attr(f, "magic", st, 1, d, magic);
    H5Tclose(st);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-metrics-array.h5");   /* metrics: 64 strings of 1000 bytes */
    st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 1000);
    char *big = calloc(64, 1000);
    for (int i = 0; i < 64; i++) memset(big + i * 1000, 'x', 999);
    d[0] = 64;
    put_attr(f, "metrics", st, 1, d, big);
    free(big);
    H5Tclose(st);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-metrics-vlen.h5");    /* a variable-length string */
    st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    const char *vs = "{\"epoch\": 1}\n";
    put_attr(f, "metrics", st, -1, NULL, &vs);
    H5Tclose(st);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-model-name.h5");
    st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, 8);
    put_attr(f, "model", st, -1, NULL, "lstm_lm");
    H5Tclose(st);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-epoch-step.h5");      /* a negative position in the epoch */
    int64_t neg = -5;
    put_attr(f, "epoch_step", H5T_NATIVE_INT64, -1, NULL, &neg);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-past-epoch.h5");      /* beyond the 3 steps of an epoch of data-good */
    int64_t far = 50;
    put_attr(f, "epoch_step", H5T_NATIVE_INT64, -1, NULL, &far);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-param-int.h5");
    d[0] = 16, d[1] = 1, d[2] = 3, d[3] = 3;
    replace_ds(f, "/params/conv1.weight", H5T_STD_I32LE, 4, d);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-missing-param.h5");
    H5Ldelete(f, "/params/fc2.bias", H5P_DEFAULT);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-optim-size.h5");
    d[0] = o.n - 1;
    replace_ds(f, "/optim/square_avg", H5T_IEEE_F32LE, 1, d);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-no-steps.h5");
    g = H5Gopen2(f, "optim", H5P_DEFAULT);
    H5Adelete(g, "steps");
    H5Gclose(g);
    H5Fclose(f);

    f = variant("ckpt-good.h5", "ckpt-nan.h5");             /* one NaN weight */
    hid_t ds = H5Dopen2(f, "/params/fc1.weight", H5P_DEFAULT), fs = H5Dget_space(ds);
    hsize_t start[2] = {3, 100}, one[2] = {1, 1};
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, one, NULL);
    hid_t ms = H5Screate_simple(2, one, NULL);
    float nanf_ = NAN;
    if (H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &nanf_) < 0) die("H5Dwrite", "ckpt-nan.h5");
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(ds);
    H5Fclose(f);

    sn_adadelta_free(&o);
    sn_model_free(&m);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_bad_h5 OUT_DIR\n");
        return 2;
    }
    g_dir = argv[1];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    data_corpus();
    ckpt_corpus();
    return 0;
}
