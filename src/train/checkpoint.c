/*
 * checkpoint.c: saving and loading parameter arenas in HDF5 (layout in checkpoint.h).
 * Loading validates everything it reads and never modifies the arenas unless the whole
 * file is good.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <hdf5.h>
#include "shardnet/checkpoint.h"
#include "data/h5util.h"
#include "shardnet/error.h"

static int attr_write(hid_t obj, const char *name, hid_t type, const void *value)
{
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, type, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, type, value);
    if (a >= 0) H5Aclose(a);
    H5Sclose(s);
    return rc < 0 ? SN_FAIL(SN_EIO, "cannot write attribute %s", name) : SN_OK;
}

static int attr_write_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, strlen(value) + 1);
    int rc = attr_write(obj, name, t, value);
    H5Tclose(t);
    return rc;
}

static int write_f32(hid_t loc, const char *path, const char *name, int ndim, const hsize_t *dims, const float *data)
{
    hid_t s = H5Screate_simple(ndim, dims, NULL);
    hid_t d = H5Dcreate2(loc, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    if (d >= 0) H5Dclose(d);
    H5Sclose(s);
    return rc < 0 ? SN_FAIL(SN_EIO, "%s: cannot write %s (disk full?)", path, name) : SN_OK;
}

int sn_checkpoint_save(const char *path, const sn_params_t *p, const sn_adadelta_t *opt,
                       const sn_checkpoint_info_t *info)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f < 0) return SN_FAIL(SN_EIO, "%s: cannot create (folder missing or not writable?)", tmp);
    int rc = SN_OK;
    hid_t g = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) rc = SN_FAIL(SN_EIO, "%s: cannot create /params", tmp);
    for (int i = 0; !rc && i < p->n; i++) {
        const sn_param_spec_t *s = &p->specs[i];
        hsize_t dims[SN_PARAM_MAX_DIMS];
        for (int d = 0; d < s->ndim; d++) dims[d] = (hsize_t)s->shape[d];
        rc = write_f32(g, tmp, s->name, s->ndim, dims, p->values + s->offset);
    }
    if (g >= 0) H5Gclose(g);
    if (!rc && opt) {
        g = H5Gcreate2(f, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        hsize_t n = (hsize_t)opt->n;
        if (g < 0) rc = SN_FAIL(SN_EIO, "%s: cannot create /optim", tmp);
        if (!rc) rc = write_f32(g, tmp, "square_avg", 1, &n, opt->square_avg);
        if (!rc) rc = write_f32(g, tmp, "acc_delta", 1, &n, opt->acc_delta);
        if (!rc) rc = attr_write(g, "steps", H5T_NATIVE_LONG, &opt->steps);
        if (!rc) rc = attr_write_str(g, "optimizer", opt->adam ? "adam" : "adadelta");
        if (g >= 0) H5Gclose(g);
    }
    if (!rc) {
        int version = SN_CHECKPOINT_VERSION;
        rc = attr_write_str(f, "magic", SN_CHECKPOINT_MAGIC);
        if (!rc) rc = attr_write(f, "format_version", H5T_NATIVE_INT, &version);
        if (!rc) rc = attr_write_str(f, "shardnet_version", SHARDNET_VERSION);
        if (!rc && info) {
            rc = attr_write_str(f, "model", info->model);
            if (!rc) rc = attr_write(f, "world_size", H5T_NATIVE_INT, &info->world_size);
            if (!rc) rc = attr_write(f, "threads", H5T_NATIVE_INT, &info->threads);
            if (!rc) rc = attr_write(f, "seed", H5T_NATIVE_UINT64, &info->seed);
            if (!rc) rc = attr_write(f, "epoch", H5T_NATIVE_INT64, &info->epoch);
            if (!rc) rc = attr_write(f, "epoch_step", H5T_NATIVE_INT64, &info->epoch_step);
            if (!rc) rc = attr_write(f, "step", H5T_NATIVE_INT64, &info->step);
            if (!rc) rc = attr_write(f, "batch", H5T_NATIVE_INT, &info->batch);
            if (!rc) rc = attr_write(f, "shuffle", H5T_NATIVE_INT, &info->shuffle);
            if (!rc) rc = attr_write(f, "global_shuffle", H5T_NATIVE_INT, &info->global_shuffle);
            if (!rc) rc = attr_write(f, "dropout", H5T_NATIVE_INT, &info->dropout);
            if (!rc) rc = attr_write(f, "train_limit", H5T_NATIVE_INT64, &info->train_limit);
            if (!rc) rc = attr_write(f, "loss_sum", H5T_NATIVE_DOUBLE, &info->loss_sum);
            if (!rc) rc = attr_write(f, "loss_count", H5T_NATIVE_DOUBLE, &info->loss_count);
            if (!rc) rc = attr_write(f, "seconds", H5T_NATIVE_DOUBLE, &info->seconds);
            if (!rc) rc = attr_write_str(f, "metrics", info->metrics ? info->metrics : "");
            if (!rc && info->config) rc = attr_write_str(f, "model_config", info->config);
            if (!rc && info->vocab) {
                hsize_t n = strlen(info->vocab);
                hid_t sp = H5Screate_simple(1, &n, NULL);
                hid_t d = H5Dcreate2(f, "vocab_text", H5T_STD_U8LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
                if (d < 0 || H5Dwrite(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, info->vocab) < 0)
                    rc = SN_FAIL(SN_EIO, "%s: cannot write /vocab_text", tmp);
                if (d >= 0) H5Dclose(d);
                H5Sclose(sp);
            }
        }
    }
    if (H5Fclose(f) < 0 && !rc) rc = SN_FAIL(SN_EIO, "%s: cannot close (disk full?)", tmp);
    if (!rc && rename(tmp, path) != 0)
        rc = SN_FAIL(SN_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc) unlink(tmp);
    return rc;
}

/* Reads dataset `name` of group /`group` (float, exactly `count` elements of shape dims) into out. */
static int read_f32(hid_t loc, const char *path, const char *group, const char *name, int ndim, const int *shape, size_t count, float *out)
{
    if (H5Lexists(loc, name, H5P_DEFAULT) <= 0) return SN_FAIL(SN_EFORMAT, "%s: no dataset /%s/%s", path, group, name);
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return SN_FAIL(SN_EFORMAT, "%s: /%s/%s is not a dataset", path, group, name);
    hid_t t = H5Dget_type(d), s = H5Dget_space(d);
    int rc = SN_OK;
    if (H5Tget_class(t) != H5T_FLOAT) rc = SN_FAIL(SN_EFORMAT, "%s: /%s/%s is not a floating-point dataset", path, group, name);
    int nd = H5Sget_simple_extent_ndims(s);
    hsize_t dims[8] = {0};
    if (!rc && (nd < 0 || nd > 8)) rc = SN_FAIL(SN_EFORMAT, "%s: /%s/%s has a bad shape", path, group, name);
    if (!rc) H5Sget_simple_extent_dims(s, dims, NULL);
    if (!rc && shape) {
        int same = nd == ndim;
        for (int i = 0; same && i < nd; i++) same = dims[i] == (hsize_t)shape[i];
        if (!same) {
            char want[96] = "", got[96] = "";
            for (int i = 0; i < ndim; i++) snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", i ? "," : "", shape[i]);
            for (int i = 0; i < nd; i++) snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? "," : "", (unsigned long long)dims[i]);
            rc = SN_FAIL(SN_EFORMAT, "%s: /%s/%s has shape [%s], the model needs [%s]", path, group, name, got, want);
        }
    } else if (!rc) {
        hsize_t n = 1;
        for (int i = 0; i < nd; i++) n *= dims[i];
        if (n != count) rc = SN_FAIL(SN_EFORMAT, "%s: /%s/%s has %llu values, expected %zu", path, group, name, (unsigned long long)n, count);
    }
    if (!rc && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
        rc = SN_FAIL(SN_EFORMAT, "%s: cannot read /%s/%s (truncated or corrupt file)", path, group, name);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return rc;
}

