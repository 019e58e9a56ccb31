/*
 * coco.c: reading coco_<split>.h5 (include/shardnet/coco.h). Every structural problem —
 * a missing dataset, a wrong type or shape, a caption pointing at no image, a length or
 * token id out of range — is an error that names the file and the dataset.
 * Must not: read more than this rank's image rows; trust any index read from the file
 * before checking it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <hdf5.h>
#include "shardnet/coco.h"
#include "shardnet/error.h"
#include "data/h5util.h"

/* Opens /name, checks its class, element size and rank; dims filled. */
static hid_t open_ds(hid_t f, const char *path, const char *name, H5T_class_t cls, size_t size, int ndim,
                     hsize_t *dims)
{
    if (H5Lexists(f, name, H5P_DEFAULT) <= 0) {
        SN_FAIL(SN_EFORMAT, "%s: no dataset /%s (not a file of sn-pack?)", path, name);
        return -1;
    }
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) { SN_FAIL(SN_EFORMAT, "%s: /%s is not a dataset", path, name); return -1; }
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int ok = t >= 0 && s >= 0 && H5Tget_class(t) == cls &&
             (cls == H5T_STRING ? H5Tis_variable_str(t) > 0 : H5Tget_size(t) == size) &&
             H5Sget_simple_extent_ndims(s) == ndim;
    if (ok) H5Sget_simple_extent_dims(s, dims, NULL);
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (!ok) {
        H5Dclose(d);
        SN_FAIL(SN_EFORMAT, "%s: /%s is not a %d-dimensional %s dataset", path, name, ndim,
                cls == H5T_STRING ? "variable-length string" : size == 1 ? "uint8" : "int32");
        return -1;
    }
    return d;
}

/* rows [start, start + count) of a dataset of rank 1 or 2 (width columns) */
static int read_rows(hid_t d, hid_t memtype, int ndim, hsize_t start, hsize_t count, hsize_t width, void *out)
{
    hsize_t fs0[4] = {start, 0, 0, 0}, cnt[4] = {count, width, 0, 0};
    hid_t fs = H5Dget_space(d), ms;
    int nd = H5Sget_simple_extent_ndims(fs);
    hsize_t dims[4];
    H5Sget_simple_extent_dims(fs, dims, NULL);
    for (int i = 1; i < nd; i++) cnt[i] = dims[i];
    (void)ndim;
    ms = H5Screate_simple(nd, cnt, NULL);
    herr_t rc = H5Sselect_hyperslab(fs, H5S_SELECT_SET, fs0, NULL, cnt, NULL);
    if (rc >= 0) rc = H5Dread(d, memtype, ms, fs, H5P_DEFAULT, out);
    H5Sclose(ms);
    H5Sclose(fs);
    return rc < 0 ? SN_EIO : SN_OK;
}

static int read_strings(hid_t d, hsize_t start, hsize_t count, char **out)
{
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, H5T_VARIABLE);
    H5Tset_cset(st, H5T_CSET_UTF8);
    char **tmp = calloc(count ? count : 1, sizeof *tmp);
    int rc = tmp ? read_rows(d, st, 1, start, count, 1, tmp) : SN_ENOMEM;
    for (hsize_t i = 0; i < count; i++) {
        out[i] = NULL;
        if (!rc && !(out[i] = strdup(tmp[i] ? tmp[i] : ""))) rc = SN_ENOMEM;
    }
    if (tmp && rc != SN_EIO) {   /* the library allocated the strings */
        hid_t ms = H5Screate_simple(1, &count, NULL);
        H5Dvlen_reclaim(st, ms, H5P_DEFAULT, tmp);
        H5Sclose(ms);
    }
    free(tmp);
    H5Tclose(st);
    return rc;
}

typedef struct { hid_t f, img, cap, len, cimg, vocab, tok; hsize_t di[4], dc[2], dl[1], dci[1], dv[1], dt[1]; } files_t;

static void close_all(files_t *h)
{
    hid_t *ids[] = {&h->img, &h->cap, &h->len, &h->cimg, &h->vocab, &h->tok};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
        if (*ids[i] >= 0) H5Dclose(*ids[i]);
    if (h->f >= 0) H5Fclose(h->f);
}

