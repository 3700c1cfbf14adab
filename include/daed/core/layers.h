/* layers.h — the numeric kernels of daed: one forward/backward pair per layer kind.
 *
 * Conventions (as in llm.c): tensors are float32, batch first, images NCHW, contiguous.
 * Arguments are outputs first, then inputs and weights, then scratch, then dimensions.
 * Backward passes *add* into the parameter gradients (dw, db) so a caller can accumulate;
 * they *overwrite* the input gradient din. Any gradient pointer may be NULL to skip it.
 * Weight layouts are PyTorch's: Linear (out, in), Conv2d (out, in, kh, kw),
 * ConvTranspose2d (in, out, kh, kw). Square kernels, equal stride and padding in H and W.
 *
 * The convolutions take their dimensions as one dae_conv_geom passed by const pointer.
 *
 * Scratch `col` buffers (im2col) must hold dae_conv2d_col_size() / dae_conv_t2d_col_size()
 * floats for the batch B passed to the kernel (small images are processed several per
 * sgemm, about DAE_CONV_GROUP_COLS output pixels at a time; large ones one by one); the
 * model workspace sizes them once so the hot path never allocates.
 */
#ifndef DAED_LAYERS_H
#define DAED_LAYERS_H

#include <stddef.h>
#include <stdint.h>

/* Output pixels per sgemm the convolutions aim for when grouping small images. The scratch
 * of a batch of B images with P output (conv) / input (transposed) pixels each is at most
 * (C*k*k + channels) * max(min(B*P, DAE_CONV_GROUP_COLS), P) floats. */
#define DAE_CONV_GROUP_COLS 1024

/* Output pixels per band when a large image is convolved alone (its band's col matrix,
 * C*k*k rows, stays in the L2 cache). */
#define DAE_CONV_BAND_COLS 512

/* Most threads a kernel or workspace splits its work over. */
#define DAE_MAX_THREADS 16

typedef enum {
    DAE_ACT_IDENTITY,
    DAE_ACT_RELU,
    DAE_ACT_LEAKY_RELU,
    DAE_ACT_TANH,
    DAE_ACT_SIGMOID
} dae_act;

/* ---- dense: out(B,O) = in(B,I) W^T + b; one sgemm per batch ---- */
void dae_linear_forward(float *out, const float *in, const float *w, const float *b, int B,
                        int in_f, int out_f);
void dae_linear_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, int B, int in_f, int out_f);

/* The dimensions of a convolution: B images of C channels of H x W in, OC channels out,
 * a k x k kernel, stride s, padding p, output padding op (transposed convolutions only; 0
 * for conv2d). */
typedef struct dae_conv_geom {
    int B, C, H, W; /* input (B, C, H, W) */
    int OC;         /* output channels */
    int k, s, p;    /* kernel side, stride, padding (equal in H and W) */
    int op;         /* conv_transpose2d's output padding */
} dae_conv_geom;

/* ---- conv2d: in (B,C,H,W) -> out (B,OC,OH,OW), OH = (H + 2p - k)/s + 1 ---- */
size_t dae_conv2d_col_size(const dae_conv_geom *g);
void dae_conv2d_forward(float *out, const float *in, const float *w, const float *b,
                        float *col, const dae_conv_geom *g);
/* The same followed by the activation `act` (slope: leaky_relu), applied to each output
 * block right after its bias while it is in cache, on `threads` threads (1..
 * DAE_MAX_THREADS): contiguous runs of images when B >= threads, else bands of output rows.
 * cols[t] is thread t's scratch of dae_conv2d_col_size(g) floats. Large images are
 * computed in bands of about DAE_CONV_BAND_COLS output pixels, so the forward touches only
 * C*k*k*(DAE_CONV_BAND_COLS + OW) floats of its scratch. wbf (NULL: fp32 only) is w packed
 * by dae_bf16_pack_weights for a layer dae_conv2d_bf16_layer accepts: the calls that take
 * the taps kernel (3x3 padding 1: stride 2, or stride 1 on images too small for conv3) then
 * run in bf16, those conv3 takes run in bf16 on AMX tiles where dae_amx_supported() (see
 * dae_conv3x3_forward_amx); the others stay fp32 with w. */
void dae_conv2d_forward_ex(float *out, const float *in, const float *w, const uint32_t *wbf,
                           const float *b, float *const *cols, int threads,
                           const dae_conv_geom *g, dae_act act, float slope);
/* Whether a conv2d (k, s, p) / conv_transpose2d (k, s, p, op) layer can use bf16 weights on
 * this CPU (see dae_conv2d_forward_ex, dae_conv_t2d_forward_ex). */
