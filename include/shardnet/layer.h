/*
 * layer.h: the layer protocol (Torch7 nn style).
 *
 *   forward(x) -> l->output            update_output
 *   backward(x, dy) -> l->grad_input   update_grad_input, and
 *                                      acc_grad_parameters: parameter gradients are ADDED
 *                                      to the gradient arena, never overwritten
 *
 * Tensors are batch-first, row-major float32. A layer knows the shape of one sample
 * (in_shape / out_shape); every call passes the batch size B <= max_batch. A layer
 * owns its output and grad_input buffers (sized for max_batch when it is built) and
 * caches only what its backward needs; nothing is allocated inside forward/backward.
 * Layers never call MPI or HDF5.
 */
#ifndef SHARDNET_LAYER_H
#define SHARDNET_LAYER_H
#include <stddef.h>
#include <stdint.h>
#include "shardnet/error.h"
#include "shardnet/params.h"

#define SN_LAYER_NAME_MAX 48
#define SN_MAX_DIMS 3

/* Per-call context: mode and the keys of the counter-based RNG. */
typedef struct sn_ctx {
    int            training;    /* 1: dropout active, batch statistics; 0: evaluate */
    uint64_t       seed;        /* run seed */
    int64_t        step;        /* global optimisation step (keys dropout masks) */
    const int64_t *sample_ids;  /* global sample index of each batch row; NULL: the row number */
    const int     *lengths;     /* sequence lengths of each batch row (sequence layers); NULL: full */
    /* Synchronised batch statistics: sums n doubles in place over the data-parallel group
     * (all ranks call it in the same order: it is collective). BatchNorm in training mode
     * uses it for the batch mean and variance and for the input-gradient sums, so P ranks
     * x B/P rows normalise exactly like 1 rank x B. NULL: the local batch only. */
    int          (*reduce_sum)(double *v, int n, void *arg);
    void          *reduce_arg;
} sn_ctx_t;

typedef struct sn_layer sn_layer_t;

typedef struct sn_layer_ops {
    const char *kind;
    int  (*forward)(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B);
    int  (*backward)(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B);
    /* Initialises parameters the way PyTorch's reset_parameters does (distribution, bounds). */
    void (*reset)(sn_layer_t *l, uint64_t seed);
    void (*destroy)(sn_layer_t *l);
} sn_layer_ops_t;

struct sn_layer {
    const sn_layer_ops_t *ops;
    char     name[SN_LAYER_NAME_MAX];
    uint64_t id;                    /* hash of the name: keys this layer's RNG streams */
    int      in_ndim,  in_shape[SN_MAX_DIMS];   /* one sample, e.g. (C,H,W) */
    int      out_ndim, out_shape[SN_MAX_DIMS];
    size_t   in_size, out_size;     /* floats per sample */
    int      max_batch;
    int      need_grad_input;       /* 0: backward may skip dx (first layer of a model) */
    float   *output;                /* (max_batch, out_size) */
    float   *grad_input;            /* (max_batch, in_size) */
    int      owns_output, owns_grad_input;
};

/* For layer kernels: an OpenMP region costs a few microseconds of fork/join, so loops
 * over fewer elements than this run on the calling thread. */
#define SN_PARALLEL_WORTH(elements) ((elements) >= 32768)

/* Generic entry points: check B and dispatch. */
int  sn_layer_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B);
int  sn_layer_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B);
void sn_layer_reset(sn_layer_t *l, uint64_t seed);
void sn_layer_free(sn_layer_t *l);

/* For layer implementations: fills the common fields and allocates output/grad_input
 * (alloc_output / alloc_grad_input = 0 when the layer aliases other buffers). */
int sn_layer_setup(sn_layer_t *l, const sn_layer_ops_t *ops, const char *name, int max_batch,
                   int in_ndim, const int *in_shape, int out_ndim, const int *out_shape,
                   int alloc_output, int alloc_grad_input);
/* Frees the buffers sn_layer_setup allocated. */
void sn_layer_release(sn_layer_t *l);
/* Builds "prefix.suffix" into out (for parameter names). */
void sn_layer_param_name(char *out, size_t n, const sn_layer_t *l, const char *suffix);

#endif
