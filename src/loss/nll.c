/*
 * nll.c: negative log-likelihood criteria over (B, C), with class-index or one-hot targets.
 * Losses are summed in double; gradients are of scale * sum_i loss_i.
 */
#include <math.h>
#include <string.h>
#include "shardnet/error.h"
#include "shardnet/loss.h"

static int check_targets(const int *target, int B, int C)
{
    for (int i = 0; i < B; i++)
        if (target[i] < 0 || target[i] >= C)
            return SN_FAIL(SN_ERANGE, "target %d of row %d outside 0..%d", target[i], i, C - 1);
    return SN_OK;
}

static float clip_prob(float p)
{
    const float lo = SN_NLL_UNSTABLE_EPS, hi = 1.0f - SN_NLL_UNSTABLE_EPS;
    return p < lo ? lo : (p > hi ? hi : p);
}

int sn_nll_forward(double *loss_sum, const float *logp, const int *target, int B, int C)
{
    SN_TRY(check_targets(target, B, C));
    double s = 0.0;
    for (int i = 0; i < B; i++) s -= logp[(size_t)i * C + target[i]];
    *loss_sum = s;
    return SN_OK;
}

int sn_nll_backward(float *dlogp, const int *target, int B, int C, float scale)
{
    SN_TRY(check_targets(target, B, C));
    memset(dlogp, 0, (size_t)B * C * sizeof(float));
    for (int i = 0; i < B; i++) dlogp[(size_t)i * C + target[i]] = -scale;
    return SN_OK;
}

int sn_nll_onehot_forward(double *loss_sum, const float *logp, const float *onehot, int B, int C)
{
    double s = 0.0;
    for (size_t i = 0; i < (size_t)B * C; i++) s -= (double)onehot[i] * logp[i];
    *loss_sum = s;
    return SN_OK;
}

int sn_nll_onehot_backward(float *dlogp, const float *onehot, int B, int C, float scale)
{
    for (size_t i = 0; i < (size_t)B * C; i++) dlogp[i] = -scale * onehot[i];
    return SN_OK;
}

int sn_nll_unstable_forward(double *loss_sum, const float *p, const int *target, int B, int C)
{
    SN_TRY(check_targets(target, B, C));
    double s = 0.0;
    for (int i = 0; i < B; i++) s -= log((double)clip_prob(p[(size_t)i * C + target[i]]));
    *loss_sum = s;
    return SN_OK;
}

int sn_nll_unstable_backward(float *dp, const float *p, const int *target, int B, int C, float scale)
{
    SN_TRY(check_targets(target, B, C));
    memset(dp, 0, (size_t)B * C * sizeof(float));
    for (int i = 0; i < B; i++) {
        size_t k = (size_t)i * C + target[i];
        dp[k] = -scale / clip_prob(p[k]);
    }
    return SN_OK;
}

int sn_nll_unstable_onehot_forward(double *loss_sum, const float *p, const float *onehot, int B, int C)
{
    double s = 0.0;
    for (size_t i = 0; i < (size_t)B * C; i++)
        if (onehot[i] != 0.0f) s -= (double)onehot[i] * log((double)clip_prob(p[i]));
    *loss_sum = s;
    return SN_OK;
}

int sn_nll_unstable_onehot_backward(float *dp, const float *p, const float *onehot, int B, int C, float scale)
{
    for (size_t i = 0; i < (size_t)B * C; i++) dp[i] = -scale * onehot[i] / clip_prob(p[i]);
    return SN_OK;
}
