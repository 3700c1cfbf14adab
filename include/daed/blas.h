/* blas.h — the single matrix-multiply entry point of daed.
 *
 * Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T, with the usual leading
 * dimensions. dae_sgemm calls OpenBLAS's cblas_sgemm; dae_sgemm_naive is the plain triple
 * loop that the tests compare it against. Nothing else in daed calls BLAS directly.
 */
#ifndef DAED_BLAS_H
#define DAED_BLAS_H

void dae_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc);

void dae_sgemm_naive(int trans_a, int trans_b, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta, float *c,
                     int ldc);

/* OpenBLAS threads for this process. The server sets 1 (its workers are the parallelism);
 * the trainer may use every core. */
void dae_blas_set_threads(int n);
int dae_blas_get_threads(void);
/* OpenBLAS build description, for start-up logs. */
const char *dae_blas_config(void);

#endif
