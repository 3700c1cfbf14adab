/* optim.h — optimizers (Adam, AdamW, SGD with momentum), learning-rate schedules and
 * gradient-norm clipping for dae-train.
 *
 * The updates are PyTorch's (torch.optim 1.13, default flags), so a recipe tuned there
 * behaves the same here:
 *   Adam : g += wd*p; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *          p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   AdamW: p *= 1 - lr*wd; then Adam without the g += wd*p
 *   SGD  : g += wd*p; buf = mu buf + g; p -= lr buf        (buf starts at 0, no dampening)
 * dae_optim_step is one fused pass over the parameters; it also zeroes the gradient it
 * consumed, so the next backward can accumulate without a separate memset.
 * The state (m, v or buf, and the step count t) is plain arrays so checkpoints can save it.
 */
#ifndef DAED_OPTIM_H
#define DAED_OPTIM_H

#include <stddef.h>

#include "daed/core/error.h"

typedef enum { DAE_OPT_ADAM, DAE_OPT_ADAMW, DAE_OPT_SGD } dae_opt_kind;

typedef struct dae_optim_params {
    dae_opt_kind kind;
    float beta1, beta2, eps; /* Adam(W); defaults 0.9, 0.999, 1e-8 */
    float momentum;          /* SGD; default 0.9 */
    float weight_decay;      /* coupled L2 (Adam, SGD) or decoupled (AdamW); default 0 */
} dae_optim_params;

dae_optim_params dae_optim_default_params(void);
/* "adam" / "adamw" / "sgd"; -1 if unknown. */
int dae_opt_kind_from_name(const char *name);
const char *dae_opt_kind_name(dae_opt_kind k);

typedef struct dae_optim {
    dae_optim_params p;
    size_t n;     /* number of parameters */
    long long t;  /* steps taken */
    float *m;     /* (n) Adam first moment, or SGD momentum buffer; owned (one block with v) */
    float *v;     /* (n) Adam second moment; NULL for SGD */
} dae_optim;

/* State zeroed, t = 0. NULL + message on failure. */
dae_optim *dae_optim_create(const dae_optim_params *p, size_t n, dae_error *err);
void dae_optim_free(dae_optim *o);
/* Back to t = 0 with zero state (a collapse restart). */
void dae_optim_reset(dae_optim *o);

/* One update of params with grads at learning rate lr; grads are zeroed on return. */
void dae_optim_step(dae_optim *o, float *params, float *grads, float lr);

/* L2 norm of g over n values (accumulated in double). */
double dae_grad_norm(const float *g, size_t n);
/* If max_norm > 0 and the norm exceeds it, scale g to norm max_norm (as
 * torch.nn.utils.clip_grad_norm_, factor max_norm/(norm+1e-6)). Returns the norm before. */
double dae_grad_clip(float *g, size_t n, double max_norm);

/* ---- learning-rate schedules ---- */
typedef enum { DAE_SCHED_CONSTANT, DAE_SCHED_STEP, DAE_SCHED_COSINE } dae_sched_kind;

typedef struct dae_schedule {
    dae_sched_kind kind;
    double lr;               /* base learning rate */
    long long warmup_steps;  /* linear warm-up from lr/warmup to lr over these steps */
    long long step_size;     /* step: multiply by gamma every step_size steps (after warm-up) */
    double gamma;            /* step decay factor */
    long long total_steps;   /* cosine: steps until min_lr (after warm-up) */
    double min_lr;           /* cosine floor */
} dae_schedule;

/* "constant" / "step" / "cosine"; -1 if unknown. */
int dae_sched_kind_from_name(const char *name);
const char *dae_sched_kind_name(dae_sched_kind k);

/* Learning rate for 0-based step `step`. Warm-up: lr*(step+1)/warmup_steps while
 * step < warmup_steps; then, with s = step - warmup_steps:
 *   constant: lr;   step: lr * gamma^floor(s/step_size);
 *   cosine: min_lr + (lr-min_lr) * (1+cos(pi * min(s, T)/T))/2, T = total_steps-warmup_steps. */
double dae_schedule_lr(const dae_schedule *s, long long step);

#endif
