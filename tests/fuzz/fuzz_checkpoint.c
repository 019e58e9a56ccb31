/*
 * fuzz_checkpoint.c: libFuzzer harness for the HDF5 readers: the input bytes become a
 * file that sn_checkpoint_load (parameters, optimizer state and run position) and
 * sn_mnist_rows / sn_mnist_load (both splits) must refuse or read without a memory error.
 * The parameters are those of a tiny model (conv1 2x1x3x3 + fc1 3x8, as in the ConvNet's
 * naming) so that a whole checkpoint is a few KB and mutations reach its structure rather
 * than its floats. libhdf5 itself is not instrumented: its crashes show up as signals.
 * The temporary file lives in $TMPDIR (default /tmp; /dev/shm is faster).
 *
 * FUZZ_WRITE_SEEDS=DIR fuzz_checkpoint: writes the seed corpus (a checkpoint with optimizer
 * state, one with parameters only, a small MNIST-layout data file) to DIR and exits.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "shardnet/checkpoint.h"
#include "shardnet/data.h"
#include "shardnet/layers.h"
#include <hdf5.h>

static sn_params_t g_params;
static sn_layer_t *g_conv, *g_fc;
static sn_adadelta_t g_opt;
static char g_path[512];

static void put_u8(hid_t f, const char *name, int ndim, const hsize_t *dims, const uint8_t *v)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t s = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(f, name, H5T_STD_U8LE, s, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d);
    H5Sclose(s);
    H5Pclose(lcpl);
}

static int write_seeds(const char *dir)
{
    char p[600];
    sn_checkpoint_info_t info = {.world_size = 2, .threads = 1, .seed = 3, .epoch = 2, .epoch_step = 1, .step = 9,
                                 .batch = 32, .shuffle = 1, .dropout = 1, .loss_sum = 1.0, .loss_count = 32,
                                 .metrics = "{\"epoch\": 1}\n"};
    snprintf(info.model, sizeof info.model, "mnist_convnet");
    snprintf(p, sizeof p, "%s/checkpoint.h5", dir);
    if (sn_checkpoint_save(p, &g_params, &g_opt, &info)) return 1;
    snprintf(p, sizeof p, "%s/params-only.h5", dir);
    if (sn_checkpoint_save(p, &g_params, NULL, NULL)) return 1;
    snprintf(p, sizeof p, "%s/data.h5", dir);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return 1;
    uint8_t img[3 * 5 * 5], lab[3] = {0, 7, 9};
    for (int i = 0; i < 75; i++) img[i] = (uint8_t)(i * 37);
    hsize_t di[3] = {3, 5, 5}, dl[1] = {3};
    put_u8(f, "/train/images", 3, di, img);
    put_u8(f, "/train/labels", 1, dl, lab);
    put_u8(f, "/test/images", 3, di, img);
    put_u8(f, "/test/labels", 1, dl, lab);
    H5Fclose(f);
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    sn_params_init(&g_params);
    g_conv = sn_conv2d_new(&g_params, "conv1", 1, 6, 6, 2, 3, 1, 0, 1);
    g_fc = sn_linear_new(&g_params, "fc1", 8, 3, 1);
    if (!g_conv || !g_fc || sn_params_alloc(&g_params) ||
        sn_adadelta_init(&g_opt, g_params.trainable_total, 0.5f, 0.9f, 1e-6f, 0.0f)) {
        fprintf(stderr, "fuzz_checkpoint: cannot build the model\n");
        exit(1);
    }
    sn_layer_reset(g_conv, 1);
    sn_layer_reset(g_fc, 2);
    const char *seeds = getenv("FUZZ_WRITE_SEEDS");
    if (seeds) exit(write_seeds(seeds));
    const char *tmp = getenv("TMPDIR");
    snprintf(g_path, sizeof g_path, "%s/fuzz-checkpoint-%ld.h5", tmp && *tmp ? tmp : "/tmp", (long)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(g_path, "wb");
    if (!f) return 0;
    size_t w = fwrite(data, 1, size, f);
    fclose(f);
    if (w != size) return 0;

    sn_checkpoint_info_t info;
    if (sn_checkpoint_load(g_path, &g_params, &g_opt, &info) == 0) free(info.metrics);
    (void)sn_checkpoint_load(g_path, &g_params, NULL, NULL);

    static const char *splits[2] = {"train", "test"};
    for (int s = 0; s < 2; s++) {
        int64_t rows = 0;
        if (sn_mnist_rows(g_path, splits[s], &rows) != 0 || rows < 1) continue;
        sn_image_set_t set;
        int64_t n = rows < 8 ? rows : 8;
        if (sn_mnist_load(g_path, splits[s], rows - n, n, 10, &set) == 0) {
            volatile uint8_t sink = 0;
            size_t per = (size_t)set.channels * set.height * set.width;
            for (size_t i = 0; i < (size_t)set.n * per; i++) sink ^= set.images[i];
            for (int64_t i = 0; i < set.n; i++) sink ^= set.labels[i];
            sn_image_set_free(&set);
        }
    }
    unlink(g_path);
    return 0;
}
