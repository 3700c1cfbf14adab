/* score.c — anomaly scores: blurred/pooled reconstruction error, kNN distance to a bank of
 * normal images, z-normalised and combined (see score.h). */
#include "daed/core/score.h"

#include <ctype.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/core/blas.h"

#define MAX_RADIUS 24 /* ceil(3 * DAE_SCORE_MAX_BLUR) */

struct dae_scorer {
    const dae_model *m;     /* borrowed */
    dae_score_spec spec;    /* banks borrowed */
    dae_shape shape;        /* nominal input = output shape */
    size_t d;               /* values per image */
    float *norms[DAE_SCORE_MAX_TERMS]; /* owned: |bank row|^2 per knn term */
    int max_bank;           /* largest bank_n */
    int need_forward;       /* any recon term */
};

struct dae_score_ws {
    int max_batch;
    float *diff;   /* (max_batch, d) error or blurred query */
    float *blur;   /* (max_batch, d) */
    float *tmp;    /* h*w */
    float *sortv;  /* d */
    float *dist;   /* (max_batch, max_bank) */
    double *vals;  /* max_batch * (DAE_SCORE_MAX_TERMS + 1): term values, knn scratch */
};

/* ---- specs ---- */

dae_score_spec dae_score_spec_mse(void)
{
    dae_score_spec s;
    memset(&s, 0, sizeof s);
    s.n_terms = 1;
    s.term[0].kind = DAE_SCORE_RECON;
    s.term[0].std = 1;
    s.term[0].weight = 1;
    return s;
}

/* A non-negative decimal number at *p (no sign, no exponent); advances *p. */
static int read_num(const char **p, double *v)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
        return 0;
    char *end;
    *v = strtod(s, &end);
    /* strtod would also take "1e5" or "inf": keep to digits and one dot */
    for (const char *c = s; c < end; c++)
        if (!isdigit((unsigned char)*c) && *c != '.')
            return 0;
    *p = end;
    return isfinite(*v);
}

static int parse_term(const char *s, size_t n, dae_score_term *t, dae_error *err)
{
    char buf[64];
    if (n == 0 || n >= sizeof buf)
        return dae_error_set(err, DAE_EINVAL, "score spec: empty or overlong term \"%.*s\"",
                             (int)(n < 40 ? n : 40), s);
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(t, 0, sizeof *t);
    t->std = 1;
    t->weight = 1;
    const char *p = buf;
    double v;
    if (strncmp(p, "mse", 3) == 0) {
        t->kind = DAE_SCORE_RECON;
        p += 3;
    } else if (strncmp(p, "bmse", 4) == 0) {
        t->kind = DAE_SCORE_RECON;
        p += 4;
        if (!read_num(&p, &v) || v <= 0 || v > DAE_SCORE_MAX_BLUR)
            goto bad;
        t->blur = (float)v;
    } else if (strncmp(p, "knn", 3) == 0) {
        t->kind = DAE_SCORE_KNN;
        p += 3;
        if (!read_num(&p, &v) || v != floor(v) || v < 1 || v > DAE_SCORE_MAX_K)
            goto bad;
        t->k = (int)v;
        if (*p == 'b') {
            p++;
            if (!read_num(&p, &v) || v <= 0 || v > DAE_SCORE_MAX_BLUR)
                goto bad;
            t->blur = (float)v;
        }
    } else {
        goto bad;
    }
    if (t->kind == DAE_SCORE_RECON && strncmp(p, "@top", 4) == 0) {
        p += 4;
        if (!read_num(&p, &v) || v != floor(v) || v < 1 || v > 1e8)
            goto bad;
        t->top = (int)v;
    }
    if (*p)
        goto bad;
    return DAE_OK;
bad:
    return dae_error_set(err, DAE_EINVAL,
                         "score spec: bad term \"%s\" (expected mse, bmse<sigma>, "
                         "bmse<sigma>@top<n>, knn<k> or knn<k>b<sigma>; sigma in (0, %g], "
                         "k in [1, %d])", buf, (double)DAE_SCORE_MAX_BLUR, DAE_SCORE_MAX_K);
}

