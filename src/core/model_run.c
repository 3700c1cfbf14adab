/* model_run.c — a model's passes over a workspace (model.h): forward, encode, decode and
 * backward, one batch split over the workspace's threads. */
#include "daed/core/model.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/rng.h"
#include "model_internal.h"

/* Layer L on B samples; `fuse` (may be NULL) is the activation layer that follows L and is
 * applied by L's kernel as it writes its output. cols/threads: conv2d may split one pass
 * over threads (row bands); the other kernels use cols[0]. */
static void layer_forward(const dae_model *m, const dae_layer *L, const dae_layer *fuse,
                          const dae_workspace *ws, float *y, const float *x, const float *skip,
                          float *const *cols, int threads, int B, dae_shape in)
{
    int bf = ws->prec == DAE_PREC_BF16;
    const uint32_t *wbf = bf && ws->wbf ? ws->wbf[L - m->layers] : NULL;
    const uint16_t *wat = bf && ws->wat ? ws->wat[L - m->layers] : NULL;
    const float *w = m->params + L->w_off, *b = m->params + L->b_off;
    dae_act fa = fuse ? fuse->act : DAE_ACT_IDENTITY;
    float fs = fuse ? fuse->slope : 0.0f;
    dae_conv_geom g = dae_mdl_conv_geom(L, in, B);
    switch (L->kind) {
    case DAE_LAYER_LINEAR:
        dae_linear_forward(y, x, w, b, B, L->in_f, L->out_f);
        break;
    case DAE_LAYER_CONV2D:
        if (wat)
            dae_conv2d_forward_tiles(y, x, w, wat, b, cols, threads, &g, fa, fs);
        else
            dae_conv2d_forward_ex(y, x, w, wbf, b, cols, threads, &g, fa, fs);
        break;
    case DAE_LAYER_CONV_T2D:
        dae_conv_t2d_forward_ex(y, x, w, wbf, b, cols[0], &g, fa, fs);
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

static void layer_backward(const dae_model *m, const dae_workspace *ws, const dae_layer *L,
                           float *dx, float *grads, const float *dy, const float *x,
                           const float *y, float *col, int B, dae_shape in)
{
    const float *w = m->params + L->w_off;
    const uint16_t *wad =
        ws->prec == DAE_PREC_BF16 && ws->wad ? ws->wad[L - m->layers] : NULL;
    float *dw = grads ? grads + L->w_off : NULL, *db = grads ? grads + L->b_off : NULL;
    dae_conv_geom g = dae_mdl_conv_geom(L, in, B);
    switch (L->kind) {
    case DAE_LAYER_LINEAR:
        dae_linear_backward(dx, dw, db, dy, x, w, B, L->in_f, L->out_f);
        break;
    case DAE_LAYER_CONV2D:
        dae_conv2d_backward_tiles(dx, dw, db, dy, x, w, wad, col, &g);
        break;
    case DAE_LAYER_CONV_T2D:
        dae_conv_t2d_backward(dx, dw, db, dy, x, w, col, &g);
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
        dae_mdl_layer_label(m->n_enc, i, name, sizeof name);
        int rc = dae_mdl_layer_shape(&m->layers[i], ws->shapes[i], &ws->shapes[i + 1], name, err);
        if (rc)
            return rc;
        size_t colv = dae_mdl_layer_col_size(&m->layers[i], ws->shapes[i], B, ws->training);
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

/* Inference on one thread: may layer i run the AMX kernel that takes and gives bf16 pair
 * planes (dae_conv3x3_forward_amx_pairs), image by image: a convolution with bf16 weights
 * that AMX runs, with its fused activation. */
static int pairs_layer(const dae_model *m, const dae_workspace *ws, int i, int to,
                       int threads)
{
    const dae_layer *L = &m->layers[i];
    if (L->kind != DAE_LAYER_CONV2D || ws->prec != DAE_PREC_BF16 || !ws->wbf || !ws->wbf[i] ||
        threads != 1)
        return 0;
    int f = fused_act(m, ws, i, to);
    dae_conv_geom g = dae_mdl_conv_geom(L, ws->shapes[i], 1);
    return dae_conv2d_pairs_ok(&g, f ? m->layers[i + 1].act : DAE_ACT_IDENTITY);
}

/* Does pairs_layer i (f: its fused activation) hand its output to the next layer as pair
 * planes: the next is one too, nothing else reads the output (the latent copy, an add),
 * and the planes fit in room floats of a ping-pong buffer. */
static int pairs_out(const dae_model *m, const dae_workspace *ws, int i, int f, int to,
                     int threads, size_t room)
{
    int j = i + f + 1;
    const dae_shape *s = &ws->shapes[j];
    return j < to && j != m->n_enc && !(ws->src && ws->src[i + f]) &&
           pairs_layer(m, ws, j, to, threads) &&
           dae_conv3x3_amx_pairs_size(s->c, s->h, s->w) <= room;
}

/* pairs_layer i on nb images y <- x, each as fp32 planes (an image after another) or pair
 * planes (out_pairs, in_pairs: one image every sb floats). */
static void layer_pairs(const dae_model *m, const dae_workspace *ws, int i,
                        const dae_layer *fuse, float *y, int out_pairs, const float *x,
                        int in_pairs, int nb, size_t sb, float *col)
{
    const dae_layer *L = &m->layers[i];
    dae_conv_geom g = dae_mdl_conv_geom(L, ws->shapes[i], 1);
    size_t xs = in_pairs ? sb : dae_shape_size(ws->shapes[i]);
    size_t ys = out_pairs ? sb : (size_t)g.OC * (size_t)g.H * (size_t)g.W;
    for (int n = 0; n < nb; n++) {
        float *yn = y + (size_t)n * ys;
        const float *xn = x + (size_t)n * xs;
        dae_conv3x3_forward_amx_pairs(out_pairs ? NULL : yn,
                                      out_pairs ? (uint32_t *)(void *)yn : NULL,
                                      in_pairs ? NULL : xn,
                                      in_pairs ? (const uint32_t *)(const void *)xn : NULL,
                                      ws->wbf[i], L->n_b ? m->params + L->b_off : NULL, col,
                                      &g, fuse ? fuse->act : DAE_ACT_IDENTITY,
                                      fuse ? fuse->slope : 0.0f);
    }
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
    int pairs = 0; /* cur holds pair planes (pairs_out), not fp32 planes */
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
            const dae_layer *fuse = f ? &m->layers[i + 1] : NULL;
            float *y = ws->buf[nbuf] + (size_t)n0 * sb;
            if (pairs || pairs_layer(m, ws, i, to, threads)) {
                int out = pairs_out(m, ws, i, f, to, threads, sb);
                layer_pairs(m, ws, i, fuse, y, out, cur + curoff, pairs, nb, sb, cols[0]);
                pairs = out;
            } else {
                layer_forward(m, L, fuse, ws, y, cur + curoff, skip, cols, threads, nb, sh[i]);
            }
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
            dae_mdl_layer_label(m->n_enc, i, a, sizeof a);
            dae_mdl_layer_label(m->n_enc, m->layers[i].from, b, sizeof b);
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
                layer_backward(m, ws, ly, need_dx ? g : NULL, grads, g, ws->act[i] + OFF(i),
                               ws->act[i + 1] + OFF(i + 1), col, nb, sh[i]);
            } else {
                float *dx = need_dx ? ws->grad[1 - cg] + goff : NULL;
                layer_backward(m, ws, ly, dx, grads, g, ws->act[i] + OFF(i),
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
