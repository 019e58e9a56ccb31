/*
 * mnist_prep.c: `sn-mnist-prep`, the raw MNIST IDX files -> mnist.h5 (DESIGN.md layout).
 *
 * Reads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
 * t10k-labels-idx1-ubyte from a folder, each plain or gzip-compressed (".gz"; zlib reads
 * both transparently), verifies their SHA-256 against the pinned sums of MNIST and
 * Fashion-MNIST (over the decompressed bytes), checks magic numbers, counts and sizes,
 * and writes /train/{images,labels} and /test/{images,labels} with the checksums as
 * attributes. The output is written under a temporary name and renamed at the end, so a
 * failure never leaves a half-written file. Serial: the whole set is 55 MB.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hdf5.h>
#include <openssl/evp.h>
#include <zlib.h>
#include "shardnet/error.h"
#include "idx.h"

#define IDX_IMAGES_MAGIC DP_IDX_IMAGES_MAGIC
#define IDX_LABELS_MAGIC DP_IDX_LABELS_MAGIC
#define MNIST_MEAN 0.1307
#define MNIST_STD  0.3081

typedef struct {
    const char *dataset, *file, *sha256;
} pinned_t;

/* SHA-256 of the decompressed IDX bytes. */
static const pinned_t PINNED[] = {
    {"mnist", "train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
    {"mnist", "train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
    {"mnist", "t10k-images-idx3-ubyte",  "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
    {"mnist", "t10k-labels-idx1-ubyte",  "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
    {"fashion-mnist", "train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
    {"fashion-mnist", "train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"},
    {"fashion-mnist", "t10k-images-idx3-ubyte",  "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
    {"fashion-mnist", "t10k-labels-idx1-ubyte",  "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
};

typedef struct {
    char     path[4096];
    char     sha256[65];
    const uint8_t *data;   /* payload after the header */
    int64_t  count;     /* items */
    int      rows, cols;
} idx_t;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: sn-mnist-prep --in DIR --out FILE.h5 [--no-verify]\n"
        "\n"
        "Converts the four MNIST-format IDX files in DIR (train-images-idx3-ubyte,\n"
        "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each\n"
        "optionally gzip-compressed with a .gz suffix) into one HDF5 file:\n"
        "  /train/images uint8 [N,28,28] (chunked)   /train/labels uint8 [N]\n"
        "  /test/images  uint8 [M,28,28] (chunked)   /test/labels  uint8 [M]\n"
        "with the SHA-256 of every source and the normalisation (mean 0.1307, std 0.3081)\n"
        "as attributes. Works for MNIST and Fashion-MNIST (e.g. /usr/share/datasets/fashion-mnist).\n"
        "\n"
        "  --in DIR        folder with the IDX files\n"
        "  --out FILE      output HDF5 file (written to a temporary name, then renamed)\n"
        "  --no-verify     accept IDX files whose SHA-256 is not one of the pinned\n"
        "                  MNIST / Fashion-MNIST sums (your own data in IDX format)\n"
        "  -h, --help      this text\n");
}

/* Reads DIR/name or DIR/name.gz completely. */
static int read_whole(const char *dir, const char *name, idx_t *idx, uint8_t **bytes, size_t *len)
{
    snprintf(idx->path, sizeof idx->path, "%s/%s", dir, name);
    if (access(idx->path, R_OK) != 0) {
        snprintf(idx->path, sizeof idx->path, "%s/%s.gz", dir, name);
        if (access(idx->path, R_OK) != 0)
            return SN_FAIL(SN_EIO, "%s/%s: no such file (nor %s.gz): %s", dir, name, name, strerror(errno));
    }
    gzFile gz = gzopen(idx->path, "rb");
    if (!gz) return SN_FAIL(SN_EIO, "%s: cannot open: %s", idx->path, strerror(errno));
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (!buf) { gzclose(gz); return SN_FAIL(SN_ENOMEM, "%s: out of memory", idx->path); }
        int r = gzread(gz, buf + n, (unsigned)(cap - n));
        if (r < 0) {
            int e;
            const char *msg = gzerror(gz, &e);
            SN_FAIL(SN_EFORMAT, "%s: read error: %s", idx->path, msg);
            free(buf);
            gzclose(gz);
            return SN_EFORMAT;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n == cap) {
            cap *= 2;
            uint8_t *nb = realloc(buf, cap);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    gzclose(gz);
    *bytes = buf;
    *len = n;
    return SN_OK;
}

static void sha256_hex(const uint8_t *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
}

/* Loads one IDX file, checks its SHA-256 (verify) and validates it (dp_idx_parse). */
static int load_idx(const char *dir, const char *name, int want_magic, int verify, idx_t *idx, uint8_t **raw)
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    SN_TRY(read_whole(dir, name, idx, &bytes, &len));
    *raw = bytes;
    sha256_hex(bytes, len, idx->sha256);
    if (verify) {
        int known = 0;
        for (size_t i = 0; i < sizeof PINNED / sizeof PINNED[0]; i++)
            if (strcmp(PINNED[i].file, name) == 0 && strcmp(PINNED[i].sha256, idx->sha256) == 0) known = 1;
        if (!known)
            return SN_FAIL(SN_EFORMAT, "%s: SHA-256 %s is not that of MNIST or Fashion-MNIST's %s "
                           "(corrupt or truncated download? use --no-verify for other IDX data)",
                           idx->path, idx->sha256, name);
    }
    dp_idx_t parsed;
    SN_TRY(dp_idx_parse(idx->path, bytes, len, want_magic, &parsed));
    idx->count = parsed.count;
    idx->rows = parsed.rows;
    idx->cols = parsed.cols;
    idx->data = parsed.data;
    return SN_OK;
}

static int write_attr_string(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    H5Tclose(t);
    return rc < 0 ? SN_FAIL(SN_EIO, "cannot write attribute %s", name) : SN_OK;
}

static int write_attr_double(hid_t obj, const char *name, double value)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_NATIVE_DOUBLE, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return rc < 0 ? SN_FAIL(SN_EIO, "cannot write attribute %s", name) : SN_OK;
}

/* /split/images [N,28,28] chunked by 1024 images, /split/labels [N]. */
static int write_split(hid_t file, const char *split, const idx_t *img, const idx_t *lab)
{
    if (img->count != lab->count)
        return SN_FAIL(SN_EFORMAT, "%s has %lld images but %s has %lld labels", img->path,
                       (long long)img->count, lab->path, (long long)lab->count);
    SN_TRY(dp_idx_check_labels(lab->path, &(dp_idx_t){.count = lab->count, .data = lab->data}, 10));
    hid_t g = H5Gcreate2(file, split, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) return SN_FAIL(SN_EIO, "cannot create group /%s", split);
    int rc = SN_OK;
    hsize_t dims[3] = {(hsize_t)img->count, 28, 28};
    hsize_t chunk[3] = {dims[0] < 1024 ? dims[0] : 1024, 28, 28};
    hid_t sp = H5Screate_simple(3, dims, NULL);
    hid_t pl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(pl, 3, chunk);
    hid_t d = H5Dcreate2(g, "images", H5T_NATIVE_UINT8, sp, H5P_DEFAULT, pl, H5P_DEFAULT);
    if (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, img->data) < 0)
        rc = SN_FAIL(SN_EIO, "cannot write /%s/images", split);
    if (d >= 0) {
        if (!rc) rc = write_attr_string(d, "source_sha256", img->sha256);
        H5Dclose(d);
    }
    H5Pclose(pl);
    H5Sclose(sp);
    hsize_t ldims[1] = {(hsize_t)lab->count};
    sp = H5Screate_simple(1, ldims, NULL);
    d = H5Dcreate2(g, "labels", H5T_NATIVE_UINT8, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (!rc && (d < 0 || H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, lab->data) < 0))
        rc = SN_FAIL(SN_EIO, "cannot write /%s/labels", split);
    if (d >= 0) {
        if (!rc) rc = write_attr_string(d, "source_sha256", lab->sha256);
        H5Dclose(d);
    }
    H5Sclose(sp);
    H5Gclose(g);
    return rc;
}

int main(int argc, char **argv)
{
    const char *in = NULL, *out = NULL;
    int verify = 1;
    static const struct option opts[] = {
        {"in", required_argument, 0, 'i'}, {"out", required_argument, 0, 'o'},
        {"no-verify", no_argument, 0, 'n'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': in = optarg; break;
        case 'o': out = optarg; break;
        case 'n': verify = 0; break;
        case 'h': usage(stdout); return 0;
        default: fprintf(stderr, "sn-mnist-prep: see --help\n"); return 2;
        }
    }
    if (!in || !out || optind != argc) {
        fprintf(stderr, "sn-mnist-prep: --in and --out are required (see --help)\n");
        return 2;
    }

    static const char *names[4] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                   "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    idx_t idx[4];
    uint8_t *raw[4] = {0};
    memset(idx, 0, sizeof idx);
    int rc = SN_OK;
    for (int i = 0; i < 4 && !rc; i++)
        rc = load_idx(in, names[i], i % 2 == 0 ? IDX_IMAGES_MAGIC : IDX_LABELS_MAGIC, verify, &idx[i], &raw[i]);

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", out, (long)getpid());
    hid_t f = -1;
    if (!rc) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);   /* our messages replace HDF5's stack dumps */
        f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        if (f < 0) rc = SN_FAIL(SN_EIO, "%s: cannot create (is the folder writable?)", tmp);
    }
    if (!rc) rc = write_split(f, "train", &idx[0], &idx[1]);
    if (!rc) rc = write_split(f, "test", &idx[2], &idx[3]);
    if (!rc) rc = write_attr_double(f, "normalize_mean", MNIST_MEAN);
    if (!rc) rc = write_attr_double(f, "normalize_std", MNIST_STD);
    if (!rc) rc = write_attr_string(f, "source", in);
    if (f >= 0 && H5Fclose(f) < 0 && !rc) rc = SN_FAIL(SN_EIO, "%s: cannot close (disk full?)", tmp);
    if (!rc && rename(tmp, out) != 0) rc = SN_FAIL(SN_EIO, "cannot rename %s to %s: %s", tmp, out, strerror(errno));
    if (rc) {
        unlink(tmp);
        fprintf(stderr, "sn-mnist-prep: %s\n", sn_error_message());
    } else {
        printf("sn-mnist-prep: wrote %s: %lld train and %lld test images (first labels", out,
               (long long)idx[0].count, (long long)idx[2].count);
        for (int i = 0; i < 10 && i < idx[1].count; i++) printf(" %u", idx[1].data[i]);
        printf(")\n");
    }
    for (int i = 0; i < 4; i++) free(raw[i]);
    return rc ? 1 : 0;
}