/* A scalar (one-value) attribute `name` of obj as `type`. Absent: SN_OK when optional. */
static int attr_read(hid_t obj, const char *path, const char *name, hid_t type, void *value, int required)
{
    if (H5Aexists(obj, name) <= 0)
        return required ? SN_FAIL(SN_EFORMAT, "%s: no attribute %s (not a complete shardnet checkpoint)", path, name) : SN_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), s = a < 0 ? -1 : H5Aget_space(a);
    int one = s >= 0 && H5Sget_simple_extent_npoints(s) == 1;
    int rc = one && H5Aread(a, type, value) >= 0 ? SN_OK : SN_FAIL(SN_EFORMAT, "%s: attribute %s is not a single number", path, name);
    if (s >= 0) H5Sclose(s);
    if (a >= 0) H5Aclose(a);
    return rc;
}

/* A scalar string attribute (fixed or variable length) as a malloc'd string in *out; absent:
 * *out = NULL and SN_OK when optional. */
static int attr_read_str(hid_t obj, const char *path, const char *name, char **out, int required)
{
    *out = NULL;
    if (H5Aexists(obj, name) <= 0)
        return required ? SN_FAIL(SN_EFORMAT, "%s: no attribute %s (not a complete shardnet checkpoint)", path, name) : SN_OK;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), s = a < 0 ? -1 : H5Aget_space(a), t = a < 0 ? -1 : H5Aget_type(a);
    int ok = s >= 0 && t >= 0 && H5Sget_simple_extent_npoints(s) == 1 && H5Tget_class(t) == H5T_STRING;
    if (ok && H5Tis_variable_str(t) > 0) {
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        char *v = NULL;
        ok = H5Aread(a, mt, &v) >= 0;
        if (ok) *out = strdup(v ? v : "");
        if (v) H5free_memory(v);
        H5Tclose(mt);
    } else if (ok) {
        size_t len = H5Tget_size(t);
        *out = len > 0 && len < ((size_t)1 << 30) ? calloc(len + 1, 1) : NULL;
        ok = *out && H5Aread(a, t, *out) >= 0;
    }
    if (t >= 0) H5Tclose(t);
    if (s >= 0) H5Sclose(s);
    if (a >= 0) H5Aclose(a);
    if (ok && *out) return SN_OK;
    free(*out);
    *out = NULL;
    return SN_FAIL(SN_EFORMAT, "%s: attribute %s is not a single string", path, name);
}

