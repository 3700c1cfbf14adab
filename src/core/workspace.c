/* workspace.c — a model's per-thread workspaces (model.h): the buffer plan for a batch and
 * input size, threads, precision (inference and mixed-precision training). */
#include "daed/core/model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/rng.h"
#include "model_internal.h"

dae_conv_geom dae_mdl_conv_geom(const dae_layer *L, dae_shape in, int B)
{
    return (dae_conv_geom){.B = B, .C = in.c, .H = in.h, .W = in.w, .OC = L->out_ch,
                           .k = L->k, .s = L->stride, .p = L->pad,
                           .op = L->kind == DAE_LAYER_CONV_T2D ? L->out_pad : 0};
}

/* Exact im2col scratch of layer L for B samples of shape `in` (training: of a bf16 step
 * too). */
size_t dae_mdl_layer_col_size(const dae_layer *L, dae_shape in, int B, int training)
{
    dae_conv_geom g = dae_mdl_conv_geom(L, in, B);
    if (L->kind == DAE_LAYER_CONV2D)
        return training ? dae_conv2d_train_col_size(&g) : dae_conv2d_col_size(&g);
    if (L->kind == DAE_LAYER_CONV_T2D)
        return dae_conv_t2d_col_size(&g);
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
        if (dae_mdl_layer_shape(&m->layers[i], s, &o, "", NULL))
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
    for (int i = 0; i < n_layers(ws->m); i++) {
        free(ws->wbf ? ws->wbf[i] : NULL);
        free(ws->wat ? ws->wat[i] : NULL);
        free(ws->wad ? ws->wad[i] : NULL);
    }
    free(ws->wbf);
    free(ws->wat);
    free(ws->wad);
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

/* The training buffers of ws: an activation slot per layer input (slot[i] floats per
 * sample; flatten/unflatten and in-place activations share storage), two gradient buffers
 * of `big` floats per sample, the residual output. Nonzero when out of memory. */
static int training_buffers(dae_workspace *ws, const size_t *slot, size_t big)
{
    const dae_model *m = ws->m;
    int L = n_layers(m);
    size_t B = (size_t)ws->max_batch;
    ws->act = calloc((size_t)L + 1, sizeof *ws->act);
    ws->own = calloc((size_t)L + 1, sizeof *ws->own);
    ws->cap_act = calloc((size_t)L + 1, sizeof *ws->cap_act);
    int *act_out = calloc((size_t)L + 1, sizeof *act_out); /* storage holds an act output */
    if (!ws->act || !ws->own || !ws->cap_act || !act_out) {
        free(act_out);
        return -1;
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
            return -1;
        if (need > ws->cap_act[ws->own[i]])
            ws->cap_act[ws->own[i]] = need;
    }
    for (int i = 0; i <= L; i++)
        if (ws->own[i] == i && !(ws->act[i] = alloc_floats(ws->cap_act[i])))
            return -1;
    for (int i = 0; i <= L; i++) {
        ws->act[i] = ws->act[ws->own[i]];
        ws->cap_act[i] = ws->cap_act[ws->own[i]];
    }
    if (!mul_ok(big, B, &ws->cap_grad) || !(ws->grad[0] = alloc_floats(ws->cap_grad)) ||
        !(ws->grad[1] = alloc_floats(ws->cap_grad)))
        return -1;
    if (m->residual && !(ws->res_out = alloc_floats(ws->cap_act[L])))
        return -1;
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
        if (training_buffers(ws, slot, big))
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

/* The layers whose training steps may run on AMX tiles: 3x3 stride-1 'same' convolutions
 * of 8 or more channels in and out (whether a call does depends on its image too:
 * dae_conv2d_amx_train). */
static int amx_layer(const dae_layer *L)
{
    return L->kind == DAE_LAYER_CONV2D && L->k == 3 && L->stride == 1 && L->pad == 1 &&
           L->in_ch >= 8 && L->out_ch >= 8;
}

/* uint16 or uint32 buffers per layer (NULL where `want` says no), all or none */
static void **alloc_per_layer(const dae_model *m, int (*want)(const dae_layer *),
                              size_t (*bytes)(const dae_layer *))
{
    int n = n_layers(m);
    void **p = calloc((size_t)n, sizeof *p);
    for (int i = 0; p && i < n; i++)
        if (want(&m->layers[i]) && !(p[i] = malloc(bytes(&m->layers[i])))) {
            for (int j = 0; j < i; j++)
                free(p[j]);
            free(p);
            return NULL;
        }
    return p;
}

static size_t pairs_bytes(const dae_layer *L)
{
    return dae_bf16_weights_size(L->in_ch, L->out_ch) * sizeof(uint32_t);
}

static size_t tiles_bytes(const dae_layer *L)
{
    return dae_amx_tiles_size(L->in_ch, L->out_ch) * sizeof(uint16_t);
}

static size_t din_tiles_bytes(const dae_layer *L)
{
    return dae_amx_tiles_size(L->out_ch, L->in_ch) * sizeof(uint16_t);
}

/* The bf16 copies of the weights for the workspace's kind (NULL where present already). */
static int alloc_bf16(dae_workspace *ws)
{
    if (!ws->training) {
        if (!ws->wbf)
            ws->wbf = (uint32_t **)alloc_per_layer(ws->m, bf16_layer, pairs_bytes);
        return ws->wbf != NULL;
    }
    if (!ws->wat)
        ws->wat = (uint16_t **)alloc_per_layer(ws->m, amx_layer, tiles_bytes);
    if (!ws->wad)
        ws->wad = (uint16_t **)alloc_per_layer(ws->m, amx_layer, din_tiles_bytes);
    return ws->wat && ws->wad;
}

int dae_workspace_set_precision(dae_workspace *ws, dae_precision prec, dae_error *err)
{
    if (prec != DAE_PREC_FP32 && prec != DAE_PREC_BF16)
        return dae_error_set(err, DAE_EINVAL, "workspace: unknown precision %d", (int)prec);
    int can = ws->training ? dae_amx_supported() : dae_bf16_supported();
    if (prec == DAE_PREC_BF16 && !can) { /* no AVX512-BF16 (AMX to train) here: fp32 */
        ws->prec = DAE_PREC_FP32;
        return DAE_OK;
    }
    if (prec == DAE_PREC_BF16 && (ws->training ? !ws->wat || !ws->wad : !ws->wbf)) {
        if (!alloc_bf16(ws))
            return dae_error_set(err, DAE_ENOMEM, "workspace: out of memory for the bf16 "
                                 "weights");
        dae_workspace_pack_bf16(ws);
    }
    ws->prec = prec;
    return DAE_OK;
}

void dae_workspace_pack_bf16(dae_workspace *ws)
{
    const dae_model *m = ws->m;
    for (int i = 0; i < n_layers(m); i++) {
        const dae_layer *L = &m->layers[i];
        const float *w = m->params + L->w_off;
        if (ws->wbf && ws->wbf[i])
            dae_bf16_pack_weights(ws->wbf[i], w, L->in_ch, L->out_ch,
                                  L->kind == DAE_LAYER_CONV_T2D);
        if (ws->wat && ws->wat[i])
            dae_amx_pack_tiles(ws->wat[i], w, L->in_ch, L->out_ch, 0);
        if (ws->wad && ws->wad[i])
            dae_amx_pack_tiles(ws->wad[i], w, L->in_ch, L->out_ch, 1);
    }
}

int dae_workspace_amx_layers(const dae_workspace *ws, int *total)
{
    int n = 0, conv = 0;
    for (int i = 0; i < n_layers(ws->m); i++) {
        conv += ws->m->layers[i].kind == DAE_LAYER_CONV2D ||
                ws->m->layers[i].kind == DAE_LAYER_CONV_T2D;
        n += ws->wat && ws->wat[i] != NULL;
    }
    if (total)
        *total = conv;
    return n;
}

dae_precision dae_workspace_precision(const dae_workspace *ws)
{
    return ws->prec;
}
