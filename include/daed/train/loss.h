/* loss.h — training objectives of dae-train: reconstruction losses and code regularizers.
 *
 * Every function returns the value of its term and writes (or adds, where said) the
 * gradient of that value with respect to its input. Scaling follows PyTorch:
 *   - reconstruction losses are the mean over all B*D output values (nn.MSELoss,
 *     nn.BCELoss with reduction "mean"), so their gradient is d/d(out) of that mean;
 *   - code penalties are lambda times the mean over the B samples of a per-sample norm.
 *
 * Contractive penalty (Rifai et al. 2011), for an encoder that is exactly one dense layer
 * followed by sigmoid or tanh, h = act(W x + b), W (H, I):
 *     ||dh/dx||_F^2 = sum_j act'(a_j)^2 * S_j,   S_j = sum_i W_ji^2,
 * with d_j = act'(a_j) = h_j(1-h_j) for sigmoid and 1-h_j^2 for tanh. With g_j = d_j^2,
 *     dP/da_j = g'_j S_j,   dP/dW_ji = dP/da_j x_i + 2 g_j W_ji,   dP/db_j = dP/da_j,
 * where g' = dg/da = 2 d^2 (1-2h) for sigmoid and -4 h d^2 for tanh. The "x_i" part is what any gradient at the code h becomes after the encoder's
 * own backward (dP/dh_j = dP/da_j / d_j), so dae_contractive_penalty() hands that part to
 * the model backward as a code gradient (no extra matrix product) and adds only the direct
 * 2 g_j W_ji term to the weight gradient itself. Extra cost per batch: O(H*I) for S_j and
 * the direct term, plus O(B*H) for the code gradient — independent of the batch size in
 * its dominant term, and far below the O(B*H*I) of the layer's own forward/backward.
 */
#ifndef DAED_LOSS_H
#define DAED_LOSS_H

#include <stddef.h>

#include "daed/core/error.h"
#include "daed/core/layers.h"

typedef enum { DAE_LOSS_MSE, DAE_LOSS_BCE } dae_loss_kind;

/* Clamp of BCE's probabilities to [eps, 1-eps] (float: 1-1e-6 is still < 1). */
#define DAE_BCE_EPS 1e-6f

/* mean((out-target)^2) over n values; dout (may be NULL) = 2 (out-target) / n. */
double dae_loss_mse(float *dout, const float *out, const float *target, size_t n);

/* Binary cross-entropy of probabilities `out` (a sigmoid's output) against targets in
 * [0,1]: mean(-(t log p + (1-t) log(1-p))) with p clamped to [DAE_BCE_EPS, 1-DAE_BCE_EPS];
 * dout (may be NULL) = (p - t) / (p (1-p) n) at the clamped p. */
double dae_loss_bce(float *dout, const float *out, const float *target, size_t n);

/* One of the two by kind. */
double dae_loss_eval(dae_loss_kind kind, float *dout, const float *out, const float *target,
                     size_t n);

/* lambda * (1/B) * sum |z| over the B codes of `dim` values each; *adds*
 * lambda/B * sign(z) into dz (sign(0) = 0). */
double dae_sparse_l1(float *dz, const float *z, int B, size_t dim, float lambda);

/* Which encoder layer the contractive penalty differentiates (dae_contractive_check in
 * trainer.h fills it from a model). */
typedef struct dae_contractive {
    int layer;    /* index of the encoder's linear layer in m->layers */
    dae_act act;  /* DAE_ACT_SIGMOID or DAE_ACT_TANH */
    int in_f, hidden;
} dae_contractive;

/* The raw penalty on arrays: h (B, H) the code, w (H, I) the weight. Returns
 * lambda * (1/B) * sum_b ||dh_b/dx_b||_F^2. Adds the code gradient (see above) into dh
 * (may be NULL) and the direct weight term into dw (may be NULL). `wsq` is scratch of H
 * floats (receives S_j). */
double dae_contractive_penalty(float *dh, float *dw, const float *h, const float *w,
                               float *wsq, int B, int in_f, int hidden, dae_act act,
                               float lambda);

#endif
