/*
 * winograd.c: 3x3 convolutions of stride 1 and padding 1 by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
 * Every 2x2 block of one output plane is A^T [sum_c (G g_c G^T) .* (B^T d_c B)] A over the
 * 4x4 input tiles d_c around it, so the channel sums become 16 GEMMs, one per element xi of
 * the 4x4 transform domain: M_xi (OC, tiles) = U_xi (OC, C) V_xi (C, tiles). That is 16
 * multiply-adds per 4 outputs where im2col does 36: 2.25x fewer FLOPs, for the cost of the
 * transforms (adds only) on each side.
 *
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * The tiles of the whole batch are cut into chunks of 64..256 (a chunk's transformed inputs
 * and products, 16 x NC x (C + OC) floats, are 2 MB); one thread works a chunk from the input
 * transform, written straight into sn_gemm_packed's panels, through the 16 products to the
 * output transform. The transforms run on eight tiles at a time, one per vector lane. The
 * input gradient is the same convolution of the output gradient with the kernel rotated by
 * 180 degrees and its channel axes swapped (adjoint = 1). The weight gradient is
 * dU_xi = dM_xi V_xi^T summed over the tiles, dM = A dY A^T the adjoint of the output
 * transform, and dW = G^T dU G.
 *
 * Determinism: each output is computed by one thread from one chunk, whose extent depends on
 * the shapes only; the weight gradient's chunks are summed in a fixed number of lanes, each
 * in chunk order, and the lanes in lane order. So the bits do not depend on the thread
 * count. Results differ from im2col's by rounding (the transforms reorder the sums).
 * Must not: allocate; split a sum between threads in a thread-count-dependent way.
 */
#include <omp.h>
#include <string.h>
#include "kernels/kernels.h"

enum { XI = 16 };   /* elements of a 4x4 transformed tile */

/* Tiles per chunk: whole panels of the packed kernel (16 or 32 wide), 16 * NC * (C + OC)
 * floats of transformed inputs and products, 2 MB at most: 256 tiles at 64 channels, 128 at
 * 128, 64 at 256 and 512. Measured at ResNet-18's shapes (forward, before the transforms were
 * vectorised): 56x56 and 28x28 alike at 64..256; 14x14 best at 32..64, 26% slower at 256;
 * 7x7 8% slower at 32 than at 64..256. */
enum { CHUNK_MAX = 256 };
static int chunk_tiles(int C, int OC)
{
    int nc = 32768 / (C + OC) / 32 * 32;
    return nc < 64 ? 64 : nc > CHUNK_MAX ? CHUNK_MAX : nc;
}

size_t sn_winograd_weights_floats(int C, int OC)
{
    return (size_t)XI * C * OC;
}

/* per thread: V and M of a chunk */
size_t sn_winograd_scratch_floats(int C, int OC)
{
    return (size_t)XI * chunk_tiles(C, OC) * (size_t)(C + OC);
}

/* u (4x4) = G g G^T of one 3x3 kernel g (row-major) */
static void weight_tile(float u[XI], const float g[9])
{
    float t[4][3];
    for (int j = 0; j < 3; j++) {
        float g0 = g[j], g1 = g[3 + j], g2 = g[6 + j];
        t[0][j] = g0;
        t[1][j] = 0.5f * (g0 + g1 + g2);
        t[2][j] = 0.5f * (g0 - g1 + g2);
        t[3][j] = g2;
    }
    for (int i = 0; i < 4; i++) {
        float g0 = t[i][0], g1 = t[i][1], g2 = t[i][2];
        u[i * 4 + 0] = g0;
        u[i * 4 + 1] = 0.5f * (g0 + g1 + g2);
        u[i * 4 + 2] = 0.5f * (g0 - g1 + g2);
        u[i * 4 + 3] = g2;
    }
}

/* U[xi] (N, K): the transform of kernel (n, k) of the convolution run (in channels K, out N) */
void sn_winograd_weights(float *U, const float *w, int C, int OC, int adjoint)
{
    int K = adjoint ? OC : C, N = adjoint ? C : OC;
    #pragma omp parallel for schedule(static) if (!omp_in_parallel())
    for (int n = 0; n < N; n++)
        for (int k = 0; k < K; k++) {
            float g[9], u[XI];
            const float *src = adjoint ? w + ((size_t)k * C + n) * 9 : w + ((size_t)n * C + k) * 9;
            for (int i = 0; i < 9; i++) g[i] = adjoint ? src[8 - i] : src[i];
            weight_tile(u, g);
            for (int xi = 0; xi < XI; xi++) U[((size_t)xi * N + n) * K + k] = u[xi];
        }
}