/* attr_read_str into a fixed buffer (truncated, always terminated; "" when absent). */
static int attr_read_strbuf(hid_t obj, const char *path, const char *name, char *buf, size_t n, int required)
{
    char *v;
    int rc = attr_read_str(obj, path, name, &v, required);
    snprintf(buf, n, "%s", v ? v : "");
    free(v);
    return rc;
}

/* Index of the first NaN or Inf of v[0..n), or n. */
static size_t first_nonfinite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) return i;
    return n;
}

/* Reads /params/NAME of every tensor of p whose name starts with prefix into vals (the
 * arena's layout), refusing a non-finite value. */
static int read_params(hid_t f, const char *path, const sn_params_t *p, const char *prefix, float *vals)
{
    size_t np = strlen(prefix);
    hid_t g = H5Gopen2(f, "params", H5P_DEFAULT);
    if (g < 0) return SN_FAIL(SN_EFORMAT, "%s: no /params group (not a shardnet parameter file)", path);
    int rc = SN_OK;
    for (int i = 0; !rc && i < p->n; i++) {
        const sn_param_spec_t *s = &p->specs[i];
        if (strncmp(s->name, prefix, np) != 0) continue;
        rc = read_f32(g, path, "params", s->name, s->ndim, s->shape, s->count, vals + s->offset);
        size_t bad = rc ? 0 : first_nonfinite(vals + s->offset, s->count);
        if (!rc && bad < s->count)
            rc = SN_FAIL(SN_EFORMAT, "%s: /params/%s holds a non-finite value (%g at index %zu)", path, s->name,
                         vals[s->offset + bad], bad);
    }
    H5Gclose(g);
    return rc;
}

/* /vocab_text into a malloc'd string; NULL when absent. */
static int read_vocab_text(hid_t f, const char *path, char **out)
{
    *out = NULL;
    if (H5Lexists(f, "vocab_text", H5P_DEFAULT) <= 0) return SN_OK;
    hid_t d = H5Dopen2(f, "vocab_text", H5P_DEFAULT), sp = d < 0 ? -1 : H5Dget_space(d);
    hssize_t n = sp < 0 ? -1 : H5Sget_simple_extent_npoints(sp);
    int rc = SN_OK;
    if (n < 0 || n > (1 << 28) || !(*out = malloc((size_t)n + 1)) ||
        H5Dread(d, H5T_NATIVE_UCHAR, H5S_ALL, H5S_ALL, H5P_DEFAULT, *out) < 0)
        rc = SN_FAIL(SN_EFORMAT, "%s: /vocab_text is unreadable", path);
    else
        (*out)[n] = '\0';
    if (rc) { free(*out); *out = NULL; }
    if (sp >= 0) H5Sclose(sp);
    if (d >= 0) H5Dclose(d);
    return rc;
}

void sn_checkpoint_info_free(sn_checkpoint_info_t *info)
{
    free(info->metrics);
    free(info->config);
    free(info->vocab);
    info->metrics = info->config = info->vocab = NULL;
}

