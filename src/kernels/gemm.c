/* gemm.c: the OpenBLAS entry point and the thread budget shared with OpenMP. */
#include <cblas.h>
#include <strings.h>
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

const char *sn_kernels_blas_core(void) { return openblas_get_corename(); }

/* OpenBLAS built with DYNAMIC_ARCH picks its kernels from the CPU model; a model it does
 * not know (virtual CPUs often hide theirs) falls back to the SSE3 "Prescott" kernels,
 * 5-6x slower than the AVX-512 ones on the same machine. Suggest the kernel family that
 * the CPU's features support, or NULL when the detected core is fine. */
const char *sn_kernels_better_blas_core(void)
{
    const char *core = openblas_get_corename();
    if (!core || (strcasecmp(core, "prescott") != 0 && strcasecmp(core, "nehalem") != 0 &&
                  strcasecmp(core, "sandybridge") != 0 && strcasecmp(core, "core2") != 0))
        return NULL;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return "SkylakeX";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return strcasecmp(core, "haswell") == 0 ? NULL : "Haswell";
    return NULL;
}
