/* model.h — an autoencoder: encoder layers, then decoder layers, with the latent code at the
 * boundary; its parameters in one allocation; per-thread workspaces for running it.
 *
 * A dae_model is immutable after dae_model_create() + loading/initialising its parameters,
 * and may be shared by any number of threads, each with its own dae_workspace ("thread-safe
 * as long as the same workspace is not used by two threads"). The forward pass never
 * allocates: the workspace is sized once for a maximum batch and input size.
 *
 * Parameters live in m->params (n_params floats). Layer i's weight is params[w_off ..
 * w_off+n_w) in PyTorch layout, its bias params[b_off .. b_off+n_b). A gradient buffer for
 * training is simply another array of n_params floats with the same offsets. Parameter
 * names follow PyTorch nn.Sequential state_dict keys: "encoder.<i>.weight",
 * "decoder.<i>.bias", where <i> is the layer's index in its own list (activations count).
 *
 * Additive skips: an "add" layer adds the output of an earlier layer (ResNet blocks, and
 * U-Net skips from the encoder into the decoder). A decoder with a skip from the encoder
 * cannot run on its own (dae_model_decode refuses it); encode and forward can.
 *
 * Shapes: images are (C,H,W) per sample, NCHW in memory; a vector of n features is
 * (n,1,1). A model with no linear/flatten/unflatten layers is fully convolutional: it
 * accepts any H and W that are multiples of size_div (and at least size_div).
 */
#ifndef DAED_MODEL_H
#define DAED_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "daed/core/error.h"
#include "daed/core/layers.h"

typedef struct dae_shape {
    int c, h, w;
} dae_shape;

