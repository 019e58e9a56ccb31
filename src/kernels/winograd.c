/*
 * winograd.c: 3x3 convolutions of stride 1 and padding 1 by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
 * Every 2x2 block of one output plane is A^T [sum_c (G g_c G^T) .* (B^T d_c B)] A over the
 * 4x4 input tiles d_c around it, so the channel sums become 16 GEMMs, one per element xi of
 * the 4x4 transform domain: M_xi (tiles, OC) = V_xi (tiles, C) U_xi (C, OC). That is 16
 * multiply-adds per 4 outputs where im2col does 36: 2.25x fewer FLOPs, for the cost of the
 * transforms (adds only) on each side.
 *
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 *
 * The tiles of the whole batch are cut into chunks small enough that a chunk's transformed
 * inputs and products (16 x NC x (C + OC) floats) stay in the core's L2; one thread works a
 * chunk from input transform to output, with sn_gemm_packed against the transformed weights
 * packed once per call of sn_winograd_weights. The input gradient of such a convolution is
 * the same convolution of the output gradient with the kernel rotated by 180 degrees and
 * its channel axes swapped (adjoint = 1).
 *
 * Determinism: each output is computed by one thread from one chunk, whose extent depends on
 * the shapes only, so the bits do not depend on the thread count. Results differ from
 * im2col's by rounding (the transforms reorder the sums; the ResNet parity tests hold 1e-4).
 * Must not: allocate; split a sum between threads.
 */
#include <omp.h>
#include <string.h>
#include "kernels/kernels.h"

enum { XI = 16 };   /* elements of a 4x4 transformed tile */

/* Tiles per chunk: whole panels of the packed kernel (16 or 32 wide), 16 * NC * (C + OC)
 * floats of transformed inputs and products (2 MB; 64 to 256 tiles: at ResNet-18's shapes
 * 64..256 measured alike except the 7x7 layers, 10% slower at 32) */
enum { CHUNK_MAX = 256 };
int sn_winograd_chunk(int C, int OC)
{
    int nc = 32768 / (C + OC) / 32 * 32;
    return nc < 64 ? 64 : nc > CHUNK_MAX ? CHUNK_MAX : nc;
}

size_t sn_winograd_weights_floats(int C, int OC)
{
    return (size_t)XI * C * OC;
}

