/*
 * mnist.c: reading MNIST-layout HDF5 files (/split/images uint8 [N,H,W] or [N,C,H,W],
 * /split/labels uint8 [N]) by hyperslab. Every structural problem — missing dataset,
 * wrong type, wrong rank or shape, zero rows, labels out of range — is an error that
 * names the file and the dataset. Files are opened read-only with the default driver:
 * each rank reads its own rows independently.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>
#include "shardnet/data.h"
#include "shardnet/error.h"
#include "data/h5util.h"

void sn_shard_range(int64_t n, int rank, int size, int64_t *begin, int64_t *count)
{
    int64_t b = n * rank / size, e = n * (rank + 1) / size;
    *begin = b;
    *count = e - b;
}

/* Opens name, checks it is an unsigned 8-bit integer dataset of rank 1..4 with >= 1 row. */
static hid_t open_u8(hid_t f, const char *path, const char *name, int *ndim, hsize_t dims[4])
{
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        /* H5Lexists fails on a missing intermediate group; report the dataset either way */
        SN_FAIL(SN_EFORMAT, "%s: no dataset %s", path, name);
        return -1;
    }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) { SN_FAIL(SN_EFORMAT, "%s: %s is not a dataset", path, name); return -1; }
    hid_t t = H5Dget_type(d);
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Tget_size(t) == 1 && H5Tget_sign(t) == H5T_SGN_NONE;
    H5Tclose(t);
    if (!ok) {
        H5Dclose(d);
        SN_FAIL(SN_EFORMAT, "%s: %s is not of type uint8", path, name);
        return -1;
    }
    hid_t s = H5Dget_space(d);
    *ndim = H5Sget_simple_extent_ndims(s);
    if (*ndim < 1 || *ndim > 4) {
        H5Sclose(s);
        H5Dclose(d);
        SN_FAIL(SN_EFORMAT, "%s: %s has %d dimensions", path, name, *ndim);
        return -1;
    }
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s);
    if (dims[0] == 0) {
        H5Dclose(d);
        SN_FAIL(SN_EFORMAT, "%s: %s has zero rows", path, name);
        return -1;
    }
    return d;
}

