/*
 * lstm.c: multi-layer LSTM (PyTorch's parameterisation, gate order i, f, g, o) over
 * variable-length batches, its backpropagation through time, and a single-step API
 * for greedy decoding.
 *
 * Layout: the public tensors are batch-first (B, T, F); inside, everything is packed
 * time-major, as PyTorch's PackedSequence: step t is one contiguous block of nt[t] rows
 * at row off[t], where rows nt[t].. are all inactive at step t (R = off[T] rows in all).
 * A caller that orders its rows by decreasing length, as pack_padded_sequence does, so
 * pays for its real tokens only. The parameter gradients over all steps are single
 * GEMMs:
 *   forward   G = X W_ih^T + b (all steps, one GEMM), then per step G_t += h_{t-1} W_hh^T
 *   backward  per step dh += dG_{t+1} W_hh; after the loop dW_ih += dG^T X,
 *             dW_hh += dG^T [h_{-1} .. h_{T-2}], dX = dG W_ih (three GEMMs)
 * The per-step products have only B rows: W_hh is packed once per forward (as W_hh^T) and
 * once per backward (as W_hh) for sn_gemm_packed, instead of being re-packed by OpenBLAS
 * at every step. The input products G = X W_ih^T and dX = dG W_ih go through the same
 * kernel (faster than the tiled OpenBLAS calls for these shapes); the weight gradients,
 * with a transposed left operand, stay with sn_gemm.
 * hp holds, at step t's rows, the hidden states h_{t-1} that step t reads, so the recurrent
 * products and the dW_hh GEMM read one packed matrix.
 * Variable lengths, in any order: a row is active at step t iff t < length. Inactive rows
 * before nt[t] ride along: their gates are discarded, their outputs are zero and their
 * gate gradients are zero, so they touch no gradient. Each row's values do not depend on
 * the other rows or their order. Gate math runs with OpenMP over batch rows (static); every float gets the
 * same operations in the same order whatever the thread count.
 * Must not: allocate in forward/backward/step, or sort/reorder the caller's rows.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "shardnet/sequence.h"
#include "shardnet/rng.h"
#include "kernels/kernels.h"

typedef struct {
    int    in;                          /* F_k: input_size for layer 0, H above */
    float *w_ih, *w_hh, *b_ih, *b_hh;   /* (4H, in), (4H, H), (4H), (4H) */
    float *dw_ih, *dw_hh, *db_ih, *db_hh;
    float *gates;                       /* (R, 4H) i, f, g, o after their nonlinearity */
    float *cs, *tcs;                    /* (R, H) c_t and tanh(c_t) */
    float *hs;                          /* (R, H) h_t (0 when inactive) */
    float *hp;                          /* (R, H) h_{t-1} of step t's rows; block 0 = h0 */
    float *c0;                          /* (B, H) */
} lstm_level_t;

typedef struct {
    sn_layer_t    base;
    int           F, H, L, max_T;
    lstm_level_t *lv;
    float        *xt;          /* (R, F) packed copy of the input */
    float        *dg;          /* (R, 4H) gate gradients (pre-activation), reused per level */
    float        *dbuf[2];     /* (R, max(F, H)) gradients flowing down the levels */
    float        *dh_rec, *dc; /* (B, H) recurrent gradient and cell gradient carry */
    float        *hn, *cn;     /* (L, B, H) final states */
    float        *step_g;      /* (B, 4H) gates of one decoding step */
    float        *step_tc;     /* (B, H) its tanh(c) */
    float        *wpack;       /* one weight matrix of one level, packed for sn_gemm_packed */
    int          *len;         /* (max_batch) lengths of the last forward */
    int          *nt, *off;    /* (max_T), (max_T + 1) rows and first row of each step */
    int           B, T, R;     /* of the last forward; R = off[T] */
    int           fwd_done;
} lstm_t;

