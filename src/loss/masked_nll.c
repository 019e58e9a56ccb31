/*
 * masked_nll.c: negative log-likelihood over (B, T, V) log-probabilities that counts
 * only real tokens: t < lengths[b] and target != ignore_index. This is the captioning
 * loss: cross-entropy on packed sequences / F.nll_loss(ignore_index=<pad>).
 * The loss is summed in double in row order; the gradient is of scale * sum.
 * sn_log_softmax_nll_backward fuses this backward with LogSoftMax's for packed rows.
 * Must not: read targets at masked positions (they may be any padding value).
 */
#include <math.h>
#include <string.h>
#include "shardnet/layer.h"
#include "shardnet/error.h"
#include "shardnet/sequence.h"
#include "kernels/kernels.h"

static int is_real(const int *target, const int *lengths, int ignore_index, int b, int t, int T)
{
    if (lengths && t >= lengths[b]) return 0;
    return ignore_index < 0 || target[(size_t)b * T + t] != ignore_index;
}

static int check(const int *target, const int *lengths, int ignore_index, int B, int T, int V)
{
    if (B < 1 || T < 1 || V < 1) return SN_FAIL(SN_EINVAL, "masked NLL: shape (%d, %d, %d)", B, T, V);
    for (int b = 0; b < B; b++) {
        if (lengths && (lengths[b] < 0 || lengths[b] > T))
            return SN_FAIL(SN_EINVAL, "masked NLL: length %d of row %d outside 0..%d", lengths[b], b, T);
        for (int t = 0; t < T; t++) {
            int y = target[(size_t)b * T + t];
            if (is_real(target, lengths, ignore_index, b, t, T) && (y < 0 || y >= V))
                return SN_FAIL(SN_ERANGE, "masked NLL: target %d at (%d, %d) outside 0..%d", y, b, t, V - 1);
        }
    }
    return SN_OK;
}

int sn_masked_nll_forward(double *loss_sum, int *count, const float *logp, const int *target,
                          const int *lengths, int ignore_index, int B, int T, int V)
{
    SN_TRY(check(target, lengths, ignore_index, B, T, V));
    double s = 0.0;
    int n = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            if (is_real(target, lengths, ignore_index, b, t, T)) {
                size_t r = (size_t)b * T + t;
                s -= logp[r * V + target[r]];
                n++;
            }
    *loss_sum = s;
    if (count) *count = n;
    return SN_OK;
}

int sn_masked_nll_backward(float *dlogp, const int *target, const int *lengths, int ignore_index,
                           int B, int T, int V, float scale)
{
    SN_TRY(check(target, lengths, ignore_index, B, T, V));
    memset(dlogp, 0, (size_t)B * T * V * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            if (is_real(target, lengths, ignore_index, b, t, T)) {
                size_t r = (size_t)b * T + t;
                dlogp[r * V + target[r]] = -scale;
            }
    return SN_OK;
}

int sn_log_softmax_nll_backward(float *dx, const float *logp, const int *target, int n, int V, float scale)
{
    SN_TRY(check(target, NULL, -1, 1, n, V));   /* n rows, every one real */
    /* LogSoftMax backward: dx = g - exp(y) * sum(g); here g = -scale at the target and 0
     * elsewhere, so sum(g) = -scale (its double sum is exact). Written as the same
     * expression so that it rounds the same way. */
    float s = -scale;
    #pragma omp parallel for schedule(static) if (SN_PARALLEL_WORTH(8 * (size_t)n * V))
    for (int r = 0; r < n; r++) {
        const float *y = logp + (size_t)r * V;
        float *d = dx + (size_t)r * V;
        int t = target[r];
        sn_vexpf(d, y, (size_t)V);   /* the same exp as LogSoftMax's own backward */
        for (int i = 0; i < V; i++) {
            float g = i == t ? -scale : 0.0f;
            d[i] = g - d[i] * s;
        }
    }
    return SN_OK;
}
