/* model.c — the autoencoder: layer chain and shape inference, parameters and their
 * initialisation, per-thread workspaces, forward / encode / decode / backward. */
#include "daed/model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/rng.h"

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
};

static int n_layers(const dae_model *m)
{
    return m->n_enc + m->n_dec;
}

static void layer_label(int n_enc, int i, char *buf, size_t n)
{
    if (i < n_enc)
        snprintf(buf, n, "encoder.%d", i);
    else
        snprintf(buf, n, "decoder.%d", i - n_enc);
}

static const char *kind_name(dae_layer_kind k)
{
    switch (k) {
    case DAE_LAYER_LINEAR: return "linear";
    case DAE_LAYER_CONV2D: return "conv2d";
    case DAE_LAYER_CONV_T2D: return "conv_transpose2d";
    case DAE_LAYER_ACT: return "activation";
    case DAE_LAYER_UPSAMPLE: return "upsample";
    case DAE_LAYER_FLATTEN: return "flatten";
    case DAE_LAYER_UNFLATTEN: return "unflatten";
    case DAE_LAYER_PIXEL_UNSHUFFLE: return "pixel_unshuffle";
    case DAE_LAYER_PIXEL_SHUFFLE: return "pixel_shuffle";
    case DAE_LAYER_ADD: return "add";
    }
    return "?";
}

static int shape_valid(dae_shape s)
{
    return s.c >= 1 && s.h >= 1 && s.w >= 1 && s.c <= MAX_FEATURES && s.h <= MAX_DIM &&
           s.w <= MAX_DIM && dae_shape_size(s) <= MAX_VALUES;
}

/* Parameters of one layer, independent of the shapes it will see. */
static int layer_validate(const dae_layer *L, const char *name, dae_error *err)
{
    switch (L->kind) {
    case DAE_LAYER_LINEAR:
        if (L->in_f < 1 || L->in_f > MAX_FEATURES || L->out_f < 1 || L->out_f > MAX_FEATURES)
            return dae_error_set(err, DAE_EINVAL,
                                 "%s (linear): features %d -> %d, expected 1..%d each", name,
                                 L->in_f, L->out_f, MAX_FEATURES);
        return DAE_OK;
    case DAE_LAYER_CONV2D:
    case DAE_LAYER_CONV_T2D:
        if (L->in_ch < 1 || L->in_ch > MAX_CH || L->out_ch < 1 || L->out_ch > MAX_CH)
            return dae_error_set(err, DAE_EINVAL, "%s (%s): channels %d -> %d, expected 1..%d",
                                 name, kind_name(L->kind), L->in_ch, L->out_ch, MAX_CH);
        if (L->k < 1 || L->k > MAX_K || L->stride < 1 || L->stride > MAX_STRIDE ||
            L->pad < 0 || L->pad > MAX_K)
            return dae_error_set(err, DAE_EINVAL,
                                 "%s (%s): kernel %d stride %d padding %d, expected kernel "
                                 "1..%d, stride 1..%d, padding 0..%d",
                                 name, kind_name(L->kind), L->k, L->stride, L->pad, MAX_K,
                                 MAX_STRIDE, MAX_K);
        if (L->kind == DAE_LAYER_CONV_T2D && (L->out_pad < 0 || L->out_pad >= L->stride))
            return dae_error_set(err, DAE_EINVAL,
                                 "%s (conv_transpose2d): output_padding %d, expected 0..%d "
                                 "(below the stride)",
                                 name, L->out_pad, L->stride - 1);
        if (L->kind == DAE_LAYER_CONV2D && L->out_pad != 0)
            return dae_error_set(err, DAE_EINVAL,
                                 "%s (conv2d): output_padding %d, expected 0", name,
                                 L->out_pad);
        return DAE_OK;
    case DAE_LAYER_ACT:
        if ((int)L->act < DAE_ACT_IDENTITY || (int)L->act > DAE_ACT_SIGMOID)
            return dae_error_set(err, DAE_EINVAL, "%s (activation): unknown kind %d", name,
                                 (int)L->act);
        if (L->act == DAE_ACT_LEAKY_RELU && !(L->slope >= 0.0f && L->slope < 1.0f))
            return dae_error_set(err, DAE_EINVAL,
                                 "%s (leaky_relu): negative slope %g, expected in [0,1)", name,
                                 (double)L->slope);
        return DAE_OK;
    case DAE_LAYER_UPSAMPLE:
        if (L->bilinear != 0 && L->bilinear != 1)
            return dae_error_set(err, DAE_EINVAL,
                                 "%s (upsample): mode %d, expected 0 (nearest) or 1 (bilinear)",
                                 name, L->bilinear);
        return DAE_OK;
    case DAE_LAYER_FLATTEN:
        return DAE_OK;
    case DAE_LAYER_UNFLATTEN:
        if (!shape_valid(L->unflat))
            return dae_error_set(err, DAE_EINVAL, "%s (unflatten): target (%d,%d,%d) invalid",
                                 name, L->unflat.c, L->unflat.h, L->unflat.w);
        return DAE_OK;
    case DAE_LAYER_PIXEL_UNSHUFFLE:
    case DAE_LAYER_PIXEL_SHUFFLE:
        if (L->factor < 2 || L->factor > MAX_SHUFFLE)
            return dae_error_set(err, DAE_EINVAL, "%s (%s): factor %d, expected 2..%d", name,
                                 kind_name(L->kind), L->factor, MAX_SHUFFLE);
        return DAE_OK;
    case DAE_LAYER_ADD: /* the index is checked against the layer's own (create) */
        return DAE_OK;
    }
    return dae_error_set(err, DAE_EINVAL, "%s: unknown layer kind %d", name, (int)L->kind);
}

/* Output shape of one (validated) layer for input shape `in`. */
static int layer_shape(const dae_layer *L, dae_shape in, dae_shape *out, const char *name,
                       dae_error *err)
{
    long long h = in.h, w = in.w, c = in.c;
    switch (L->kind) {
    case DAE_LAYER_LINEAR:
        if ((long long)dae_shape_size(in) != L->in_f)
            return dae_error_set(err, DAE_ESHAPE,
                                 "%s (linear %d -> %d): input (%d,%d,%d) has %zu features, "
                                 "expected %d",
                                 name, L->in_f, L->out_f, in.c, in.h, in.w, dae_shape_size(in),
                                 L->in_f);
        c = L->out_f;
        h = w = 1;
        break;
    case DAE_LAYER_CONV2D:
    case DAE_LAYER_CONV_T2D:
        if (in.c != L->in_ch)
            return dae_error_set(err, DAE_ESHAPE,
                                 "%s (%s %d -> %d): input (%d,%d,%d) has %d channels, "
                                 "expected %d",
                                 name, kind_name(L->kind), L->in_ch, L->out_ch, in.c, in.h,
                                 in.w, in.c, L->in_ch);
        c = L->out_ch;
        if (L->kind == DAE_LAYER_CONV2D) {
            if (h + 2 * L->pad < L->k || w + 2 * L->pad < L->k)
                return dae_error_set(err, DAE_ESHAPE,
                                     "%s (conv2d k=%d s=%d p=%d): input %dx%d is smaller than "
                                     "the kernel",
                                     name, L->k, L->stride, L->pad, in.h, in.w);
            h = (h + 2 * L->pad - L->k) / L->stride + 1;
            w = (w + 2 * L->pad - L->k) / L->stride + 1;
        } else {
            h = (h - 1) * L->stride - 2 * L->pad + L->k + L->out_pad;
            w = (w - 1) * L->stride - 2 * L->pad + L->k + L->out_pad;
            if (h < 1 || w < 1)
                return dae_error_set(err, DAE_ESHAPE,
                                     "%s (conv_transpose2d k=%d s=%d p=%d): input %dx%d gives "
                                     "an empty output",
                                     name, L->k, L->stride, L->pad, in.h, in.w);
        }
        break;
    case DAE_LAYER_ACT:
        break;
    case DAE_LAYER_UPSAMPLE:
        h *= 2;
        w *= 2;
        break;
    case DAE_LAYER_FLATTEN:
        c = (long long)dae_shape_size(in);
        h = w = 1;
        break;
    case DAE_LAYER_UNFLATTEN:
        if (dae_shape_size(in) != dae_shape_size(L->unflat))
            return dae_error_set(err, DAE_ESHAPE,
                                 "%s (unflatten to (%d,%d,%d)): input (%d,%d,%d) has %zu "
                                 "values, expected %zu",
                                 name, L->unflat.c, L->unflat.h, L->unflat.w, in.c, in.h, in.w,
                                 dae_shape_size(in), dae_shape_size(L->unflat));
        *out = L->unflat;
        return DAE_OK;
    case DAE_LAYER_PIXEL_UNSHUFFLE:
        if (h % L->factor || w % L->factor)
            return dae_error_set(err, DAE_ESHAPE,
                                 "%s (pixel_unshuffle by %d): input %dx%d, expected height "
                                 "and width multiples of %d",
                                 name, L->factor, in.h, in.w, L->factor);
        c *= L->factor * L->factor;
        h /= L->factor;
        w /= L->factor;
        break;
    case DAE_LAYER_PIXEL_SHUFFLE:
        if (c % (L->factor * L->factor))
            return dae_error_set(err, DAE_ESHAPE,
                                 "%s (pixel_shuffle by %d): input (%d,%d,%d) has %d channels, "
                                 "expected a multiple of %d",
                                 name, L->factor, in.c, in.h, in.w, in.c,
                                 L->factor * L->factor);
        c /= L->factor * L->factor;
        h *= L->factor;
        w *= L->factor;
        break;
    case DAE_LAYER_ADD: /* the source's shape is compared by dae_model_shape_through */
        break;
    }
    if (c > MAX_FEATURES || h > MAX_DIM || w > MAX_DIM || c * h * w > (long long)MAX_VALUES)
        return dae_error_set(err, DAE_ELIMIT,
                             "%s (%s): output (%lld,%lld,%lld) exceeds the size limit of %zu "
                             "values",
                             name, kind_name(L->kind), c, h, w, MAX_VALUES);
    out->c = (int)c;
    out->h = (int)h;
    out->w = (int)w;
    return DAE_OK;
}