static int check_lengths(const lstm_t *m, const int *lengths, int B, int T)
{
    if (!lengths) return SN_OK;
    for (int b = 0; b < B; b++)
        if (lengths[b] < 1 || lengths[b] > T)
            return SN_FAIL(SN_EINVAL, "LSTM '%s': length %d of row %d outside 1..%d", m->base.name,
                           lengths[b], b, T);
    return SN_OK;
}

/* nt[t] = one past the last row with length > t; off = their running sum */
static void set_steps(lstm_t *m, int B, int T)
{
    m->off[0] = 0;
    for (int t = 0; t < T; t++) {
        int n = 0;
        for (int b = 0; b < B; b++)
            if (m->len[b] > t) n = b + 1;
        m->nt[t] = n;
        m->off[t + 1] = m->off[t] + n;
    }
    m->R = m->off[T];
}

/* (B, T, F) batch-first -> packed (R, F) */
static void pack_rows(const lstm_t *m, float *dst, const float *src, int T, int F)
{
    for (int t = 0; t < T; t++)
        for (int b = 0; b < m->nt[t]; b++)
            memcpy(dst + ((size_t)m->off[t] + b) * F, src + ((size_t)b * T + t) * F, (size_t)F * sizeof(float));
}

/* packed (R, F) -> (B, T, F), zero where no packed row is */
static void unpack_rows(const lstm_t *m, float *dst, const float *src, int B, int T, int F)
{
    #pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *d = dst + ((size_t)b * T + t) * F;
            if (b < m->nt[t]) memcpy(d, src + ((size_t)m->off[t] + b) * F, (size_t)F * sizeof(float));
            else memset(d, 0, (size_t)F * sizeof(float));
        }
}

/* Fills every row of G (rows, 4H) with b_ih + b_hh. */
static void fill_bias(float *G, const lstm_level_t *v, int rows, int H4)
{
    #pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < H4; j++) G[(size_t)r * H4 + j] = v->b_ih[j] + v->b_hh[j];
}

/* The gate nonlinearities and the state update of one row:
 * g (4H) pre-activations in, activations out; c_prev, h (H) -> c, tc = tanh(c), h.
 * sigmoid(v) = 1 / (1 + exp(-v)); tanh(v) = 2 / (1 + exp(-2v)) - 1, within 1.8e-7 absolute
 * of tanh and saturating cleanly (exp overflow gives -1, underflow 1). glibc's (expm1f-based)
 * tanhf took ~15% of an LSTM(256,512) step, scalar expf another tenth: the exps go through
 * sn_vexpf, a chunk of CELL_CHUNK units at a time. */
enum { CELL_CHUNK = 64 };
static void cell_row(float *g, const float *c_prev, float *c, float *tc, float *h, int H)
{
    float e[4][CELL_CHUNK], ec[CELL_CHUNK];
    for (int j0 = 0; j0 < H; j0 += CELL_CHUNK) {
        int n = H - j0 < CELL_CHUNK ? H - j0 : CELL_CHUNK;
        float *gi = g + j0, *gf = g + H + j0, *gg = g + 2 * H + j0, *go = g + 3 * H + j0;
        for (int j = 0; j < n; j++) {
            e[0][j] = -gi[j];
            e[1][j] = -gf[j];
            e[2][j] = -2.0f * gg[j];
            e[3][j] = -go[j];
        }
        for (int k = 0; k < 4; k++) sn_vexpf(e[k], e[k], (size_t)n);
        for (int j = 0; j < n; j++) {
            float i = 1.0f / (1.0f + e[0][j]), f = 1.0f / (1.0f + e[1][j]);
            float z = 2.0f / (1.0f + e[2][j]) - 1.0f, o = 1.0f / (1.0f + e[3][j]);
            float cv = f * c_prev[j0 + j] + i * z;
            gi[j] = i; gf[j] = f; gg[j] = z; go[j] = o;
            c[j0 + j] = cv;
            ec[j] = -2.0f * cv;
        }
        sn_vexpf(ec, ec, (size_t)n);
        for (int j = 0; j < n; j++) {
            float t = 2.0f / (1.0f + ec[j]) - 1.0f;
            tc[j0 + j] = t;
            h[j0 + j] = go[j] * t;
        }
    }
}

