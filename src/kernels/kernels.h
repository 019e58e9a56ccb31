/*
 * kernels.h: the compute kernels under the layers: GEMM through OpenBLAS, im2col and
 * col2im, transposes. This folder is the only place that knows about threads and BLAS.
 *
 * Determinism: every kernel here gives the same bits whatever the OpenMP thread count:
 * work is split over independent outputs (rows, samples, channels), never over a sum.
 * GEMMs go to single-threaded OpenBLAS calls on output tiles whose shape depends on the
 * matrix sizes only (OpenBLAS's own threading gave thread-count-dependent bits);
 * sn_gemm_packed shares 32-column panels among the threads and sums each element in k
 * order.
 */
#ifndef SHARDNET_KERNELS_H
#define SHARDNET_KERNELS_H
#include <stddef.h>

/* Row-major C (M,N) = alpha * op(A) op(B) + beta * C; op(A) (M,K), op(B) (K,N). */
void sn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* GEMM with a pre-packed right-hand side, for few rows and many calls (gemm_packed.c).
 * sn_gemm_pack_b packs op(B) (K,N) (op(B) = B^T when trans_b) into P, which holds
 * sn_gemm_packed_floats(N, K) floats; then C (M,N) = A (M,K) op(B) + beta * C. */
size_t sn_gemm_packed_floats(int N, int K);
/* The panel width: P[panel][k][NR] holds op(B)(k, panel*NR + j) at j < NR (zero past N). */
int    sn_gemm_packed_nr(void);
void sn_gemm_pack_b(float *P, int trans_b, int N, int K, const float *B, int ldb);
void sn_gemm_packed(int M, int N, int K, const float *A, int lda, const float *P, float beta, float *C, int ldc);

/* Unfolds one sample x (C,H,W) into columns: col[(c*K+ki)*K+kj, oh*OW+ow] at row stride ldc
 * (ldc >= OH*OW lets the samples of a batch sit side by side). Padding reads as zero. */
void sn_im2col(float *col, int ldc, const float *x, int C, int H, int W, int K, int S, int P, int OH, int OW);

/* The adjoint of sn_im2col: dx (C,H,W) += folded col. */
void sn_col2im(float *dx, const float *col, int ldc, int C, int H, int W, int K, int S, int P, int OH, int OW);

/* "Same" convolutions, K = 2P + 1 with stride 1 or 2 (OH = ceil(H/S), OW = ceil(W/S)): every
 * column row is one flat copy of the input plane (stride 1) or of one of its four
 * even/odd phases (stride 2), shifted, with a few zeros at the borders, instead of OH short
 * rows. The same columns as sn_im2col. phase: sn_im2col_flat_floats(C, H, W, S) floats of
 * scratch (0 for stride 1, where it may be NULL). */
int    sn_im2col_flat_ok(int H, int W, int K, int S, int P);
size_t sn_im2col_flat_floats(int C, int H, int W, int S);
void   sn_im2col_flat(float *col, int ldc, const float *x, float *phase, int C, int H, int W, int K, int S, int P);
/* dx (C,H,W) = folded col: the same sums in the same order as sn_col2im into a zeroed dx.
 * Writes every element of dx; zeroes col's entries that fall on padding. */
void   sn_col2im_flat(float *dx, float *col, int ldc, float *phase, int C, int H, int W, int K, int S, int P);

/* Stride 1, no padding, "wide" columns: row (c,ki,kj) of col (C*K*K, OH*W) is the contiguous
 * run x[c, ki, kj ...] of OH*W floats, i.e. outputs are computed for all W columns of each
 * output row and the last K-1 of every row are junk, to be ignored. One copy per row instead
 * of OH short ones; the run is zero-filled where it would pass the end of the plane. */
void sn_im2col_wide(float *col, const float *x, int C, int H, int W, int K, int OH);
/* Adjoint of sn_im2col_wide: dx (C,H,W) += folded col (junk columns must hold zeros). */
void sn_col2im_wide(float *dx, const float *col, int C, int H, int W, int K, int OH);

/* 3x3 convolution, stride 1, padding 1, by Winograd F(2x2, 3x3) (winograd.c): y (B,OC,H,W) =
 * conv(x (B,C,H,W)) + bias (NULL: none). U holds sn_winograd_weights_floats(C, OC) floats,
 * filled by sn_winograd_weights from W (OC,C,3,3): adjoint = 0 for the forward convolution,
 * 1 for its input gradient (then call sn_winograd_conv with C and OC swapped: dx from dy).
 * scratch: threads * sn_winograd_scratch_floats(C, OC) floats. */
size_t sn_winograd_weights_floats(int C, int OC);
size_t sn_winograd_scratch_floats(int C, int OC);
void   sn_winograd_weights(float *U, const float *w, int C, int OC, int adjoint);
void   sn_winograd_conv(float *y, const float *x, int B, int C, int OC, int H, int W, const float *U,
                        const float *bias, float *scratch, int threads);
/* dW (OC,C,3,3) += the weight gradient of that convolution from x and dy (B,OC,H,W); part:
 * sn_winograd_wgrad_floats(C, OC) floats of partial sums, scratch as above. */
size_t sn_winograd_wgrad_floats(int C, int OC);
void   sn_winograd_wgrad(float *dw, const float *x, const float *dy, int B, int C, int OC, int H, int W, float *part,
                         float *scratch, int threads);
/* Swap of the two leading axes: dst (OC, B, HW) from src (B, OC, HW), and back (+ bias[oc]). */
void sn_batch_to_channels(float *dst, const float *src, int B, int OC, int HW);
void sn_channels_to_batch(float *dst, const float *src, int B, int OC, int HW, const float *bias);

/* y[i] = exp(x[i]), i < n (y may be x): glibc's vector expf, the same bits for a value
 * wherever it sits (vexp.c). Serial: called per row from parallel loops. */
void sn_vexpf(float *y, const float *x, size_t n);

/* Sets the number of OpenMP threads of every kernel, GEMMs included. */
void sn_kernels_set_threads(int n);
int  sn_kernels_threads(void);

/* The OpenBLAS kernel family in use, and a better one for this CPU when OpenBLAS fell
 * back to generic or AVX2-only kernels on a CPU with more (NULL otherwise); see gemm.c.
 * _for decides from a family name and the CPU's AVX-512 (F, BW, VL, DQ) and AVX2+FMA. */
const char *sn_kernels_blas_core(void);
const char *sn_kernels_better_blas_core(void);
const char *sn_kernels_blas_core_for(const char *core, int avx512, int avx2_fma);

#endif