/* Layer i (add) in a pass that starts at layer `from`: its source ran in the pass and
 * its output shape (seen[source - from]) is the add's input shape s. */
static int add_check(const dae_model *m, int i, int from, const dae_shape *seen, dae_shape s,
                     const char *name, dae_error *err)
{
    int j = m->layers[i].from;
    char src[32];
    layer_label(m->n_enc, j, src, sizeof src);
    if (j < from)
        return dae_error_set(err, DAE_EINVAL,
                             "%s (add from %s): the pass starts after %s (a decoder with a "
                             "skip from the encoder cannot run on its own)",
                             name, src, src);
    dae_shape t = seen[j - from];
    if (!dae_shape_eq(t, s))
        return dae_error_set(err, DAE_ESHAPE,
                             "%s (add from %s): input (%d,%d,%d) but %s outputs (%d,%d,%d); "
                             "they must match",
                             name, src, s.c, s.h, s.w, src, t.c, t.h, t.w);
    return DAE_OK;
}

int dae_model_shape_through(const dae_model *m, dae_shape in, int from, int to, dae_shape *out,
                            dae_error *err)
{
    if (from < 0 || to > n_layers(m) || from > to)
        return dae_error_set(err, DAE_EINVAL, "model: layer range [%d,%d) outside [0,%d]",
                             from, to, n_layers(m));
    if (!shape_valid(in))
        return dae_error_set(err, DAE_ESHAPE, "model: input shape (%d,%d,%d) invalid", in.c,
                             in.h, in.w);
    /* seen[k]: the output shape of layer from+k, for the add layers' sources */
    dae_shape s = in, *seen = NULL;
    int rc = DAE_OK;
    for (int i = from; i < to && !seen; i++)
        if (m->layers[i].kind == DAE_LAYER_ADD &&
            !(seen = malloc((size_t)(to - from) * sizeof *seen)))
            return dae_error_set(err, DAE_ENOMEM, "model: out of memory for shapes");
    for (int i = from; i < to && !rc; i++) {
        char name[32];
        layer_label(m->n_enc, i, name, sizeof name);
        if (m->layers[i].kind == DAE_LAYER_ADD)
            rc = add_check(m, i, from, seen, s, name, err);
        if (!rc)
            rc = layer_shape(&m->layers[i], s, &s, name, err);
        if (seen)
            seen[i - from] = s;
    }
    free(seen);
    if (!rc)
        *out = s;
    return rc;
}

