/* blas.c — the single BLAS entry point (OpenBLAS cblas_sgemm) and its naive reference. */
#include "daed/blas.h"

#include <cblas.h>

void dae_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
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