int dae_score_spec_parse(const char *text, dae_score_spec *spec, dae_error *err)
{
    memset(spec, 0, sizeof *spec);
    if (!text || !*text)
        return dae_error_set(err, DAE_EINVAL, "score spec: empty");
    const char *p = text;
    for (;;) {
        size_t n = strcspn(p, "+");
        if (spec->n_terms == DAE_SCORE_MAX_TERMS)
            return dae_error_set(err, DAE_EINVAL, "score spec \"%.60s\": more than %d terms",
                                 text, DAE_SCORE_MAX_TERMS);
        int rc = parse_term(p, n, &spec->term[spec->n_terms], err);
        if (rc)
            return rc;
        spec->n_terms++;
        if (!p[n])
            break;
        p += n + 1;
    }
    return DAE_OK;
}

void dae_score_spec_name(const dae_score_spec *spec, char *buf, size_t n)
{
    size_t k = 0;
    if (n == 0)
        return;
    buf[0] = '\0';
    for (int i = 0; i < spec->n_terms && k < n; i++) {
        const dae_score_term *t = &spec->term[i];
        const char *sep = i ? "+" : "";
        int w;
        if (t->kind == DAE_SCORE_KNN) {
            if (t->blur > 0)
                w = snprintf(buf + k, n - k, "%sknn%db%g", sep, t->k, (double)t->blur);
            else
                w = snprintf(buf + k, n - k, "%sknn%d", sep, t->k);
        } else {
            if (t->blur > 0)
                w = snprintf(buf + k, n - k, "%sbmse%g", sep, (double)t->blur);
            else
                w = snprintf(buf + k, n - k, "%smse", sep);
            if (w > 0 && (size_t)w < n - k && t->top > 0)
                w += snprintf(buf + k + (size_t)w, n - k - (size_t)w, "@top%d", t->top);
        }
        if (w < 0)
            break;
        k += (size_t)w;
    }
}

int dae_score_spec_check(const dae_score_spec *spec, int need_banks, dae_error *err)
{
    if (spec->n_terms < 1 || spec->n_terms > DAE_SCORE_MAX_TERMS)
        return dae_error_set(err, DAE_EINVAL, "score: %d terms, expected 1..%d", spec->n_terms,
                             DAE_SCORE_MAX_TERMS);
    for (int i = 0; i < spec->n_terms; i++) {
        const dae_score_term *t = &spec->term[i];
        if (t->kind != DAE_SCORE_RECON && t->kind != DAE_SCORE_KNN)
            return dae_error_set(err, DAE_EINVAL, "score term %d: unknown kind %d", i,
                                 (int)t->kind);
        if (!(t->blur >= 0 && t->blur <= DAE_SCORE_MAX_BLUR))
            return dae_error_set(err, DAE_EINVAL, "score term %d: blur %g, expected [0, %g]",
                                 i, (double)t->blur, (double)DAE_SCORE_MAX_BLUR);
        if (t->top < 0)
            return dae_error_set(err, DAE_EINVAL, "score term %d: top %d, expected >= 0", i,
                                 t->top);
        if (!isfinite(t->mean) || !isfinite(t->weight) || !(t->std > 0) || !isfinite(t->std))
            return dae_error_set(err, DAE_EINVAL,
                                 "score term %d: mean %g, std %g, weight %g; expected finite "
                                 "numbers with std > 0", i, t->mean, t->std, t->weight);
        if (t->kind != DAE_SCORE_KNN)
            continue;
        if (t->k < 1 || t->k > DAE_SCORE_MAX_K)
            return dae_error_set(err, DAE_EINVAL, "score term %d: k %d, expected 1..%d", i,
                                 t->k, DAE_SCORE_MAX_K);
        if (need_banks && (!t->bank || t->bank_n < t->k))
            return dae_error_set(err, DAE_EINVAL,
                                 "score term %d (knn%d): bank of %d images, needs at least %d",
                                 i, t->k, t->bank ? t->bank_n : 0, t->k);
    }
    return DAE_OK;
}

/* ---- building blocks ---- */