static long long gcd_ll(long long a, long long b)
{
    while (b) {
        long long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A model without linear/flatten/unflatten layers is fully convolutional when every
 * convolution preserves scale (conv2d: H -> H/s for H a multiple of s, i.e.
 * k - s <= 2p <= k - 1; transposed: H -> H*s, i.e. k - s - 2p + op == 0). Then every
 * activation's side is input side * (rational scale), and size_div is the smallest D such
 * that each conv2d's input is a multiple of its stride for every input side multiple of D.
 * Returns D, or 0 when the model is not fully convolutional. */
static int compute_size_div(const dae_model *m)
{
    long long num = 1, den = 1, D = 1;
    for (int i = 0; i < n_layers(m); i++) {
        const dae_layer *L = &m->layers[i];
        switch (L->kind) {
        case DAE_LAYER_LINEAR:
        case DAE_LAYER_FLATTEN:
        case DAE_LAYER_UNFLATTEN:
            return 0;
        case DAE_LAYER_CONV2D: {
            int d = 2 * L->pad;
            if (d < L->k - L->stride || d > L->k - 1)
                return 0;
            long long need = den * L->stride / gcd_ll(den * L->stride, num);
            D = D / gcd_ll(D, need) * need;
            den *= L->stride;
            break;
        }
        case DAE_LAYER_PIXEL_UNSHUFFLE: { /* like a stride-r conv: the input a multiple of r */
            long long need = den * L->factor / gcd_ll(den * L->factor, num);
            D = D / gcd_ll(D, need) * need;
            den *= L->factor;
            break;
        }
        case DAE_LAYER_PIXEL_SHUFFLE:
            num *= L->factor;
            break;
        case DAE_LAYER_CONV_T2D:
            if (L->k - L->stride - 2 * L->pad + L->out_pad != 0)
                return 0;
            num *= L->stride;
            break;
        case DAE_LAYER_UPSAMPLE:
            num *= 2;
            break;
        case DAE_LAYER_ACT:
        case DAE_LAYER_ADD:
            break;
        }
        long long g = gcd_ll(num, den);
        num /= g;
        den /= g;
        if (D > 4096 || num > MAX_DIM || den > MAX_DIM)
            return 0;
    }
    return (int)D;
}

/* Shape-check the claim of compute_size_div: at (D,D) and (2D,3D) every layer's output
 * sides scale by exactly 2 and 3, and a residual model returns its input's shape. */
static int verify_fully_conv(const dae_model *m, int D)
{
    dae_shape a = {m->in_shape.c, D, D}, b = {m->in_shape.c, 2 * D, 3 * D};
    for (int i = 0; i < n_layers(m); i++) {
        if (layer_shape(&m->layers[i], a, &a, "", NULL) ||
            layer_shape(&m->layers[i], b, &b, "", NULL))
            return 0;
        if (a.c != b.c || b.h != 2 * a.h || b.w != 3 * a.w)
            return 0;
    }
    if (m->residual && (a.c != dae_model_image_channels(m) || a.h != D || a.w != D))
        return 0;
    return 1;
}

dae_model *dae_model_create(const dae_layer *enc, int n_enc, const dae_layer *dec, int n_dec,
                            dae_shape in_shape, int flags, dae_error *err)
{
    dae_model *m = dae_model_create_shell(enc, n_enc, dec, n_dec, in_shape, flags, err);
    if (m && !(m->params = calloc(m->n_params ? m->n_params : 1, sizeof *m->params))) {
        dae_error_set(err, DAE_ENOMEM, "model: out of memory for %zu parameters",
                      m->n_params);
        dae_model_free(m);
        return NULL;
    }
    return m;
}

dae_model *dae_model_create_shell(const dae_layer *enc, int n_enc, const dae_layer *dec,
                                  int n_dec, dae_shape in_shape, int flags, dae_error *err)
{
    dae_model *m = NULL;
    if (flags & ~(DAE_MODEL_RESIDUAL | DAE_MODEL_NOISE_MAP)) {
        dae_error_set(err, DAE_EINVAL, "model: unknown flags 0x%x", (unsigned)flags);
        goto fail;
    }
    if (n_enc < 0 || n_dec < 0 || n_enc + n_dec < 1 || n_enc + n_dec > MAX_LAYERS ||
        (n_enc && !enc) || (n_dec && !dec)) {
        dae_error_set(err, DAE_EINVAL, "model: %d encoder + %d decoder layers, expected 1..%d",
                      n_enc, n_dec, MAX_LAYERS);
        goto fail;
    }
    if (!shape_valid(in_shape)) {
        dae_error_set(err, DAE_EINVAL, "model: input shape (%d,%d,%d) invalid", in_shape.c,
                      in_shape.h, in_shape.w);
        goto fail;
    }
    m = calloc(1, sizeof *m);
    if (!m || !(m->layers = calloc((size_t)(n_enc + n_dec), sizeof *m->layers))) {
        dae_error_set(err, DAE_ENOMEM, "model: out of memory for %d layers", n_enc + n_dec);
        goto fail;
    }
    if (n_enc)
        memcpy(m->layers, enc, (size_t)n_enc * sizeof *enc);
    if (n_dec)
        memcpy(m->layers + n_enc, dec, (size_t)n_dec * sizeof *dec);
    m->n_enc = n_enc;
    m->n_dec = n_dec;
    m->in_shape = in_shape;
    m->residual = (flags & DAE_MODEL_RESIDUAL) != 0;
    m->noise_map = (flags & DAE_MODEL_NOISE_MAP) != 0;
    if (m->noise_map && in_shape.c < 2) {
        dae_error_set(err, DAE_EINVAL,
                      "model: noise_map needs an input of at least 2 channels (the image "
                      "channels and the noise-level map), got %d",
                      in_shape.c);
        goto fail;
    }

    size_t off = 0;
    for (int i = 0; i < n_enc + n_dec; i++) {
        dae_layer *L = &m->layers[i];
        char name[32];
        layer_label(n_enc, i, name, sizeof name);
        if (layer_validate(L, name, err))
            goto fail;
        if (L->kind == DAE_LAYER_ADD && (L->from < 0 || L->from >= i)) {
            dae_error_set(err, DAE_EINVAL, "%s (add): from %d, expected an earlier layer "
                          "0..%d (encoder then decoder layers, counted from 0)",
                          name, L->from, i - 1);
            goto fail;
        }
        size_t nw = 0, nb = 0;
        if (L->kind == DAE_LAYER_LINEAR) {
            nw = (size_t)L->out_f * L->in_f;
            nb = (size_t)L->out_f;
        } else if (L->kind == DAE_LAYER_CONV2D || L->kind == DAE_LAYER_CONV_T2D) {
            nw = (size_t)L->out_ch * L->in_ch * L->k * L->k;
            nb = (size_t)L->out_ch;
        }
        if (nw > MAX_PARAMS || off + nw + nb > MAX_PARAMS) {
            dae_error_set(err, DAE_ELIMIT, "%s: model exceeds %zu parameters", name,
                          MAX_PARAMS);
            goto fail;
        }
        L->w_off = off;
        L->n_w = nw;
        L->b_off = off + nw;
        L->n_b = nb;
        off += nw + nb;
    }
    m->n_params = off;

    if (dae_model_shape_through(m, in_shape, 0, n_enc, &m->latent_shape, err) ||
        dae_model_shape_through(m, in_shape, 0, n_enc + n_dec, &m->out_shape, err))
        goto fail;
    if (m->noise_map && m->out_shape.c != in_shape.c - 1) {
        dae_error_set(err, DAE_ESHAPE,
                      "model: with noise_map the output has the image's %d channels (the "
                      "input's %d less the map), got (%d,%d,%d)",
                      in_shape.c - 1, in_shape.c, m->out_shape.c, m->out_shape.h,
                      m->out_shape.w);
        goto fail;
    }
    if (m->residual && (m->out_shape.c != dae_model_image_channels(m) ||
                        m->out_shape.h != in_shape.h || m->out_shape.w != in_shape.w)) {
        dae_error_set(err, DAE_ESHAPE,
                      "model: residual output (%d,%d,%d) must have the input image's shape "
                      "(%d,%d,%d)",
                      m->out_shape.c, m->out_shape.h, m->out_shape.w,
                      dae_model_image_channels(m), in_shape.h, in_shape.w);
        goto fail;
    }
    int D = compute_size_div(m);
    if (D > 0 && verify_fully_conv(m, D)) {
        m->fully_conv = 1;
        m->size_div = D;
    }

    return m;
fail:
    dae_model_free(m);
    return NULL;
}

int dae_model_image_channels(const dae_model *m)
{
    return m->in_shape.c - (m->noise_map ? 1 : 0);
}

int dae_model_flags(const dae_model *m)
{
    return (m->residual ? DAE_MODEL_RESIDUAL : 0) | (m->noise_map ? DAE_MODEL_NOISE_MAP : 0);
}

float dae_noise_level(double sigma255)
{
    return sigma255 < 0 ? DAE_NOISE_BLIND : (float)(sigma255 / 255.0);
}

void dae_model_noise_fill(float *x, int B, int C, int H, int W, float level)
{
    size_t plane = (size_t)H * W;
    for (int b = 0; b < B; b++) {
        float *p = x + ((size_t)b * (C + 1) + C) * plane;
        for (size_t j = 0; j < plane; j++)
            p[j] = level;
    }
}

void dae_model_noise_input(float *out, const float *img, int B, int C, int H, int W,
                           float level)
{
    size_t n = (size_t)C * H * W;
    for (int b = 0; b < B; b++)
        memcpy(out + (size_t)b * (n + (size_t)H * W), img + (size_t)b * n, n * sizeof *out);
    dae_model_noise_fill(out, B, C, H, W, level);
}

void dae_model_free(dae_model *m)
{
    if (!m)
        return;
    free(m->layers);
    if (!m->params_external)
        free(m->params);
    free(m);
}

/* fan_in as PyTorch computes it: weight.size(1) * k * k, which for a transposed conv
 * (weight (in, out, k, k)) is out_ch * k * k. */
static int layer_fan_in(const dae_layer *L)
{
    switch (L->kind) {
    case DAE_LAYER_LINEAR: return L->in_f;
    case DAE_LAYER_CONV2D: return L->in_ch * L->k * L->k;
    case DAE_LAYER_CONV_T2D: return L->out_ch * L->k * L->k;
    default: return 0;
    }
}

void dae_model_init_params(dae_model *m, uint64_t seed)
{
    dae_rng r;
    dae_rng_seed(&r, seed);
    for (int i = 0; i < n_layers(m); i++) {
        const dae_layer *L = &m->layers[i];
        if (!L->n_w)
            continue;
        /* kaiming_uniform(a=sqrt(5)): gain sqrt(2/6), bound gain*sqrt(3/fan_in) =
         * 1/sqrt(fan_in); the bias bound is the same */
        float bound = (float)(1.0 / sqrt((double)layer_fan_in(L)));
        float *w = m->params + L->w_off, *b = m->params + L->b_off;
        for (size_t j = 0; j < L->n_w; j++)
            w[j] = (2.0f * dae_rng_uniform(&r) - 1.0f) * bound;
        for (size_t j = 0; j < L->n_b; j++)
            b[j] = (2.0f * dae_rng_uniform(&r) - 1.0f) * bound;
    }
}

int dae_model_check_input(const dae_model *m, dae_shape in, dae_error *err)
{
    dae_shape nom = m->in_shape;
    if (dae_shape_eq(in, nom))
        return DAE_OK;
    if (!m->fully_conv)
        return dae_error_set(err, DAE_ESHAPE, "input shape (%d,%d,%d): expected (%d,%d,%d)",
                             in.c, in.h, in.w, nom.c, nom.h, nom.w);
    int D = m->size_div;
    if (in.c != nom.c || in.h < D || in.w < D || in.h % D || in.w % D || !shape_valid(in))
        return dae_error_set(err, DAE_ESHAPE,
                             "input shape (%d,%d,%d): expected %d channels and height and "
                             "width multiples of %d (or exactly (%d,%d,%d))",
                             in.c, in.h, in.w, nom.c, D, nom.c, nom.h, nom.w);
    dae_shape out;
    return dae_model_shape_through(m, in, 0, n_layers(m), &out, err);
}

void dae_model_param_name(const dae_model *m, int i, int bias, char *buf, size_t n)
{
    if (!n)
        return;
    char label[32];
    layer_label(m->n_enc, i, label, sizeof label);
    snprintf(buf, n, "%s.%s", label, bias ? "bias" : "weight");
}

int dae_model_param_shape(const dae_model *m, int i, int bias, int64_t dims[4])
{
    const dae_layer *L = &m->layers[i];
    switch (L->kind) {
    case DAE_LAYER_LINEAR:
        if (bias) {
            dims[0] = L->out_f;
            return 1;
        }
        dims[0] = L->out_f;
        dims[1] = L->in_f;
        return 2;
    case DAE_LAYER_CONV2D:
    case DAE_LAYER_CONV_T2D:
        if (bias) {
            dims[0] = L->out_ch;
            return 1;
        }
        dims[0] = L->kind == DAE_LAYER_CONV2D ? L->out_ch : L->in_ch;
        dims[1] = L->kind == DAE_LAYER_CONV2D ? L->in_ch : L->out_ch;
        dims[2] = dims[3] = L->k;
        return 4;
    default:
        return 0;
    }
}

double dae_model_flops(const dae_model *m, dae_shape in)
{
    double f = 0.0;
    dae_shape s = in;
    if (!shape_valid(in))
        return 0.0;
    for (int i = 0; i < n_layers(m); i++) {
        const dae_layer *L = &m->layers[i];
        dae_shape o;
        if (layer_shape(L, s, &o, "", NULL))
            return 0.0;
        if (L->kind == DAE_LAYER_LINEAR)
            f += 2.0 * L->in_f * L->out_f;
        else if (L->kind == DAE_LAYER_CONV2D)
            f += 2.0 * o.c * o.h * o.w * (double)s.c * L->k * L->k;
        else if (L->kind == DAE_LAYER_CONV_T2D)
            f += 2.0 * s.c * s.h * s.w * (double)o.c * L->k * L->k;
        s = o;
    }
    return f;
}

/* ============================== workspace ============================== */

/* Exact im2col scratch of layer L for B samples of shape `in`. */
static size_t layer_col_size(const dae_layer *L, dae_shape in, int B)
{
    if (L->kind == DAE_LAYER_CONV2D)
        return dae_conv2d_col_size(B, in.c, in.h, in.w, L->out_ch, L->k, L->stride, L->pad);
    if (L->kind == DAE_LAYER_CONV_T2D)
        return dae_conv_t2d_col_size(B, in.c, in.h, in.w, L->out_ch, L->k, L->stride, L->pad,
                                     L->out_pad);
    return 0;
}

/* Upper bound of that scratch for up to B samples whose per-sample pixel count P (output
 * pixels for conv2d, input pixels for the transposed conv) is at most `times` times the P
 * of shape `in`: (C*k*k + channels) * max(min(B*P, DAE_CONV_GROUP_COLS), P), layers.h. */
static size_t layer_col_bound(const dae_layer *L, dae_shape in, dae_shape out, size_t times,
                              int B)
{
    size_t rows, P;
    if (L->kind == DAE_LAYER_CONV2D) {
        rows = (size_t)in.c * L->k * L->k + (size_t)L->out_ch;
        P = (size_t)out.h * out.w * times;
    } else if (L->kind == DAE_LAYER_CONV_T2D) {
        rows = (size_t)L->out_ch * L->k * L->k + (size_t)in.c;
        P = (size_t)in.h * in.w * times;
    } else {
        return 0;
    }
    size_t grouped = (size_t)B * P < DAE_CONV_GROUP_COLS ? (size_t)B * P : DAE_CONV_GROUP_COLS;
    return rows * (grouped > P ? grouped : P);
}

/* Per-sample activation sizes for input `in` times `times`, maxed into slot[]; the im2col
 * bound for B samples into *col. */
static void plan_add(const dae_model *m, dae_shape in, size_t times, int B, size_t *slot,
                     size_t *col)
{
    dae_shape s = in;
    for (int i = 0; i <= n_layers(m); i++) {
        if (dae_shape_size(s) * times > slot[i])
            slot[i] = dae_shape_size(s) * times;
        if (i == n_layers(m))
            break;
        dae_shape o;
        if (layer_shape(&m->layers[i], s, &o, "", NULL))
            return; /* cannot happen for the shapes plan() passes */
        size_t c = layer_col_bound(&m->layers[i], s, o, times, B);
        if (c > *col)
            *col = c;
        s = o;
    }
}

/* Largest per-sample activation of every slot and largest im2col buffer over every input
 * the model accepts within max_vals values. For a fully convolutional model every size is
 * (size at (D,D)) * (H/D) * (W/D), so the bound is that times floor(area / D^2). */
static int plan(const dae_model *m, size_t max_vals, int B, size_t *slot, size_t *col,
                dae_error *err)
{
    memset(slot, 0, (size_t)(n_layers(m) + 1) * sizeof *slot);
    *col = 0;
    int any = 0;
    if (dae_shape_size(m->in_shape) <= max_vals) {
        plan_add(m, m->in_shape, 1, B, slot, col);
        any = 1;
    }
    if (m->fully_conv) {
        size_t D = (size_t)m->size_div, t = max_vals / (size_t)m->in_shape.c / (D * D);
        if (t > 0) {
            dae_shape d = {m->in_shape.c, (int)D, (int)D};
            plan_add(m, d, t, B, slot, col);
            any = 1;
        }
    }
    if (!any)
        return dae_error_set(err, DAE_EINVAL,
                             "workspace: room for %zu input values holds no input the model "
                             "accepts (nominal (%d,%d,%d))",
                             max_vals, m->in_shape.c, m->in_shape.h, m->in_shape.w);
    return DAE_OK;
}

static float *alloc_floats(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)))
        return NULL;
    return p;
}

