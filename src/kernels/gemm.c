/* gemm.c: the OpenBLAS entry point and the thread budget shared with OpenMP. */
#include <cblas.h>
#include <omp.h>
#include "kernels/kernels.h"

void sn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void sn_kernels_set_threads(int n)
{
    if (n < 1) n = 1;
    omp_set_num_threads(n);
    /* One budget for both: the OpenMP build of OpenBLAS follows omp_set_num_threads too,
     * and runs single-threaded when called inside a parallel region. */
    openblas_set_num_threads(n);
}

int sn_kernels_threads(void) { return omp_get_max_threads(); }