/* One level over all steps: X (R, in) packed -> v->hs; v->hp block 0 holds h0. */
static void level_forward(lstm_t *m, lstm_level_t *v, const float *X, int T, int zero_h0)
{
    int H = m->H, H4 = 4 * m->H;
    fill_bias(v->gates, v, m->R, H4);
    sn_gemm_pack_b(m->wpack, 1, H4, v->in, v->w_ih, v->in);
    sn_gemm_packed(m->R, H4, v->in, X, v->in, m->wpack, 1.0f, v->gates, H4);
    if (T > 1 || !zero_h0) sn_gemm_pack_b(m->wpack, 1, H4, H, v->w_hh, H);
    for (int t = 0; t < T; t++) {
        int n = m->nt[t];
        size_t at = (size_t)m->off[t] * H;
        float *Gt = v->gates + (size_t)m->off[t] * H4;
        if (t > 0 || !zero_h0) sn_gemm_packed(n, H4, H, v->hp + at, H, m->wpack, 1.0f, Gt, H4);
        const float *cprev = t > 0 ? v->cs + (size_t)m->off[t - 1] * H : v->c0;
        float *ct = v->cs + at, *tct = v->tcs + at, *ht = v->hs + at;
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < n; b++) {
            size_t o = (size_t)b * H;
            if (t < m->len[b]) {
                cell_row(Gt + (size_t)b * H4, cprev + o, ct + o, tct + o, ht + o, H);
            } else {
                memset(ct + o, 0, (size_t)H * sizeof(float));
                memset(tct + o, 0, (size_t)H * sizeof(float));
                memset(ht + o, 0, (size_t)H * sizeof(float));
            }
        }
        if (t + 1 < T) memcpy(v->hp + (size_t)m->off[t + 1] * H, ht, (size_t)m->nt[t + 1] * H * sizeof(float));
    }
}

int sn_lstm_forward_seq(sn_layer_t *l, const float *x, int B, int T, const int *lengths,
                        const float *h0, const float *c0)
{
    lstm_t *m = (lstm_t *)l;
    if (B < 1 || B > l->max_batch || T < 1 || T > m->max_T)
        return SN_FAIL(SN_EINVAL, "LSTM '%s': batch %d / length %d outside 1..%d / 1..%d", l->name, B, T,
                       l->max_batch, m->max_T);
    SN_TRY(check_lengths(m, lengths, B, T));
    for (int b = 0; b < B; b++) m->len[b] = lengths ? lengths[b] : T;
    m->B = B;
    m->T = T;
    set_steps(m, B, T);   /* nt[0] = B: every length is >= 1 */
    int H = m->H;
    size_t BH = (size_t)B * H;
    pack_rows(m, m->xt, x, T, m->F);
    const float *X = m->xt;
    for (int k = 0; k < m->L; k++) {
        lstm_level_t *v = &m->lv[k];
        if (h0) memcpy(v->hp, h0 + k * BH, BH * sizeof(float));
        else memset(v->hp, 0, BH * sizeof(float));
        if (c0) memcpy(v->c0, c0 + k * BH, BH * sizeof(float));
        else memset(v->c0, 0, BH * sizeof(float));
        level_forward(m, v, X, T, h0 == NULL);
        X = v->hs;   /* the next level's input */
        for (int b = 0; b < B; b++) {
            size_t last = (size_t)m->off[m->len[b] - 1] + b;
            memcpy(m->hn + k * BH + (size_t)b * H, v->hs + last * H, (size_t)H * sizeof(float));
            memcpy(m->cn + k * BH + (size_t)b * H, v->cs + last * H, (size_t)H * sizeof(float));
        }
    }
    unpack_rows(m, l->output, X, B, T, H);
    m->fwd_done = 1;
    return SN_OK;
}

