/*
 * gemm_packed.c: GEMM with few rows against a right-hand matrix packed once and used many
 * times: the per-step recurrent products of the LSTM, C (B, 4H) += h (B, H) W_hh^T and
 * dh (B, H) = dG (B, 4H) W_hh, with B = 32 rows and 20+ steps per weight matrix.
 *
 * Why not sn_gemm: with M = 32 rows, OpenBLAS re-packs the whole 4 MB weight matrix on
 * every call (and sn_gemm's 16 output tiles re-pack the left-hand side 16 times), so
 * those calls ran at a third of the big GEMMs' speed. Here op(B) is packed once into
 * panels of NR columns, P[panel][k][NR], and a register-blocked kernel (up to MR rows x
 * NR columns of accumulators) streams each panel from cache.
 *
 * The tile is two vectors wide and sized to the register file: with AVX-512 (32 registers
 * of 16 floats) 8 rows x 32 columns, 16 accumulators; otherwise (AVX2: 16 registers of 8
 * floats) 6 rows x 16 columns, 12 accumulators beside the two panel vectors and the
 * broadcast (SSE alike, with vectors of 4). The AVX-512 tile compiled for AVX2 needs 32 registers for its accumulators
 * alone: they spilled to the stack at every k and the LSTM ran 30x slower.
 *
 * Determinism: each element of C is one dot product summed in k order by one kernel
 * call; threads split the panels, never k, so the bits do not depend on the thread count.
 * Called inside an active parallel region (Conv2d's backward, one sample per thread) it runs
 * on the calling thread alone, even where nested parallelism is enabled; in a team of one it
 * still shares its panels among the threads (the bits are the same either way).
 * Written with GCC vector extensions: -march=native turns them into AVX-512 (or AVX2)
 * fused multiply-adds, and any other target still compiles.
 * Must not: allocate, call BLAS, or split a sum over k.
 */
#include <omp.h>
#include <string.h>
#include "kernels/kernels.h"

#if defined(__AVX512F__)
#define PK_VL 16   /* floats per vector */
#define PK_MR 8    /* rows per tile */
#elif defined(__AVX__)
#define PK_VL 8
#define PK_MR 6
#else               /* SSE: 16 registers of 4 floats */
#define PK_VL 4
#define PK_MR 6
#endif
#define PK_NR (2 * PK_VL)   /* columns per panel and tile */

typedef float pk_v16 __attribute__((vector_size(PK_VL * sizeof(float))));

/* unaligned loads and stores; macros, as vector arguments would change the ABI on
 * targets without 512-bit registers (-Wpsabi) */
#define PK_LOAD(v, p)  memcpy(&(v), (p), sizeof(pk_v16))
#define PK_STORE(p, v) memcpy((p), &(v), sizeof(pk_v16))

int sn_gemm_packed_nr(void)
{
    return PK_NR;
}

size_t sn_gemm_packed_floats(int N, int K)
{
    return (size_t)((N + PK_NR - 1) / PK_NR) * PK_NR * (size_t)K;
}

/* dst[k * ldd + j] = src[j * lds + k] for j, k < 8: an 8 x 8 block transposed in registers
 * (three rounds of shuffles). A scalar transpose was 2% of the captioning step: its stores
 * walked the panel with a stride of NR floats, one float at a time. */