void dae_score_blur(float *out, const float *in, int n, int c, int h, int w, float sigma,
                    float *tmp)
{
    size_t plane = (size_t)h * (size_t)w;
    if (!(sigma > 0)) {
        memcpy(out, in, (size_t)n * (size_t)c * plane * sizeof *out);
        return;
    }
    int r = (int)ceil(3.0 * (double)sigma);
    if (r > MAX_RADIUS)
        r = MAX_RADIUS;
    float g[2 * MAX_RADIUS + 1];
    double sum = 0;
    for (int t = -r; t <= r; t++)
        sum += exp(-(double)t * t / (2.0 * (double)sigma * (double)sigma));
    for (int t = -r; t <= r; t++)
        g[t + r] = (float)(exp(-(double)t * t / (2.0 * (double)sigma * (double)sigma)) / sum);
    for (size_t p = 0; p < (size_t)n * (size_t)c; p++) {
        const float *src = in + p * plane;
        float *dst = out + p * plane;
        for (int y = 0; y < h; y++) {
            const float *row = src + (size_t)y * w;
            float *trow = tmp + (size_t)y * w;
            for (int x = 0; x < w; x++) {
                float a = 0;
                if (x >= r && x + r < w) {
                    for (int t = -r; t <= r; t++)
                        a += g[t + r] * row[x + t];
                } else {
                    for (int t = -r; t <= r; t++)
                        a += g[t + r] * row[dae_reflect101(x + t, w)];
                }
                trow[x] = a;
            }
        }
        for (int y = 0; y < h; y++) {
            float *drow = dst + (size_t)y * w;
            for (int x = 0; x < w; x++)
                drow[x] = 0;
            for (int t = -r; t <= r; t++) {
                const float *trow = tmp + (size_t)dae_reflect101(y + t, h) * w;
                float gt = g[t + r];
                for (int x = 0; x < w; x++)
                    drow[x] += gt * trow[x];
            }
        }
    }
}

static void swapf(float *a, float *b)
{
    float t = *a;
    *a = *b;
    *b = t;
}

double dae_score_top_mean(float *v, size_t n, int top)
{
    if (n == 0)
        return 0;
    size_t want = top <= 0 || (size_t)top >= n ? n : (size_t)top;
    if (want < n) {
        /* quickselect with a three-way partition (ties cannot make it quadratic): move the
         * `want` largest values to v[0..want) */
        ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kth = (ptrdiff_t)want - 1;
        while (lo < hi) {
            float a = v[lo], b = v[lo + (hi - lo) / 2], c = v[hi];
            float pivot = a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
            ptrdiff_t lt = lo, i = lo, gt = hi; /* [lo,lt) > p, [lt,i) == p, (gt,hi] < p */
            while (i <= gt) {
                if (v[i] > pivot)
                    swapf(&v[lt++], &v[i++]);
                else if (v[i] < pivot)
                    swapf(&v[i], &v[gt--]);
                else
                    i++;
            }
            if (kth < lt)
                hi = lt - 1;
            else if (kth > gt)
                lo = gt + 1;
            else
                break;
        }
    }
    double s = 0;
    for (size_t i = 0; i < want; i++)
        s += v[i];
    return s / (double)want;
}

void dae_score_knn(double *out, const float *q, int nq, const float *bank,
                   const float *bank_norm, int nb, size_t d, int k, float *dist)
{
    if (nq <= 0)
        return;
    /* dist = -2 q bank^T, then + |q|^2 + |b|^2 */
    dae_sgemm(0, 1, nq, nb, (int)d, -2.0f, q, (int)d, bank, (int)d, 0.0f, dist, nb);
    if (k > nb)
        k = nb;
    for (int i = 0; i < nq; i++) {
        const float *qi = q + (size_t)i * d;
        double qn = 0;
        for (size_t j = 0; j < d; j++)
            qn += (double)qi[j] * qi[j];
        float *di = dist + (size_t)i * nb;
        float best[DAE_SCORE_MAX_K];
        int nbest = 0;
        for (int j = 0; j < nb; j++) {
            double bn;
            if (bank_norm) {
                bn = bank_norm[j];
            } else {
                const float *bj = bank + (size_t)j * d;
                bn = 0;
                for (size_t e = 0; e < d; e++)
                    bn += (double)bj[e] * bj[e];
            }
            float v = (float)(qn + bn + di[j]);
            if (v < 0)
                v = 0;
            /* keep the k smallest, ascending */
            if (nbest < k || v < best[nbest - 1]) {
                int p = nbest < k ? nbest++ : k - 1;
                while (p > 0 && best[p - 1] > v) {
                    best[p] = best[p - 1];
                    p--;
                }
                best[p] = v;
            }
        }
        double s = 0;
        for (int j = 0; j < nbest; j++)
            s += sqrt((double)best[j]);
        out[i] = nbest ? s / nbest : 0;
    }
}