/* One level backward. dY (R, H) packed gradient of hs (may be NULL);
 * dhn, dcn (B, H) or NULL. Leaves the gate gradients in m->dg, dh0/dc0 when asked. */
static void level_backward(lstm_t *m, lstm_level_t *v, const float *dY, const float *dhn, const float *dcn,
                           float *dh0, float *dc0)
{
    int B = m->B, T = m->T, H = m->H, H4 = 4 * m->H;
    size_t BH = (size_t)B * H;
    if (T > 1 || dh0) sn_gemm_pack_b(m->wpack, 0, H, H4, v->w_hh, H);
    for (int t = T - 1; t >= 0; t--) {
        float *dGt = m->dg + (size_t)m->off[t] * H4;
        if (t < T - 1)   /* the gradient that reaches h_t through step t+1's W_hh (rows past
                            nt[t+1] read none: their last step is t or earlier) */
            sn_gemm_packed(m->nt[t + 1], H, H4, m->dg + (size_t)m->off[t + 1] * H4, H4, m->wpack, 0.0f,
                           m->dh_rec, H);
        const float *Gt = v->gates + (size_t)m->off[t] * H4;
        const float *tct = v->tcs + (size_t)m->off[t] * H;
        const float *cprev = t > 0 ? v->cs + (size_t)m->off[t - 1] * H : v->c0;
        const float *dYt = dY ? dY + (size_t)m->off[t] * H : NULL;
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < m->nt[t]; b++) {
            float *dg = dGt + (size_t)b * H4;
            int len = m->len[b];
            if (t >= len) {
                memset(dg, 0, (size_t)H4 * sizeof(float));
                continue;
            }
            size_t o = (size_t)b * H;
            const float *g = Gt + (size_t)b * H4;
            const float *dy = dYt ? dYt + o : NULL;
            const float *dhr = t < len - 1 ? m->dh_rec + o : (dhn ? dhn + o : NULL);
            const float *dcin = t < len - 1 ? m->dc + o : (dcn ? dcn + o : NULL);
            float *dcout = m->dc + o;
            for (int j = 0; j < H; j++) {
                float dh = (dy ? dy[j] : 0.0f) + (dhr ? dhr[j] : 0.0f);
                float i = g[j], f = g[H + j], z = g[2 * H + j], og = g[3 * H + j];
                float tc = tct[o + j];
                float dcv = (dcin ? dcin[j] : 0.0f) + dh * og * (1.0f - tc * tc);
                dg[j]         = dcv * z * i * (1.0f - i);
                dg[H + j]     = dcv * cprev[o + j] * f * (1.0f - f);
                dg[2 * H + j] = dcv * i * (1.0f - z * z);
                dg[3 * H + j] = dh * tc * og * (1.0f - og);
                dcout[j] = dcv * f;
            }
        }
    }
    if (dh0) sn_gemm_packed(B, H, H4, m->dg, H4, m->wpack, 0.0f, dh0, H);
    if (dc0) memcpy(dc0, m->dc, BH * sizeof(float));
    /* Bias gradients: a column sum over T*B rows, in row order per column. Blocks of 64
     * columns walk the rows together (a column at a time strode 16 KB per row). */
    int rows = m->R, nblk = (H4 + 63) / 64;
    #pragma omp parallel for schedule(static)
    for (int jb = 0; jb < nblk; jb++) {
        int j0 = jb * 64, nj = H4 - j0 < 64 ? H4 - j0 : 64;
        double s[64] = {0};
        for (int r = 0; r < rows; r++) {
            const float *d = m->dg + (size_t)r * H4 + j0;
            for (int j = 0; j < nj; j++) s[j] += d[j];
        }
        for (int j = 0; j < nj; j++) {
            v->db_ih[j0 + j] += (float)s[j];
            v->db_hh[j0 + j] += (float)s[j];
        }
    }
    sn_gemm(1, 0, H4, H, rows, 1.0f, m->dg, H4, v->hp, H, 1.0f, v->dw_hh, H);
}

