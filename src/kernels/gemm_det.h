/*
 * gemm_det.h: a GEMM whose bits do not depend on the thread count.
 *
 * OpenBLAS 0.3.21 does not keep that promise on its own: with 2 threads it cuts M or N
 * where the problem size says, and the edge kernels then sum some rows in another
 * order (e.g. M=42, N=160, K=40 differs in 224 of 6,720 elements between 1 and 2
 * threads). sn_gemm_det cuts the larger of M and N into panels whose size depends
 * only on the shape, runs each panel as a single-threaded BLAS call, and spreads the
 * panels over OpenMP threads (static): every panel is the same call whatever thread
 * runs it, so the result is the same for any thread count.
 */
#ifndef SHARDNET_KERNELS_GEMM_DET_H
#define SHARDNET_KERNELS_GEMM_DET_H

/* Row-major C (M,N) = alpha * op(A) op(B) + beta * C, as sn_gemm. */
void sn_gemm_det(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

#endif