/* ---- the scorer ---- */

dae_scorer *dae_scorer_create(const dae_model *m, const dae_score_spec *spec, dae_error *err)
{
    if (dae_score_spec_check(spec, 1, err))
        return NULL;
    if (m->out_shape.c != m->in_shape.c || m->out_shape.h != m->in_shape.h ||
        m->out_shape.w != m->in_shape.w) {
        dae_error_set(err, DAE_ESHAPE,
                      "score: the model maps [%d,%d,%d] to [%d,%d,%d]; a reconstruction score "
                      "needs the output shape to equal the input shape", m->in_shape.c,
                      m->in_shape.h, m->in_shape.w, m->out_shape.c, m->out_shape.h,
                      m->out_shape.w);
        return NULL;
    }
    dae_scorer *s = calloc(1, sizeof *s);
    if (!s) {
        dae_error_set(err, DAE_ENOMEM, "score: out of memory");
        return NULL;
    }
    s->m = m;
    s->spec = *spec;
    s->shape = m->in_shape;
    s->d = dae_shape_size(m->in_shape);
    for (int i = 0; i < spec->n_terms; i++) {
        const dae_score_term *t = &spec->term[i];
        if (t->kind == DAE_SCORE_RECON) {
            s->need_forward = 1;
            continue;
        }
        if (!(s->norms[i] = malloc((size_t)t->bank_n * sizeof(float)))) {
            dae_error_set(err, DAE_ENOMEM, "score: out of memory for a bank of %d images",
                          t->bank_n);
            dae_scorer_free(s);
            return NULL;
        }
        for (int j = 0; j < t->bank_n; j++) {
            const float *b = t->bank + (size_t)j * s->d;
            double a = 0;
            for (size_t e = 0; e < s->d; e++)
                a += (double)b[e] * b[e];
            s->norms[i][j] = (float)a;
        }
        if (t->bank_n > s->max_bank)
            s->max_bank = t->bank_n;
    }
    return s;
}

void dae_scorer_free(dae_scorer *s)
{
    if (!s)
        return;
    for (int i = 0; i < DAE_SCORE_MAX_TERMS; i++)
        free(s->norms[i]);
    free(s);
}

const dae_score_spec *dae_scorer_spec(const dae_scorer *s)
{
    return &s->spec;
}

const dae_model *dae_scorer_model(const dae_scorer *s)
{
    return s->m;
}

size_t dae_scorer_image_values(const dae_scorer *s)
{
    return s->d;
}

dae_score_ws *dae_score_ws_create(const dae_scorer *s, int max_batch, dae_error *err)
{
    if (max_batch < 1 || (size_t)max_batch > SIZE_MAX / 4 / (s->d + (size_t)s->max_bank + 8)) {
        dae_error_set(err, DAE_EINVAL, "score workspace: batch %d out of range", max_batch);
        return NULL;
    }
    dae_score_ws *w = calloc(1, sizeof *w);
    size_t bd = (size_t)max_batch * s->d;
    if (!w || !(w->diff = malloc(bd * sizeof(float))) ||
        !(w->blur = malloc(bd * sizeof(float))) ||
        !(w->tmp = malloc((size_t)s->shape.h * (size_t)s->shape.w * sizeof(float))) ||
        !(w->sortv = malloc(s->d * sizeof(float))) ||
        !(w->dist = malloc(((size_t)max_batch * (size_t)s->max_bank + 1) * sizeof(float))) ||
        !(w->vals = malloc((size_t)max_batch * (DAE_SCORE_MAX_TERMS + 1) * sizeof(double)))) {
        dae_score_ws_free(w);
        dae_error_set(err, DAE_ENOMEM, "score workspace: out of memory for batch %d",
                      max_batch);
        return NULL;
    }
    w->max_batch = max_batch;
    return w;
}

void dae_score_ws_free(dae_score_ws *w)
{
    if (!w)
        return;
    free(w->diff);
    free(w->blur);
    free(w->tmp);
    free(w->sortv);
    free(w->dist);
    free(w->vals);
    free(w);
}

