/*
 * test_bleu.c: corpus BLEU (shardnet/bleu.h) against NLTK 3.8's corpus_bleu on the
 * fixtures of tests/gen_bleu_fixtures.py (fixtures/bleu/bleu.snfx): the real coco-mini
 * val captions (leave-one-out hypotheses, the constant baseline caption, random token
 * sequences) and hand-written edge cases. Checks: the summed counts equal NLTK's
 * modified_precision / closest_ref_length sums exactly, BLEU-1..4 within 1e-12 relative
 * (an expected 0 exactly); stats of two halves merged equal the stats of the whole; the
 * README's baseline numbers; long hypotheses (heap table) against naive counting; bad
 * arguments refused without touching the counts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fixture.h"
#include "shardnet/bleu.h"
#include "shardnet/error.h"
#include "shardnet/rng.h"

typedef struct {
    char           name[64];
    int            n_seg;
    const int32_t *hyp_ids, *hyp_off, *ref_ids, *ref_off, *seg_ref, *stats;
    const double  *bleu;
} corpus_t;

static fx_file_t *g_fx;
static corpus_t  *g_corpora;
static int        g_n;

static int setup(void **state)
{
    (void)state;
    g_fx = fx_load("bleu/bleu.snfx");
    g_n  = fx_int(g_fx, "corpora");
    g_corpora = calloc((size_t)g_n, sizeof *g_corpora);
    for (int k = 0; k < g_n; k++) {
        corpus_t *c = &g_corpora[k];
        char      key[64];
#define GET_I32(field) (snprintf(key, sizeof key, "c%d." #field, k), fx_get(g_fx, key, FX_I32))
        const fx_tensor_t *nm = GET_I32(name);
        size_t             nl = nm->count < sizeof c->name - 1 ? nm->count : sizeof c->name - 1;
        for (size_t i = 0; i < nl; i++) c->name[i] = (char)((const int32_t *)nm->data)[i];
        c->hyp_ids = GET_I32(hyp_ids)->data;
        const fx_tensor_t *ho = GET_I32(hyp_off);
        c->hyp_off = ho->data;
        c->n_seg   = (int)ho->count - 1;
        c->ref_ids = GET_I32(ref_ids)->data;
        c->ref_off = GET_I32(ref_off)->data;
        c->seg_ref = GET_I32(seg_ref)->data;
        c->stats   = GET_I32(stats)->data;
        assert_int_equal(GET_I32(stats)->count, SN_BLEU_NSTATS);
#undef GET_I32
        snprintf(key, sizeof key, "c%d.bleu", k);
        const fx_tensor_t *b = fx_get(g_fx, key, FX_F64);
        assert_int_equal(b->count, 4);
        c->bleu = b->data;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(g_corpora);
    fx_free(g_fx);
    return 0;
}

/* Adds segments [lo, hi) of corpus c to s. */
static void add_segments(sn_bleu_stats_t *s, const corpus_t *c, int lo, int hi)
{
    const int32_t *refs[16];
    int            lens[16];
    for (int i = lo; i < hi; i++) {
        int nr = c->seg_ref[i + 1] - c->seg_ref[i];
        assert_true(nr >= 1 && nr <= 16);
        for (int r = 0; r < nr; r++) {
            int j   = c->seg_ref[i] + r;
            refs[r] = c->ref_ids + c->ref_off[j];
            lens[r] = c->ref_off[j + 1] - c->ref_off[j];
        }
        int rc = sn_bleu_add(s, c->hyp_ids + c->hyp_off[i], c->hyp_off[i + 1] - c->hyp_off[i], refs, lens, nr);
        assert_int_equal(rc, 0);
    }
}

static const corpus_t *find_corpus(const char *name)
{
    for (int k = 0; k < g_n; k++)
        if (strcmp(g_corpora[k].name, name) == 0) return &g_corpora[k];
    fail_msg("corpus %s not in the fixture", name);
    return NULL;
}

