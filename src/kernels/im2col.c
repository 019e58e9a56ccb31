/*
 * im2col.c: unfold/fold of convolution windows. For each kernel offset (ki, kj) the
 * valid output columns form one contiguous range, computed once per row, so the inner
 * loops are straight copies/adds (vectorised) with no bounds tests; stride 1 uses memcpy.
 */
#include <stddef.h>
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

/* ---- flat im2col for "same" convolutions ---------------------------------------------
 * Stride S in {1, 2}, K = 2P + 1, so OH = ceil(H/S) and OW = ceil(W/S). The input seen by
 * stride 2 is split into its four phases q = (row parity, column parity), each a PH x PW
 * plane (PH = OH, PW = OW; a phase short of a row or column is padded with zeros). Kernel
 * offset k of one axis reads input 2*o + k - P = 2*(o + sh) + ph, ph = (k - P) mod 2,
 * sh = floor((k - P) / 2); with stride 1 the plane is the input itself, ph = 0, sh = k - P.
 * So column row (c, ki, kj) at d = oh*OW + ow is plane[d + sh_i*PW + sh_j] wherever
 * 0 <= oh + sh_i < PH and 0 <= ow + sh_j < PW, and zero elsewhere: one flat copy, then
 * |sh_j| zeros per row. */
int sn_im2col_flat_ok(int H, int W, int K, int S, int P)
{
    return (S == 1 || S == 2) && K == 2 * P + 1 && H >= 1 && W >= 1;
}

size_t sn_im2col_flat_floats(int C, int H, int W, int S)
{
    return S == 2 ? (size_t)4 * C * ((H + 1) / 2) * ((W + 1) / 2) : 0;
}

/* Shift of kernel offset k along one axis, and its phase (stride 2). */
static inline int flat_shift(int k, int S, int P, int *ph)
{
    int a = k - P;
    if (S == 1) { *ph = 0; return a; }
    int sh = a >= 0 ? a / 2 : -((1 - a) / 2);   /* floor(a / 2) */
    *ph = a - 2 * sh;
    return sh;
}

/* Column row (c, ki, kj): the entries d in [*d0, *d1) are plane element d + *src (counted
 * from the first plane: the input, or channel 0's phases), the others zero; *sh_j is the
 * column shift. */
static void flat_range(int c, int S, int P, int ki, int kj, int PH, int PW, ptrdiff_t *src, int *sh_j,
                       int *d0, int *d1)
{
    int phi, phj, shi = flat_shift(ki, S, P, &phi), shj = flat_shift(kj, S, P, &phj);
    int off = shi * PW + shj;
    *src = ((ptrdiff_t)c * (S == 2 ? 4 : 1) + phi * 2 + phj) * PH * PW + off;
    *sh_j = shj;
    int oh0 = shi < 0 ? -shi : 0, oh1 = PH - shi < PH ? PH - shi : PH;
    if (oh0 > PH) oh0 = PH;   /* a shift past the whole plane: nothing to copy */
    if (oh1 < oh0) oh1 = oh0;
    int n = PH * PW, a = oh0 * PW, b = oh1 * PW;
    if (a + off < 0) a = -off;        /* the first row's first entry, shifted left */
    if (b + off > n) b = n - off;     /* the last row's last entry, shifted right */
    if (a > n) a = n;
    *d0 = a;
    *d1 = b > a ? b : a;
}

/* Zeroes the entries of rows [d0, d1) of a column row whose column is shifted out of the
 * plane: the first -sh_j or the last sh_j of each row of PW. */
static void zero_cols(float *row, int d0, int d1, int PW, int sh_j)
{
    int c0 = sh_j < 0 ? 0 : PW - sh_j, c1 = sh_j < 0 ? -sh_j : PW;
    if (c0 < 0) c0 = 0;
    for (int d = d0 - d0 % PW; d < d1; d += PW)
        for (int j = c0; j < c1; j++) row[d + j] = 0.0f;
}