typedef float pk_v8 __attribute__((vector_size(32)));
static void transpose8(float *dst, int ldd, const float *src, int lds)
{
    pk_v8 r[8], t[8], s[8];
    for (int j = 0; j < 8; j++) memcpy(&r[j], src + (size_t)j * lds, sizeof(pk_v8));
    for (int j = 0; j < 8; j += 2) {   /* pairs of rows interleaved: (r0 r1) at k = 0, 1, 4, 5 and 2, 3, 6, 7 */
        t[j] = __builtin_shufflevector(r[j], r[j + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[j + 1] = __builtin_shufflevector(r[j], r[j + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int j = 0; j < 8; j += 4)     /* quads of rows: k, k + 4 for k = 0, 1, 2, 3 */
        for (int h = 0; h < 2; h++) {
            s[j + 2 * h] = __builtin_shufflevector(t[j + h], t[j + h + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            s[j + 2 * h + 1] = __builtin_shufflevector(t[j + h], t[j + h + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int k = 0; k < 4; k++) {      /* the two quads' halves: columns k and k + 4 */
        pk_v8 lo = __builtin_shufflevector(s[k], s[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        pk_v8 hi = __builtin_shufflevector(s[k], s[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(dst + (size_t)k * ldd, &lo, sizeof lo);
        memcpy(dst + (size_t)(k + 4) * ldd, &hi, sizeof hi);
    }
}

void sn_gemm_pack_b(float *P, int trans_b, int N, int K, const float *Bm, int ldb)
{
    int npanels = (N + PK_NR - 1) / PK_NR;
    #pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int p = 0; p < npanels; p++) {
        float *Pp = P + (size_t)p * K * PK_NR;
        int n0 = p * PK_NR, nn = N - n0 < PK_NR ? N - n0 : PK_NR;
        if (!trans_b) {   /* op(B)(k, n) = Bm[k, n]: NR contiguous floats per k */
            for (int k = 0; k < K; k++) {
                float *dst = Pp + (size_t)k * PK_NR;
                memcpy(dst, Bm + (size_t)k * ldb + n0, (size_t)nn * sizeof(float));
                for (int j = nn; j < PK_NR; j++) dst[j] = 0.0f;
            }
        } else {          /* op(B)(k, n) = Bm[n, k]: a transpose, 8 rows of Bm at a time */
            for (int j0 = 0; j0 < PK_NR; j0 += 8) {
                const float *src = Bm + (size_t)(n0 + j0) * ldb;
                int k = 0;
                if (j0 + 8 <= nn)
                    for (; k + 8 <= K; k += 8) transpose8(Pp + (size_t)k * PK_NR + j0, PK_NR, src + k, ldb);
                for (; k < K; k++)   /* the last k, and rows past N (zero) */
                    for (int j = 0; j < 8; j++) Pp[(size_t)k * PK_NR + j0 + j] = j0 + j < nn ? src[(size_t)j * ldb + k] : 0.0f;
            }
        }
    }
}

/* MR rows of A against one panel: C[0..MR, 0..nn) = A Pp + beta C. MR is a constant at
 * every call site, so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void pk_kernel(const int MR, int K, const float *A, int lda,
                                                             const float *Pp, float beta, float *C, int ldc,
                                                             int nn)
{
    pk_v16 acc0[PK_MR], acc1[PK_MR];
    for (int i = 0; i < MR; i++) acc0[i] = acc1[i] = (pk_v16){0};
    for (int k = 0; k < K; k++) {
        pk_v16 b0, b1;
        PK_LOAD(b0, Pp + (size_t)k * PK_NR);
        PK_LOAD(b1, Pp + (size_t)k * PK_NR + PK_VL);
        for (int i = 0; i < MR; i++) {
            float a = A[(size_t)i * lda + k];
            acc0[i] += a * b0;
            acc1[i] += a * b1;
        }
    }
    for (int i = 0; i < MR; i++) {
        float *c = C + (size_t)i * ldc;
        if (nn == PK_NR) {
            if (beta != 0.0f) {
                pk_v16 c0, c1;
                PK_LOAD(c0, c);
                PK_LOAD(c1, c + PK_VL);
                acc0[i] += beta * c0;
                acc1[i] += beta * c1;
            }
            PK_STORE(c, acc0[i]);
            PK_STORE(c + PK_VL, acc1[i]);
        } else {
            float t[PK_NR];
            PK_STORE(t, acc0[i]);
            PK_STORE(t + PK_VL, acc1[i]);
            for (int j = 0; j < nn; j++) c[j] = beta == 0.0f ? t[j] : t[j] + beta * c[j];
        }
    }
}

void sn_gemm_packed(int M, int N, int K, const float *A, int lda, const float *P, float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0) return;
    int npanels = (N + PK_NR - 1) / PK_NR;
    #pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int p = 0; p < npanels; p++) {
        const float *Pp = P + (size_t)p * K * PK_NR;
        int n0 = p * PK_NR, nn = N - n0 < PK_NR ? N - n0 : PK_NR;
        for (int m0 = 0; m0 < M; m0 += PK_MR) {
            const float *Am = A + (size_t)m0 * lda;
            float *Cm = C + (size_t)m0 * ldc + n0;
            switch (M - m0 < PK_MR ? M - m0 : PK_MR) {
#if PK_MR == 8
            case 8: pk_kernel(8, K, Am, lda, Pp, beta, Cm, ldc, nn); break;
            case 7: pk_kernel(7, K, Am, lda, Pp, beta, Cm, ldc, nn); break;
#endif
            case 6: pk_kernel(6, K, Am, lda, Pp, beta, Cm, ldc, nn); break;
            case 5: pk_kernel(5, K, Am, lda, Pp, beta, Cm, ldc, nn); break;
            case 4: pk_kernel(4, K, Am, lda, Pp, beta, Cm, ldc, nn); break;
            case 3: pk_kernel(3, K, Am, lda, Pp, beta, Cm, ldc, nn); break;
            case 2: pk_kernel(2, K, Am, lda, Pp, beta, Cm, ldc, nn); break;
            default: pk_kernel(1, K, Am, lda, Pp, beta, Cm, ldc, nn); break;
            }
        }
    }
}