static void test_matches_nltk(void **state)
{
    (void)state;
    double worst = 0.0;
    for (int k = 0; k < g_n; k++) {
        const corpus_t *c = &g_corpora[k];
        sn_bleu_stats_t s;
        sn_bleu_stats_init(&s);
        add_segments(&s, c, 0, c->n_seg);
        for (int i = 0; i < SN_BLEU_NSTATS; i++)
            if (s.c[i] != c->stats[i]) fail_msg("%s: count %d is %lld, NLTK %d", c->name, i, (long long)s.c[i], c->stats[i]);
        for (int n = 1; n <= 4; n++) {
            double b = -1.0;
            assert_int_equal(sn_bleu_score(&s, n, &b), 0);
            double want = c->bleu[n - 1];
            if (want == 0.0) {
                if (b != 0.0) fail_msg("%s: BLEU-%d = %.17g, NLTK 0", c->name, n, b);
                continue;
            }
            double rel = fabs(b - want) / want;
            if (rel > worst) worst = rel;
            if (!(rel <= 1e-12)) fail_msg("%s: BLEU-%d = %.17g, NLTK %.17g (rel %.3g)", c->name, n, b, want, rel);
        }
    }
    printf("BLEU-1..4 on %d corpora: largest relative difference from NLTK %.3g\n", g_n, worst);
}

static void test_merge_halves(void **state)
{
    (void)state;
    for (int k = 0; k < g_n; k++) {
        const corpus_t *c = &g_corpora[k];
        sn_bleu_stats_t whole, a, b;
        sn_bleu_stats_init(&whole);
        sn_bleu_stats_init(&a);
        sn_bleu_stats_init(&b);
        add_segments(&whole, c, 0, c->n_seg);
        add_segments(&a, c, 0, c->n_seg / 2);
        add_segments(&b, c, c->n_seg / 2, c->n_seg);
        sn_bleu_merge(&a, &b);
        assert_memory_equal(a.c, whole.c, sizeof whole.c);
        /* segments dealt round-robin to three "ranks", counts summed as an allreduce would */
        sn_bleu_stats_t rank[3], sum;
        for (int r = 0; r < 3; r++) sn_bleu_stats_init(&rank[r]);
        for (int i = 0; i < c->n_seg; i++) add_segments(&rank[i % 3], c, i, i + 1);
        sn_bleu_stats_init(&sum);
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < SN_BLEU_NSTATS; i++) sum.c[i] += rank[r].c[i];
        assert_memory_equal(sum.c, whole.c, sizeof whole.c);
        for (int n = 1; n <= 4; n++) {
            double x, y;
            assert_int_equal(sn_bleu_score(&whole, n, &x), 0);
            assert_int_equal(sn_bleu_score(&a, n, &y), 0);
            assert_memory_equal(&x, &y, sizeof x);
        }
    }
}

static void test_baseline(void **state)
{
    (void)state;
    const corpus_t *c = find_corpus("val_baseline");
    sn_bleu_stats_t s;
    sn_bleu_stats_init(&s);
    add_segments(&s, c, 0, c->n_seg);
    const double readme[4] = {32.89, 7.70, 2.21, 0.00};
    for (int n = 1; n <= 4; n++) {
        double b;
        assert_int_equal(sn_bleu_score(&s, n, &b), 0);
        printf("baseline BLEU-%d = %.2f (%.17g; NLTK %.17g)\n", n, 100.0 * b, b, c->bleu[n - 1]);
        assert_true(fabs(100.0 * b - readme[n - 1]) < 0.005);
    }
    /* No 4-gram matches: NLTK 3.8 substitutes DBL_MIN for p_4, so BLEU-4 is tiny, not 0. */
    double b4;
    assert_int_equal(sn_bleu_score(&s, 4, &b4), 0);
    assert_int_equal(s.c[SN_BLEU_MATCH + 3], 0);
    assert_true(b4 > 0.0 && b4 < 1e-70);
}

/* Naive clipped counts for one segment, as NLTK defines them. */
static void naive_counts(const int32_t *hyp, int hl, const int32_t *const *refs, const int *rl, int nr, int64_t *out)
{
    for (int n = 1; n <= 4; n++) {
        int     m     = hl - n + 1;
        int64_t match = 0;
        for (int i = 0; i < m; i++) {
            int first = 1, cnt = 0;
            for (int j = 0; j < m; j++)
                if (memcmp(hyp + i, hyp + j, (size_t)n * sizeof *hyp) == 0) {
                    if (j < i) first = 0;
                    cnt++;
                }
            if (!first) continue;
            int mx = 0;
            for (int r = 0; r < nr; r++) {
                int rc = 0;
                for (int j = 0; j + n <= rl[r]; j++)
                    if (memcmp(hyp + i, refs[r] + j, (size_t)n * sizeof *hyp) == 0) rc++;
                if (rc > mx) mx = rc;
            }
            match += cnt < mx ? cnt : mx;
        }
        out[SN_BLEU_MATCH + n - 1] += match;
        out[SN_BLEU_TOTAL + n - 1] += m > 1 ? m : 1;
    }
}

