/* model_internal.h — what the model's sources of src/core share (private).
 *
 *   model.c      the layer chain: checks, shape inference, parameters and their init
 *   workspace.c  per-thread workspaces: the buffer plan, threads, precision
 *   model_run.c  forward / encode / decode / backward over a workspace
 */
#ifndef DAED_CORE_MODEL_INTERNAL_H
#define DAED_CORE_MODEL_INTERNAL_H

#include <stdint.h>

#include "daed/core/model.h"

/* Caps that keep every size product inside int (sgemm dimensions) and size_t. */
#define MAX_LAYERS 4096
#define MAX_CH 65536
#define MAX_K 64
#define MAX_STRIDE 64
#define MAX_FEATURES (1 << 26)
#define MAX_DIM (1 << 20)          /* any spatial dimension */
#define MAX_VALUES ((size_t)1 << 28) /* one sample's activation */
#define MAX_PARAMS ((size_t)1 << 30)
#define MAX_BATCH (1 << 20)
#define MAX_SHUFFLE 4              /* pixel_(un)shuffle factor */

struct dae_workspace {
    const dae_model *m;
    int max_batch, training;
    size_t max_in_values; /* per sample */
    float *col[DAE_MAX_THREADS]; /* im2col scratch of each thread, cap_col floats each */
    size_t cap_col;
    int threads;          /* dae_workspace_set_threads (default 1) */
    float *tgrad[DAE_MAX_THREADS]; /* training, thread t >= 1: its parameter gradients */
    dae_shape *shapes;    /* n_layers + 1: the shapes of the last pass */
    /* inference: ping-pong buffers and the latent copy */
    float *buf[2];
    size_t cap_buf;
    float *latent;
    size_t cap_latent;
    /* training: slot i = input of layer i (slot 0 the input copy, slot L the net output);
     * slots may share storage (flatten, in-place activations); own[i] is the owner slot */
    float **act;
    int *own;
    size_t *cap_act;      /* per slot: floats available at act[i] */
    float *grad[2];
    size_t cap_grad;
    float *res_out;       /* residual models: input - net(input) */
    /* additive skips: src[j] = layer j's output is added later (an add layer's source);
     * inference: skip[j] keeps a copy of it (the ping-pong buffers move on); training:
     * skip_grad[j] gathers the gradient the adds send back to it. NULL where not a source. */
    char *src;
    float **skip, **skip_grad;
    int fwd_B;            /* batch of the last full forward (0: none) */
    /* inference precision: wbf[i] layer i's weights packed for the bf16 taps kernel
     * (NULL: fp32), taken from the model's parameters by dae_workspace_set_precision */
    dae_precision prec;
    uint32_t **wbf;
    /* training precision: wat[i] / wad[i] layer i's AMX tiles of the forward and of the
     * input gradient (NULL: fp32), packed by dae_workspace_pack_bf16; a layer with tiles
     * also takes its weight gradient on AMX */
    uint16_t **wat, **wad;
};

static inline int n_layers(const dae_model *m)
{
    return m->n_enc + m->n_dec;
}

/* A shape within the caps above. */
static inline int shape_valid(dae_shape s)
{
    return s.c >= 1 && s.h >= 1 && s.w >= 1 && s.c <= MAX_FEATURES && s.h <= MAX_DIM &&
           s.w <= MAX_DIM && dae_shape_size(s) <= MAX_VALUES;
}

/* "encoder.i" or "decoder.j" of chain index i into buf. */
void dae_mdl_layer_label(int n_enc, int i, char *buf, size_t n);
/* The output shape of layer L for input `in` (name labels errors). */
int dae_mdl_layer_shape(const dae_layer *L, dae_shape in, dae_shape *out, const char *name,
                        dae_error *err);
/* Exact im2col scratch of layer L for B samples of shape `in` (training: of a bf16 step
 * too, dae_conv2d_train_col_size). */
size_t dae_mdl_layer_col_size(const dae_layer *L, dae_shape in, int B, int training);
/* The geometry of convolution layer L (conv2d or conv_transpose2d) on B samples of `in`. */
dae_conv_geom dae_mdl_conv_geom(const dae_layer *L, dae_shape in, int B);

#endif
