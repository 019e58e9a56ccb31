/*
 * kernels.h: the compute kernels under the layers: GEMM through OpenBLAS, im2col and
 * col2im, transposes. This folder is the only place that knows about threads and BLAS.
 *
 * Determinism: every kernel here gives the same bits whatever the OpenMP thread count:
 * work is split over independent outputs (rows, samples, channels), never over a sum.
 * GEMMs go to single-threaded OpenBLAS calls on output tiles whose shape depends on the
 * matrix sizes only (OpenBLAS's own threading gave thread-count-dependent bits).
 */
#ifndef SHARDNET_KERNELS_H
#define SHARDNET_KERNELS_H
#include <stddef.h>

/* Row-major C (M,N) = alpha * op(A) op(B) + beta * C; op(A) (M,K), op(B) (K,N). */
void sn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Unfolds one sample x (C,H,W) into columns: col[(c*K+ki)*K+kj, oh*OW+ow] at row stride ldc
 * (ldc >= OH*OW lets the samples of a batch sit side by side). Padding reads as zero. */
void sn_im2col(float *col, int ldc, const float *x, int C, int H, int W, int K, int S, int P, int OH, int OW);

/* The adjoint of sn_im2col: dx (C,H,W) += folded col. */
void sn_col2im(float *dx, const float *col, int ldc, int C, int H, int W, int K, int S, int P, int OH, int OW);

/* Sets the number of OpenMP threads of every kernel, GEMMs included. */
void sn_kernels_set_threads(int n);
int  sn_kernels_threads(void);

/* The OpenBLAS kernel family in use, and a better one for this CPU when OpenBLAS fell
 * back to generic kernels (NULL otherwise); see gemm.c. */
const char *sn_kernels_blas_core(void);
const char *sn_kernels_better_blas_core(void);

#endif