/* The number of values of one image of shape s (c * h * w). */
static inline size_t dae_shape_size(dae_shape s)
{
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

/* 1 when a and b are the same shape, else 0. */
static inline int dae_shape_eq(dae_shape a, dae_shape b)
{
    return a.c == b.c && a.h == b.h && a.w == b.w;
}

/* Index i of a line of n samples mirrored at the ends without repeating the edge
 * (OpenCV's BORDER_REFLECT_101: -1 -> 1, n -> n - 2); any i, n >= 1. */
static inline int dae_reflect101(int i, int n)
{
    if (n == 1)
        return 0;
    int p = 2 * (n - 1);
    i %= p;
    if (i < 0)
        i += p;
    return i < n ? i : p - i;
}

typedef enum {
    DAE_LAYER_LINEAR,     /* in_f -> out_f; input is flattened (c*h*w == in_f) */
    DAE_LAYER_CONV2D,     /* in_ch -> out_ch, kernel k, stride, pad */
    DAE_LAYER_CONV_T2D,   /* transposed: in_ch -> out_ch, kernel k, stride, pad, out_pad */
    DAE_LAYER_ACT,        /* act (+ slope for leaky_relu) */
    DAE_LAYER_UPSAMPLE,   /* 2x, nearest or bilinear (align_corners=False) */
    DAE_LAYER_FLATTEN,    /* (c,h,w) -> (c*h*w,1,1) */
    DAE_LAYER_UNFLATTEN,  /* (c*h*w,1,1) -> unflat */
    DAE_LAYER_PIXEL_UNSHUFFLE, /* (c,h,w) -> (c*r*r,h/r,w/r), r = factor (2..4) */
    DAE_LAYER_PIXEL_SHUFFLE,   /* (c,h,w) -> (c/(r*r),h*r,w*r), r = factor (2..4) */
    DAE_LAYER_ADD              /* input + the output of earlier layer `from` (same shape) */
} dae_layer_kind;

typedef struct dae_layer {
    dae_layer_kind kind;
    int in_f, out_f;                         /* linear */
    int in_ch, out_ch, k, stride, pad, out_pad; /* conv2d, conv_t2d */
    dae_act act;                             /* act */
    float slope;                             /* leaky_relu negative slope */
    int bilinear;                            /* upsample: 0 nearest, 1 bilinear */
    dae_shape unflat;                        /* unflatten target */
    int factor;                              /* pixel_(un)shuffle: r */
    int from;                                /* add: index of the layer whose output is
                                                added, counting encoder then decoder layers
                                                from 0; below this layer's index */
    /* filled by dae_model_create: */
    size_t w_off, n_w, b_off, n_b;           /* parameter slices (n_w == 0: none) */
} dae_layer;

typedef struct dae_model {
    int n_enc, n_dec;       /* layers[0..n_enc) encoder, layers[n_enc..n_enc+n_dec) decoder */
    dae_layer *layers;      /* owned */
    dae_shape in_shape;     /* nominal input shape */
    dae_shape latent_shape; /* at the nominal input */
    dae_shape out_shape;    /* at the nominal input */
    int residual;           /* output = input - decoder(encoder(input)) (noise predictor);
                               with noise_map: input[:, :C] - decoder(encoder(input)) */
    int noise_map;          /* the input has one channel more than the image: channel C
                               (last) is the noise-level map (see dae_model_noise_input) */
    int fully_conv;         /* accepts any H,W multiple of size_div */
    int size_div;
    float *params;          /* n_params floats; owned unless params_external */
    size_t n_params;
    int params_external;    /* params point into memory another owner frees (a model file's
                               buffer, dae_modelfile.buf); dae_model_free leaves them */
} dae_model;

/* Model flags (dae_model_create's `flags`; 0 and 1 are "plain" and "residual"). */
#define DAE_MODEL_RESIDUAL 1  /* output = input - net(input) */
#define DAE_MODEL_NOISE_MAP 2 /* the input carries a noise-level map as its last channel:
                                 in_shape.c = C + 1 (C >= 1 image channels) and the output
                                 has C channels */

/* The noise-level map's value for "level unknown: denoise blind". A known level sigma on
 * the 0-255 scale is sigma/255. */
#define DAE_NOISE_BLIND (-1.0f)

/* Build a model from layer descriptions (copied; offsets are computed here) and check
 * that every layer fits the shape it receives from the nominal input. flags: a mask of
 * DAE_MODEL_* (0 or 1 as before: residual off or on). Parameters are zeroed. Returns NULL
 * with a message naming the bad layer on failure. */
dae_model *dae_model_create(const dae_layer *enc, int n_enc, const dae_layer *dec, int n_dec,
                            dae_shape in_shape, int flags, dae_error *err);
/* dae_model_create without the parameter array: params is NULL and n_params says how many
 * floats it needs. The caller points params at memory it owns (params_external = 1), as a
 * model file does with its mapping, or mallocs it (freed by dae_model_free). Saves zeroing
 * (and, on a fresh heap, faulting in) memory that would only be thrown away. */
dae_model *dae_model_create_shell(const dae_layer *enc, int n_enc, const dae_layer *dec,
                                  int n_dec, dae_shape in_shape, int flags, dae_error *err);
void dae_model_free(dae_model *m);

/* One line describing layer l for people ("conv2d 1 -> 32, k3 s1 p1", "leaky_relu 0.2"). */
void dae_layer_describe(const dae_layer *l, char *buf, size_t n);

/* The image channels C of the model's input: in_shape.c, less the noise-level map. */
int dae_model_image_channels(const dae_model *m);
/* The flags that rebuild m (DAE_MODEL_RESIDUAL | DAE_MODEL_NOISE_MAP as set). */
int dae_model_flags(const dae_model *m);

/* The input of a noise-map model: out (B,C+1,H,W) gets the image planes img (B,C,H,W)
 * as channels [0,C) and `level` in every pixel of channel C: sigma/255 for a known noise
 * level sigma on the 0-255 scale, or DAE_NOISE_BLIND. out and img must not overlap. */
void dae_model_noise_input(float *out, const float *img, int B, int C, int H, int W,
                           float level);
/* Only the map: channel C of each of the B samples of x (B,C+1,H,W) set to `level` (for
 * callers that wrote the image planes in place). */
void dae_model_noise_fill(float *x, int B, int C, int H, int W, float level);
/* The map value for a noise level sigma on the 0-255 scale (sigma < 0: DAE_NOISE_BLIND). */
float dae_noise_level(double sigma255);

/* PyTorch's default initialisation (kaiming_uniform a=sqrt(5) for weights, U(+-1/sqrt(fan_in))
 * for biases), from a deterministic generator seeded by `seed`. */
void dae_model_init_params(dae_model *m, uint64_t seed);
/* Initialisation schemes of dae_model_init_scheme: PyTorch's default (above), or He
 * (kaiming_uniform for ReLU: weights U(+-sqrt(6/fan_in)), variance 2/fan_in, biases 0),
 * which keeps the activations' scale through a deep ReLU stack where PyTorch's default
 * divides their variance by about 6 per layer (a 15-layer stack starts with outputs and
 * gradients ~1e-12 of its input's and does not learn: docs/photos.md). */
typedef enum { DAE_INIT_PYTORCH = 0, DAE_INIT_HE = 1 } dae_init_scheme;
void dae_model_init_scheme(dae_model *m, uint64_t seed, dae_init_scheme scheme);

/* Shape after layers [from, to) for a sample of shape `in`; DAE_ESHAPE with a message
 * naming the layer when the shape does not fit. */
int dae_model_shape_through(const dae_model *m, dae_shape in, int from, int to, dae_shape *out,
                            dae_error *err);
/* Accepts `in` as model input? (exact nominal shape, or for fully convolutional models any
 * H,W multiple of size_div with the right channel count). Message names what is expected. */
int dae_model_check_input(const dae_model *m, dae_shape in, dae_error *err);

/* "encoder.3.weight" style name of layer i's weight (bias=0) or bias (bias=1). */
void dae_model_param_name(const dae_model *m, int i, int bias, char *buf, size_t n);
/* PyTorch shape of that parameter; returns the number of dims (0 if the layer has none). */
int dae_model_param_shape(const dae_model *m, int i, int bias, int64_t dims[4]);

/* Floating-point operations of one forward pass of one sample of shape `in`
 * (2 per multiply-add, elementwise ops not counted). */
double dae_model_flops(const dae_model *m, dae_shape in);

/* ---- per-thread workspace ---- */
typedef struct dae_workspace dae_workspace;

/* Room for `max_batch` samples of up to max_in.c * max_in.h * max_in.w input values.
 * training != 0 keeps every layer's activation so dae_model_backward can run. */
dae_workspace *dae_workspace_create(const dae_model *m, int max_batch, dae_shape max_in,
                                    int training, dae_error *err);
void dae_workspace_free(dae_workspace *ws);
/* Bytes an inference workspace (training 0) for max_batch samples of up to max_in would
 * allocate (0 if the arguments are invalid): servers size their batches with it. */
size_t dae_workspace_bytes(const dae_model *m, int max_batch, dae_shape max_in);

/* Threads this workspace's passes use (1..DAE_MAX_THREADS; default 1, which starts none).
 * With T > 1 a pass over B >= T samples splits the batch into T contiguous runs, one per
 * thread (the backward sums the threads' parameter gradients); a pass over fewer samples
 * splits each conv2d's output rows instead. Each thread calls BLAS itself, so run OpenBLAS
 * single-threaded (dae_blas_set_threads(1)) alongside. Allocates T-1 more im2col scratch
 * buffers (and, for training, T-1 gradient buffers of n_params floats); DAE_ENOMEM leaves
 * the workspace as it was. */
int dae_workspace_set_threads(dae_workspace *ws, int threads, dae_error *err);
int dae_workspace_threads(const dae_workspace *ws);

/* Precision. Inference: DAE_PREC_BF16 runs the convolutions that take the taps kernel
 * (3x3 padding 1: stride 2, stride-1 on images too small for conv3, stride-2 transposed)
 * on AVX512-BF16, and those conv3 takes on AMX tiles where the CPU has them: inputs and
 * weights rounded to bf16, sums in fp32, results within bf16's precision of fp32 (README,
 * daed --precision: measured quality); every other layer stays fp32. On a CPU without
 * AVX512-BF16 the workspace stays fp32 (dae_workspace_precision tells).
 * Training (mixed precision): DAE_PREC_BF16 runs the forward, input and weight gradients
 * of the 3x3 stride-1 'same' convolutions of 8 or more channels in and out on AMX tiles
 * (layers.h dae_conv2d_amx_train); master weights, the other layers, losses and the
 * optimizer stay fp32. On a CPU without AMX the workspace stays fp32.
 * The first switch to bf16 packs the model's weights into the workspace; after the
 * parameters change (an optimizer step) dae_workspace_pack_bf16 packs them again, else
 * the workspace keeps computing with the old ones. Default DAE_PREC_FP32; switching back
 * and forth keeps the packed copies. */
typedef enum { DAE_PREC_FP32 = 0, DAE_PREC_BF16 = 1 } dae_precision;
int dae_workspace_set_precision(dae_workspace *ws, dae_precision prec, dae_error *err);
dae_precision dae_workspace_precision(const dae_workspace *ws);
void dae_workspace_pack_bf16(dae_workspace *ws);
/* Training workspaces: the layers that have AMX tiles (0 before a switch to bf16, and
 * without AMX); *total (may be NULL) receives the number of convolution layers. */
int dae_workspace_amx_layers(const dae_workspace *ws, int *total);

/* Forward B samples (B, in_shape.c, in_shape.h, in_shape.w) through the whole model. *out points into the
 * workspace and stays valid until the next call on it. */
int dae_model_forward(const dae_model *m, dae_workspace *ws, const float *in, int B,
                      dae_shape in_shape, const float **out, dae_shape *out_shape,
                      dae_error *err);
/* Encoder only: *z is (B, latent) with z_shape its per-sample shape. */
int dae_model_encode(const dae_model *m, dae_workspace *ws, const float *in, int B,
                     dae_shape in_shape, const float **z, dae_shape *z_shape,
                     dae_error *err);
/* Decoder only, from codes of per-sample shape z_shape. */
int dae_model_decode(const dae_model *m, dae_workspace *ws, const float *z, int B,
                     dae_shape z_shape, const float **out, dae_shape *out_shape,
                     dae_error *err);

/* After a dae_model_forward in a training workspace: the latent code (B, latent) of that
 * pass. The trainer reads it for sparse/contractive penalties. */
const float *dae_workspace_latent(const dae_workspace *ws);

/* Backward through the last forward of this (training) workspace. dout is the gradient of
 * the loss w.r.t. the output (B, out); dlatent (may be NULL) is an extra gradient added at
 * the latent code (regularizers). Adds parameter gradients into grads (n_params floats,
 * same offsets as params); writes the input gradient into din if not NULL. */
int dae_model_backward(const dae_model *m, dae_workspace *ws, const float *dout,
                       const float *dlatent, float *grads, float *din, dae_error *err);

#endif
