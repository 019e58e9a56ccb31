/*
 * rng.h: a counter-based random number generator.
 *
 * Every random number is a pure function of a key (seed, purpose, step, index, element),
 * so dropout masks, initialisation and shuffles do not depend on the thread schedule
 * or on which rank holds a sample. The mixer is a SplitMix64-style finaliser chain
 * (bijective 64-bit avalanche), strong enough for masks and permutations.
 */
#ifndef SHARDNET_RNG_H
#define SHARDNET_RNG_H
#include <stdint.h>

/* Purposes keep independent streams apart. */
enum { SN_RNG_INIT = 1, SN_RNG_DROPOUT = 2, SN_RNG_SHUFFLE = 3, SN_RNG_AUGMENT = 4 };

static inline uint64_t sn_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A 64-bit random value keyed by five integers. */
static inline uint64_t sn_rng_u64(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b, uint64_t c)
{
    uint64_t h = sn_mix64(seed ^ sn_mix64(purpose));
    h = sn_mix64(h ^ a);
    h = sn_mix64(h ^ b);
    return sn_mix64(h ^ c);
}

/* Uniform float in [0, 1) with 24 random bits. */
static inline float sn_rng_uniform(uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b, uint64_t c)
{
    return (float)(sn_rng_u64(seed, purpose, a, b, c) >> 40) * (1.0f / 16777216.0f);
}

/* Fisher-Yates permutation of 0..n-1 keyed by (seed, purpose, a, b). */
void sn_rng_permutation(int64_t *perm, int64_t n, uint64_t seed, uint64_t purpose, uint64_t a, uint64_t b);

#endif
