/*
 * bleu.c: corpus BLEU over token ids, equal to NLTK 3.8's corpus_bleu (see bleu.h).
 *
 * One segment at a time: for each order n the distinct hypothesis n-grams go into a small
 * open-addressing table (linear probing; an n-gram is named by the position of its first
 * occurrence in the hypothesis, so no key is copied and nothing is allocated per n-gram).
 * Each reference is then scanned once per order, counting its hits on the table; the
 * clipping bound of an n-gram is the largest such count over the references.
 */
#include "shardnet/bleu.h"

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "shardnet/error.h"
#include "shardnet/rng.h"

typedef struct {
    uint64_t h;        /* hash of the n-gram */
    int32_t  pos;      /* first occurrence in the hypothesis; -1: empty slot */
    int32_t  hyp_cnt;  /* occurrences in the hypothesis */
    int32_t  ref_cnt;  /* occurrences in the reference being scanned */
    int32_t  max_ref;  /* largest ref_cnt over the references scanned so far */
} bleu_slot_t;

/* Hypotheses of up to STACK_SLOTS / 2 tokens use the table on the stack. */
#define STACK_SLOTS 256

static inline uint64_t ngram_hash(const int32_t *t, int n)
{
    uint64_t h = 0x5bd1e9955bd1e995ULL;
    for (int k = 0; k < n; k++) h = sn_mix64(h ^ (uint64_t)(uint32_t)t[k]);
    return h;
}

static inline int ngram_eq(const int32_t *a, const int32_t *b, int n)
{
    for (int k = 0; k < n; k++)
        if (a[k] != b[k]) return 0;
    return 1;
}

/* The slot holding n-gram g (hash h) of the hypothesis, or the empty slot where it goes. */
static inline bleu_slot_t *find_slot(bleu_slot_t *tab, size_t mask, const int32_t *hyp,
                                     const int32_t *g, uint64_t h, int n)
{
    size_t i = (size_t)h & mask;
    for (;;) {
        bleu_slot_t *sl = &tab[i];
        if (sl->pos < 0 || (sl->h == h && ngram_eq(hyp + sl->pos, g, n))) return sl;
        i = (i + 1) & mask;
    }
}

void sn_bleu_stats_init(sn_bleu_stats_t *s) { memset(s, 0, sizeof *s); }

void sn_bleu_merge(sn_bleu_stats_t *dst, const sn_bleu_stats_t *src)
{
    for (int i = 0; i < SN_BLEU_NSTATS; i++) dst->c[i] += src->c[i];
}

int sn_bleu_add(sn_bleu_stats_t *s, const int32_t *hyp, int hyp_len, const int32_t *const *refs,
                const int *ref_lens, int n_refs)
{
    if (!s) return SN_FAIL(SN_EINVAL, "bleu: no statistics to add to");
    if (hyp_len < 0 || (hyp_len > 0 && !hyp))
        return SN_FAIL(SN_EINVAL, "bleu: bad hypothesis (length %d)", hyp_len);
    /* NLTK fails on a segment without references (min() of an empty sequence). */
    if (n_refs < 1 || !refs || !ref_lens)
        return SN_FAIL(SN_EINVAL, "bleu: a segment needs at least one reference (got %d)", n_refs);
    for (int r = 0; r < n_refs; r++)
        if (ref_lens[r] < 0 || (ref_lens[r] > 0 && !refs[r]))
            return SN_FAIL(SN_EINVAL, "bleu: bad reference %d (length %d)", r, ref_lens[r]);

    /* Closest reference length, the shorter one on a tie. */
    int best = ref_lens[0];
    for (int r = 1; r < n_refs; r++) {
        int64_t d = ref_lens[r] > hyp_len ? (int64_t)ref_lens[r] - hyp_len : (int64_t)hyp_len - ref_lens[r];
        int64_t bd = best > hyp_len ? (int64_t)best - hyp_len : (int64_t)hyp_len - best;
        if (d < bd || (d == bd && ref_lens[r] < best)) best = ref_lens[r];
    }

    /* Table: a power of two >= 2 * hyp_len slots (load factor <= 1/2). */
    size_t cap = 16;
    while (cap < 2 * (size_t)hyp_len) cap *= 2;
    bleu_slot_t  stack_tab[STACK_SLOTS];
    bleu_slot_t *tab = stack_tab;
    if (cap > STACK_SLOTS) {
        tab = sn_alloc(cap * sizeof *tab, "BLEU n-gram table");
        if (!tab) return SN_ENOMEM;
    }
    const size_t mask = cap - 1;

    int64_t match[SN_BLEU_MAX_N], total[SN_BLEU_MAX_N];
    for (int n = 1; n <= SN_BLEU_MAX_N; n++) {
        const int m = hyp_len - n + 1;  /* hypothesis n-grams */
        match[n - 1] = 0;
        total[n - 1] = m > 1 ? m : 1;   /* NLTK: max(1, count) */
        if (m <= 0) continue;

        for (size_t i = 0; i < cap; i++) tab[i].pos = -1;
        for (int i = 0; i < m; i++) {
            const uint64_t h  = ngram_hash(hyp + i, n);
            bleu_slot_t   *sl = find_slot(tab, mask, hyp, hyp + i, h, n);
            if (sl->pos < 0) {
                sl->h       = h;
                sl->pos     = i;
                sl->hyp_cnt = 0;
                sl->ref_cnt = 0;
                sl->max_ref = 0;
            }
            sl->hyp_cnt++;
        }
        for (int r = 0; r < n_refs; r++) {
            const int mr = ref_lens[r] - n + 1;
            if (mr <= 0) continue;  /* no n-gram: counts 0, the maxima stay */
            for (int j = 0; j < mr; j++) {
                const int32_t *g  = refs[r] + j;
                bleu_slot_t   *sl = find_slot(tab, mask, hyp, g, ngram_hash(g, n), n);
                if (sl->pos >= 0) sl->ref_cnt++;
            }
            for (size_t i = 0; i < cap; i++) {
                bleu_slot_t *sl = &tab[i];
                if (sl->pos < 0) continue;
                if (sl->ref_cnt > sl->max_ref) sl->max_ref = sl->ref_cnt;
                sl->ref_cnt = 0;
            }
        }
        for (size_t i = 0; i < cap; i++)
            if (tab[i].pos >= 0) match[n - 1] += tab[i].hyp_cnt < tab[i].max_ref ? tab[i].hyp_cnt : tab[i].max_ref;
    }
    if (tab != stack_tab) sn_free(tab);

    for (int n = 0; n < SN_BLEU_MAX_N; n++) {
        s->c[SN_BLEU_MATCH + n] += match[n];
        s->c[SN_BLEU_TOTAL + n] += total[n];
    }
    s->c[SN_BLEU_HYP_LEN] += hyp_len;
    s->c[SN_BLEU_REF_LEN] += best;
    return 0;
}