/* The tiles of a chunk in groups of eight, one tile per vector lane. A group's tiles form
 * runs: lanes i0 .. i0+len-1 whose tiles follow each other in one tile row of one sample
 * (rows of fewer than 8 tiles, and row ends, give several runs). Each run is loaded as if
 * all eight lanes continued it, and its lanes are kept. Lanes past the chunk's last tile
 * belong to no run and stay zero. */
typedef struct {
    int    n;             /* runs */
    int    lane0[8], len[8];
    size_t base[8];       /* the sample's offset in x (B, C, H, W) */
    int    r0[8], c0[8];  /* lane 0's window: top-left input element (row 2ti - 1, column 2tj - 1) */
} group_t;

static void chunk_groups(group_t *g, long n0, int nn, int C, int H, int W, int TH, int TW)
{
    int tiles = TH * TW;
    for (int j0 = 0; j0 < nn; j0 += 8) {
        group_t *G = &g[j0 / 8];
        G->n = 0;
        for (int i = 0; i < 8 && j0 + i < nn; i++) {
            long n = n0 + j0 + i;
            int t = (int)(n % tiles), ti = t / TW, tj = t % TW;
            if (i > 0 && tj > 0) {   /* continues the run of lane i - 1 */
                G->len[G->n - 1]++;
                continue;
            }
            int k = G->n++;
            G->lane0[k] = i;
            G->len[k] = 1;
            G->base[k] = (size_t)(n / tiles) * C * H * W;
            G->r0[k] = 2 * ti - 1;
            G->c0[k] = 2 * (tj - i) - 1;
        }
    }
}

/* GCC vector extensions; unaligned loads and stores through memcpy; no vector arguments or
 * results (they would change the ABI on targets without 256-bit registers: -Wpsabi) */
typedef float wv8 __attribute__((vector_size(32)));
typedef int wv8i __attribute__((vector_size(32)));
#define WV_LOAD(v, p)  memcpy(&(v), (p), sizeof(wv8))
#define WV_STORE(p, v) memcpy((p), &(v), sizeof(wv8))

/* dst's lanes lane0 .. lane0+len-1 replaced by a's */
static const wv8i LANE = {0, 1, 2, 3, 4, 5, 6, 7};
#define WV_KEEP(dst, a, lane0, len)                                          \
    do {                                                                     \
        wv8i m_ = (LANE >= (lane0)) & (LANE < (lane0) + (len));              \
        (dst) = (wv8)(((wv8i)(a) & m_) | ((wv8i)(dst) & ~m_));               \
    } while (0)

/* The n floats of row from column c0, zero outside columns 0 .. W-1 (p: where to read them) */
static const float *row_span(float *buf, const float *row, int c0, int n, int W)
{
    if (c0 >= 0 && c0 + n <= W) return row + c0;
    for (int i = 0; i < n; i++) buf[i] = c0 + i >= 0 && c0 + i < W ? row[c0 + i] : 0.0f;
    return buf;
}

/* even and odd lanes of a:b; the lanes of a and b interleaved (low and high halves)
 * (__builtin_shufflevector: GCC 12 and clang) */
#define WV_EVEN(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14)
#define WV_ODD(a, b)  __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15)
#define WV_ZIPLO(a, b) __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11)
#define WV_ZIPHI(a, b) __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15)

/* d[q][k] = row[c0 + 2k + q], q < 4, k < 8: the four columns of eight windows two apart */
static void row_columns(wv8 d[4], const float *row, int c0, int W)
{
    float buf[24];
    const float *p = row_span(buf, row, c0, 18, W);
    wv8 a, b, a2, b2;
    WV_LOAD(a, p);
    WV_LOAD(b, p + 8);
    WV_LOAD(a2, p + 2);
    WV_LOAD(b2, p + 10);
    d[0] = WV_EVEN(a, b);
    d[1] = WV_ODD(a, b);
    d[2] = WV_EVEN(a2, b2);
    d[3] = WV_ODD(a2, b2);
}

/* V[xi] = B^T d B of every tile j < NC and channel c: ld = 0, the forward's layout, (C, NC) in
 * panels of NR tiles for sn_gemm_packed (panel j/NR, row c, lane j%NR; V[xi] at xi*NC*C);
 * ld > 0, rows: (C, ld), tile j at c*ld + j, V[xi] at xi*C*ld (the weight gradient's). */
