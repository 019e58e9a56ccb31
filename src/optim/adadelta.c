/*
 * adadelta.c: torch.optim.Adadelta (Zeiler 2012) on the flat arena:
 *   g   += wd * p                          (if weight decay)
 *   v    = rho * v + (1 - rho) * g^2
 *   d    = sqrt(u + eps) / sqrt(v + eps) * g
 *   u    = rho * u + (1 - rho) * d^2
 *   p   -= lr * d
 * Each element is independent: thread count never changes the result.
 */
#include <math.h>
#include <string.h>
#include "shardnet/error.h"
#include "shardnet/optim.h"

int sn_adadelta_init(sn_adadelta_t *o, size_t n, float lr, float rho, float eps, float weight_decay)
{
    memset(o, 0, sizeof *o);
    if (!(lr >= 0.0f) || !(rho >= 0.0f && rho <= 1.0f) || !(eps >= 0.0f) || !(weight_decay >= 0.0f))
        return SN_FAIL(SN_EINVAL, "Adadelta: lr %g rho %g eps %g weight decay %g out of range",
                       (double)lr, (double)rho, (double)eps, (double)weight_decay);
    o->lr = lr; o->rho = rho; o->eps = eps; o->weight_decay = weight_decay; o->n = n;
    o->square_avg = sn_alloc(n * sizeof(float), "Adadelta square_avg");
    o->acc_delta = sn_alloc(n * sizeof(float), "Adadelta acc_delta");
    if (!o->square_avg || !o->acc_delta) return SN_ENOMEM;
    return SN_OK;
}

/* One element of the update; inlined into a vectorised loop. */
static inline void adadelta_one(float *restrict p, float *restrict v, float *restrict u, float g,
                                float rho, float one_minus_rho, float eps, float lr)
{
    *v = *v * rho + one_minus_rho * g * g;
    float std = sqrtf(*v + eps);
    float d = sqrtf(*u + eps) / std * g;
    *u = *u * rho + one_minus_rho * d * d;
    *p += -lr * d;
}

void sn_adadelta_step(sn_adadelta_t *o, float *p, const float *g)
{
    const float rho = o->rho, one_minus_rho = 1.0f - o->rho, eps = o->eps, lr = o->lr, wd = o->weight_decay;
    float *restrict v = o->square_avg, *restrict u = o->acc_delta, *restrict pr = p;
    const float *restrict gr = g;
    long n = (long)o->n;
    if (wd != 0.0f) {
        #pragma omp parallel for simd schedule(static) if (n >= 65536)
        for (long i = 0; i < n; i++) adadelta_one(&pr[i], &v[i], &u[i], gr[i] + wd * pr[i], rho, one_minus_rho, eps, lr);
    } else {
        #pragma omp parallel for simd schedule(static) if (n >= 65536)
        for (long i = 0; i < n; i++) adadelta_one(&pr[i], &v[i], &u[i], gr[i], rho, one_minus_rho, eps, lr);
    }
    o->steps++;
}

void sn_adadelta_free(sn_adadelta_t *o)
{
    sn_free(o->square_avg);
    sn_free(o->acc_delta);
    memset(o, 0, sizeof *o);
}
