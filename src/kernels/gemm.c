/*
 * gemm.c: the OpenBLAS entry point and the thread budget shared with OpenMP.
 *
 * OpenBLAS's own threading splits the output of a GEMM across its threads, and the tile
 * edges decide which micro-kernel (and summation order) computes an element, so the bits
 * of C changed with the thread count (Conv2d and Linear differed between 1, 2 and 3
 * threads). sn_gemm therefore cuts C into tiles whose shape depends on M and N only,
 * never on the thread count, and runs one single-threaded BLAS call per tile inside an
 * OpenMP loop (the OpenMP build of OpenBLAS stays on one thread inside a parallel region).
 * K is never split, so no partial sums are combined. Inside an enclosing parallel region
 * (at any thread count, a team of one included) there is one untiled, single-threaded call.
 * Must not call BLAS from anywhere else.
 */
#include <cblas.h>
#include <strings.h>
#include <omp.h>
#include "kernels/kernels.h"

/* Tiles along the larger side of C: about 16 of them, a multiple of 16 wide, 16..1024. */
enum { GEMM_TILES = 16, GEMM_TILE_MIN = 16, GEMM_TILE_MAX = 1024 };

static int tile_width(int n)
{
    int t = (n + GEMM_TILES - 1) / GEMM_TILES;
    t = (t + 15) / 16 * 16;
    return t < GEMM_TILE_MIN ? GEMM_TILE_MIN : (t > GEMM_TILE_MAX ? GEMM_TILE_MAX : t);
}

void sn_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans, tb = trans_b ? CblasTrans : CblasNoTrans;
    /* Called inside a parallel region (Conv2d runs one sample per thread), the tiles would
     * run one after another on this thread, each re-packing the shared operand: one call
     * instead. omp_get_level counts inactive regions too (a team of one), so the choice
     * does not depend on the thread count. */
    if (omp_get_level() > 0) {
        /* In a team of one (an inactive region) the OpenMP build of OpenBLAS would start
         * threads of its own, and its bits would follow the thread budget: one thread here. */
        int budget = omp_get_max_threads();
        if (!omp_in_parallel() && budget > 1) omp_set_num_threads(1);
        cblas_sgemm(CblasRowMajor, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        if (!omp_in_parallel() && budget > 1) omp_set_num_threads(budget);
        return;
    }
    int split_m = M > N, len = split_m ? M : N, tw = tile_width(len);
    int ntiles = (len + tw - 1) / tw;
    /* always inside a parallel region, even for one tile: OpenBLAS then runs one thread */
    #pragma omp parallel for schedule(static)
    for (int t = 0; t < ntiles; t++) {
        int lo = t * tw, n = len - lo < tw ? len - lo : tw;
        if (split_m)   /* rows lo.. of C and of op(A) */
            cblas_sgemm(CblasRowMajor, ta, tb, n, N, K, alpha, A + (trans_a ? (size_t)lo : (size_t)lo * lda), lda,
                        B, ldb, beta, C + (size_t)lo * ldc, ldc);
        else           /* columns lo.. of C and of op(B) */
            cblas_sgemm(CblasRowMajor, ta, tb, M, n, K, alpha, A, lda,
                        B + (trans_b ? (size_t)lo * ldb : (size_t)lo), ldb, beta, C + lo, ldc);
    }
}

void sn_kernels_set_threads(int n)
{
    if (n < 1) n = 1;
#ifndef SHARDNET_BLAS_OPENMP
    /* sn_gemm parallelises itself: a pthread build of OpenBLAS must not add threads of its
     * own. (The OpenMP build follows OpenMP, and its openblas_set_num_threads would reset
     * omp_set_num_threads.) */
    openblas_set_num_threads(1);
#endif
    omp_set_num_threads(n);
}

int sn_kernels_threads(void) { return omp_get_max_threads(); }

const char *sn_kernels_blas_core(void) { return openblas_get_corename(); }

/* OpenBLAS built with DYNAMIC_ARCH picks its kernels from the CPU model. A model it does
 * not know (virtual CPUs often hide theirs) falls back to the SSE3 "Prescott" kernels,
 * 5-6x slower than the AVX-512 ones on the same machine; a newer AVX-512 model than the
 * release knows (0.3.21 on AMD Zen 5, measured) gets its AVX2 kernels, Haswell or Zen: half the
 * GEMM rate (198 against 424 GFLOP/s for a 2048^3 sgemm on 2 Zen 5 cores). Given the
 * detected family and the CPU's features, the family to use instead, or NULL. */
const char *sn_kernels_blas_core_for(const char *core, int avx512, int avx2_fma)
{
    if (!core) return NULL;
    int generic = strcasecmp(core, "prescott") == 0 || strcasecmp(core, "nehalem") == 0 ||
                  strcasecmp(core, "sandybridge") == 0 || strcasecmp(core, "core2") == 0;
    int avx2_only = strcasecmp(core, "haswell") == 0 || strcasecmp(core, "zen") == 0;
    if ((generic || avx2_only) && avx512) return "SkylakeX";
    if (generic && avx2_fma) return "Haswell";
    return NULL;
}

const char *sn_kernels_better_blas_core(void)
{
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    int avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return sn_kernels_blas_core_for(openblas_get_corename(), avx512, avx2_fma);
}