int dae_conv2d_bf16_layer(int k, int s, int p);
int dae_conv_t2d_bf16_layer(int k, int s, int p, int op);
/* The kernel a forward of that convolution takes on this CPU (B does not matter) and the
 * precision it runs in when the workspace asks for bf16 (bf16 != 0) or not: "conv3
 * direct, fp32", "conv3 AMX, bf16", "taps, bf16", "taps, fp32", "im2col + sgemm, fp32", ...
 * (a static string; benchmarks print it next to their timings). */
const char *dae_conv2d_kernel_name(const dae_conv_geom *g, int bf16);
const char *dae_conv_t2d_kernel_name(const dae_conv_geom *g, int bf16);
void dae_conv2d_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                         const float *w, float *col, const dae_conv_geom *g);

/* ---- 3x3 stride-1 padding-1 conv2d computed directly (conv3.c), no im2col matrix ----
 * The conv2d functions above take this path by themselves for k 3, s 1, p 1 on images of
 * at least DAE_CONV3_MIN_PIXELS pixels (and OC, so that dae_conv2d_col_size stays within
 * the bound above) when dae_conv3x3_supported() (an x86-64 CPU with
 * AVX-512F); smaller images fill too few of its 48-pixel blocks (measured: 96 channels at
 * 7x7 ran 25% slower than im2col + sgemm, 8x8 at 32 channels 1.9x faster). These are its
 * kernels, callable only when it returns 1. Same layouts and conventions as conv2d. */
#define DAE_CONV3_MIN_PIXELS 64
int dae_conv3x3_supported(void);
/* Output rows [oh0, oh1) of one image (g->B, k, s, p not read), bias (may be NULL) and
 * activation applied. */
void dae_conv3x3_forward_rows(float *out, const float *in, const float *w, const float *b,
                              float *scratch, const dae_conv_geom *g, int oh0, int oh1,
                              dae_act act, float slope);
/* Floats of `scratch` the forward and backward need (the weights, repacked). */
size_t dae_conv3x3_scratch_size(int C, int OC);
/* B images: din overwritten, dw added into (either may be NULL); db is the caller's. */
void dae_conv3x3_backward(float *din, float *dw, const float *dout, const float *in,
                          const float *w, float *scratch, const dae_conv_geom *g);

/* ---- bf16 form of the conv3 forward on Intel AMX tiles (conv3_amx.c) ----
 * With bf16 weights (wbf, see dae_conv2d_forward_ex) the conv2d functions take it by
 * themselves for the convolutions conv3 takes, when dae_amx_supported() (AMX-BF16 and
 * AMX-TILE, the kernel's permission for the tile state: asked once for the process).
 * Inputs and weights rounded to bf16 (nearest even), products summed in fp32: the
 * tolerance of the taps kernel's bf16 form. Output rows [oh0, oh1) of one image, bias (may
 * be NULL) and activation applied; wb: the weights packed by dae_bf16_pack_weights
 * (transposed 0; regrouped into tiles per call, a small cost next to the convolution);
 * scratch of dae_conv3x3_amx_scratch(g) floats (enough for any row range). g->B, k, s, p
 * are not read. */
int dae_amx_supported(void);
size_t dae_conv3x3_amx_scratch(const dae_conv_geom *g);
void dae_conv3x3_forward_amx(float *out, const float *in, const uint32_t *wb, const float *b,
                             float *scratch, const dae_conv_geom *g, int oh0, int oh1,
                             dae_act act, float slope);

/* The same over all rows of one image with the activations between two such layers kept
 * as the kernel's bf16 channel-pair planes (pack_b's layout: channels 2k, 2k+1 in lane
 * halves, a zero border of one pixel, rows of W + 2; dae_conv3x3_amx_pairs_size(C, H, W)
 * uint32): the input from xin when not NULL (else `in`, packed as usual), the output into
 * yp when not NULL (else `out`, fp32). The values are those the fp32 round trip gives
 * (rounded to bf16 the same way), so the result is the same to the bit, without writing and
 * re-reading fp32 planes. act: identity, ReLU or leaky ReLU. C and OC are multiples of 16
 * (the planes past them, up to whole chunks of 32 channels, are zero): dae_conv2d_pairs_ok
 * (layers.c) says when to use it. */
size_t dae_conv3x3_amx_pairs_size(int C, int H, int W);
/* Whether convolution geo (one image, B = 1) with fused activation act runs on AMX with
 * bf16 weights on this CPU and may take and give pair planes: C and OC multiples of 16. */