static void test_long_vs_naive(void **state)
{
    (void)state;
    /* lengths around the on-stack table limit (128) and far beyond; small alphabets give
     * many repeated n-grams and clipping, large ids and negative ids hash like any other */
    const int lens[]  = {0, 1, 5, 127, 128, 129, 300, 700};
    const int alpha[] = {2, 3, 7, 50};
    static int32_t buf[4][800];
    int            seg = 0;
    for (size_t li = 0; li < sizeof lens / sizeof *lens; li++)
        for (size_t ai = 0; ai < sizeof alpha / sizeof *alpha; ai++, seg++) {
            int hl = lens[li], nr = 3;
            const int32_t *refs[3];
            int            rl[3];
            for (int t = 0; t < hl; t++)
                buf[0][t] = (int32_t)(sn_rng_u64(7, 1, (uint64_t)seg, 0, (uint64_t)t) % (uint64_t)alpha[ai]) * 1000003 - 5;
            for (int r = 0; r < nr; r++) {
                rl[r] = (int)(sn_rng_u64(7, 2, (uint64_t)seg, (uint64_t)r, 0) % 760);
                for (int t = 0; t < rl[r]; t++)
                    buf[1 + r][t] = (int32_t)(sn_rng_u64(7, 3, (uint64_t)seg, (uint64_t)r, (uint64_t)t) % (uint64_t)alpha[ai]) *
                                        1000003 - 5;
                refs[r] = buf[1 + r];
            }
            sn_bleu_stats_t s;
            sn_bleu_stats_init(&s);
            assert_int_equal(sn_bleu_add(&s, buf[0], hl, refs, rl, nr), 0);
            int64_t want[SN_BLEU_NSTATS] = {0};
            naive_counts(buf[0], hl, refs, rl, nr, want);
            for (int i = 0; i < 2 * SN_BLEU_MAX_N; i++)
                if (s.c[i] != want[i])
                    fail_msg("length %d alphabet %d: count %d is %lld, naive %lld", hl, alpha[ai], i, (long long)s.c[i],
                             (long long)want[i]);
            assert_int_equal(s.c[SN_BLEU_HYP_LEN], hl);
        }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    sn_bleu_stats_t s;
    sn_bleu_stats_init(&s);
    const int32_t  hyp[3] = {4, 5, 6}, ref[2] = {4, 5};
    const int32_t *refs[2] = {ref, NULL};
    int            rl[2]   = {2, 0};
    assert_int_equal(sn_bleu_add(&s, hyp, 3, refs, rl, 2), 0);  /* an empty reference is fine */
    sn_bleu_stats_t before = s;
    assert_int_equal(sn_bleu_add(&s, hyp, 3, refs, rl, 0), SN_EINVAL);
    assert_int_equal(sn_bleu_add(&s, hyp, -1, refs, rl, 1), SN_EINVAL);
    assert_int_equal(sn_bleu_add(&s, NULL, 3, refs, rl, 1), SN_EINVAL);
    rl[1] = 1;
    assert_int_equal(sn_bleu_add(&s, hyp, 3, refs, rl, 2), SN_EINVAL);  /* NULL reference of length 1 */
    rl[1] = -2;
    assert_int_equal(sn_bleu_add(&s, hyp, 3, refs, rl, 2), SN_EINVAL);
    assert_int_equal(sn_bleu_add(NULL, hyp, 3, refs, rl, 1), SN_EINVAL);
    assert_memory_equal(&before, &s, sizeof s);

    double b = 0.5;
    assert_int_equal(sn_bleu_score(&s, 0, &b), SN_EINVAL);
    assert_int_equal(sn_bleu_score(&s, 5, &b), SN_EINVAL);
    assert_int_equal(sn_bleu_score(&s, 4, NULL), SN_EINVAL);
    sn_bleu_stats_t bad = s;
    bad.c[SN_BLEU_MATCH + 1] = bad.c[SN_BLEU_TOTAL + 1] + 1;
    assert_int_equal(sn_bleu_score(&bad, 2, &b), SN_EINVAL);

    /* an empty corpus scores 0, like NLTK's corpus_bleu([], []) */
    sn_bleu_stats_init(&s);
    assert_int_equal(sn_bleu_score(&s, 4, &b), 0);
    assert_true(b == 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_nltk),
        cmocka_unit_test(test_merge_halves),
        cmocka_unit_test(test_baseline),
        cmocka_unit_test(test_long_vs_naive),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