static void input_transform(float *V, const float *x, const group_t *g, int nn, int NC, int C, int H, int W,
                            size_t ld)
{
    int NR = sn_gemm_packed_nr();
    size_t vs = ld ? ld * C : (size_t)NC * C, plane = (size_t)H * W;
    int ngroups = (NC + 7) / 8;
    for (int c = 0; c < C; c++)
        for (int gi = 0; gi < ngroups; gi++) {
            int j = gi * 8;
            float *v = ld ? V + c * ld + j : V + (size_t)(j / NR) * C * NR + (size_t)c * NR + j % NR;
            wv8 d[4][4] = {{{0}}};
            const group_t *G = &g[gi];
            int whole = G->n == 1 && G->len[0] == 8;   /* one run fills the vector */
            for (int k = 0; j < nn && k < G->n; k++) {
                const float *xc = x + G->base[k] + c * plane;
                for (int r = 0; r < 4; r++) {
                    int y = G->r0[k] + r;
                    if (y < 0 || y >= H) continue;
                    wv8 t[4];
                    row_columns(t, xc + (size_t)y * W, G->c0[k], W);
                    for (int q = 0; q < 4; q++) {
                        if (whole) d[r][q] = t[q];
                        else WV_KEEP(d[r][q], t[q], G->lane0[k], G->len[k]);
                    }
                }
            }
            for (int q = 0; q < 4; q++) {   /* B^T d */
                wv8 d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q];
                d[0][q] = d0 - d2;
                d[1][q] = d1 + d2;
                d[2][q] = d2 - d1;
                d[3][q] = d1 - d3;
            }
            for (int r = 0; r < 4; r++) {   /* (B^T d) B */
                wv8 t0 = d[r][0] - d[r][2], t1 = d[r][1] + d[r][2], t2 = d[r][2] - d[r][1], t3 = d[r][1] - d[r][3];
                WV_STORE(v + (size_t)(r * 4 + 0) * vs, t0);
                WV_STORE(v + (size_t)(r * 4 + 1) * vs, t1);
                WV_STORE(v + (size_t)(r * 4 + 2) * vs, t2);
                WV_STORE(v + (size_t)(r * 4 + 3) * vs, t3);
            }
        }
}

/* y (B, OC, H, W): the 2x2 blocks A^T M A (+ bias) of the chunk's tiles; M[xi] (OC, NC) */
static void output_transform(float *y, const float *M, const float *bias, const group_t *g, int nn, int NC, int C,
                             int OC, int H, int W)
{
    size_t ms = (size_t)NC * OC, plane = (size_t)H * W;
    for (int oc = 0; oc < OC; oc++) {
        float bo = bias ? bias[oc] : 0.0f;
        for (int j = 0; j < nn; j += 8) {
            const group_t *G = &g[j / 8];
            const float *m = M + (size_t)oc * NC + j;
            wv8 e[XI];
            for (int xi = 0; xi < XI; xi++) WV_LOAD(e[xi], m + xi * ms);
            float out[2][16];   /* row r of the eight blocks: lane i at columns 2i, 2i + 1 */
            for (int r = 0; r < 2; r++) {
                wv8 s[4];
                for (int q = 0; q < 4; q++) s[q] = r == 0 ? e[q] + e[4 + q] + e[8 + q] : e[4 + q] - e[8 + q] - e[12 + q];
                wv8 o0 = s[0] + s[1] + s[2] + bo, o1 = s[1] - s[2] - s[3] + bo;
                wv8 a = WV_ZIPLO(o0, o1), b = WV_ZIPHI(o0, o1);
                WV_STORE(out[r], a);
                WV_STORE(out[r] + 8, b);
            }
            for (int k = 0; k < G->n; k++) {
                int r0 = G->r0[k] + 1, c0 = G->c0[k] + 1 + 2 * G->lane0[k], cols = 2 * G->len[k];
                if (cols > W - c0) cols = W - c0;
                float *yo = y + G->base[k] / C * OC + oc * plane + (size_t)r0 * W + c0;
                for (int r = 0; r < 2 && r0 + r < H; r++)
                    memcpy(yo + (size_t)r * W, out[r] + 2 * G->lane0[k], (size_t)cols * sizeof(float));
            }
        }
    }
}

