/*
 * im2col.c: unfold/fold of convolution windows. For each kernel offset (ki, kj) the
 * valid output columns form one contiguous range, computed once per row, so the inner
 * loops are straight copies/adds (vectorised) with no bounds tests; stride 1 uses memcpy.
 */
#include <string.h>
#include "kernels/kernels.h"

/* Output columns ow whose input column ow*S - P + kj lies in [0, W). */
static void valid_cols(int W, int S, int P, int kj, int OW, int *lo, int *hi)
{
    int a = P - kj, first = a > 0 ? (a + S - 1) / S : 0;   /* ceil((P-kj)/S) */
    int last = (W - 1 + P - kj) / S + 1;                    /* one past the last valid ow */
    if (W - 1 + P - kj < 0) last = 0;
    *lo = first < OW ? first : OW;
    *hi = last < OW ? last : OW;
    if (*hi < *lo) *hi = *lo;
}

void sn_im2col(float *col, int ldc, const float *x, int C, int H, int W, int K, int S, int P, int OH, int OW)
{
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                float *row = col + (size_t)((c * K + ki) * K + kj) * ldc;
                const float *xc = x + (size_t)c * H * W;
                int lo, hi;
                valid_cols(W, S, P, kj, OW, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * S - P + ki;
                    float *dst = row + (size_t)oh * OW;
                    if (ih < 0 || ih >= H) {
                        memset(dst, 0, (size_t)OW * sizeof(float));
                        continue;
                    }
                    const float *src = xc + (size_t)ih * W;
                    int off = kj - P;   /* output column ow reads input column ow*S + off */
                    for (int ow = 0; ow < lo; ow++) dst[ow] = 0.0f;
                    if (S == 1) {
                        /* rows are short (tens of floats): an inline loop beats memcpy calls */
                        #pragma omp simd
                        for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow + off];
                    } else if (S == 2) {
                        /* a constant stride: loads and a permute, not a gather */
                        #pragma omp simd
                        for (int ow = lo; ow < hi; ow++) dst[ow] = src[2 * ow + off];
                    } else
                        for (int ow = lo; ow < hi; ow++) dst[ow] = src[ow * S + off];
                    for (int ow = hi; ow < OW; ow++) dst[ow] = 0.0f;
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
                int lo, hi;
                valid_cols(W, S, P, kj, OW, &lo, &hi);
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * S - P + ki;
                    if (ih < 0 || ih >= H) continue;
                    const float *src = row + (size_t)oh * OW;
                    float *dst = xc + (size_t)ih * W;
                    int off = kj - P;
                    if (S == 1) {
                        #pragma omp simd
                        for (int ow = lo; ow < hi; ow++) dst[ow + off] += src[ow];
                    } else if (S == 2) {
                        #pragma omp simd
                        for (int ow = lo; ow < hi; ow++) dst[2 * ow + off] += src[ow];
                    } else {
                        for (int ow = lo; ow < hi; ow++) dst[ow * S + off] += src[ow];
                    }
                }
            }
}

/* Length of the run of row (ki, kj) that lies inside the plane of H*W floats. */
static int wide_len(int H, int W, int ki, int kj, int OH)
{
    int start = ki * W + kj, n = OH * W;
    return start + n <= H * W ? n : H * W - start;
}

void sn_im2col_wide(float *col, const float *x, int C, int H, int W, int K, int OH)
{
    int n = OH * W;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                float *row = col + (size_t)((c * K + ki) * K + kj) * n;
                int len = wide_len(H, W, ki, kj, OH);
                memcpy(row, x + (size_t)c * H * W + ki * W + kj, (size_t)len * sizeof(float));
                for (int i = len; i < n; i++) row[i] = 0.0f;
            }
}

void sn_col2im_wide(float *dx, const float *col, int C, int H, int W, int K, int OH)
{
    int n = OH * W;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                const float *row = col + (size_t)((c * K + ki) * K + kj) * n;
                float *d = dx + (size_t)c * H * W + ki * W + kj;
                int len = wide_len(H, W, ki, kj, OH);
                #pragma omp simd
                for (int i = 0; i < len; i++) d[i] += row[i];
            }
}

void sn_batch_to_channels(float *dst, const float *src, int B, int OC, int HW)
{
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * OC * HW >= 32768)
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++)
            memcpy(dst + ((size_t)oc * B + b) * HW, src + ((size_t)b * OC + oc) * HW, (size_t)HW * sizeof(float));
}

void sn_channels_to_batch(float *dst, const float *src, int B, int OC, int HW, const float *bias)
{
    #pragma omp parallel for collapse(2) schedule(static) if ((size_t)B * OC * HW >= 32768)
    for (int b = 0; b < B; b++)
        for (int oc = 0; oc < OC; oc++) {
            const float *s = src + ((size_t)oc * B + b) * HW;
            float *d = dst + ((size_t)b * OC + oc) * HW;
            float bv = bias ? bias[oc] : 0.0f;
            for (int i = 0; i < HW; i++) d[i] = s[i] + bv;
        }
}