int sn_checkpoint_peek(const char *path, sn_checkpoint_info_t *info)
{
    memset(info, 0, sizeof *info);
    hid_t f;
    SN_TRY(sn_h5_open_read(path, &f));
    char magic[16] = "";
    int rc = attr_read_strbuf(f, path, "magic", magic, sizeof magic, 0);
    if (!rc && strcmp(magic, SN_CHECKPOINT_MAGIC) != 0)
        rc = SN_FAIL(SN_EFORMAT, "%s: not a shardnet checkpoint (no magic attribute '%s')", path, SN_CHECKPOINT_MAGIC);
    if (!rc) rc = attr_read_strbuf(f, path, "model", info->model, sizeof info->model, 1);
    if (!rc) rc = attr_read(f, path, "epoch", H5T_NATIVE_INT64, &info->epoch, 0);
    if (!rc) rc = attr_read(f, path, "step", H5T_NATIVE_INT64, &info->step, 0);
    if (!rc) rc = attr_read_str(f, path, "model_config", &info->config, 0);
    if (!rc) rc = read_vocab_text(f, path, &info->vocab);
    if (rc) sn_checkpoint_info_free(info);
    H5Fclose(f);
    return rc;
}

int sn_checkpoint_load(const char *path, sn_params_t *p, sn_adadelta_t *opt, sn_checkpoint_info_t *info)
{
    if (info) memset(info, 0, sizeof *info);
    hid_t f;
    SN_TRY(sn_h5_open_read(path, &f));
    int rc = SN_OK;
    /* read into scratch copies: the live arenas change only if the whole file is good */
    float *vals = sn_alloc(p->total * sizeof(float), "checkpoint scratch");
    float *sq = NULL, *acc = NULL;
    long opt_steps = 0;
    if (!vals) rc = SN_ENOMEM;
    if (!rc) rc = read_params(f, path, p, "", vals);
    if (!rc && opt) {
        hid_t g = H5Gopen2(f, "optim", H5P_DEFAULT);
        if (g < 0) rc = SN_FAIL(SN_EFORMAT, "%s: no /optim group (saved without optimizer state)", path);
        sq = rc ? NULL : sn_alloc(opt->n * sizeof(float), "checkpoint scratch");
        acc = rc ? NULL : sn_alloc(opt->n * sizeof(float), "checkpoint scratch");
        if (!rc && (!sq || !acc)) rc = SN_ENOMEM;
        if (!rc) rc = read_f32(g, path, "optim", "square_avg", 0, NULL, opt->n, sq);
        if (!rc) rc = read_f32(g, path, "optim", "acc_delta", 0, NULL, opt->n, acc);
        if (!rc && (first_nonfinite(sq, opt->n) < opt->n || first_nonfinite(acc, opt->n) < opt->n))
            rc = SN_FAIL(SN_EFORMAT, "%s: /optim holds a non-finite value", path);
        if (!rc && H5Aexists(g, "steps") <= 0) rc = SN_FAIL(SN_EFORMAT, "%s: /optim has no steps attribute", path);
        if (!rc) rc = attr_read(g, path, "steps", H5T_NATIVE_LONG, &opt_steps, 1);
        char kind[16] = "adadelta";   /* files before Adam have no attribute */
        if (!rc) rc = attr_read_strbuf(g, path, "optimizer", kind, sizeof kind, 0);
        if (!rc && !kind[0]) snprintf(kind, sizeof kind, "adadelta");
        if (!rc && strcmp(kind, opt->adam ? "adam" : "adadelta") != 0)
            rc = SN_FAIL(SN_EINVAL, "%s: the optimizer state is %s's, this run uses %s", path, kind,
                         opt->adam ? "adam" : "adadelta");
        if (g >= 0) H5Gclose(g);
    }
    /* a file that says it is a shardnet checkpoint must be of this format; a resume needs one */
    char magic[16] = "";
    int version = 0;
    if (!rc) rc = attr_read_strbuf(f, path, "magic", magic, sizeof magic, 0);
    if (!rc) rc = attr_read(f, path, "format_version", H5T_NATIVE_INT, &version, 0);
    int is_ours = strcmp(magic, SN_CHECKPOINT_MAGIC) == 0;
    if (!rc && ((is_ours && version != SN_CHECKPOINT_VERSION) || (opt && !is_ours)))
        rc = SN_FAIL(SN_EFORMAT, "%s: not a shardnet checkpoint of format %d (magic '%s', version %d)",
                     path, SN_CHECKPOINT_VERSION, magic, version);
    if (!rc && info) {
        /* the run's position: all of it for a resume (opt given), what is there otherwise */
        int req = opt != NULL;
        rc = attr_read_strbuf(f, path, "model", info->model, sizeof info->model, req);
        if (!rc) rc = attr_read(f, path, "world_size", H5T_NATIVE_INT, &info->world_size, req);
        if (!rc) rc = attr_read(f, path, "threads", H5T_NATIVE_INT, &info->threads, req);
        if (!rc) rc = attr_read(f, path, "seed", H5T_NATIVE_UINT64, &info->seed, req);
        if (!rc) rc = attr_read(f, path, "epoch", H5T_NATIVE_INT64, &info->epoch, req);
        if (!rc) rc = attr_read(f, path, "epoch_step", H5T_NATIVE_INT64, &info->epoch_step, req);
        if (!rc) rc = attr_read(f, path, "step", H5T_NATIVE_INT64, &info->step, req);
        if (!rc) rc = attr_read(f, path, "batch", H5T_NATIVE_INT, &info->batch, req);
        if (!rc) rc = attr_read(f, path, "shuffle", H5T_NATIVE_INT, &info->shuffle, req);
        if (!rc) rc = attr_read(f, path, "global_shuffle", H5T_NATIVE_INT, &info->global_shuffle, req);
        if (!rc) rc = attr_read(f, path, "dropout", H5T_NATIVE_INT, &info->dropout, req);
        if (!rc) rc = attr_read(f, path, "train_limit", H5T_NATIVE_INT64, &info->train_limit, req);
        if (!rc) rc = attr_read(f, path, "loss_sum", H5T_NATIVE_DOUBLE, &info->loss_sum, req);
        if (!rc) rc = attr_read(f, path, "loss_count", H5T_NATIVE_DOUBLE, &info->loss_count, req);
        if (!rc) rc = attr_read(f, path, "seconds", H5T_NATIVE_DOUBLE, &info->seconds, req);
        if (!rc) rc = attr_read_str(f, path, "metrics", &info->metrics, 0);
        if (!rc) rc = attr_read_str(f, path, "model_config", &info->config, 0);
        if (!rc) rc = read_vocab_text(f, path, &info->vocab);
    }
    if (!rc) {
        memcpy(p->values, vals, p->total * sizeof(float));
        if (opt) {
            memcpy(opt->square_avg, sq, opt->n * sizeof(float));
            memcpy(opt->acc_delta, acc, opt->n * sizeof(float));
            opt->steps = opt_steps;
        }
    } else if (info) {
        sn_checkpoint_info_free(info);
    }
    sn_free(vals);
    sn_free(sq);
    sn_free(acc);
    H5Fclose(f);
    return rc;
}