int dae_conv2d_pairs_ok(const dae_conv_geom *geo, dae_act act);
void dae_conv3x3_forward_amx_pairs(float *out, uint32_t *yp, const float *in,
                                   const uint32_t *xin, const uint32_t *wb, const float *b,
                                   float *scratch, const dae_conv_geom *g, dae_act act,
                                   float slope);

/* ---- mixed-precision training: conv3's forward and gradients on AMX tiles ----
 * A training step runs the convolutions AMX takes (those dae_conv2d_forward_ex would run
 * on AMX with bf16 weights) in bf16 from A tiles packed once per optimizer step from the
 * fp32 master weights: dae_amx_pack_tiles(wa, w, C, OC, 0) (dae_amx_tiles_size(C, OC)
 * uint16) for the forward, (..., 1) (dae_amx_tiles_size(OC, C): the input gradient is a
 * convolution of dout, OC channels in, C out, with the weights transposed and the taps
 * flipped) for the input gradient. Inputs (activations, output gradients) rounded to bf16
 * as they are read, sums in fp32, outputs fp32. The weight gradient runs on AMX too
 * (x and dout rounded to bf16, sums over the pixels in fp32): dae_conv3x3_dw_amx adds it
 * into dw, with scratch of dae_conv3x3_dw_amx_scratch(g) floats.
 * dae_conv3x3_forward_amx_tiles is dae_conv3x3_forward_amx with packed tiles (g: the
 * convolution they were packed for; scratch as there). */
size_t dae_amx_tiles_size(int C, int OC);
void dae_amx_pack_tiles(uint16_t *wa, const float *w, int C, int OC, int din);
void dae_conv3x3_forward_amx_tiles(float *out, const float *in, const uint16_t *wa,
                                   const float *b, float *scratch, const dae_conv_geom *g,
                                   int oh0, int oh1, dae_act act, float slope);
size_t dae_conv3x3_dw_amx_scratch(const dae_conv_geom *g);
void dae_conv3x3_dw_amx(float *dw, const float *dout, const float *in, float *scratch,
                        const dae_conv_geom *g);
/* Whether the forward (part 0), the input gradient (1) or the weight gradient (2) of
 * convolution g runs on AMX tiles in a bf16 training step on this CPU. */
int dae_conv2d_amx_train(const dae_conv_geom *g, int part);
/* dae_conv2d_forward_ex with the forward tiles wa (NULL: fp32): the convolutions
 * dae_conv2d_amx_train(g, 0) accepts run on AMX, the others in fp32 with w. */
void dae_conv2d_forward_tiles(float *out, const float *in, const float *w, const uint16_t *wa,
                              const float *b, float *const *cols, int threads,
                              const dae_conv_geom *g, dae_act act, float slope);
/* dae_conv2d_backward with the input-gradient tiles wd (NULL: all fp32): din on AMX where
 * dae_conv2d_amx_train(g, 1), dw where dae_conv2d_amx_train(g, 2), the rest (and db) as
 * dae_conv2d_backward. col: dae_conv2d_train_col_size(g) floats (at least
 * dae_conv2d_col_size(g), within the bound at the top of this file). */
size_t dae_conv2d_train_col_size(const dae_conv_geom *g);
void dae_conv2d_backward_tiles(float *din, float *dw, float *db, const float *dout,
                               const float *in, const float *w, const uint16_t *wd,
                               float *col, const dae_conv_geom *g);

/* The taps kernel of conv3.c (callable only when dae_conv3x3_supported()): a 3x3
 * convolution written as a list of T taps (1, 2, 4 or 9) over flat runs of N pixels that
 * hold images of Hp x Wp side by side. Input x: C channels of NPL planes of N pixels each,
 * plane j of channel c at x + (c*NPL + j)*N. Output y (OC, N):
 *   y[o][q] = act(b[o] + sum_c sum_t w[o*wo + c*wc + wt[t]] * x_c,pl[t][q + off[t]])
 * where a tap whose (dy, dx) leaves q's image reads 0. Stride-2 convolutions (the input in
 * its 4 polyphase planes) and transposed ones (one call per output phase) are such lists;
 * layers.c builds them. A stride-1 list gives the bits of dae_conv3x3_forward_rows.
 * The list carries the run's dimensions too. scratch: dae_conv3x3_taps_scratch(N, T)
 * floats. */
typedef struct dae_conv_taps {
    int T;
    int pl[9], dy[9], dx[9], wt[9];
    ptrdiff_t off[9]; /* dy*Wp + dx */
    int C, NPL;       /* input channels, planes per channel */
    int Hp, Wp;       /* the images side by side in the run */
    int OC;           /* output channels */
    size_t N;         /* pixels of the run */
    size_t wo, wc;    /* weight strides of an output and an input channel (fp32 form) */
} dae_conv_taps;
size_t dae_conv3x3_taps_scratch(size_t N, int T);
void dae_conv3x3_taps_forward(float *y, const float *x, const float *w, const float *b,
                              const dae_conv_taps *tp, float *scratch, dae_act act,
                              float slope);

