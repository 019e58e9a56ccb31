/*
 * optim.h: optimizers over the flat parameter arena (one elementwise loop each).
 * Adadelta follows torch.optim.Adadelta exactly (same operation order in float32); Adam
 * (sn_adam_init: the same struct, two state arenas as well) follows torch.optim.Adam
 * (amsgrad off): bias corrections in double, applied as float32 scalars.
 */
#ifndef SHARDNET_OPTIM_H
#define SHARDNET_OPTIM_H
#include <stddef.h>

typedef struct sn_adadelta {
    float  lr, rho, eps, weight_decay;
    size_t n;
    float *square_avg;   /* E[g^2]   (Adam: exp_avg_sq) */
    float *acc_delta;    /* E[dx^2]  (Adam: exp_avg) */
    long   steps;
    int    adam;         /* 1: the Adam update, beta1 and beta2 below */
    float  beta1, beta2;
} sn_adadelta_t;

/* Adam(lr, betas, eps, weight_decay) in the same struct; sn_adadelta_step dispatches. */
int  sn_adam_init(sn_adadelta_t *o, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay);

int  sn_adadelta_init(sn_adadelta_t *o, size_t n, float lr, float rho, float eps, float weight_decay);
/* p -= lr * delta, with g the (already averaged) gradient; n floats. */
void sn_adadelta_step(sn_adadelta_t *o, float *p, const float *g);
void sn_adadelta_free(sn_adadelta_t *o);

#endif
