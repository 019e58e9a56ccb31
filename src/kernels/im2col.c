/* im2col.c: unfold/fold of convolution windows and the batch<->channel transposes. */
#include <string.h>
#include "kernels/kernels.h"

void sn_im2col(float *col, int ldc, const float *x, int C, int H, int W, int K, int S, int P, int OH, int OW)
{
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                float *row = col + (size_t)((c * K + ki) * K + kj) * ldc;
                const float *xc = x + (size_t)c * H * W;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * S - P + ki;
                    float *dst = row + (size_t)oh * OW;
                    if (ih < 0 || ih >= H) {
                        memset(dst, 0, (size_t)OW * sizeof(float));
                        continue;
                    }
                    const float *src = xc + (size_t)ih * W;
                    if (S == 1 && P == 0) {
                        memcpy(dst, src + kj, (size_t)OW * sizeof(float));
                        continue;
                    }
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * S - P + kj;
                        dst[ow] = (iw >= 0 && iw < W) ? src[iw] : 0.0f;
                    }
                }
            }
}

void sn_col2im(float *dx, const float *col, int ldc, int C, int H, int W, int K, int S, int P, int OH, int OW)
{
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                const float *row = col + (size_t)((c * K + ki) * K + kj) * ldc;
                float *xc = dx + (size_t)c * H * W;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * S - P + ki;
                    if (ih < 0 || ih >= H) continue;
                    const float *src = row + (size_t)oh * OW;
                    float *dst = xc + (size_t)ih * W;
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * S - P + kj;
                        if (iw >= 0 && iw < W) dst[iw] += src[ow];
                    }
                }
            }
}

void sn_batch_to_channels(float *dst, const float *src, int B, int OC, int HW)
{
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++)
            memcpy(dst + ((size_t)oc * B + b) * HW, src + ((size_t)b * OC + oc) * HW, (size_t)HW * sizeof(float));
}

void sn_channels_to_batch(float *dst, const float *src, int B, int OC, int HW, const float *bias)
{
    #pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++) {
            const float *s = src + ((size_t)oc * B + b) * HW;
            float *d = dst + ((size_t)b * OC + oc) * HW;
            float bv = bias ? bias[oc] : 0.0f;
            for (int i = 0; i < HW; i++) d[i] = s[i] + bv;
        }
}
