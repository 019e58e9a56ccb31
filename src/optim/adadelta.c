/*
 * adadelta.c: torch.optim.Adadelta (Zeiler 2012) on the flat arena:
 *   g   += wd * p                          (if weight decay)
 *   v    = rho * v + (1 - rho) * g^2
 *   d    = sqrt(u + eps) / sqrt(v + eps) * g
 *   u    = rho * u + (1 - rho) * d^2
 *   p   -= lr * d
 * and torch.optim.Adam (amsgrad off), t = steps after this one:
 *   g   += wd * p                          (if weight decay)
 *   m    = beta1 * m + (1 - beta1) * g
 *   v    = beta2 * v + (1 - beta2) * g^2
 *   p   -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
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

int sn_adam_init(sn_adadelta_t *o, size_t n, float lr, float beta1, float beta2, float eps, float weight_decay)
{
    memset(o, 0, sizeof *o);
    if (!(lr >= 0.0f) || !(beta1 >= 0.0f && beta1 < 1.0f) || !(beta2 >= 0.0f && beta2 < 1.0f) || !(eps >= 0.0f) ||
        !(weight_decay >= 0.0f))
        return SN_FAIL(SN_EINVAL, "Adam: lr %g betas (%g, %g) eps %g weight decay %g out of range", (double)lr,
                       (double)beta1, (double)beta2, (double)eps, (double)weight_decay);
    o->adam = 1;
    o->lr = lr; o->beta1 = beta1; o->beta2 = beta2; o->eps = eps; o->weight_decay = weight_decay; o->n = n;
    o->square_avg = sn_alloc(n * sizeof(float), "Adam exp_avg_sq");
    o->acc_delta = sn_alloc(n * sizeof(float), "Adam exp_avg");
    if (!o->square_avg || !o->acc_delta) return SN_ENOMEM;
    return SN_OK;
}

static void adam_step(sn_adadelta_t *o, float *restrict p, const float *restrict g)
{
    long n = (long)o->n, t = o->steps + 1;
    const float b1 = o->beta1, b2 = o->beta2, eps = o->eps, wd = o->weight_decay;
    const float step_size = (float)((double)o->lr / (1.0 - pow((double)b1, (double)t)));
    const float bc2_sqrt = (float)sqrt(1.0 - pow((double)b2, (double)t));
    float *restrict m = o->acc_delta, *restrict v = o->square_avg;
    #pragma omp parallel for simd schedule(static) if (n >= 65536)
    for (long i = 0; i < n; i++) {
        float gi = wd != 0.0f ? g[i] + wd * p[i] : g[i];
        m[i] = m[i] * b1 + (1.0f - b1) * gi;
        v[i] = v[i] * b2 + (1.0f - b2) * gi * gi;
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] += -step_size * (m[i] / denom);
    }
    o->steps++;
}

void sn_adadelta_step(sn_adadelta_t *o, float *p, const float *g)
{
    if (o->adam) {
        adam_step(o, p, g);
        return;
    }
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
