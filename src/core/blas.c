/* blas.c — the single BLAS entry point (OpenBLAS cblas_sgemm, a small-batch kernel for the
 * linear layers' shape) and its naive reference. */
#include "daed/core/blas.h"

#include <cblas.h>
#include <stdatomic.h>
#include <string.h>

/* ---- small-m kernel: C(m,n) = alpha * A(m,k) * B(n,k)^T + beta * C, m <= DAE_SGEMM_SMALL_M
 *
 * The linear layers' forward (inputs times weights^T) at the batch sizes a server sees.
 * OpenBLAS 0.3.21 packs all of B (the weights) on every call, whatever m is: at m = 1..16 the
 * packing costs as much as the product (perf on daed's /v1/score: sgemm_incopy 26 % of the
 * server's CPU, the multiply 12 %). Here each block of 4 weight rows is read from memory
 * once and stays in L1 while every input row is multiplied with it: no copy at all. */

#if defined(__x86_64__) && defined(__GNUC__)
#define SMALL_KERNEL 1
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,fma")))

AVX2 static inline float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline void store(float *c, float dot, float alpha, float beta)
{
    /* beta == 0 ignores C (it may hold NaN), as BLAS does */
    *c = alpha * dot + (beta == 0.0f ? 0.0f : beta * *c);
}

/* Rows i0, i0+1 (two = 0: only i0) of A against rows j..j+3 of B. */
AVX2 static void block_2x4(int two, int k, float alpha,
                                                         const float *a0, const float *a1,
                                                         const float *b, int ldb, float beta,
                                                         float *c0, float *c1)
{
    const float *b0 = b, *b1 = b + ldb, *b2 = b + 2 * (size_t)ldb, *b3 = b + 3 * (size_t)ldb;
    __m256 z = _mm256_setzero_ps();
    __m256 s00 = z, s01 = z, s02 = z, s03 = z, s10 = z, s11 = z, s12 = z, s13 = z;
    int p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 w0 = _mm256_loadu_ps(b0 + p), w1 = _mm256_loadu_ps(b1 + p);
        __m256 w2 = _mm256_loadu_ps(b2 + p), w3 = _mm256_loadu_ps(b3 + p);
        __m256 x = _mm256_loadu_ps(a0 + p);
        s00 = _mm256_fmadd_ps(x, w0, s00);
        s01 = _mm256_fmadd_ps(x, w1, s01);
        s02 = _mm256_fmadd_ps(x, w2, s02);
        s03 = _mm256_fmadd_ps(x, w3, s03);
        if (two) {
            __m256 y = _mm256_loadu_ps(a1 + p);
            s10 = _mm256_fmadd_ps(y, w0, s10);
            s11 = _mm256_fmadd_ps(y, w1, s11);
            s12 = _mm256_fmadd_ps(y, w2, s12);
            s13 = _mm256_fmadd_ps(y, w3, s13);
        }
    }
    float d[2][4] = {{hsum(s00), hsum(s01), hsum(s02), hsum(s03)},
                     {hsum(s10), hsum(s11), hsum(s12), hsum(s13)}};
    for (; p < k; p++) {
        d[0][0] += a0[p] * b0[p];
        d[0][1] += a0[p] * b1[p];
        d[0][2] += a0[p] * b2[p];
        d[0][3] += a0[p] * b3[p];
        if (two) {
            d[1][0] += a1[p] * b0[p];
            d[1][1] += a1[p] * b1[p];
            d[1][2] += a1[p] * b2[p];
            d[1][3] += a1[p] * b3[p];
        }
    }
    for (int j = 0; j < 4; j++) {
        store(c0 + j, d[0][j], alpha, beta);
        if (two)
            store(c1 + j, d[1][j], alpha, beta);
    }
}

/* Row i of A against one row of B. */
AVX2 static float dot1(int k, const float *a, const float *b)
{
    __m256 s = _mm256_setzero_ps();
    int p = 0;
    for (; p + 8 <= k; p += 8)
        s = _mm256_fmadd_ps(_mm256_loadu_ps(a + p), _mm256_loadu_ps(b + p), s);
    float d = hsum(s);
    for (; p < k; p++)
        d += a[p] * b[p];
    return d;
}

static void sgemm_nt_small(int m, int n, int k, float alpha, const float *a, int lda,
                           const float *b, int ldb, float beta, float *c, int ldc)
{
    int j = 0;
    for (; j + 4 <= n; j += 4) {
        const float *bj = b + (size_t)j * ldb;
        for (int i = 0; i < m; i += 2) {
            int two = i + 1 < m;
            block_2x4(two, k, alpha, a + (size_t)i * lda, a + (size_t)(i + two) * lda, bj, ldb,
                      beta, c + (size_t)i * ldc + j, c + (size_t)(i + two) * ldc + j);
        }
    }
    for (; j < n; j++)
        for (int i = 0; i < m; i++)
            store(c + (size_t)i * ldc + j, dot1(k, a + (size_t)i * lda, b + (size_t)j * ldb),
                  alpha, beta);
}

static int have_avx2_fma(void)
{
    /* Racing first calls compute the same answer; atomic so that the race is defined. */
    static atomic_int have = -1;
    int h = atomic_load_explicit(&have, memory_order_relaxed);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        atomic_store_explicit(&have, h, memory_order_relaxed);
    }
    return h;
}
#else
#define SMALL_KERNEL 0
#endif

int dae_sgemm_small_ok(int trans_a, int trans_b, int m, int n, int k)
{
#if SMALL_KERNEL
    return !trans_a && trans_b && m >= 1 && m <= DAE_SGEMM_SMALL_M && n >= 1 && k >= 1 &&
           have_avx2_fma();
#else
    (void)trans_a, (void)trans_b, (void)m, (void)n, (void)k;
    return 0;
#endif
}

void dae_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
#if SMALL_KERNEL
    if (dae_sgemm_small_ok(trans_a, trans_b, m, n, k)) {
        sgemm_nt_small(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta, c,
                ldc);
}

void dae_sgemm_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c,
                     int ldc)
{
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double acc = 0.0;
            for (int p = 0; p < k; p++) {
                float av = trans_a ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p];
                float bv = trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                acc += (double)av * bv;
            }
            float *cij = &c[(size_t)i * ldc + j];
            /* beta == 0 ignores C (it may hold NaN), as BLAS does */
            *cij = (float)(alpha * acc + (beta == 0.0f ? 0.0 : (double)beta * *cij));
        }
    }
}

void dae_blas_set_threads(int n)
{
    openblas_set_num_threads(n < 1 ? 1 : n);
}

int dae_blas_get_threads(void)
{
    return openblas_get_num_threads();
}

const char *dae_blas_config(void)
{
    return openblas_get_config();
}