void dae_workspace_free(dae_workspace *ws)
{
    if (!ws)
        return;
    for (int t = 0; t < DAE_MAX_THREADS; t++) {
        free(ws->col[t]);
        free(ws->tgrad[t]);
    }
    free(ws->shapes);
    free(ws->buf[0]);
    free(ws->buf[1]);
    free(ws->latent);
    if (ws->act && ws->own)
        for (int i = 0; i <= n_layers(ws->m); i++)
            if (ws->own[i] == i)
                free(ws->act[i]);
    free(ws->act);
    free(ws->own);
    free(ws->cap_act);
    free(ws->grad[0]);
    free(ws->grad[1]);
    free(ws->res_out);
    for (int i = 0; ws->src && i < n_layers(ws->m); i++) {
        free(ws->skip ? ws->skip[i] : NULL);
        free(ws->skip_grad ? ws->skip_grad[i] : NULL);
    }
    free(ws->src);
    free(ws->skip);
    free(ws->skip_grad);
    if (ws->wbf)
        for (int i = 0; i < n_layers(ws->m); i++)
            free(ws->wbf[i]);
    free(ws->wbf);
    free(ws);
}

static int mul_ok(size_t a, size_t b, size_t *r)
{
    if (b && a > SIZE_MAX / sizeof(float) / b)
        return 0;
    *r = a * b;
    return 1;
}

size_t dae_workspace_bytes(const dae_model *m, int max_batch, dae_shape max_in)
{
    int L = n_layers(m);
    if (max_batch < 1 || max_batch > MAX_BATCH || !shape_valid(max_in))
        return 0;
    size_t *slot = calloc((size_t)L + 1, sizeof *slot), colv = 0, bufv = 0, total = 0;
    if (!slot || plan(m, dae_shape_size(max_in), max_batch, slot, &colv, NULL)) {
        free(slot);
        return 0;
    }
    for (int i = 1; i <= L; i++)
        if (slot[i] > bufv)
            bufv = slot[i];
    size_t B = (size_t)max_batch, two_buf, lat, skips = 0;
    const size_t lim = SIZE_MAX / sizeof(float);
    for (int i = 0; i < L; i++) /* the adds' sources keep a copy of their output */
        if (m->layers[i].kind == DAE_LAYER_ADD && skips <= lim / 2)
            skips += slot[m->layers[i].from + 1]; /* a source added twice counts twice */
    int ok = mul_ok(bufv, 2 * B, &two_buf) && mul_ok(slot[m->n_enc] + skips, B, &lat) &&
             two_buf <= lim - lat && colv <= lim - two_buf - lat;
    if (ok)
        total = (colv + two_buf + lat) * sizeof(float);
    free(slot);
    return total;
}

/* The add layers' sources (ws->src) and, per source j, its output's copy (inference) or
 * gradient (training): slot[j+1] values per sample. */