void sn_winograd_conv(float *y, const float *x, int B, int C, int OC, int H, int W, const float *U,
                      const float *bias, float *scratch, int threads)
{
    int TH = (H + 1) / 2, TW = (W + 1) / 2, NC = chunk_tiles(C, OC);
    long N = (long)B * TH * TW;
    int nchunks = (int)((N + NC - 1) / NC);
    size_t per = sn_winograd_scratch_floats(C, OC);
    if (threads > nchunks) threads = nchunks;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int ch = 0; ch < nchunks; ch++) {
        float *V = scratch + (size_t)omp_get_thread_num() * per, *M = V + (size_t)XI * NC * C;
        group_t g[CHUNK_MAX / 8];
        long n0 = (long)ch * NC;
        int nn = N - n0 < NC ? (int)(N - n0) : NC;
        chunk_groups(g, n0, nn, C, H, W, TH, TW);
        input_transform(V, x, g, nn, NC, C, H, W, 0);
        for (int xi = 0; xi < XI; xi++)
            sn_gemm_packed(OC, nn, C, U + (size_t)xi * OC * C, C, V + (size_t)xi * NC * C, 0.0f,
                           M + (size_t)xi * NC * OC, NC);
        output_transform(y, M, bias, g, nn, NC, C, OC, H, W);
    }
}

/* ---- the weight gradient ------------------------------------------------------------------
 * dL/dU_xi (OC, C) = sum over tiles of dM_xi (OC, tiles) V_xi^T, with dM = A dY A^T the
 * adjoint of the output transform on each 2x2 block of dy, then dW = G^T dU G. The chunks'
 * sums go to a fixed number of lanes (partials), each summing its own run of chunks in order,
 * then the lanes are added in order: the bits do not depend on the thread count. */

/* Lanes of the weight gradient's partial sums: 1..8, 32 MB at most; they bound the threads
 * that work on it (2 at 512 x 512 channels, 8 at 256 x 256 and below). (Transforming the whole
 * batch first, then 16 GEMMs with K = all tiles over all threads, was 5-20% slower on two
 * cores at ResNet-18's 28x28, 14x14 and 7x7 layers.) */
static int wgrad_lanes(int C, int OC)
{
    long lanes = (1L << 23) / ((long)XI * C * OC);
    return lanes < 1 ? 1 : lanes > 8 ? 8 : (int)lanes;
}

size_t sn_winograd_wgrad_floats(int C, int OC)
{
    return (size_t)wgrad_lanes(C, OC) * XI * OC * C;
}

/* dM[xi] (OC, ld) rows, tile j < NC at oc*ld + j, dM[xi] at xi*OC*ld: A dY A^T of every tile's
 * 2x2 block of dy (zero outside the plane and past nn) */
static void grad_transform(float *M, const float *dy, const group_t *g, int nn, int NC, int C, int OC, int H, int W,
                           size_t ld)
{
    size_t ms = ld * OC, plane = (size_t)H * W;
    int ngroups = (NC + 7) / 8;
    for (int oc = 0; oc < OC; oc++)
        for (int gi = 0; gi < ngroups; gi++) {
            int j = gi * 8;
            float *m = M + oc * ld + j;
            wv8 e[2][2] = {{{0}}};   /* e[r][q]: the block's row r, column q, of each lane */
            const group_t *G = &g[gi];
            int whole = G->n == 1 && G->len[0] == 8;
            for (int k = 0; j < nn && k < G->n; k++) {
                const float *gc = dy + G->base[k] / C * OC + oc * plane;
                for (int r = 0; r < 2; r++) {
                    int y = G->r0[k] + 1 + r;
                    if (y >= H) continue;
                    float buf[16];
                    const float *p = row_span(buf, gc + (size_t)y * W, G->c0[k] + 1, 16, W);
                    wv8 a, b;
                    WV_LOAD(a, p);
                    WV_LOAD(b, p + 8);
                    wv8 ev = WV_EVEN(a, b), od = WV_ODD(a, b);
                    if (whole) {
                        e[r][0] = ev;
                        e[r][1] = od;
                    } else {
                        WV_KEEP(e[r][0], ev, G->lane0[k], G->len[k]);
                        WV_KEEP(e[r][1], od, G->lane0[k], G->len[k]);
                    }
                }
            }
            for (int i = 0; i < 4; i++) {   /* A dY, then (A dY) A^T */
                wv8 t0 = i == 0 ? e[0][0] : i == 1 ? e[0][0] + e[1][0] : i == 2 ? e[0][0] - e[1][0] : -e[1][0];
                wv8 t1 = i == 0 ? e[0][1] : i == 1 ? e[0][1] + e[1][1] : i == 2 ? e[0][1] - e[1][1] : -e[1][1];
                wv8 u1 = t0 + t1, u2 = t0 - t1, u3 = -t1;
                WV_STORE(m + (size_t)(i * 4 + 0) * ms, t0);
                WV_STORE(m + (size_t)(i * 4 + 1) * ms, u1);
                WV_STORE(m + (size_t)(i * 4 + 2) * ms, u2);
                WV_STORE(m + (size_t)(i * 4 + 3) * ms, u3);
            }
        }
}