int sn_lstm_backward_seq(sn_layer_t *l, const float *dy, const float *dh_n, const float *dc_n,
                         float *dh0, float *dc0)
{
    lstm_t *m = (lstm_t *)l;
    if (!m->fwd_done) return SN_FAIL(SN_EINVAL, "LSTM '%s': backward without a forward", l->name);
    int B = m->B, T = m->T, H = m->H, H4 = 4 * m->H;
    size_t BH = (size_t)B * H;
    const float *dY = NULL;
    if (dy) {
        pack_rows(m, m->dbuf[0], dy, T, H);
        dY = m->dbuf[0];
    }
    for (int k = m->L - 1; k >= 0; k--) {
        lstm_level_t *v = &m->lv[k];
        level_backward(m, v, dY, dh_n ? dh_n + k * BH : NULL, dc_n ? dc_n + k * BH : NULL,
                       dh0 ? dh0 + k * BH : NULL, dc0 ? dc0 + k * BH : NULL);
        const float *X = k > 0 ? m->lv[k - 1].hs : m->xt;
        sn_gemm(1, 0, H4, v->in, m->R, 1.0f, m->dg, H4, X, v->in, 1.0f, v->dw_ih, v->in);
        if (k == 0 && !l->need_grad_input) break;
        float *dX = m->dbuf[(m->L - k) & 1];   /* never the buffer dY points into */
        sn_gemm_pack_b(m->wpack, 0, v->in, H4, v->w_ih, v->in);
        sn_gemm_packed(m->R, v->in, H4, m->dg, H4, m->wpack, 0.0f, dX, v->in);
        dY = dX;
    }
    if (l->need_grad_input) unpack_rows(m, l->grad_input, dY, B, T, m->F);
    return SN_OK;
}

const float *sn_lstm_h_n(const sn_layer_t *l) { return ((const lstm_t *)l)->hn; }
const float *sn_lstm_c_n(const sn_layer_t *l) { return ((const lstm_t *)l)->cn; }

int sn_lstm_step(sn_layer_t *l, const float *x, float *h, float *c, int B)
{
    lstm_t *m = (lstm_t *)l;
    if (B < 1 || B > l->max_batch)
        return SN_FAIL(SN_EINVAL, "LSTM '%s': batch %d outside 1..%d", l->name, B, l->max_batch);
    int H = m->H, H4 = 4 * m->H;
    size_t BH = (size_t)B * H;
    const float *X = x;
    for (int k = 0; k < m->L; k++) {
        lstm_level_t *v = &m->lv[k];
        float *hk = h + k * BH, *ck = c + k * BH;
        /* the same operations in the same order as level_forward */
        fill_bias(m->step_g, v, B, H4);
        sn_gemm_pack_b(m->wpack, 1, H4, v->in, v->w_ih, v->in);
        sn_gemm_packed(B, H4, v->in, X, v->in, m->wpack, 1.0f, m->step_g, H4);
        sn_gemm_pack_b(m->wpack, 1, H4, H, v->w_hh, H);
        sn_gemm_packed(B, H4, H, hk, H, m->wpack, 1.0f, m->step_g, H4);
        #pragma omp parallel for schedule(static)
        for (int b = 0; b < B; b++) {
            size_t o = (size_t)b * H;
            /* c is read before it is written, element by element: in place is safe */
            cell_row(m->step_g + (size_t)b * H4, ck + o, ck + o, m->step_tc + o, hk + o, H);
        }
        X = hk;
    }
    return SN_OK;
}

/* ---- the layer protocol ------------------------------------------------------------- */

static int lstm_forward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, int B)
{
    lstm_t *m = (lstm_t *)l;
    return sn_lstm_forward_seq(l, x, B, m->max_T, ctx ? ctx->lengths : NULL, NULL, NULL);
}