static int skip_buffers(dae_workspace *ws, const size_t *slot)
{
    const dae_model *m = ws->m;
    int L = n_layers(m), any = 0;
    for (int i = 0; i < L; i++)
        any |= m->layers[i].kind == DAE_LAYER_ADD;
    if (!any)
        return DAE_OK;
    ws->src = calloc((size_t)L, 1);
    float ***bufs = ws->training ? &ws->skip_grad : &ws->skip;
    *bufs = calloc((size_t)L, sizeof **bufs);
    if (!ws->src || !*bufs)
        return DAE_ENOMEM;
    for (int i = 0; i < L; i++)
        if (m->layers[i].kind == DAE_LAYER_ADD)
            ws->src[m->layers[i].from] = 1;
    for (int j = 0; j < L; j++) {
        size_t n;
        if (ws->src[j] && (!mul_ok(slot[j + 1], (size_t)ws->max_batch, &n) ||
                           !((*bufs)[j] = alloc_floats(n))))
            return DAE_ENOMEM;
    }
    return DAE_OK;
}

dae_workspace *dae_workspace_create(const dae_model *m, int max_batch, dae_shape max_in,
                                    int training, dae_error *err)
{
    int L = n_layers(m);
    dae_workspace *ws = NULL;
    size_t *slot = NULL;
    if (max_batch < 1 || max_batch > MAX_BATCH) {
        dae_error_set(err, DAE_EINVAL, "workspace: max batch %d, expected 1..%d", max_batch,
                      MAX_BATCH);
        goto fail;
    }
    if (!shape_valid(max_in)) {
        dae_error_set(err, DAE_EINVAL, "workspace: max input (%d,%d,%d) invalid", max_in.c,
                      max_in.h, max_in.w);
        goto fail;
    }
    ws = calloc(1, sizeof *ws);
    slot = calloc((size_t)L + 1, sizeof *slot);
    if (!ws || !slot)
        goto nomem;
    ws->m = m;
    ws->max_batch = max_batch;
    ws->training = training ? 1 : 0;
    ws->max_in_values = dae_shape_size(max_in);
    ws->threads = 1;
    size_t colv;
    if (plan(m, ws->max_in_values, max_batch, slot, &colv, err))
        goto fail;
    size_t B = (size_t)max_batch, big = 0;
    for (int i = 0; i <= L; i++)
        if (slot[i] > big)
            big = slot[i];
    ws->cap_col = colv;
    ws->shapes = calloc((size_t)L + 1, sizeof *ws->shapes);
    if (!ws->shapes || !(ws->col[0] = alloc_floats(colv)))
        goto nomem;
    if (skip_buffers(ws, slot) != DAE_OK)
        goto nomem;
    if (!training) {
        size_t bufv = 0;
        for (int i = 1; i <= L; i++)
            if (slot[i] > bufv)
                bufv = slot[i];
        if (!mul_ok(bufv, B, &ws->cap_buf) || !mul_ok(slot[m->n_enc], B, &ws->cap_latent))
            goto nomem;
        if (!(ws->buf[0] = alloc_floats(ws->cap_buf)) ||
            !(ws->buf[1] = alloc_floats(ws->cap_buf)) ||
            !(ws->latent = alloc_floats(ws->cap_latent)))
            goto nomem;
    } else {
        ws->act = calloc((size_t)L + 1, sizeof *ws->act);
        ws->own = calloc((size_t)L + 1, sizeof *ws->own);
        ws->cap_act = calloc((size_t)L + 1, sizeof *ws->cap_act);
        int *act_out = calloc((size_t)L + 1, sizeof *act_out); /* storage holds an act output */
        if (!ws->act || !ws->own || !ws->cap_act || !act_out) {
            free(act_out);
            goto nomem;
        }
        /* Storage sharing: flatten/unflatten alias their input; an activation overwrites
         * its input in place when nothing needs that input later: not the input copy, not
         * the latent once in the decoder, not another activation's output. */
        ws->own[0] = 0;
        for (int i = 0; i < L; i++) {
            const dae_layer *ly = &m->layers[i];
            int o = ws->own[i];
            if (ly->kind == DAE_LAYER_FLATTEN || ly->kind == DAE_LAYER_UNFLATTEN) {
                ws->own[i + 1] = o;
            } else if (ly->kind == DAE_LAYER_ACT && o != ws->own[0] && !act_out[o] &&
                       !(i >= m->n_enc && o == ws->own[m->n_enc])) {
                ws->own[i + 1] = o;
                act_out[o] = 1;
            } else {
                ws->own[i + 1] = i + 1;
                act_out[i + 1] = ly->kind == DAE_LAYER_ACT;
            }
            if (ws->src && ws->src[i]) /* an add reads it later: nothing writes over it */
                act_out[ws->own[i + 1]] = 1;
        }
        free(act_out);
        for (int i = 0; i <= L; i++) { /* aliases have equal sizes; take the max anyway */
            size_t need;
            if (!mul_ok(slot[i], B, &need))
                goto nomem;
            if (need > ws->cap_act[ws->own[i]])
                ws->cap_act[ws->own[i]] = need;
        }
        for (int i = 0; i <= L; i++)
            if (ws->own[i] == i && !(ws->act[i] = alloc_floats(ws->cap_act[i])))
                goto nomem;
        for (int i = 0; i <= L; i++) {
            ws->act[i] = ws->act[ws->own[i]];
            ws->cap_act[i] = ws->cap_act[ws->own[i]];
        }
        if (!mul_ok(big, B, &ws->cap_grad) || !(ws->grad[0] = alloc_floats(ws->cap_grad)) ||
            !(ws->grad[1] = alloc_floats(ws->cap_grad)))
            goto nomem;
        if (m->residual && !(ws->res_out = alloc_floats(ws->cap_act[L])))
            goto nomem;
    }
    free(slot);
    return ws;
nomem:
    dae_error_set(err, DAE_ENOMEM, "workspace: out of memory (batch %d, input (%d,%d,%d))",
                  max_batch, max_in.c, max_in.h, max_in.w);
fail:
    free(slot);
    dae_workspace_free(ws);
    return NULL;
}

const float *dae_workspace_latent(const dae_workspace *ws)
{
    return ws->training ? ws->act[ws->m->n_enc] : ws->latent;
}

/* ============================== running ============================== */

/* Layer L on B samples; `fuse` (may be NULL) is the activation layer that follows L and is
 * applied by L's kernel as it writes its output. cols/threads: conv2d may split one pass
 * over threads (row bands); the other kernels use cols[0]. */
static void layer_forward(const dae_model *m, const dae_layer *L, const dae_layer *fuse,
                          const dae_workspace *ws, float *y, const float *x, const float *skip,
                          float *const *cols, int threads, int B, dae_shape in)
{
    const uint32_t *wbf = ws->prec == DAE_PREC_BF16 ? ws->wbf[L - m->layers] : NULL;
    const float *w = m->params + L->w_off, *b = m->params + L->b_off;
    dae_act fa = fuse ? fuse->act : DAE_ACT_IDENTITY;
    float fs = fuse ? fuse->slope : 0.0f;
    switch (L->kind) {
    case DAE_LAYER_LINEAR:
        dae_linear_forward(y, x, w, b, B, L->in_f, L->out_f);
        break;
    case DAE_LAYER_CONV2D:
        dae_conv2d_forward_ex(y, x, w, wbf, b, cols, threads, B, in.c, in.h, in.w, L->out_ch,
                              L->k,
                              L->stride, L->pad, fa, fs);
        break;
    case DAE_LAYER_CONV_T2D:
        dae_conv_t2d_forward_ex(y, x, w, wbf, b, cols[0], B, in.c, in.h, in.w, L->out_ch,
                                L->k,
                                L->stride, L->pad, L->out_pad, fa, fs);
        break;
    case DAE_LAYER_ACT:
        dae_act_forward(y, x, (size_t)B * dae_shape_size(in), L->act, L->slope);
        break;
    case DAE_LAYER_UPSAMPLE:
        dae_upsample2x_forward(y, x, B, in.c, in.h, in.w, L->bilinear);
        break;
    case DAE_LAYER_FLATTEN:
    case DAE_LAYER_UNFLATTEN:
        if (y != x)
            memcpy(y, x, (size_t)B * dae_shape_size(in) * sizeof *y);
        break;
    case DAE_LAYER_PIXEL_UNSHUFFLE:
        dae_pixel_unshuffle(y, x, B, in.c, in.h, in.w, L->factor);
        break;
    case DAE_LAYER_PIXEL_SHUFFLE:
        dae_pixel_shuffle(y, x, B, in.c, in.h, in.w, L->factor);
        break;
    case DAE_LAYER_ADD: /* skip: the source's output for these B samples */
        dae_add_forward(y, x, skip, (size_t)B * dae_shape_size(in));
        break;
    }
}

