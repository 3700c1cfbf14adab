/* blas.h — the single matrix-multiply entry point of daed.
 *
 * Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T, with the usual leading
 * dimensions. dae_sgemm calls OpenBLAS's cblas_sgemm, except for the linear layers' forward
 * shape (op(A) = A, op(B) = B^T) with few rows m, where a kernel of its own that does not copy
 * B is faster (dae_sgemm_small_ok says when); dae_sgemm_naive is the plain triple loop that
 * the tests compare both against. Nothing else in daed calls BLAS directly.
 */
#ifndef DAED_BLAS_H
#define DAED_BLAS_H

void dae_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* Largest m the small kernel takes. Measured on the MLP layer shapes (784x384 ... 768x784),
 * one thread, SkylakeX: 3.5x OpenBLAS's speed at m = 2, 2.5x at 4, 1.7x at 8, 1.2x at 12, even
 * at 16 (OpenBLAS's packing pays off from there). */
#define DAE_SGEMM_SMALL_M 12
/* Would dae_sgemm use its own small-m kernel for this call (1) or OpenBLAS (0)? */
int dae_sgemm_small_ok(int trans_a, int trans_b, int m, int n, int k);

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