static int lstm_backward(sn_layer_t *l, const sn_ctx_t *ctx, const float *x, const float *dy, int B)
{
    (void)ctx; (void)x;
    lstm_t *m = (lstm_t *)l;
    if (B != m->B || m->T != m->max_T)
        return SN_FAIL(SN_EINVAL, "LSTM '%s': backward of batch %d after a forward of batch %d", l->name, B, m->B);
    return sn_lstm_backward_seq(l, dy, NULL, NULL, NULL, NULL);
}

/* PyTorch: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)). */
static void lstm_reset(sn_layer_t *l, uint64_t seed)
{
    lstm_t *m = (lstm_t *)l;
    float bound = 1.0f / sqrtf((float)m->H);
    for (int k = 0; k < m->L; k++) {
        lstm_level_t *v = &m->lv[k];
        float *t[4] = {v->w_ih, v->w_hh, v->b_ih, v->b_hh};
        size_t n[4] = {(size_t)4 * m->H * v->in, (size_t)4 * m->H * m->H, (size_t)4 * m->H, (size_t)4 * m->H};
        for (int p = 0; p < 4; p++)
            for (size_t i = 0; i < n[p]; i++)
                t[p][i] = bound * (2.0f * sn_rng_uniform(seed, SN_RNG_INIT, l->id, (uint64_t)(4 * k + p), i) - 1.0f);
    }
}

static void lstm_destroy(sn_layer_t *l)
{
    lstm_t *m = (lstm_t *)l;
    for (int k = 0; m->lv && k < m->L; k++) {
        lstm_level_t *v = &m->lv[k];
        sn_free(v->gates);
        sn_free(v->cs);
        sn_free(v->tcs);
        sn_free(v->hs);
        sn_free(v->hp);
        sn_free(v->c0);
    }
    free(m->lv);
    sn_free(m->xt);
    sn_free(m->dg);
    sn_free(m->dbuf[0]);
    sn_free(m->dbuf[1]);
    sn_free(m->dh_rec);
    sn_free(m->dc);
    sn_free(m->hn);
    sn_free(m->cn);
    sn_free(m->step_g);
    sn_free(m->step_tc);
    sn_free(m->wpack);
    free(m->len);
    free(m->nt);
    free(m->off);
}

static const sn_layer_ops_t lstm_ops = {"LSTM", lstm_forward, lstm_backward, lstm_reset, lstm_destroy};

#define LSTM_ALLOC(ptr, n, what) \
    do { if (!((ptr) = sn_alloc((size_t)(n) * sizeof(float), (what)))) goto fail; } while (0)