static int open_all(const char *path, int want_tokens, files_t *h)
{
    memset(h, 0, sizeof *h);
    h->img = h->cap = h->len = h->cimg = h->vocab = h->tok = -1;
    SN_TRY(sn_h5_open_read(path, &h->f));
    if ((h->img = open_ds(h->f, path, "images", H5T_INTEGER, 1, 4, h->di)) < 0 ||
        (h->cap = open_ds(h->f, path, "captions", H5T_INTEGER, 4, 2, h->dc)) < 0 ||
        (h->len = open_ds(h->f, path, "caption_lengths", H5T_INTEGER, 4, 1, h->dl)) < 0 ||
        (h->cimg = open_ds(h->f, path, "caption_image", H5T_INTEGER, 4, 1, h->dci)) < 0 ||
        (h->vocab = open_ds(h->f, path, "vocab", H5T_STRING, 0, 1, h->dv)) < 0 ||
        (want_tokens && (h->tok = open_ds(h->f, path, "caption_tokens", H5T_STRING, 0, 1, h->dt)) < 0))
        return SN_EFORMAT;
    if (h->di[0] < 1 || h->di[1] != 3 || h->di[2] != h->di[3] || h->di[2] < 16 || h->di[2] > 4096)
        return SN_FAIL(SN_EFORMAT, "%s: /images is [%llu, %llu, %llu, %llu]; expected [N >= 1, 3, S, S], S 16..4096",
                       path, (unsigned long long)h->di[0], (unsigned long long)h->di[1],
                       (unsigned long long)h->di[2], (unsigned long long)h->di[3]);
    if (h->dc[0] < 1 || h->dc[1] < 2 || h->dc[1] > 1024 || h->dl[0] != h->dc[0] || h->dci[0] != h->dc[0] ||
        (want_tokens && h->dt[0] != h->dc[0]))
        return SN_FAIL(SN_EFORMAT, "%s: /captions [%llu, %llu], /caption_lengths [%llu], /caption_image [%llu]%s: "
                       "expected N >= 1 captions of row length 2..1024 in all of them", path,
                       (unsigned long long)h->dc[0], (unsigned long long)h->dc[1], (unsigned long long)h->dl[0],
                       (unsigned long long)h->dci[0], want_tokens ? " and /caption_tokens" : "");
    if (h->dv[0] < 4 || h->dv[0] > (1u << 24))
        return SN_FAIL(SN_EFORMAT, "%s: /vocab has %llu tokens (4 .. 2^24 expected)", path,
                       (unsigned long long)h->dv[0]);
    return SN_OK;
}

int sn_coco_count(const char *path, int64_t *n_images, int64_t *n_captions)
{
    files_t h;
    int rc = open_all(path, 0, &h);
    if (!rc) {
        *n_images = (int64_t)h.di[0];
        *n_captions = (int64_t)h.dc[0];
    }
    close_all(&h);
    return rc;
}

int sn_coco_read_words(const char *path, char ***words, int *vocab)
{
    files_t h;
    *words = NULL;
    *vocab = 0;
    int rc = open_all(path, 0, &h);
    if (!rc) {
        int V = (int)h.dv[0];
        char **w = calloc((size_t)V, sizeof *w);
        rc = w ? read_strings(h.vocab, 0, (hsize_t)V, w) : SN_FAIL(SN_ENOMEM, "vocabulary of %d tokens", V);
        if (rc == SN_EIO) rc = SN_FAIL(SN_EIO, "%s: cannot read /vocab", path);
        else if (rc) rc = SN_FAIL(rc, "%s: out of memory reading /vocab", path);
        if (rc) sn_coco_free_words(w, V);
        else {
            *words = w;
            *vocab = V;
        }
    }
    close_all(&h);
    return rc;
}

void sn_coco_free_words(char **words, int vocab)
{
    if (!words) return;
    for (int i = 0; i < vocab; i++) free(words[i]);
    free(words);
}

