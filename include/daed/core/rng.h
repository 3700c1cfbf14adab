/* rng.h — a small, fast, seedable random generator (xoshiro256**, seeded by splitmix64).
 *
 * Deterministic across platforms for a given seed; one dae_rng per thread or per stream
 * (it is plain state, no locking). Used for parameter initialisation, shuffling and the
 * trainer's corruptions.
 */
#ifndef DAED_RNG_H
#define DAED_RNG_H

#include <stdint.h>

typedef struct dae_rng {
    uint64_t s[4];
} dae_rng;

void dae_rng_seed(dae_rng *r, uint64_t seed);
uint64_t dae_rng_u64(dae_rng *r);
/* Uniform in [0,1) with 24 random bits (float) / 53 bits (double). */
float dae_rng_uniform(dae_rng *r);
double dae_rng_uniform_d(dae_rng *r);
/* Uniform integer in [0, n), unbiased; n > 0. */
uint64_t dae_rng_below(dae_rng *r, uint64_t n);
/* Standard normal (Box-Muller with the spare kept in no state: two calls = two draws). */
float dae_rng_normal(dae_rng *r);
/* An independent stream derived from r (for per-thread or per-sample generators). */
dae_rng dae_rng_split(dae_rng *r);

#endif
