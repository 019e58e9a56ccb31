/*
 * optim.h: optimizers over the flat parameter arena (one elementwise loop each).
 * Adadelta follows torch.optim.Adadelta exactly (same operation order in float32).
 */
#ifndef SHARDNET_OPTIM_H
#define SHARDNET_OPTIM_H
#include <stddef.h>

typedef struct sn_adadelta {
    float  lr, rho, eps, weight_decay;
    size_t n;
    float *square_avg;   /* E[g^2] */
    float *acc_delta;    /* E[dx^2] */
    long   steps;
} sn_adadelta_t;

int  sn_adadelta_init(sn_adadelta_t *o, size_t n, float lr, float rho, float eps, float weight_decay);
/* p -= lr * delta, with g the (already averaged) gradient; n floats. */
void sn_adadelta_step(sn_adadelta_t *o, float *p, const float *g);
void sn_adadelta_free(sn_adadelta_t *o);

#endif
