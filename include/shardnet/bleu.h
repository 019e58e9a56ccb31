/*
 * bleu.h: corpus BLEU over token-id sequences, equal to NLTK 3.8's
 * nltk.translate.bleu_score.corpus_bleu (no smoothing, uniform weights 1/N).
 *
 * Hypotheses and references are int32 token ids as the vocabulary produces them, with
 * <start>/<end>/<pad> already stripped by the caller. Each segment (one image) adds its
 * counts to an sn_bleu_stats_t; the score is a function of the summed counts only, so
 * ranks that each scored a part of a split allreduce the counts and score the sum:
 *
 *     MPI_Allreduce(MPI_IN_PLACE, stats.c, SN_BLEU_NSTATS, MPI_INT64_T, MPI_SUM, comm);
 *
 * Counts, per segment (as NLTK's modified_precision and closest_ref_length):
 *   match[n]  sum over distinct hypothesis n-grams g of min(count_hyp(g), max over the
 *             references of count_ref(g)) (clipped matches)
 *   total[n]  max(1, hyp_len - n + 1): NLTK counts at least 1 even when the hypothesis
 *             has no n-gram of that order (also for an empty hypothesis)
 *   hyp_len   the hypothesis length
 *   ref_len   the reference length closest to hyp_len, the shorter one on a tie
 *
 * Score (BLEU-N, N = 1..4, weights 1/N):
 *   c = hyp_len, r = ref_len; BP = 1 if c > r, 0 if c == 0, else exp(1 - r/c)
 *   BLEU = 0 if match[1] == 0 (NLTK returns 0 before looking at higher orders)
 *   otherwise BLEU = BP * exp(fsum_n (1/N) * log(p_n)), p_n = match[n] / total[n], where
 *   a p_n with match[n] == 0 is replaced by DBL_MIN (NLTK 3.8's SmoothingFunction.method0
 *   warns and substitutes sys.float_info.min). Such a score is not 0 but tiny: for BLEU-4
 *   with no 4-gram match it is at most DBL_MIN^(1/4) ~ 1.2e-77, which prints as 0.00.
 */
#ifndef SHARDNET_BLEU_H
#define SHARDNET_BLEU_H
#include <stdint.h>

#define SN_BLEU_MAX_N 4

/* Layout of sn_bleu_stats_t.c: a fixed-length int64 array, summed element-wise. */
enum {
    SN_BLEU_MATCH   = 0,  /* c[SN_BLEU_MATCH + n - 1]: clipped n-gram matches, n = 1..4 */
    SN_BLEU_TOTAL   = 4,  /* c[SN_BLEU_TOTAL + n - 1]: hypothesis n-grams (>= 1 a segment) */
    SN_BLEU_HYP_LEN = 8,  /* summed hypothesis lengths */
    SN_BLEU_REF_LEN = 9,  /* summed closest reference lengths */
    SN_BLEU_NSTATS  = 10,
};

typedef struct sn_bleu_stats {
    int64_t c[SN_BLEU_NSTATS];
} sn_bleu_stats_t;

/* Zeroes the counts (an empty corpus). */
void sn_bleu_stats_init(sn_bleu_stats_t *s);

/* Adds one segment: hypothesis hyp[0..hyp_len) (hyp_len may be 0) against n_refs >= 1
 * references refs[r][0..ref_lens[r]). Returns 0, SN_EINVAL for bad arguments (s is then
 * unchanged) or SN_ENOMEM. Hypotheses up to 128 tokens need no allocation; longer ones
 * allocate one hash table for the call. */
int sn_bleu_add(sn_bleu_stats_t *s, const int32_t *hyp, int hyp_len, const int32_t *const *refs,
                const int *ref_lens, int n_refs);

/* dst += src (what an MPI_SUM allreduce of the counts does). */
void sn_bleu_merge(sn_bleu_stats_t *dst, const sn_bleu_stats_t *src);

/* Corpus BLEU-max_n (max_n = 1..4) of the counts into *bleu (a fraction in [0, 1], not a
 * percentage). Returns 0, or SN_EINVAL for a bad max_n or inconsistent counts. */
int sn_bleu_score(const sn_bleu_stats_t *s, int max_n, double *bleu);

#endif