sn_layer_t *sn_lstm_new(sn_params_t *params, const char *name, int input_size, int hidden_size,
                        int num_layers, int max_T, int max_batch)
{
    lstm_t *m = calloc(1, sizeof *m);
    if (!m) { SN_FAIL(SN_ENOMEM, "LSTM: out of memory"); return NULL; }
    if (input_size < 1 || hidden_size < 1 || num_layers < 1 || max_T < 1) {
        SN_FAIL(SN_EINVAL, "LSTM '%s': input %d, hidden %d, layers %d, max_T %d must all be >= 1",
                name ? name : "LSTM", input_size, hidden_size, num_layers, max_T);
        free(m);
        return NULL;
    }
    m->F = input_size;
    m->H = hidden_size;
    m->L = num_layers;
    m->max_T = max_T;
    int F = input_size, H = hidden_size, H4 = 4 * hidden_size;
    size_t TB = (size_t)max_T * max_batch, BH = (size_t)max_batch * H;
    if (sn_layer_setup(&m->base, &lstm_ops, name, max_batch, 2, (int[]){max_T, F}, 2, (int[]){max_T, H}, 1, 1))
        goto fail;
    if (!(m->lv = calloc((size_t)num_layers, sizeof *m->lv))) { SN_FAIL(SN_ENOMEM, "LSTM: out of memory"); goto fail; }
    if (!(m->len = calloc((size_t)max_batch, sizeof *m->len)) || !(m->nt = calloc((size_t)max_T, sizeof *m->nt)) ||
        !(m->off = calloc((size_t)max_T + 1, sizeof *m->off))) {
        SN_FAIL(SN_ENOMEM, "LSTM: out of memory");
        goto fail;
    }
    for (int k = 0; k < num_layers; k++) {
        lstm_level_t *v = &m->lv[k];
        v->in = k == 0 ? F : H;
        char pn[SN_PARAM_NAME_MAX], sfx[32];
        snprintf(sfx, sizeof sfx, "weight_ih_l%d", k);
        sn_layer_param_name(pn, sizeof pn, &m->base, sfx);
        if (sn_params_add(params, pn, 2, (int[]){H4, v->in}, &v->w_ih, &v->dw_ih)) goto fail;
        snprintf(sfx, sizeof sfx, "weight_hh_l%d", k);
        sn_layer_param_name(pn, sizeof pn, &m->base, sfx);
        if (sn_params_add(params, pn, 2, (int[]){H4, H}, &v->w_hh, &v->dw_hh)) goto fail;
        snprintf(sfx, sizeof sfx, "bias_ih_l%d", k);
        sn_layer_param_name(pn, sizeof pn, &m->base, sfx);
        if (sn_params_add(params, pn, 1, &H4, &v->b_ih, &v->db_ih)) goto fail;
        snprintf(sfx, sizeof sfx, "bias_hh_l%d", k);
        sn_layer_param_name(pn, sizeof pn, &m->base, sfx);
        if (sn_params_add(params, pn, 1, &H4, &v->b_hh, &v->db_hh)) goto fail;
        LSTM_ALLOC(v->gates, TB * H4, "LSTM gates");
        LSTM_ALLOC(v->cs, TB * H, "LSTM cell states");
        LSTM_ALLOC(v->tcs, TB * H, "LSTM tanh(c)");
        LSTM_ALLOC(v->hs, TB * H, "LSTM hidden states");
        LSTM_ALLOC(v->hp, TB * H, "LSTM previous hidden states");
        LSTM_ALLOC(v->c0, BH, "LSTM initial cell state");
    }
    size_t wide = (size_t)(F > H ? F : H);
    LSTM_ALLOC(m->xt, TB * F, "LSTM packed input");
    LSTM_ALLOC(m->dg, TB * H4, "LSTM gate gradients");
    LSTM_ALLOC(m->dbuf[0], TB * wide, "LSTM gradient buffer");
    LSTM_ALLOC(m->dbuf[1], TB * wide, "LSTM gradient buffer");
    LSTM_ALLOC(m->dh_rec, BH, "LSTM recurrent gradient");
    LSTM_ALLOC(m->dc, BH, "LSTM cell gradient");
    LSTM_ALLOC(m->hn, BH * num_layers, "LSTM final h");
    LSTM_ALLOC(m->cn, BH * num_layers, "LSTM final c");
    LSTM_ALLOC(m->step_g, (size_t)max_batch * H4, "LSTM step gates");
    LSTM_ALLOC(m->step_tc, BH, "LSTM step tanh(c)");
    size_t pk = 0;   /* the largest of W_hh^T, W_hh, W_ih^T, W_ih packed, over the levels */
    for (int k = 0; k < num_layers; k++) {
        size_t sz[4] = {sn_gemm_packed_floats(H4, H), sn_gemm_packed_floats(H, H4),
                        sn_gemm_packed_floats(H4, m->lv[k].in), sn_gemm_packed_floats(m->lv[k].in, H4)};
        for (int i = 0; i < 4; i++) pk = sz[i] > pk ? sz[i] : pk;
    }
    LSTM_ALLOC(m->wpack, pk, "LSTM packed weights");
    return &m->base;
fail:
    sn_layer_free(&m->base);
    return NULL;
}