static void layer_backward(const dae_model *m, const dae_layer *L, float *dx, float *grads,
                           const float *dy, const float *x, const float *y, float *col, int B,
                           dae_shape in)
{
    const float *w = m->params + L->w_off;
    float *dw = grads ? grads + L->w_off : NULL, *db = grads ? grads + L->b_off : NULL;
    switch (L->kind) {
    case DAE_LAYER_LINEAR:
        dae_linear_backward(dx, dw, db, dy, x, w, B, L->in_f, L->out_f);
        break;
    case DAE_LAYER_CONV2D:
        dae_conv2d_backward(dx, dw, db, dy, x, w, col, B, in.c, in.h, in.w, L->out_ch, L->k,
                            L->stride, L->pad);
        break;
    case DAE_LAYER_CONV_T2D:
        dae_conv_t2d_backward(dx, dw, db, dy, x, w, col, B, in.c, in.h, in.w, L->out_ch, L->k,
                              L->stride, L->pad, L->out_pad);
        break;
    case DAE_LAYER_ACT:
        if (dx)
            dae_act_backward(dx, dy, y, (size_t)B * dae_shape_size(in), L->act, L->slope);
        break;
    case DAE_LAYER_UPSAMPLE:
        if (dx)
            dae_upsample2x_backward(dx, dy, B, in.c, in.h, in.w, L->bilinear);
        break;
    case DAE_LAYER_FLATTEN:
    case DAE_LAYER_UNFLATTEN:
        if (dx && dx != dy)
            memcpy(dx, dy, (size_t)B * dae_shape_size(in) * sizeof *dx);
        break;
    case DAE_LAYER_PIXEL_UNSHUFFLE: /* dy is (B, c*r*r, h/r, w/r) */
        if (dx)
            dae_pixel_shuffle(dx, dy, B, in.c * L->factor * L->factor, in.h / L->factor,
                              in.w / L->factor, L->factor);
        break;
    case DAE_LAYER_PIXEL_SHUFFLE: /* dy is (B, c/(r*r), h*r, w*r) */
        if (dx)
            dae_pixel_unshuffle(dx, dy, B, in.c / (L->factor * L->factor), in.h * L->factor,
                                in.w * L->factor, L->factor);
        break;
    case DAE_LAYER_ADD: /* backward_slice passes dy on and to the source */
        break;
    }
}

/* Fill ws->shapes[from..to] for input shape s and check that every buffer the pass
 * writes has room for B samples. */
static int plan_pass(const dae_model *m, dae_workspace *ws, int B, dae_shape s, int from,
                     int to, dae_error *err)
{
    if (B < 1 || B > ws->max_batch)
        return dae_error_set(err, B < 1 ? DAE_EINVAL : DAE_ELIMIT,
                             "workspace: batch %d, expected 1..%d", B, ws->max_batch);
    if (!shape_valid(s))
        return dae_error_set(err, DAE_ESHAPE, "model: input shape (%d,%d,%d) invalid", s.c,
                             s.h, s.w);
    ws->shapes[from] = s;
    for (int i = from; i < to; i++) {
        char name[32];
        layer_label(m->n_enc, i, name, sizeof name);
        int rc = layer_shape(&m->layers[i], ws->shapes[i], &ws->shapes[i + 1], name, err);
        if (rc)
            return rc;
        size_t colv = layer_col_size(&m->layers[i], ws->shapes[i], B);
        size_t outv = (size_t)B * dae_shape_size(ws->shapes[i + 1]);
        size_t cap = ws->training ? ws->cap_act[i + 1] : ws->cap_buf;
        if (colv > ws->cap_col || outv > cap)
            return dae_error_set(err, DAE_ELIMIT,
                                 "workspace: %s output (%d,%d,%d) x %d needs more room than "
                                 "this workspace has (sized for %zu input values)",
                                 name, ws->shapes[i + 1].c, ws->shapes[i + 1].h,
                                 ws->shapes[i + 1].w, B, ws->max_in_values);
    }
    size_t inv = (size_t)B * dae_shape_size(ws->shapes[from]);
    if (ws->training && inv > ws->cap_act[from])
        return dae_error_set(err, DAE_ELIMIT, "workspace: input of %zu values x %d exceeds "
                             "room for %zu", dae_shape_size(ws->shapes[from]), B,
                             ws->cap_act[from] / (size_t)B);
    if (!ws->training && from < m->n_enc && m->n_enc <= to &&
        (size_t)B * dae_shape_size(ws->shapes[m->n_enc]) > ws->cap_latent)
        return dae_error_set(err, DAE_ELIMIT, "workspace: latent code exceeds its room");
    return DAE_OK;
}

/* Does layer i's kernel apply the activation layer i+1 in the pass [from,to)? For a
 * convolution followed by an activation, when the activation's output is the convolution's
 * own buffer (in place), so the pre-activation values are never needed, and the latent code
 * does not sit between them. */
static int fused_act(const dae_model *m, const dae_workspace *ws, int i, int to)
{
    const dae_layer *L = &m->layers[i];
    if (L->kind != DAE_LAYER_CONV2D && L->kind != DAE_LAYER_CONV_T2D)
        return 0;
    if (ws->src && ws->src[i]) /* an add needs the pre-activation output */
        return 0;
    if (i + 1 >= to || i + 1 == m->n_enc || m->layers[i + 1].kind != DAE_LAYER_ACT)
        return 0;
    return !ws->training || ws->own[i + 2] == ws->own[i + 1];
}

/* A residual model's output o = a[:, :C] - c for nb samples: a (nb, in_n) the inputs
 * (with a noise map, its image channels come first), c and o (nb, out_n); o may be c. */
static void residual_out(float *o, const float *a, const float *c, int nb, size_t in_n,
                         size_t out_n)
{
    for (int b = 0; b < nb; b++) {
        const float *ab = a + (size_t)b * in_n, *cb = c + (size_t)b * out_n;
        float *ob = o + (size_t)b * out_n;
        for (size_t j = 0; j < out_n; j++)
            ob[j] = ab[j] - cb[j];
    }
}

/* Samples [n0, n0+nb) of layers [from,to) on x (the whole batch's input). Returns the
 * buffer (whole-batch base) holding the result, the same for every slice, and in *off
 * where the slice's result starts in it: n0 * (output size) except in the inference
 * ping-pong buffers, where the caller moves it there once every slice is done. */
