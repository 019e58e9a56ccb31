/*
 * params.h: the flat parameter and gradient arenas of a model.
 *
 * Layers register their parameter tensors while they are built (sn_params_add records
 * where to store the pointers); sn_params_alloc then allocates one arena for values and
 * one, with the same layout, for gradients, and points every layer's tensors into them.
 * The allreduce, the optimizer, zeroing and checkpoints then each work on one buffer.
 */
#ifndef SHARDNET_PARAMS_H
#define SHARDNET_PARAMS_H
#include <stddef.h>
#include <stdint.h>

#define SN_PARAM_NAME_MAX 64
/* Floats right after the trainable prefix of the gradient arena that belong to no tensor:
 * the trainer puts per-step values there (loss sum, error and stop flags) so that one
 * allreduce of trainable_total + SN_PARAMS_SIDE_SLOTS floats carries them with the
 * gradients, at no extra latency. */
#define SN_PARAMS_SIDE_SLOTS 16
#define SN_PARAM_MAX_DIMS 4

typedef struct sn_param_spec {
    char    name[SN_PARAM_NAME_MAX];
    int     ndim;
    int     shape[SN_PARAM_MAX_DIMS];
    size_t  offset;   /* in floats, into both arenas */
    size_t  count;
    float **value;    /* where the layer wants the value pointer */
    float **grad;     /* where the layer wants the gradient pointer (may be NULL) */
    int     trainable;
} sn_param_spec_t;

typedef struct sn_params {
    sn_param_spec_t *specs;
    int              n, cap;
    size_t           total;            /* floats in each arena */
    size_t           trainable_total;  /* the prefix holding trainable tensors; the side
                                          slots follow it, then non-trainable buffers */
    float           *values;
    float           *grads;
    int              frozen;           /* while set, sn_params_add registers tensors as
                                          buffers: no optimizer state, not allreduced (their
                                          gradient pointers still point into the buffer part
                                          of the gradient arena), and Conv2d / BatchNorm
                                          built meanwhile are forward-only: no gradient
                                          buffers (a frozen ResNet-152 at batch 32 needs
                                          gigabytes less), backward fails */
} sn_params_t;

void sn_params_init(sn_params_t *p);
/* Registers a tensor; the pointers are filled by sn_params_alloc. */
int  sn_params_add(sn_params_t *p, const char *name, int ndim, const int *shape,
                   float **value, float **grad);
int  sn_params_alloc(sn_params_t *p);
void sn_params_zero_grad(sn_params_t *p);
void sn_params_free(sn_params_t *p);
/* FNV-1a over the bytes of the value arena: equal on all ranks iff weights are identical. */
uint64_t sn_params_hash(const sn_params_t *p);
/* Trainable values (without alignment padding). */
size_t sn_params_count(const sn_params_t *p);
const sn_param_spec_t *sn_params_find(const sn_params_t *p, const char *name);

#endif
