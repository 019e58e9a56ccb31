/* rng.c: keyed permutations built on the counter-based mixer of rng.h. */
#include "shardnet/rng.h"

void sn_rng_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b)
{
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        /* Lemire's multiply-shift maps 64 random bits onto [0, i]; the bias is < 2^-30. */
        uint64_t r = sn_rng_u64(seed, purpose, a, b, (uint64_t)i);
        int64_t j = (int64_t)(((unsigned __int128)r * (uint64_t)(i + 1)) >> 64);
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