static const float *forward_slice(const dae_model *m, dae_workspace *ws, const float *x,
                                  int n0, int nb, int from, int to, int full,
                                  float *const *cols, int threads, size_t *off)
{
    const dae_shape *sh = ws->shapes;
#define OFF(i) ((size_t)n0 * dae_shape_size(sh[i]))
    const float *cur;
    if (ws->training) {
        if (x != ws->act[from])
            memcpy(ws->act[from] + OFF(from), x + OFF(from),
                   (size_t)nb * dae_shape_size(sh[from]) * sizeof *x);
        for (int i = from; i < to; i++) {
            int f = fused_act(m, ws, i, to), j = m->layers[i].from;
            const float *skip = m->layers[i].kind == DAE_LAYER_ADD ? ws->act[j + 1] + OFF(j + 1)
                                                                   : NULL;
            layer_forward(m, &m->layers[i], f ? &m->layers[i + 1] : NULL, ws,
                          ws->act[i + 1] + OFF(i + 1), ws->act[i] + OFF(i), skip, cols, threads,
                          nb, sh[i]);
            i += f;
        }
        cur = ws->act[to];
        *off = OFF(to);
        if (full && m->residual) {
            residual_out(ws->res_out + OFF(to), ws->act[0] + OFF(0), cur + OFF(to), nb,
                         dae_shape_size(sh[0]), dae_shape_size(sh[to]));
            cur = ws->res_out;
        }
        return cur;
    }
    /* The ping-pong buffers hold layers of different sizes in turn, so each slice keeps
     * to its own region of them: samples from n0 at the largest per-sample size sb. cur
     * is a whole-batch base; curoff the slice's offset in it. */
    size_t sb = ws->cap_buf / (size_t)ws->max_batch, curoff = OFF(from);
    int cb = -1; /* which ping-pong buffer holds cur; -1: caller's data or the latent */
    cur = x;
    for (int i = from; i < to; i++) {
        if (i == m->n_enc && from < m->n_enc) {
            memcpy(ws->latent + OFF(i), cur + curoff,
                   (size_t)nb * dae_shape_size(sh[i]) * sizeof *cur);
            cur = ws->latent;
            curoff = OFF(i);
            cb = -1;
        }
        const dae_layer *L = &m->layers[i];
        int f = 0;
        if (L->kind != DAE_LAYER_FLATTEN && L->kind != DAE_LAYER_UNFLATTEN) {
            /* activations and adds write over their input when it is in a ping-pong buffer */
            int inplace = (L->kind == DAE_LAYER_ACT || L->kind == DAE_LAYER_ADD) && cb >= 0;
            int nbuf = inplace ? cb : cb == 0 ? 1 : 0;
            const float *skip = L->kind == DAE_LAYER_ADD ? ws->skip[L->from] + OFF(L->from + 1)
                                                         : NULL;
            f = fused_act(m, ws, i, to);
            layer_forward(m, L, f ? &m->layers[i + 1] : NULL, ws,
                          ws->buf[nbuf] + (size_t)n0 * sb, cur + curoff, skip, cols, threads,
                          nb, sh[i]);
            cur = ws->buf[nbuf];
            curoff = (size_t)n0 * sb;
            cb = nbuf;
        }
        i += f;
        if (ws->src && ws->src[i]) /* an add reads this output later: keep a copy */
            memcpy(ws->skip[i] + OFF(i + 1), cur + curoff,
                   (size_t)nb * dae_shape_size(sh[i + 1]) * sizeof *cur);
    }
    if (to == m->n_enc && from < to) {
        memcpy(ws->latent + OFF(to), cur + curoff,
               (size_t)nb * dae_shape_size(sh[to]) * sizeof *cur);
        cur = ws->latent;
        curoff = OFF(to);
        cb = -1;
    }
    if (full && m->residual) {
        float *o = ws->buf[cb >= 0 ? cb : 0];
        residual_out(o + (size_t)n0 * sb, x + OFF(0), cur + curoff, nb, dae_shape_size(sh[0]),
                     dae_shape_size(sh[to]));
        cur = o;
        curoff = (size_t)n0 * sb;
    }
    *off = curoff;
    return cur;
#undef OFF
}

/* One thread's share of a pass: a forward or backward over samples [n0, n0+nb). */
typedef struct {
    const dae_model *m;
    dae_workspace *ws;
    int backward, t, n0, nb;
    /* forward */
    const float *x;
    int from, to, full;
    const float *result;
    size_t result_off;
    /* backward */
    const float *dout, *dlatent;
    float *grads, *din;
} pass_job;

static void backward_slice(const dae_model *m, dae_workspace *ws, const float *dout,
                           const float *dlatent, float *grads, float *din, int n0, int nb,
                           float *col);

static void *pass_job_run(void *arg)
{
    pass_job *j = arg;
    if (j->backward)
        backward_slice(j->m, j->ws, j->dout, j->dlatent, j->grads, j->din, j->n0, j->nb,
                       j->ws->col[j->t]);
    else
        j->result = forward_slice(j->m, j->ws, j->x, j->n0, j->nb, j->from, j->to, j->full,
                                  &j->ws->col[j->t], 1, &j->result_off);
    return NULL;
}

/* Runs jobs[0..T) on T threads (the caller is thread 0). A thread that cannot be started
 * runs its share here afterwards. */
static void run_jobs(pass_job *jobs, int T)
{
    pthread_t tid[DAE_MAX_THREADS];
    int started[DAE_MAX_THREADS] = {0};
    for (int t = 1; t < T; t++)
        started[t] = pthread_create(&tid[t], NULL, pass_job_run, &jobs[t]) == 0;
    pass_job_run(&jobs[0]);
    for (int t = 1; t < T; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            pass_job_run(&jobs[t]);
    }
}

/* Threads a pass over B samples splits its batch over (1: none). */
static int batch_threads(const dae_workspace *ws, int B)
{
    return ws->threads > 1 && B >= ws->threads ? ws->threads : 1;
}

/* Layers [from,to) on B samples x. */
static int run(const dae_model *m, dae_workspace *ws, const float *x, int B, dae_shape s,
               int from, int to, const float **y, dae_shape *ys, dae_error *err)
{
    int full = from == 0 && to == n_layers(m);
    if (full || from == 0) {
        int rc = dae_model_check_input(m, s, err);
        if (rc)
            return rc;
        if (dae_shape_size(s) > ws->max_in_values)
            return dae_error_set(err, DAE_ELIMIT,
                                 "input (%d,%d,%d): %zu values, this workspace takes at most "
                                 "%zu",
                                 s.c, s.h, s.w, dae_shape_size(s), ws->max_in_values);
    }
    ws->fwd_B = 0;
    int rc = plan_pass(m, ws, B, s, from, to, err);
    if (rc)
        return rc;
    for (int i = from; i < to; i++)
        if (m->layers[i].kind == DAE_LAYER_ADD && m->layers[i].from < from) {
            char a[32], b[32];
            layer_label(m->n_enc, i, a, sizeof a);
            layer_label(m->n_enc, m->layers[i].from, b, sizeof b);
            return dae_error_set(err, DAE_EINVAL, "model: %s adds the output of %s, so the "
                                 "decoder cannot run on its own", a, b);
        }
    int T = batch_threads(ws, B);
    if (T == 1) { /* a single slice; convolutions may still split their rows */
        size_t off;
        *y = forward_slice(m, ws, x, 0, B, from, to, full, ws->col, ws->threads, &off);
    } else {
        pass_job jobs[DAE_MAX_THREADS];
        for (int t = 0; t < T; t++)
            jobs[t] = (pass_job){.m = m, .ws = ws, .t = t, .x = x, .from = from, .to = to,
                                 .full = full,
                                 .n0 = (int)((long long)B * t / T),
                                 .nb = (int)((long long)B * (t + 1) / T - (long long)B * t / T)};
        run_jobs(jobs, T);
        *y = jobs[0].result;
        /* slices left in their ping-pong regions move down into place, in order of n0:
         * each destination ends where the next one starts, below the next source */
        size_t per = dae_shape_size(ws->shapes[to]);
        for (int t = 1; t < T; t++) {
            size_t want = (size_t)jobs[t].n0 * per;
            if (jobs[t].result_off != want) {
                float *c = (float *)jobs[t].result; /* a workspace buffer */
                memmove(c + want, c + jobs[t].result_off, (size_t)jobs[t].nb * per * sizeof *c);
            }
        }
    }
    if (ws->training && full)
        ws->fwd_B = B;
    if (ys)
        *ys = ws->shapes[to];
    return DAE_OK;
}

int dae_model_forward(const dae_model *m, dae_workspace *ws, const float *in, int B,
                      dae_shape in_shape, const float **out, dae_shape *out_shape,
                      dae_error *err)
{
    return run(m, ws, in, B, in_shape, 0, n_layers(m), out, out_shape, err);
}

int dae_model_encode(const dae_model *m, dae_workspace *ws, const float *in, int B,
                     dae_shape in_shape, const float **z, dae_shape *z_shape, dae_error *err)
{
    return run(m, ws, in, B, in_shape, 0, m->n_enc, z, z_shape, err);
}

int dae_model_decode(const dae_model *m, dae_workspace *ws, const float *z, int B,
                     dae_shape z_shape, const float **out, dae_shape *out_shape,
                     dae_error *err)
{
    dae_shape lat = m->latent_shape;
    int same = z_shape.c == lat.c && z_shape.h == lat.h && z_shape.w == lat.w;
    if (!same && !(m->fully_conv && z_shape.c == lat.c && shape_valid(z_shape)))
        return dae_error_set(err, DAE_ESHAPE, "latent shape (%d,%d,%d): expected (%d,%d,%d)",
                             z_shape.c, z_shape.h, z_shape.w, lat.c, lat.h, lat.w);
    return run(m, ws, z, B, z_shape, m->n_enc, n_layers(m), out, out_shape, err);
}

/* Backward of samples [n0, n0+nb) of the last full forward, adding parameter gradients
 * into grads (may be NULL). */
