/* rng.c — xoshiro256** seeded through splitmix64 (Blackman & Vigna's published algorithms). */
#include "daed/core/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void dae_rng_seed(dae_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

uint64_t dae_rng_u64(dae_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float dae_rng_uniform(dae_rng *r)
{
    return (float)(dae_rng_u64(r) >> 40) * 0x1.0p-24f;
}

double dae_rng_uniform_d(dae_rng *r)
{
    return (double)(dae_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t dae_rng_below(dae_rng *r, uint64_t n)
{
    /* rejection of the short top interval keeps every residue equally likely */
    uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;
    uint64_t x;
    do
        x = dae_rng_u64(r);
    while (x > limit);
    return x % n;
}

float dae_rng_normal(dae_rng *r)
{
    /* 1 - u is in (0,1], so the log is finite */
    double u1 = 1.0 - dae_rng_uniform_d(r);
    double u2 = dae_rng_uniform_d(r);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

dae_rng dae_rng_split(dae_rng *r)
{
    dae_rng c;
    dae_rng_seed(&c, dae_rng_u64(r));
    return c;
}