double dae_score_combine(const dae_score_spec *spec, const double *terms)
{
    double s = 0;
    for (int i = 0; i < spec->n_terms; i++) {
        const dae_score_term *t = &spec->term[i];
        s += t->weight * (terms[i] - t->mean) / t->std;
    }
    return s;
}

int dae_score_batch(const dae_scorer *s, dae_workspace *mws, dae_score_ws *w, const float *x,
                    int B, double *scores, double *terms, float *maps, dae_error *err)
{
    const float *y = NULL;
    if (B < 0 || B > w->max_batch)
        return dae_error_set(err, DAE_ESHAPE, "score: batch of %d, the workspace holds %d", B,
                             w->max_batch);
    if (B > 0 && (s->need_forward || maps)) {
        dae_shape os, sh = s->shape;
        int rc = dae_model_forward(s->m, mws, x, B, sh, &y, &os, err);
        if (rc)
            return rc;
        if (os.c != sh.c || os.h != sh.h || os.w != sh.w)
            return dae_error_set(err, DAE_EINTERNAL, "score: model output [%d,%d,%d], expected "
                                 "[%d,%d,%d]", os.c, os.h, os.w, sh.c, sh.h, sh.w);
    }
    return dae_score_outputs(s, w, x, y, B, scores, terms, maps, err);
}

int dae_score_outputs(const dae_scorer *s, dae_score_ws *w, const float *x, const float *y,
                      int B, double *scores, double *terms, float *maps, dae_error *err)
{
    if (B < 0 || B > w->max_batch)
        return dae_error_set(err, DAE_ESHAPE, "score: batch of %d, the workspace holds %d", B,
                             w->max_batch);
    if (B == 0)
        return DAE_OK;
    const dae_shape sh = s->shape;
    const size_t d = s->d;
    const int nt = s->spec.n_terms;
    int map_done = 0;
    if (s->need_forward || maps) {
        if (!y)
            return dae_error_set(err, DAE_EINVAL, "score: this score needs the model's output");
        /* y - x with the output clipped to [0,1], as the calibration MSE */
        for (size_t i = 0; i < (size_t)B * d; i++) {
            float o = y[i] < 0 ? 0 : y[i] > 1 ? 1 : y[i];
            w->diff[i] = o - x[i];
        }
    }
    for (int t = 0; t < nt; t++) {
        const dae_score_term *tm = &s->spec.term[t];
        if (tm->kind == DAE_SCORE_RECON) {
            const float *e = w->diff;
            if (tm->blur > 0) {
                dae_score_blur(w->blur, w->diff, B, sh.c, sh.h, sh.w, tm->blur, w->tmp);
                e = w->blur;
            }
            for (int b = 0; b < B; b++) {
                const float *eb = e + (size_t)b * d;
                for (size_t i = 0; i < d; i++)
                    w->sortv[i] = eb[i] * eb[i];
                if (maps && !map_done)
                    memcpy(maps + (size_t)b * d, w->sortv, d * sizeof(float));
                w->vals[(size_t)b * nt + t] = dae_score_top_mean(w->sortv, d, tm->top);
            }
            map_done = 1;
        } else {
            const float *q = x;
            if (tm->blur > 0) {
                dae_score_blur(w->blur, x, B, sh.c, sh.h, sh.w, tm->blur, w->tmp);
                q = w->blur;
            }
            double *kv = w->vals + (size_t)B * nt; /* vals has B more doubles past B*nt */
            dae_score_knn(kv, q, B, tm->bank, s->norms[t], tm->bank_n, d, tm->k, w->dist);
            for (int b = 0; b < B; b++)
                w->vals[(size_t)b * nt + t] = kv[b];
        }
    }
    if (maps && !map_done)
        for (size_t i = 0; i < (size_t)B * d; i++)
            maps[i] = w->diff[i] * w->diff[i];
    for (int b = 0; b < B; b++) {
        const double *v = w->vals + (size_t)b * nt;
        if (terms)
            memcpy(terms + (size_t)b * nt, v, (size_t)nt * sizeof *v);
        if (scores)
            scores[b] = dae_score_combine(&s->spec, v);
    }
    return DAE_OK;
}
