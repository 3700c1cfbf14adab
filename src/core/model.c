/* model.c — the autoencoder: layer chain and shape inference, parameters and their
 * initialisation. Workspaces are in workspace.c, the passes in model_run.c. */
#include "daed/core/model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/rng.h"
#include "model_internal.h"

void dae_mdl_layer_label(int n_enc, int i, char *buf, size_t n)
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
int dae_mdl_layer_shape(const dae_layer *L, dae_shape in, dae_shape *out, const char *name,
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
    dae_mdl_layer_label(m->n_enc, j, src, sizeof src);
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
        dae_mdl_layer_label(m->n_enc, i, name, sizeof name);
        if (m->layers[i].kind == DAE_LAYER_ADD)
            rc = add_check(m, i, from, seen, s, name, err);
        if (!rc)
            rc = dae_mdl_layer_shape(&m->layers[i], s, &s, name, err);
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
        if (dae_mdl_layer_shape(&m->layers[i], a, &a, "", NULL) ||
            dae_mdl_layer_shape(&m->layers[i], b, &b, "", NULL))
            return 0;
        if (a.c != b.c || b.h != 2 * a.h || b.w != 3 * a.w)
            return 0;
    }
    if (m->residual && (a.c != dae_model_image_channels(m) || a.h != D || a.w != D))
        return 0;
    return 1;
}

/* Each layer of m checked (layer_validate, add sources) and given its place in the
 * parameter array: w_off, n_w, b_off, n_b; m->n_params the total. */
static int layout_params(dae_model *m, dae_error *err)
{
    int n_enc = m->n_enc, n_dec = m->n_dec;
    size_t off = 0;
    for (int i = 0; i < n_enc + n_dec; i++) {
        dae_layer *L = &m->layers[i];
        char name[32];
        dae_mdl_layer_label(n_enc, i, name, sizeof name);
        if (layer_validate(L, name, err))
            return -1;
        if (L->kind == DAE_LAYER_ADD && (L->from < 0 || L->from >= i)) {
            dae_error_set(err, DAE_EINVAL, "%s (add): from %d, expected an earlier layer "
                          "0..%d (encoder then decoder layers, counted from 0)",
                          name, L->from, i - 1);
            return -1;
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
            return -1;
        }
        L->w_off = off;
        L->n_w = nw;
        L->b_off = off + nw;
        L->n_b = nb;
        off += nw + nb;
    }
    m->n_params = off;
    return DAE_OK;
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

    if (layout_params(m, err))
        goto fail;

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

static const char *act_name(dae_act a)
{
    switch (a) {
    case DAE_ACT_IDENTITY: return "identity";
    case DAE_ACT_RELU: return "relu";
    case DAE_ACT_LEAKY_RELU: return "leaky_relu";
    case DAE_ACT_TANH: return "tanh";
    case DAE_ACT_SIGMOID: return "sigmoid";
    }
    return "?";
}

void dae_layer_describe(const dae_layer *l, char *buf, size_t n)
{
    switch (l->kind) {
    case DAE_LAYER_LINEAR:
        snprintf(buf, n, "linear %d -> %d", l->in_f, l->out_f);
        break;
    case DAE_LAYER_CONV2D:
        snprintf(buf, n, "conv2d %d -> %d, k%d s%d p%d", l->in_ch, l->out_ch, l->k, l->stride,
                 l->pad);
        break;
    case DAE_LAYER_CONV_T2D:
        snprintf(buf, n, "conv_transpose2d %d -> %d, k%d s%d p%d op%d", l->in_ch, l->out_ch,
                 l->k, l->stride, l->pad, l->out_pad);
        break;
    case DAE_LAYER_ACT:
        if (l->act == DAE_ACT_LEAKY_RELU)
            snprintf(buf, n, "leaky_relu %g", (double)l->slope);
        else
            snprintf(buf, n, "%s", act_name(l->act));
        break;
    case DAE_LAYER_UPSAMPLE:
        snprintf(buf, n, "upsample x2 %s", l->bilinear ? "bilinear" : "nearest");
        break;
    case DAE_LAYER_FLATTEN:
        snprintf(buf, n, "flatten");
        break;
    case DAE_LAYER_UNFLATTEN:
        snprintf(buf, n, "unflatten (%d,%d,%d)", l->unflat.c, l->unflat.h, l->unflat.w);
        break;
    case DAE_LAYER_PIXEL_UNSHUFFLE:
        snprintf(buf, n, "pixel_unshuffle /%d", l->factor);
        break;
    case DAE_LAYER_PIXEL_SHUFFLE:
        snprintf(buf, n, "pixel_shuffle x%d", l->factor);
        break;
    case DAE_LAYER_ADD:
        snprintf(buf, n, "add output of layer %d", l->from);
        break;
    default:
        snprintf(buf, n, "layer kind %d", (int)l->kind);
    }
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

void dae_model_init_scheme(dae_model *m, uint64_t seed, dae_init_scheme scheme)
{
    dae_rng r;
    dae_rng_seed(&r, seed);
    for (int i = 0; i < n_layers(m); i++) {
        const dae_layer *L = &m->layers[i];
        if (!L->n_w)
            continue;
        /* PyTorch: kaiming_uniform(a=sqrt(5)): gain sqrt(2/6), bound gain*sqrt(3/fan_in) =
         * 1/sqrt(fan_in); the bias bound is the same. He: gain sqrt(2), biases 0. */
        double fan = (double)layer_fan_in(L);
        float bound = (float)(scheme == DAE_INIT_HE ? sqrt(6.0 / fan) : 1.0 / sqrt(fan));
        float bbound = scheme == DAE_INIT_HE ? 0.0f : bound;
        float *w = m->params + L->w_off, *b = m->params + L->b_off;
        for (size_t j = 0; j < L->n_w; j++)
            w[j] = (2.0f * dae_rng_uniform(&r) - 1.0f) * bound;
        for (size_t j = 0; j < L->n_b; j++)
            b[j] = (2.0f * dae_rng_uniform(&r) - 1.0f) * bbound;
    }
}

void dae_model_init_params(dae_model *m, uint64_t seed)
{
    dae_model_init_scheme(m, seed, DAE_INIT_PYTORCH);
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
    dae_mdl_layer_label(m->n_enc, i, label, sizeof label);
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
        if (dae_mdl_layer_shape(L, s, &o, "", NULL))
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
