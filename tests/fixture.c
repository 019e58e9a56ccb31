/* fixture.c: loads the binary reference fixtures that tests/gen_fixtures*.py write. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "fixture.h"

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR must name the folder of the committed fixtures"
#endif

static void die(const char *path, const char *what)
{
    fprintf(stderr, "fixture %s: %s\n", path, what);
    exit(2);
}

static uint32_t rd_u32(FILE *fp, const char *path)
{
    uint32_t v;
    if (fread(&v, 4, 1, fp) != 1) die(path, "truncated");
    return v;
}

fx_file_t *fx_load(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FIXTURE_DIR, name);
    FILE *fp = fopen(path, "rb");
    if (!fp) die(path, "cannot open (regenerate with tests/gen_fixtures.py)");
    char magic[4];
    if (fread(magic, 1, 4, fp) != 4 || memcmp(magic, "SNFX", 4) != 0) die(path, "bad magic, expected SNFX");
    if (rd_u32(fp, path) != 1) die(path, "unsupported version");
    fx_file_t *f = calloc(1, sizeof *f);
    f->n = (int)rd_u32(fp, path);
    f->t = calloc((size_t)f->n, sizeof *f->t);
    for (int i = 0; i < f->n; i++) {
        fx_tensor_t *t = &f->t[i];
        uint32_t len = rd_u32(fp, path);
        if (len > 4096) die(path, "name too long");
        t->name = calloc(len + 1, 1);
        if (fread(t->name, 1, len, fp) != len) die(path, "truncated name");
        t->dtype = (int)rd_u32(fp, path);
        t->ndim = (int)rd_u32(fp, path);
        if (t->ndim > 8 || t->dtype < 0 || t->dtype > 2) die(path, "bad tensor header");
        t->count = 1;
        for (int d = 0; d < t->ndim; d++) {
            t->dims[d] = (int)rd_u32(fp, path);
            t->count *= (size_t)t->dims[d];
        }
        size_t esz = t->dtype == FX_F64 ? 8 : 4;
        t->data = malloc(t->count * esz + 1);
        if (fread(t->data, esz, t->count, fp) != t->count) die(path, "truncated data");
    }
    fclose(fp);
    return f;
}

void fx_free(fx_file_t *f)
{
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        free(f->t[i].name);
        free(f->t[i].data);
    }
    free(f->t);
    free(f);
}

const fx_tensor_t *fx_get(const fx_file_t *f, const char *name, int dtype)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) {
            if (f->t[i].dtype != dtype) die(name, "unexpected dtype");
            return &f->t[i];
        }
    die(name, "tensor not in fixture");
    return NULL;
}

const float *fx_f32(const fx_file_t *f, const char *name) { return fx_get(f, name, FX_F32)->data; }
const int32_t *fx_i32(const fx_file_t *f, const char *name) { return fx_get(f, name, FX_I32)->data; }
int fx_int(const fx_file_t *f, const char *name) { return fx_i32(f, name)[0]; }

double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}
