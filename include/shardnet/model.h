/*
 * model.h: a model is a network (a layer, usually a Sequential) with its parameter arena.
 * Builders describe networks; they do not run loops (that is train/).
 */
#ifndef SHARDNET_MODEL_H
#define SHARDNET_MODEL_H
#include "shardnet/layer.h"
#include "shardnet/params.h"

typedef struct sn_model {
    char        name[32];
    sn_layer_t *net;
    sn_params_t params;
    int         num_classes;
} sn_model_t;

/* The MNIST ConvNet of DESIGN.md for (B,1,28,28) inputs: conv 1->16 3x3, ReLU, conv 16->32
 * 3x3, ReLU, maxpool 2, dropout p1, flatten, fc 4608->64, ReLU, dropout p2, fc 64->10,
 * log-softmax. p1 = 0.1, p2 = 0.25 in the reference; pass 0 to disable. */
int  sn_mnist_convnet_new(sn_model_t *m, int max_batch, float p1, float p2);
void sn_model_free(sn_model_t *m);

#endif
