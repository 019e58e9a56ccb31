/*
 * fixture.h: reader of PyTorch reference fixtures (written by tests/fixture_io.py).
 *
 * File layout, little-endian:
 *   "SNFX"  u32 version (1)  u32 count
 *   count x { u32 name_len, name, u32 dtype (0 f32, 1 i32, 2 f64), u32 ndim, u32 dims[ndim], data }
 */
#ifndef SHARDNET_TEST_FIXTURE_H
#define SHARDNET_TEST_FIXTURE_H
#include <stddef.h>
#include <stdint.h>

enum { FX_F32 = 0, FX_I32 = 1, FX_F64 = 2 };

typedef struct fx_tensor {
    char    *name;
    int      dtype, ndim;
    int      dims[8];
    size_t   count;
    void    *data;
} fx_tensor_t;

typedef struct fx_file {
    fx_tensor_t *t;
    int          n;
} fx_file_t;

/* Loads FIXTURE_DIR/name; aborts the test run with a message if it is missing or malformed. */
fx_file_t         *fx_load(const char *name);
void               fx_free(fx_file_t *f);
/* Looks a tensor up by name; aborts if absent or of another dtype. */
const fx_tensor_t *fx_get(const fx_file_t *f, const char *name, int dtype);
const float       *fx_f32(const fx_file_t *f, const char *name);
const int32_t     *fx_i32(const fx_file_t *f, const char *name);
/* A scalar stored as a one-element i32 tensor. */
int                fx_int(const fx_file_t *f, const char *name);

/* Largest |a - b| over n elements. */
double max_abs_diff(const float *a, const float *b, size_t n);

#endif