static int read_rows(hid_t d, const char *path, const char *name, int ndim, const hsize_t dims[4],
                     int64_t begin, int64_t count, void *out)
{
    hsize_t start[4] = {(hsize_t)begin, 0, 0, 0}, cnt[4];
    for (int i = 0; i < ndim; i++) cnt[i] = dims[i];
    cnt[0] = (hsize_t)count;
    hid_t fs = H5Dget_space(d);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    hid_t ms = H5Screate_simple(ndim, cnt, NULL);
    herr_t rc = H5Dread(d, H5T_NATIVE_UINT8, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    if (rc < 0) return SN_FAIL(SN_EIO, "%s: cannot read rows %lld..%lld of %s (corrupt file?)", path,
                               (long long)begin, (long long)(begin + count - 1), name);
    return SN_OK;
}

/* A scalar numeric attribute of the file (fallback when absent); anything else is an error. */
static int read_attr_double(hid_t f, const char *path, const char *name, double fallback, double *out)
{
    *out = fallback;
    if (H5Aexists(f, name) <= 0) return SN_OK;
    hid_t a = H5Aopen(f, name, H5P_DEFAULT), s = a < 0 ? -1 : H5Aget_space(a);
    int one = s >= 0 && H5Sget_simple_extent_npoints(s) == 1;
    int rc = one && H5Aread(a, H5T_NATIVE_DOUBLE, out) >= 0 ? SN_OK
           : SN_FAIL(SN_EFORMAT, "%s: attribute %s is not a single number", path, name);
    if (s >= 0) H5Sclose(s);
    if (a >= 0) H5Aclose(a);
    return rc;
}

int sn_mnist_rows(const char *path, const char *split, int64_t *rows)
{
    hid_t f;
    SN_TRY(sn_h5_open_read(path, &f));
    char name[256];
    snprintf(name, sizeof name, "/%s/images", split);
    int nd;
    hsize_t dims[4];
    hid_t d = open_u8(f, path, name, &nd, dims);
    H5Fclose(f);
    if (d < 0) return SN_EFORMAT;
    H5Dclose(d);
    *rows = (int64_t)dims[0];
    return SN_OK;
}

int sn_mnist_load(const char *path, const char *split, int64_t begin, int64_t count,
                  int num_classes, sn_image_set_t *out)
{
    memset(out, 0, sizeof *out);
    hid_t f;
    SN_TRY(sn_h5_open_read(path, &f));
    int rc = SN_OK, ndi = 0, ndl = 0;
    hsize_t di[4], dl[4];
    char iname[256], lname[256];
    snprintf(iname, sizeof iname, "/%s/images", split);
    snprintf(lname, sizeof lname, "/%s/labels", split);
    hid_t d_img = open_u8(f, path, iname, &ndi, di);
    hid_t d_lab = d_img < 0 ? -1 : open_u8(f, path, lname, &ndl, dl);
    if (d_img < 0 || d_lab < 0) rc = SN_EFORMAT;
    if (!rc && (ndi < 3 || ndl != 1))
        rc = SN_FAIL(SN_EFORMAT, "%s: %s must be [N,H,W] or [N,C,H,W] and %s [N]; found %d and %d dimensions",
                     path, iname, lname, ndi, ndl);
    for (int i = 1; !rc && i < ndi; i++)
        if (di[i] < 1 || di[i] > 65536)
            rc = SN_FAIL(SN_EFORMAT, "%s: %s has a dimension of size %llu (expected 1..65536 per image axis)", path,
                         iname, (unsigned long long)di[i]);
    if (!rc && (ndi == 4 ? di[1] * di[2] * di[3] : di[1] * di[2]) > (1u << 24))
        rc = SN_FAIL(SN_EFORMAT, "%s: %s holds images of more than 2^24 values each", path, iname);
    if (!rc && di[0] != dl[0])
        rc = SN_FAIL(SN_EFORMAT, "%s: %s has %llu rows but %s has %llu", path, iname,
                     (unsigned long long)di[0], lname, (unsigned long long)dl[0]);
    if (!rc && (begin < 0 || count < 1 || (hsize_t)(begin + count) > di[0]))
        rc = SN_FAIL(SN_EINVAL, "%s: rows %lld..%lld requested, %s has %llu", path, (long long)begin,
                     (long long)(begin + count - 1), iname, (unsigned long long)di[0]);
    if (!rc) {
        out->total = (int64_t)di[0];
        out->first = begin;
        out->n = count;
        out->channels = ndi == 4 ? (int)di[1] : 1;
        out->height = (int)di[ndi - 2];
        out->width = (int)di[ndi - 1];
        size_t per = (size_t)out->channels * out->height * out->width;
        out->images = sn_alloc((size_t)count * per, "image shard");
        out->labels = sn_alloc((size_t)count, "label shard");
        if (!out->images || !out->labels) rc = SN_ENOMEM;
    }
    if (!rc) rc = read_rows(d_img, path, iname, ndi, di, begin, count, out->images);
    if (!rc) rc = read_rows(d_lab, path, lname, 1, dl, begin, count, out->labels);
    for (int64_t i = 0; !rc && i < count; i++)
        if (out->labels[i] >= num_classes)
            rc = SN_FAIL(SN_ERANGE, "%s: %s row %lld is %u, expected 0..%d", path, lname,
                         (long long)(begin + i), out->labels[i], num_classes - 1);
    if (!rc) rc = read_attr_double(f, path, "normalize_mean", 0.1307, &out->mean);
    if (!rc) rc = read_attr_double(f, path, "normalize_std", 0.3081, &out->std);
    if (!rc && !(isfinite(out->mean) && isfinite(out->std) && out->std > 0.0))
        rc = SN_FAIL(SN_EFORMAT, "%s: normalisation mean %g, std %g: expected finite numbers, std > 0", path,
                     out->mean, out->std);
    if (d_img >= 0) H5Dclose(d_img);
    if (d_lab >= 0) H5Dclose(d_lab);
    H5Fclose(f);
    if (rc) sn_image_set_free(out);
    return rc;
}

void sn_image_set_free(sn_image_set_t *s)
{
    sn_free(s->images);
    sn_free(s->labels);
    memset(s, 0, sizeof *s);
}
