/*
 * gemm_det.c: thread-count-invariant GEMM (see gemm_det.h): fixed panels, one
 * single-threaded OpenBLAS call per panel (the OpenMP build of OpenBLAS runs
 * single-threaded inside an active parallel region). Must not: choose panel sizes
 * from the thread count.
 */
#include "kernels/gemm_det.h"
#include "kernels/kernels.h"

#define SN_DET_PANELS 8     /* panels per GEMM (at most), enough to balance 2..8 threads */
#define SN_DET_MIN    64    /* no panel narrower than this: small BLAS calls are slow */

void sn_gemm_det(int trans_a, int trans_b, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    int split_n = N >= M, dim = split_n ? N : M;
    int panel = (dim + SN_DET_PANELS - 1) / SN_DET_PANELS;
    panel = (panel + 15) / 16 * 16;
    if (panel < SN_DET_MIN) panel = SN_DET_MIN;
    int np = (dim + panel - 1) / panel;
    #pragma omp parallel for schedule(static)
    for (int p = 0; p < np; p++) {
        int s = p * panel, w = dim - s < panel ? dim - s : panel;
        if (split_n)
            sn_gemm(trans_a, trans_b, M, w, K, alpha, A, lda, trans_b ? B + (size_t)s * ldb : B + s, ldb,
                    beta, C + s, ldc);
        else
            sn_gemm(trans_a, trans_b, w, N, K, alpha, trans_a ? A + s : A + (size_t)s * lda, lda, B, ldb,
                    beta, C + (size_t)s * ldc, ldc);
    }
}