static void backward_slice(const dae_model *m, dae_workspace *ws, const float *dout,
                           const float *dlatent, float *grads, float *din, int n0, int nb,
                           float *col)
{
    const dae_shape *sh = ws->shapes;
#define OFF(i) ((size_t)n0 * dae_shape_size(sh[i]))
    /* the two gradient buffers hold layers of different sizes in turn: each slice keeps
     * to its own region, samples from n0 at the largest per-sample size */
    size_t goff = (size_t)n0 * (ws->cap_grad / (size_t)ws->max_batch);
    int L = n_layers(m), cg = 0;
    size_t n_out = (size_t)nb * dae_shape_size(sh[L]);
    for (int j = 0; ws->src && j < L; j++) /* the adds' gradients gather from 0 */
        if (ws->src[j])
            memset(ws->skip_grad[j] + OFF(j + 1), 0,
                   (size_t)nb * dae_shape_size(sh[j + 1]) * sizeof(float));
    float *g = ws->grad[0] + goff;
    const float *dy = dout + OFF(L);
    if (m->residual)
        for (size_t j = 0; j < n_out; j++)
            g[j] = -dy[j];
    else
        memcpy(g, dy, n_out * sizeof *g);
    for (int i = L; i >= 0; i--) {
        /* here g is the gradient w.r.t. slot i (the input of layer i) */
        if (i < L) {
            const dae_layer *ly = &m->layers[i];
            int need_dx = i > 0 || din;
            if (ly->kind == DAE_LAYER_FLATTEN || ly->kind == DAE_LAYER_UNFLATTEN) {
                /* same memory, new shape, same values per sample */
            } else if (ly->kind == DAE_LAYER_ADD) {
                /* the gradient goes on unchanged, and to the source's output */
                size_t n = (size_t)nb * dae_shape_size(sh[i + 1]);
                float *sg = ws->skip_grad[ly->from] + OFF(ly->from + 1);
                for (size_t j = 0; j < n; j++)
                    sg[j] += g[j];
            } else if (ly->kind == DAE_LAYER_ACT) {
                layer_backward(m, ly, need_dx ? g : NULL, grads, g, ws->act[i] + OFF(i),
                               ws->act[i + 1] + OFF(i + 1), col, nb, sh[i]);
            } else {
                float *dx = need_dx ? ws->grad[1 - cg] + goff : NULL;
                layer_backward(m, ly, dx, grads, g, ws->act[i] + OFF(i),
                               ws->act[i + 1] + OFF(i + 1), col, nb, sh[i]);
                if (dx) {
                    g = dx;
                    cg = 1 - cg;
                }
            }
        }
        if (i > 0 && ws->src && ws->src[i - 1]) {
            /* slot i is an add's source: its gradient gathered from the adds */
            size_t n = (size_t)nb * dae_shape_size(sh[i]);
            const float *sg = ws->skip_grad[i - 1] + OFF(i);
            for (size_t j = 0; j < n; j++)
                g[j] += sg[j];
        }
        if (i == m->n_enc && dlatent && (i > 0 || din)) {
            size_t n = (size_t)nb * dae_shape_size(sh[i]);
            const float *dl = dlatent + OFF(i);
            for (size_t j = 0; j < n; j++)
                g[j] += dl[j];
        }
    }
    if (din) {
        size_t in_n = dae_shape_size(sh[0]), out_n = dae_shape_size(sh[L]);
        float *d = din + OFF(0);
        memcpy(d, g, (size_t)nb * in_n * sizeof *d);
        if (m->residual) /* the image channels of each input (the first out_n values) */
            for (int b = 0; b < nb; b++) {
                float *db = d + (size_t)b * in_n;
                const float *dyb = dy + (size_t)b * out_n;
                for (size_t j = 0; j < out_n; j++)
                    db[j] += dyb[j];
            }
    }
#undef OFF
}

int dae_model_backward(const dae_model *m, dae_workspace *ws, const float *dout,
                       const float *dlatent, float *grads, float *din, dae_error *err)
{
    if (!ws->training)
        return dae_error_set(err, DAE_EINVAL, "backward: workspace was not created for "
                             "training");
    if (!ws->fwd_B)
        return dae_error_set(err, DAE_EINVAL, "backward: no full forward pass to go back "
                             "through");
    int B = ws->fwd_B, T = batch_threads(ws, B);
    if (T == 1) {
        backward_slice(m, ws, dout, dlatent, grads, din, 0, B, ws->col[0]);
        return DAE_OK;
    }
    /* thread 0 adds into grads; the others into their own zeroed copies, summed after */
    pass_job jobs[DAE_MAX_THREADS];
    for (int t = 0; t < T; t++) {
        float *gt = grads;
        if (t > 0 && grads) {
            gt = ws->tgrad[t];
            memset(gt, 0, m->n_params * sizeof *gt);
        }
        jobs[t] = (pass_job){.m = m, .ws = ws, .backward = 1, .t = t, .dout = dout,
                             .dlatent = dlatent, .grads = gt, .din = din,
                             .n0 = (int)((long long)B * t / T),
                             .nb = (int)((long long)B * (t + 1) / T - (long long)B * t / T)};
    }
    run_jobs(jobs, T);
    if (grads)
        for (int t = 1; t < T; t++) {
            const float *gt = ws->tgrad[t];
            for (size_t j = 0; j < m->n_params; j++)
                grads[j] += gt[j];
        }
    return DAE_OK;
}

int dae_workspace_set_threads(dae_workspace *ws, int threads, dae_error *err)
{
    if (threads < 1 || threads > DAE_MAX_THREADS)
        return dae_error_set(err, DAE_EINVAL, "workspace: %d threads, expected 1..%d", threads,
                             DAE_MAX_THREADS);
    for (int t = 1; t < threads; t++) {
        if (!ws->col[t] && !(ws->col[t] = alloc_floats(ws->cap_col)))
            goto nomem;
        if (ws->training && !ws->tgrad[t] && !(ws->tgrad[t] = alloc_floats(ws->m->n_params)))
            goto nomem;
    }
    ws->threads = threads;
    return DAE_OK;
nomem:
    return dae_error_set(err, DAE_ENOMEM, "workspace: out of memory for %d threads' scratch",
                         threads);
}

int dae_workspace_threads(const dae_workspace *ws)
{
    return ws->threads;
}

/* The layers that run in bf16 when asked: the convolutions the taps kernel may take. */
static int bf16_layer(const dae_layer *L)
{
    return (L->kind == DAE_LAYER_CONV2D && dae_conv2d_bf16_layer(L->k, L->stride, L->pad)) ||
           (L->kind == DAE_LAYER_CONV_T2D &&
            dae_conv_t2d_bf16_layer(L->k, L->stride, L->pad, L->out_pad));
}

int dae_workspace_set_precision(dae_workspace *ws, dae_precision prec, dae_error *err)
{
    if (prec != DAE_PREC_FP32 && prec != DAE_PREC_BF16)
        return dae_error_set(err, DAE_EINVAL, "workspace: unknown precision %d", (int)prec);
    if (prec == DAE_PREC_BF16 && ws->training)
        return dae_error_set(err, DAE_EINVAL, "workspace: bf16 is for inference workspaces "
                             "(training computes in fp32)");
    if (prec == DAE_PREC_BF16 && !dae_bf16_supported()) {
        ws->prec = DAE_PREC_FP32; /* no AVX512-BF16 on this CPU: fp32 */
        return DAE_OK;
    }
    if (prec == DAE_PREC_BF16 && !ws->wbf) {
        const dae_model *m = ws->m;
        int n = n_layers(m);
        uint32_t **wbf = calloc((size_t)n, sizeof *wbf);
        if (!wbf)
            goto nomem;
        for (int i = 0; i < n; i++) {
            const dae_layer *L = &m->layers[i];
            if (!bf16_layer(L))
                continue;
            int tr = L->kind == DAE_LAYER_CONV_T2D;
            if (!(wbf[i] = malloc(dae_bf16_weights_size(L->in_ch, L->out_ch) * sizeof **wbf))) {
                for (int j = 0; j < i; j++)
                    free(wbf[j]);
                free(wbf);
                goto nomem;
            }
            dae_bf16_pack_weights(wbf[i], m->params + L->w_off, L->in_ch, L->out_ch, tr);
        }
        ws->wbf = wbf;
    }
    ws->prec = prec;
    return DAE_OK;
nomem:
    return dae_error_set(err, DAE_ENOMEM, "workspace: out of memory for the bf16 weights");
}

dae_precision dae_workspace_precision(const dae_workspace *ws)
{
    return ws->prec;
}