/* ---- bf16 form of the taps kernel (AVX512-BF16 vdpbf16ps; inference only) ----
 * Inputs and weights rounded to bf16 (8-bit mantissa, nearest even), products summed in
 * fp32: about twice the fp32 kernel's speed, results within ~0.5 % of fp32 (relative to
 * the output's magnitude). Callable only when dae_bf16_supported() (also AVX-512F).
 * Activations travel as channel pairs: xb (ceil(C/2), M) from x (C, M) by
 * dae_bf16_pack_pairs, lane q of pair k = (x[2k][q], x[2k+1][q]) in the low and high 16
 * bits. Weights: wb of dae_bf16_weights_size(C, OC) uint32 from w by dae_bf16_pack_weights,
 * w (OC, C, 3, 3) of a convolution or (C, OC, 3, 3) of a transposed one (transposed 1); C
 * counts input channels, OC output channels in both. The forward is
 * dae_conv3x3_taps_forward with xb of C/2 rounded up channels and NPL planes each (tp->C
 * counts the channels, not the pairs; tp->wo and wc are not read). */
int dae_bf16_supported(void);
size_t dae_bf16_weights_size(int C, int OC);
void dae_bf16_pack_weights(uint32_t *wb, const float *w, int C, int OC, int transposed);
void dae_bf16_pack_pairs(uint32_t *xb, const float *x, int C, size_t M);
void dae_conv3x3_taps_forward_bf16(float *y, const uint32_t *xb, const uint32_t *wb,
                                   const float *b, const dae_conv_taps *tp, float *scratch,
                                   dae_act act, float slope);

/* ---- conv_transpose2d: in (B,C,H,W) -> out (B,OC,OH,OW),
 *      OH = (H-1)*s - 2p + k + op; w is (C, OC, k, k) ---- */
size_t dae_conv_t2d_col_size(const dae_conv_geom *g);
void dae_conv_t2d_forward(float *out, const float *in, const float *w, const float *b,
                          float *col, const dae_conv_geom *g);
/* The same followed by the activation `act`, applied in the pass that adds the bias. wbf:
 * as for dae_conv2d_forward_ex (w packed with transposed 1), for layers
 * dae_conv_t2d_bf16_layer accepts; NULL: fp32. */
void dae_conv_t2d_forward_ex(float *out, const float *in, const float *w,
                             const uint32_t *wbf, const float *b, float *col,
                             const dae_conv_geom *g, dae_act act, float slope);
void dae_conv_t2d_backward(float *din, float *dw, float *db, const float *dout,
                           const float *in, const float *w, float *col,
                           const dae_conv_geom *g);

/* ---- elementwise activations over n values; backward uses the forward *output* ---- */
void dae_act_forward(float *out, const float *in, size_t n, dae_act act, float slope);
void dae_act_backward(float *din, const float *dout, const float *out, size_t n, dae_act act,
                      float slope);

/* ---- 2x upsampling, (B,C,H,W) -> (B,C,2H,2W); bilinear is align_corners=False ---- */
void dae_upsample2x_forward(float *out, const float *in, int B, int C, int H, int W,
                            int bilinear);
void dae_upsample2x_backward(float *din, const float *dout, int B, int C, int H, int W,
                             int bilinear);

/* ---- pixel (un)shuffle by r, PyTorch's nn.PixelUnshuffle / nn.PixelShuffle ----
 * unshuffle: (B,C,H,W) -> (B,C*r*r,H/r,W/r), H and W multiples of r,
 *     out[c*r*r + i*r + j][y][x] = in[c][y*r + i][x*r + j];
 * shuffle: (B,C,H,W) -> (B,C/(r*r),H*r,W*r), C a multiple of r*r, its inverse.
 * Each is a permutation, so the backward of one is the other: the unshuffle's din is the
 * shuffle of its dout (with the unshuffle's output dimensions), and vice versa. */
void dae_pixel_unshuffle(float *out, const float *in, int B, int C, int H, int W, int r);
void dae_pixel_shuffle(float *out, const float *in, int B, int C, int H, int W, int r);

/* ---- elementwise sum out = a + b of n values (out may be a); its backward passes the
 * gradient to both inputs unchanged ---- */
void dae_add_forward(float *out, const float *a, const float *b, size_t n);

#endif