size_t sn_winograd_scratch_floats(int C, int OC)
{
    return (size_t)XI * sn_winograd_chunk(C, OC) * (size_t)(C + OC);
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

/* Where the tiles of a chunk start: the sample's offset plus the tile's top-left input
 * element (row 2ti - 1, column 2tj - 1), and whether its 4x4 window lies inside the plane. */
typedef struct { size_t base; int r0, c0; } tile_t;

static void chunk_tiles(tile_t *tl, long n0, int nn, int C, int H, int W, int TH, int TW)
{
    int tiles = TH * TW;
    for (int j = 0; j < nn; j++) {
        long n = n0 + j;
        int t = (int)(n % tiles);
        tl[j].base = (size_t)(n / tiles) * C * H * W;
        tl[j].r0 = 2 * (t / TW) - 1;
        tl[j].c0 = 2 * (t % TW) - 1;
    }
}

/* Eight tiles side by side in one tile row: the vector paths below, one tile per lane.
 * GCC vector extensions; unaligned loads and stores through memcpy. */
typedef float wv8 __attribute__((vector_size(32)));
typedef int wv8i __attribute__((vector_size(32)));
#define WV_LOAD(v, p)  memcpy(&(v), (p), sizeof(wv8))
#define WV_STORE(p, v) memcpy((p), &(v), sizeof(wv8))

static int same_row8(const tile_t *tl, int j, int nn)
{
    return j + 8 <= nn && tl[j + 7].base == tl[j].base && tl[j + 7].r0 == tl[j].r0 && tl[j + 7].c0 == tl[j].c0 + 14;
}

/* d[q][k] = row[2k + q], q < 4, k < 8: the four columns of eight tiles whose windows start
 * two apart, from the 18 floats at row (columns c0 .. c0 + 17, zero outside 0 .. W-1) */
static void row_columns(wv8 d[4], const float *row, int c0, int W)
{
    float buf[24];
    const float *p = row + c0;
    if (c0 < 0 || c0 + 18 > W) {
        for (int i = 0; i < 18; i++) buf[i] = c0 + i >= 0 && c0 + i < W ? row[c0 + i] : 0.0f;
        p = buf;
    }
    wv8 a, b, a2, b2;
    WV_LOAD(a, p);
    WV_LOAD(b, p + 8);
    if (p == buf) {
        WV_LOAD(a2, buf + 2);
        memcpy(&b2, buf + 10, sizeof b2);
    } else {
        WV_LOAD(a2, p + 2);
        WV_LOAD(b2, p + 10);
    }
    const wv8i even = {0, 2, 4, 6, 8, 10, 12, 14}, odd = {1, 3, 5, 7, 9, 11, 13, 15};
    d[0] = __builtin_shuffle(a, b, even);
    d[1] = __builtin_shuffle(a, b, odd);
    d[2] = __builtin_shuffle(a2, b2, even);
    d[3] = __builtin_shuffle(a2, b2, odd);
}

/* the input transform of eight tiles of one channel into v[xi * vs .. + 8) */
static void input_transform8(float *v, size_t vs, const float *xc, int r0, int c0, int H, int W)
{
    wv8 d[4][4];
    for (int r = 0; r < 4; r++) {
        if (r0 + r < 0 || r0 + r >= H)
            for (int q = 0; q < 4; q++) d[r][q] = (wv8){0};
        else
            row_columns(d[r], xc + (size_t)(r0 + r) * W, c0, W);
    }
    for (int q = 0; q < 4; q++) {
        wv8 d0 = d[0][q], d1 = d[1][q], d2 = d[2][q], d3 = d[3][q];
        d[0][q] = d0 - d2;
        d[1][q] = d1 + d2;
        d[2][q] = d2 - d1;
        d[3][q] = d1 - d3;
    }
    for (int r = 0; r < 4; r++) {
        wv8 t0 = d[r][0] - d[r][2], t1 = d[r][1] + d[r][2], t2 = d[r][2] - d[r][1], t3 = d[r][1] - d[r][3];
        WV_STORE(v + (size_t)(r * 4 + 0) * vs, t0);
        WV_STORE(v + (size_t)(r * 4 + 1) * vs, t1);
        WV_STORE(v + (size_t)(r * 4 + 2) * vs, t2);
        WV_STORE(v + (size_t)(r * 4 + 3) * vs, t3);
    }
}

/* the output transform of eight tiles of one channel (m[xi * ms .. + 8)), whose 2x2 blocks
 * all lie inside the plane: two rows of 16 outputs from yo */
static void output_transform8(float *yo, int W, const float *m, size_t ms, float bo)
{
    wv8 e[XI];
    for (int xi = 0; xi < XI; xi++) WV_LOAD(e[xi], m + xi * ms);
    const wv8i lo = {0, 8, 1, 9, 2, 10, 3, 11}, hi = {4, 12, 5, 13, 6, 14, 7, 15};
    for (int r = 0; r < 2; r++) {
        wv8 s[4];
        for (int q = 0; q < 4; q++) s[q] = r == 0 ? e[q] + e[4 + q] + e[8 + q] : e[4 + q] - e[8 + q] - e[12 + q];
        wv8 o0 = s[0] + s[1] + s[2] + bo, o1 = s[1] - s[2] - s[3] + bo;
        wv8 a = __builtin_shuffle(o0, o1, lo), b = __builtin_shuffle(o0, o1, hi);
        WV_STORE(yo + (size_t)r * W, a);
        WV_STORE(yo + (size_t)r * W + 8, b);
    }
}

/* V[xi] as the packed kernel's right-hand side (C, NC): panel j/NR, row c, lane j%NR */
static void input_transform(float *V, const float *x, const tile_t *tl, int nn, int NC, int C, int H, int W)
{
    int NR = sn_gemm_packed_nr();
    size_t vs = (size_t)NC * C, plane = (size_t)H * W;
    for (int c = 0; c < C; c++)
        for (int j = 0; j < NC; j++) {
            float *v = V + (size_t)(j / NR) * C * NR + (size_t)c * NR + j % NR;
            if (j % 8 == 0 && same_row8(tl, j, nn)) {
                input_transform8(v, vs, x + tl[j].base + c * plane, tl[j].r0, tl[j].c0, H, W);
                j += 7;
                continue;
            }
            if (j >= nn) {   /* lanes past the last tile: zeros, never stored */
                for (int xi = 0; xi < XI; xi++) v[xi * vs] = 0.0f;
                continue;
            }
            const float *xc = x + tl[j].base + c * plane;
            int r0 = tl[j].r0, c0 = tl[j].c0;
            float d[4][4];
            if (r0 >= 0 && c0 >= 0 && r0 + 3 < H && c0 + 3 < W) {
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++) d[r][q] = xc[(size_t)(r0 + r) * W + c0 + q];
            } else {
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++) {
                        int y = r0 + r, z = c0 + q;
                        d[r][q] = y >= 0 && y < H && z >= 0 && z < W ? xc[(size_t)y * W + z] : 0.0f;
                    }
            }
            float s[4][4];   /* B^T d, then (B^T d) B */
            for (int q = 0; q < 4; q++) {
                s[0][q] = d[0][q] - d[2][q];
                s[1][q] = d[1][q] + d[2][q];
                s[2][q] = d[2][q] - d[1][q];
                s[3][q] = d[1][q] - d[3][q];
            }
            for (int r = 0; r < 4; r++) {
                v[(size_t)(r * 4 + 0) * vs] = s[r][0] - s[r][2];
                v[(size_t)(r * 4 + 1) * vs] = s[r][1] + s[r][2];
                v[(size_t)(r * 4 + 2) * vs] = s[r][2] - s[r][1];
                v[(size_t)(r * 4 + 3) * vs] = s[r][1] - s[r][3];
            }
        }
}