/* one chunk's V and dM rows (row stride ld), and its 16 products added to dU */
static void wgrad_chunk(float *V, float *M, size_t ld, float *dU, const float *x, const float *dy, long n0, long N,
                        int NC, int C, int OC, int H, int W)
{
    int TH = (H + 1) / 2, TW = (W + 1) / 2, nn = N - n0 < NC ? (int)(N - n0) : NC;
    group_t g[CHUNK_MAX / 8];
    chunk_groups(g, n0, nn, C, H, W, TH, TW);
    input_transform(V, x, g, nn, nn, C, H, W, ld);
    grad_transform(M, dy, g, nn, nn, C, OC, H, W, ld);
    for (int xi = 0; xi < XI; xi++)
        sn_gemm(0, 1, OC, C, nn, 1.0f, M + (size_t)xi * OC * ld, (int)ld, V + (size_t)xi * C * ld, (int)ld, 1.0f,
                dU + (size_t)xi * OC * C, C);
}

void sn_winograd_wgrad(float *dw, const float *x, const float *dy, int B, int C, int OC, int H, int W, float *part,
                       float *scratch, int threads)
{
    int NC = chunk_tiles(C, OC), L = wgrad_lanes(C, OC);
    long N = (long)B * ((H + 1) / 2) * ((W + 1) / 2);
    int nchunks = (int)((N + NC - 1) / NC);
    size_t per = sn_winograd_scratch_floats(C, OC), nu = (size_t)XI * OC * C;
    if (L > nchunks) L = nchunks;
    if (L == 1) {   /* one lane: sn_gemm shares each product among the threads */
        memset(part, 0, nu * sizeof(float));
        for (int ch = 0; ch < nchunks; ch++)
            wgrad_chunk(scratch, scratch + (size_t)XI * C * NC, (size_t)NC, part, x, dy, (long)ch * NC, N, NC, C, OC,
                        H, W);
    } else {        /* lane l sums its run of chunks in order, one thread per lane */
        #pragma omp parallel for schedule(static) num_threads(threads < L ? threads : L)
        for (int l = 0; l < L; l++) {
            float *V = scratch + (size_t)omp_get_thread_num() * per, *M = V + (size_t)XI * C * NC, *dU = part + l * nu;
            memset(dU, 0, nu * sizeof(float));
            for (int ch = (int)((long)nchunks * l / L); ch < (int)((long)nchunks * (l + 1) / L); ch++)
                wgrad_chunk(V, M, (size_t)NC, dU, x, dy, (long)ch * NC, N, NC, C, OC, H, W);
        }
    }
    /* the lanes summed into lane 0, in lane order (contiguous blocks), then
     * dW (OC, C, 3, 3) += G^T dU G */
    if (L > 1) {
        size_t nb = (nu + 4095) / 4096;
        #pragma omp parallel for schedule(static) num_threads(threads)
        for (size_t blk = 0; blk < nb; blk++) {
            size_t i0 = blk * 4096, i1 = i0 + 4096 < nu ? i0 + 4096 : nu;
            for (int l = 1; l < L; l++) {
                const float *src = part + l * nu;
                for (size_t i = i0; i < i1; i++) part[i] += src[i];
            }
        }
    }
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int oc = 0; oc < OC; oc++)
        for (int c = 0; c < C; c++) {
            float u[XI], h[3][4];
            size_t at = (size_t)oc * C + c;
            for (int xi = 0; xi < XI; xi++) u[xi] = part[(size_t)xi * OC * C + at];
            for (int j = 0; j < 4; j++) {
                float u0 = u[j], u1 = u[4 + j], u2 = u[8 + j], u3 = u[12 + j];
                h[0][j] = u0 + 0.5f * (u1 + u2);
                h[1][j] = 0.5f * (u1 - u2);
                h[2][j] = 0.5f * (u1 + u2) + u3;
            }
            float *d = dw + at * 9;
            for (int a = 0; a < 3; a++) {
                d[a * 3 + 0] += h[a][0] + 0.5f * (h[a][1] + h[a][2]);
                d[a * 3 + 1] += 0.5f * (h[a][1] - h[a][2]);
                d[a * 3 + 2] += 0.5f * (h[a][1] + h[a][2]) + h[a][3];
            }
        }
}