int sn_checkpoint_load_prefix(const char *path, sn_params_t *p, const char *prefix, int *loaded)
{
    if (loaded) *loaded = 0;
    size_t np = strlen(prefix);
    int want = 0;
    for (int i = 0; i < p->n; i++) want += strncmp(p->specs[i].name, prefix, np) == 0;
    if (want == 0) return SN_FAIL(SN_EINVAL, "%s: the model has no tensor whose name starts with '%s'", path, prefix);
    hid_t f;
    SN_TRY(sn_h5_open_read(path, &f));
    int rc = SN_OK;
    char magic[16] = "";
    int version = 0;
    rc = attr_read_strbuf(f, path, "magic", magic, sizeof magic, 0);
    if (!rc) rc = attr_read(f, path, "format_version", H5T_NATIVE_INT, &version, 0);
    if (!rc && strcmp(magic, SN_CHECKPOINT_MAGIC) == 0 && version != SN_CHECKPOINT_VERSION)
        rc = SN_FAIL(SN_EFORMAT, "%s: shardnet parameter file of format %d, this build reads %d", path, version,
                     SN_CHECKPOINT_VERSION);
    /* read into a scratch copy: the arena changes only if every wanted tensor is good */
    float *vals = rc ? NULL : sn_alloc(p->total * sizeof(float), "checkpoint scratch");
    if (!rc && !vals) rc = SN_ENOMEM;
    if (!rc) rc = read_params(f, path, p, prefix, vals);
    if (!rc)
        for (int i = 0; i < p->n; i++) {
            const sn_param_spec_t *s = &p->specs[i];
            if (strncmp(s->name, prefix, np) != 0) continue;
            memcpy(p->values + s->offset, vals + s->offset, s->count * sizeof(float));
        }
    if (!rc && loaded) *loaded = want;
    sn_free(vals);
    H5Fclose(f);
    return rc;
}