/* y (B, OC, H, W): the 2x2 blocks A^T M A (+ bias) of the chunk's tiles; M[xi] (OC, NC) */
static void output_transform(float *y, const float *M, const float *bias, const tile_t *tl, int nn, int NC, int C,
                             int OC, int H, int W)
{
    size_t ms = (size_t)NC * OC, plane = (size_t)H * W;
    for (int oc = 0; oc < OC; oc++) {
        float bo = bias ? bias[oc] : 0.0f;
        for (int j = 0; j < nn; j++) {
            int r0 = tl[j].r0 + 1, c0 = tl[j].c0 + 1;
            if (j % 8 == 0 && same_row8(tl, j, nn) && r0 + 2 <= H && c0 + 16 <= W) {
                output_transform8(y + tl[j].base / C * OC + oc * plane + (size_t)r0 * W + c0, W,
                                  M + (size_t)oc * NC + j, ms, bo);
                j += 7;
                continue;
            }
            int rows = H - r0 < 2 ? 1 : 2, cols = W - c0 < 2 ? 1 : 2;
            const float *m = M + (size_t)oc * NC + j;
            float e[XI];
            for (int xi = 0; xi < XI; xi++) e[xi] = m[xi * ms];
            float s[2][4];   /* A^T m, then (A^T m) A */
            for (int q = 0; q < 4; q++) {
                s[0][q] = e[q] + e[4 + q] + e[8 + q];
                s[1][q] = e[4 + q] - e[8 + q] - e[12 + q];
            }
            float o[2][2];
            for (int r = 0; r < 2; r++) {
                o[r][0] = s[r][0] + s[r][1] + s[r][2] + bo;
                o[r][1] = s[r][1] - s[r][2] - s[r][3] + bo;
            }
            float *yo = y + tl[j].base / C * OC + oc * plane + (size_t)r0 * W + c0;
            for (int r = 0; r < rows; r++)
                for (int q = 0; q < cols; q++) yo[(size_t)r * W + q] = o[r][q];
        }
    }
}

void sn_winograd_conv(float *y, const float *x, int B, int C, int OC, int H, int W, const float *U,
                      const float *bias, float *scratch, int threads)
{
    int TH = (H + 1) / 2, TW = (W + 1) / 2, NC = sn_winograd_chunk(C, OC);
    long N = (long)B * TH * TW;
    int nchunks = (int)((N + NC - 1) / NC);
    size_t per = sn_winograd_scratch_floats(C, OC);
    if (threads > nchunks) threads = nchunks;
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int ch = 0; ch < nchunks; ch++) {
        float *V = scratch + (size_t)omp_get_thread_num() * per, *M = V + (size_t)XI * NC * C;
        tile_t tl[CHUNK_MAX];
        long n0 = (long)ch * NC;
        int nn = N - n0 < NC ? (int)(N - n0) : NC;
        chunk_tiles(tl, n0, nn, C, H, W, TH, TW);
        input_transform(V, x, tl, nn, NC, C, H, W);
        for (int xi = 0; xi < XI; xi++)
            sn_gemm_packed(OC, nn, C, U + (size_t)xi * OC * C, C, V + (size_t)xi * NC * C, 0.0f,
                           M + (size_t)xi * NC * OC, NC);
        output_transform(y, M, bias, tl, nn, NC, C, OC, H, W);
    }
}