int sn_coco_load(const char *path, int64_t first, int64_t count, int flags, sn_coco_set_t *out)
{
    memset(out, 0, sizeof *out);
    files_t h;
    int32_t *cimg = NULL, *lens = NULL;
    int rc = open_all(path, flags & SN_COCO_REFS, &h);
    if (rc) goto done;
    int64_t NI = (int64_t)h.di[0], NC = (int64_t)h.dc[0];
    int S = (int)h.di[2], L = (int)h.dc[1], V = (int)h.dv[0];
    if (first < 0 || count < 0 || first + count > NI) {
        rc = SN_FAIL(SN_EINVAL, "%s: image rows %lld..%lld requested, the file has %lld", path, (long long)first,
                     (long long)(first + count - 1), (long long)NI);
        goto done;
    }
    out->n_captions_total = NC;
    out->size = S;
    out->max_len = L;
    out->vocab = V;
    out->image_first = first;
    out->n_images = count;
    /* which captions: those of the image rows [first, first + count) */
    cimg = malloc((size_t)NC * sizeof *cimg);
    lens = malloc((size_t)NC * sizeof *lens);
    if (!cimg || !lens) { rc = SN_FAIL(SN_ENOMEM, "%s: %lld caption indices", path, (long long)NC); goto done; }
    if (read_rows(h.cimg, H5T_NATIVE_INT32, 1, 0, (hsize_t)NC, 1, cimg) ||
        read_rows(h.len, H5T_NATIVE_INT32, 1, 0, (hsize_t)NC, 1, lens)) {
        rc = SN_FAIL(SN_EIO, "%s: cannot read /caption_image and /caption_lengths (corrupt file?)", path);
        goto done;
    }
    int64_t n = 0;
    for (int64_t i = 0; i < NC; i++) {
        if (cimg[i] < 0 || cimg[i] >= NI) {
            rc = SN_FAIL(SN_EFORMAT, "%s: /caption_image[%lld] = %d, outside the %lld images", path, (long long)i,
                         (int)cimg[i], (long long)NI);
            goto done;
        }
        if (lens[i] < 2 || lens[i] > L) {
            rc = SN_FAIL(SN_EFORMAT, "%s: /caption_lengths[%lld] = %d, outside 2..%d", path, (long long)i,
                         (int)lens[i], L);
            goto done;
        }
        n += cimg[i] >= first && cimg[i] < first + count;
    }
    out->n_captions = n;
    size_t img_bytes = (size_t)count * 3 * S * S;
    out->images = malloc(img_bytes ? img_bytes : 1);
    out->caption_row = malloc((size_t)(n ? n : 1) * sizeof *out->caption_row);
    out->captions = malloc((size_t)(n ? n : 1) * L * sizeof *out->captions);
    out->lengths = malloc((size_t)(n ? n : 1) * sizeof *out->lengths);
    out->image = malloc((size_t)(n ? n : 1) * sizeof *out->image);
    if (!out->images || !out->caption_row || !out->captions || !out->lengths || !out->image) {
        rc = SN_FAIL(SN_ENOMEM, "%s: %lld images and %lld captions (%.0f MB)", path, (long long)count, (long long)n,
                     (double)img_bytes / 1e6);
        goto done;
    }
    if (count > 0 && read_rows(h.img, H5T_NATIVE_UINT8, 4, (hsize_t)first, (hsize_t)count, 3, out->images)) {
        rc = SN_FAIL(SN_EIO, "%s: cannot read /images rows %lld..%lld (corrupt file?)", path, (long long)first,
                     (long long)(first + count - 1));
        goto done;
    }
    /* the caption rows, read in runs of consecutive rows */
    int64_t k = 0;
    for (int64_t i = 0; i < NC && !rc;) {
        if (cimg[i] < first || cimg[i] >= first + count) { i++; continue; }
        int64_t j = i;
        while (j < NC && cimg[j] >= first && cimg[j] < first + count) {
            out->caption_row[k + (j - i)] = j;
            out->lengths[k + (j - i)] = lens[j];
            out->image[k + (j - i)] = (int32_t)(cimg[j] - first);
            j++;
        }
        if (read_rows(h.cap, H5T_NATIVE_INT32, 2, (hsize_t)i, (hsize_t)(j - i), (hsize_t)L,
                      out->captions + (size_t)k * L))
            rc = SN_FAIL(SN_EIO, "%s: cannot read /captions rows %lld..%lld", path, (long long)i, (long long)(j - 1));
        k += j - i;
        i = j;
    }
    for (int64_t c = 0; c < n && !rc; c++)
        for (int t = 0; t < out->lengths[c]; t++) {
            int32_t id = out->captions[(size_t)c * L + t];
            if (id < 0 || id >= V) {
                rc = SN_FAIL(SN_EFORMAT, "%s: /captions[%lld][%d] = %d, outside the vocabulary 0..%d", path,
                             (long long)out->caption_row[c], t, (int)id, V - 1);
                break;
            }
        }
    if (!rc && (flags & SN_COCO_REFS)) {   /* in runs of consecutive rows, like the captions */
        if (!(out->refs = calloc((size_t)(n ? n : 1), sizeof *out->refs))) rc = SN_FAIL(SN_ENOMEM, "references");
        for (int64_t c = 0, e; c < n && !rc; c = e) {
            for (e = c + 1; e < n && out->caption_row[e] == out->caption_row[e - 1] + 1;) e++;
            if (read_strings(h.tok, (hsize_t)out->caption_row[c], (hsize_t)(e - c), out->refs + c))
                rc = SN_FAIL(SN_EIO, "%s: cannot read /caption_tokens rows %lld..%lld", path,
                             (long long)out->caption_row[c], (long long)out->caption_row[e - 1]);
        }
    }
done:
    free(cimg);
    free(lens);
    close_all(&h);
    if (rc) sn_coco_free(out);
    return rc;
}

void sn_coco_free(sn_coco_set_t *s)
{
    free(s->images);
    free(s->caption_row);
    free(s->captions);
    free(s->lengths);
    free(s->image);
    if (s->refs)
        for (int64_t i = 0; i < s->n_captions; i++) free(s->refs[i]);
    free(s->refs);
    memset(s, 0, sizeof *s);
}