/* x (C,H,W) -> phase (C, 4, PH, PW): phase[c][2*rp+cp][r][s] = x[c][2r+rp][2s+cp], 0 outside */
static void split_phases(float *phase, const float *x, int C, int H, int W)
{
    int PH = (H + 1) / 2, PW = (W + 1) / 2;
    for (int c = 0; c < C; c++)
        for (int rp = 0; rp < 2; rp++)
            for (int r = 0; r < PH; r++) {
                int h = 2 * r + rp;
                float *de = phase + (((size_t)c * 4 + 2 * rp) * PH + r) * PW, *dodd = de + (size_t)PH * PW;
                if (h >= H) {
                    memset(de, 0, (size_t)PW * sizeof(float));
                    memset(dodd, 0, (size_t)PW * sizeof(float));
                    continue;
                }
                const float *src = x + ((size_t)c * H + h) * W;
                #pragma omp simd
                for (int s = 0; s < W / 2; s++) {
                    de[s] = src[2 * s];
                    dodd[s] = src[2 * s + 1];
                }
                if (W & 1) {
                    de[PW - 1] = src[W - 1];
                    dodd[PW - 1] = 0.0f;
                }
            }
}

/* the inverse: every element of dx from its phase */
static void merge_phases(float *dx, const float *phase, int C, int H, int W)
{
    int PH = (H + 1) / 2, PW = (W + 1) / 2;
    for (int c = 0; c < C; c++)
        for (int h = 0; h < H; h++) {
            int rp = h & 1, r = h >> 1;
            const float *se = phase + (((size_t)c * 4 + 2 * rp) * PH + r) * PW, *so = se + (size_t)PH * PW;
            float *dst = dx + ((size_t)c * H + h) * W;
            #pragma omp simd
            for (int s = 0; s < W / 2; s++) {
                dst[2 * s] = se[s];
                dst[2 * s + 1] = so[s];
            }
            if (W & 1) dst[W - 1] = se[PW - 1];
        }
}

void sn_im2col_flat(float *col, int ldc, const float *x, float *phase, int C, int H, int W, int K, int S, int P)
{
    int PH = S == 2 ? (H + 1) / 2 : H, PW = S == 2 ? (W + 1) / 2 : W, n = PH * PW;
    const float *planes = x;
    if (S == 2) {
        split_phases(phase, x, C, H, W);
        planes = phase;
    }
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                float *row = col + (size_t)((c * K + ki) * K + kj) * ldc;
                ptrdiff_t src;
                int shj, d0, d1;
                flat_range(c, S, P, ki, kj, PH, PW, &src, &shj, &d0, &d1);
                memset(row, 0, (size_t)d0 * sizeof(float));
                memcpy(row + d0, planes + (src + d0), (size_t)(d1 - d0) * sizeof(float));
                memset(row + d1, 0, (size_t)(n - d1) * sizeof(float));
                zero_cols(row, d0, d1, PW, shj);
            }
}

void sn_col2im_flat(float *dx, float *col, int ldc, float *phase, int C, int H, int W, int K, int S, int P)
{
    int PH = S == 2 ? (H + 1) / 2 : H, PW = S == 2 ? (W + 1) / 2 : W, n = PH * PW;
    float *planes = S == 2 ? phase : dx;
    memset(planes, 0, (size_t)C * (S == 2 ? 4 : 1) * n * sizeof(float));
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < K; ki++)
            for (int kj = 0; kj < K; kj++) {
                float *row = col + (size_t)((c * K + ki) * K + kj) * ldc;
                ptrdiff_t at;
                int shj, d0, d1;
                flat_range(c, S, P, ki, kj, PH, PW, &at, &shj, &d0, &d1);
                float *dst = planes + (at + d0);   /* d0 + at >= 0: no pointer before the planes */
                zero_cols(row, d0, d1, PW, shj);   /* padding: adds nothing */
                #pragma omp simd
                for (int d = d0; d < d1; d++) dst[d - d0] += row[d];
            }
    if (S == 2) merge_phases(dx, phase, C, H, W);
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