/* The correctly rounded sum of x[0..n) (Shewchuk's partials, as Python's math.fsum),
 * for finite inputs, n <= SN_BLEU_MAX_N. */
static double exact_sum(const double *x, int n)
{
    double p[SN_BLEU_MAX_N + 1];
    int    np = 0;
    for (int k = 0; k < n; k++) {
        double v = x[k];
        int    i = 0;
        for (int j = 0; j < np; j++) {
            double y = p[j];
            if (fabs(v) < fabs(y)) {
                double t = v;
                v        = y;
                y        = t;
            }
            double hi = v + y;
            double lo = y - (hi - v);
            if (lo != 0.0) p[i++] = lo;
            v = hi;
        }
        np = i;
        if (v != 0.0) p[np++] = v;
    }
    double hi = 0.0;
    if (np > 0) {
        double lo = 0.0;
        hi        = p[--np];
        while (np > 0) {
            double v = hi, y = p[--np];
            hi       = v + y;
            lo       = y - (hi - v);
            if (lo != 0.0) break;
        }
        /* half-even rounding across partials */
        if (np > 0 && ((lo < 0.0 && p[np - 1] < 0.0) || (lo > 0.0 && p[np - 1] > 0.0))) {
            double y = lo * 2.0, v = hi + y;
            if (y == v - hi) hi = v;
        }
    }
    return hi;
}

int sn_bleu_score(const sn_bleu_stats_t *s, int max_n, double *bleu)
{
    if (!s || !bleu) return SN_FAIL(SN_EINVAL, "bleu: no statistics or no result");
    if (max_n < 1 || max_n > SN_BLEU_MAX_N)
        return SN_FAIL(SN_EINVAL, "bleu: order %d outside 1..%d", max_n, SN_BLEU_MAX_N);
    for (int n = 0; n < SN_BLEU_MAX_N; n++) {
        const int64_t mt = s->c[SN_BLEU_MATCH + n], tt = s->c[SN_BLEU_TOTAL + n];
        if (mt < 0 || tt < 0 || mt > tt)
            return SN_FAIL(SN_EINVAL, "bleu: inconsistent %d-gram counts (%lld matches of %lld)", n + 1,
                           (long long)mt, (long long)tt);
    }
    const int64_t c = s->c[SN_BLEU_HYP_LEN], r = s->c[SN_BLEU_REF_LEN];
    if (c < 0 || r < 0) return SN_FAIL(SN_EINVAL, "bleu: negative lengths");

    *bleu = 0.0;
    if (s->c[SN_BLEU_MATCH] == 0) return 0;  /* NLTK: no unigram match, BLEU 0 */

    /* Brevity penalty; r / c as Python's int / int (both exact in a double here). */
    double bp;
    if (c > r)
        bp = 1.0;
    else if (c == 0)
        bp = 0.0;
    else
        bp = exp(1.0 - (double)r / (double)c);

    const double w = 1.0 / max_n;
    double       terms[SN_BLEU_MAX_N];
    for (int n = 0; n < max_n; n++) {
        const int64_t mt = s->c[SN_BLEU_MATCH + n];
        const double  p  = mt > 0 ? (double)mt / (double)s->c[SN_BLEU_TOTAL + n] : DBL_MIN;
        terms[n]         = w * log(p);
    }
    *bleu = bp * exp(exact_sum(terms, max_n));
    return 0;
}
