/* calibration.c — a model's "calibration" and "score" config blocks: parsed from the
 * config, the percentile of a score, and written back (dae_config_set_score). */
#include "daed/io/modelfile.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daed/io/json.h"
#include "modelfile_internal.h"

/* ---- calibration ---- */

double dae_calibration_percentile(const dae_calibration *c, double score)
{
    if (!c || c->n <= 0 || isnan(score))
        return -1;
    const double *L = c->level, *V = c->value;
    int n = c->n;
    if (score <= V[0]) {
        if (V[0] <= 0 || score <= 0)
            return score < V[0] ? 0 : 100 * L[0];
        return 100 * L[0] * score / V[0];
    }
    for (int i = 0; i + 1 < n; i++) {
        if (score <= V[i + 1]) {
            double span = V[i + 1] - V[i];
            double t = span > 0 ? (score - V[i]) / span : 1;
            return 100 * (L[i] + t * (L[i + 1] - L[i]));
        }
    }
    /* Beyond the highest quantile: approach 100 smoothly instead of jumping to it. */
    double top = 100 * L[n - 1];
    if (V[n - 1] <= 0 || isinf(score))
        return 100;
    return 100 - (100 - top) * V[n - 1] / score;
}


static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static const char *const term_fields[] = {"kind", "blur", "top", "k", "mean", "std", "weight",
                                           "tensor"};

/* A finite number field in [lo, hi]; absent: dflt. */
static int term_num(const cJSON *o, const char *key, double lo, double hi, double dflt,
                    double *out, const char *where, dae_error *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = dflt;
        return DAE_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        char txt[80];
        dae_mf_json_text(v, txt, sizeof txt);
        return dae_error_set(err, DAE_EFORMAT, "%s: %s is %s, expected a number in [%g, %g]",
                             where, key, txt, lo, hi);
    }
    *out = v->valuedouble;
    return DAE_OK;
}

/* calibration.terms[i] -> term i of spec (its kind, blur, top and k must match the score
 * string's term i) and, for knn terms, the tensor name. */
static int parse_term(const cJSON *o, int i, dae_score_term *t, char *tensor, dae_error *err)
{
    char where[64];
    snprintf(where, sizeof where, "config: calibration.terms[%d]", i);
    if (!cJSON_IsObject(o))
        return dae_error_set(err, DAE_EFORMAT, "%s: not an object", where);
    int rc = dae_mf_check_dup_keys(o, where, err);
    if (rc)
        return rc;
    for (const cJSON *c = o->child; c; c = c->next) {
        int known = 0;
        for (size_t k = 0; k < sizeof term_fields / sizeof term_fields[0]; k++)
            known |= strcmp(c->string, term_fields[k]) == 0;
        if (!known)
            return dae_error_set(err, DAE_EFORMAT, "%s: unknown field \"%.40s\"", where,
                                 c->string);
    }
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const char *want = t->kind == DAE_SCORE_KNN ? "knn" : "recon";
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, want) != 0) {
        char txt[80];
        dae_mf_json_text(kind, txt, sizeof txt);
        return dae_error_set(err, DAE_EFORMAT,
                             "%s: kind is %s, expected \"%s\" (term %d of the score)", where,
                             kind ? txt : "missing", want, i);
    }
    double blur, top, k, mean, sd, weight;
    if ((rc = term_num(o, "blur", 0, DAE_SCORE_MAX_BLUR, 0, &blur, where, err)) ||
        (rc = term_num(o, "top", 0, 1e8, 0, &top, where, err)) ||
        (rc = term_num(o, "k", 1, DAE_SCORE_MAX_K, 1, &k, where, err)) ||
        (rc = term_num(o, "mean", -1e30, 1e30, 0, &mean, where, err)) ||
        (rc = term_num(o, "std", 1e-30, 1e30, 1, &sd, where, err)) ||
        (rc = term_num(o, "weight", -1e30, 1e30, 1, &weight, where, err)))
        return rc;
    if (top != floor(top) || k != floor(k))
        return dae_error_set(err, DAE_EFORMAT, "%s: top and k must be integers", where);
    if ((float)blur != t->blur || (t->kind == DAE_SCORE_RECON && (int)top != t->top) ||
        (t->kind == DAE_SCORE_KNN && (int)k != t->k))
        return dae_error_set(err, DAE_EFORMAT,
                             "%s: blur %g, top %g, k %g do not match the score's term %d", where,
                             blur, top, k, i);
    if (t->kind == DAE_SCORE_RECON && (cJSON_GetObjectItemCaseSensitive(o, "k") ||
                                       cJSON_GetObjectItemCaseSensitive(o, "tensor")))
        return dae_error_set(err, DAE_EFORMAT, "%s: a recon term has no k or tensor", where);
    if (t->kind == DAE_SCORE_KNN) {
        if (cJSON_GetObjectItemCaseSensitive(o, "top"))
            return dae_error_set(err, DAE_EFORMAT, "%s: a knn term has no top", where);
        const cJSON *tn = cJSON_GetObjectItemCaseSensitive(o, "tensor");
        if (!cJSON_IsString(tn) || strncmp(tn->valuestring, "score.", 6) != 0 ||
            strlen(tn->valuestring) < 7 ||
            strlen(tn->valuestring) >= DAE_SCORE_TENSOR_NAME_MAX) {
            char txt[80];
            dae_mf_json_text(tn, txt, sizeof txt);
            return dae_error_set(err, DAE_EFORMAT,
                                 "%s: tensor is %s, expected \"score.<name>\" (at most %d "
                                 "bytes)", where, tn ? txt : "missing",
                                 DAE_SCORE_TENSOR_NAME_MAX - 1);
        }
        snprintf(tensor, DAE_SCORE_TENSOR_NAME_MAX, "%s", tn->valuestring);
    }
    t->mean = mean;
    t->std = sd;
    t->weight = weight;
    return DAE_OK;
}

static int parse_score(const cJSON *c, const char *score, dae_score_spec *spec,
                       char (*tensor)[DAE_SCORE_TENSOR_NAME_MAX], dae_error *err)
{
    dae_error e2 = {0};
    if (dae_score_spec_parse(score, spec, &e2))
        return dae_error_set(err, DAE_EFORMAT, "config: calibration.score \"%.40s\": %s", score,
                             e2.msg);
    const cJSON *terms = cJSON_GetObjectItemCaseSensitive(c, "terms");
    if (!terms) {
        for (int i = 0; i < spec->n_terms; i++)
            if (spec->term[i].kind == DAE_SCORE_KNN)
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.score \"%.40s\" has a knn term, which "
                                     "needs \"terms\" naming its bank tensor", score);
        return DAE_OK;
    }
    if (!cJSON_IsArray(terms) || cJSON_GetArraySize(terms) != spec->n_terms)
        return dae_error_set(err, DAE_EFORMAT,
                             "config: calibration.terms must be a list of %d term objects (one "
                             "per term of \"%.40s\")", spec->n_terms, score);
    int i = 0;
    for (const cJSON *o = terms->child; o; o = o->next, i++) {
        int rc = parse_term(o, i, &spec->term[i], tensor[i], err);
        if (rc)
            return rc;
        for (int j = 0; j < i; j++)
            if (tensor[i][0] && strcmp(tensor[i], tensor[j]) == 0)
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.terms[%d]: tensor \"%s\" is already "
                                     "used by term %d", i, tensor[i], j);
    }
    return DAE_OK;
}

int dae_mf_parse_calibration(const cJSON *c, dae_calibration *cal, dae_score_spec *spec,
                             char (*tensor)[DAE_SCORE_TENSOR_NAME_MAX], dae_error *err)
{
    memset(cal, 0, sizeof *cal);
    snprintf(cal->score, sizeof cal->score, "mse");
    *spec = dae_score_spec_mse();
    if (!cJSON_IsObject(c))
        return dae_error_set(err, DAE_EFORMAT, "config: calibration is not an object");
    int rc = dae_mf_check_dup_keys(c, "config: calibration", err);
    if (rc)
        return rc;
    const cJSON *score = cJSON_GetObjectItemCaseSensitive(c, "score");
    if (score) {
        if (!cJSON_IsString(score) || strlen(score->valuestring) >= sizeof cal->score ||
            !score->valuestring[0])
            return dae_error_set(err, DAE_EFORMAT,
                                 "config: calibration.score must be a string of 1..%zu bytes",
                                 sizeof cal->score - 1);
        snprintf(cal->score, sizeof cal->score, "%s", score->valuestring);
    }
    if ((rc = parse_score(c, cal->score, spec, tensor, err)))
        return rc;
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(c, "quantiles");
    if (q) {
        if (!cJSON_IsObject(q))
            return dae_error_set(err, DAE_EFORMAT,
                                 "config: calibration.quantiles is not an object");
        if ((rc = dae_mf_check_dup_keys(q, "config: calibration.quantiles", err)))
            return rc;
        if (cJSON_GetArraySize(q) > DAE_CALIB_MAX)
            return dae_error_set(err, DAE_ELIMIT,
                                 "config: calibration.quantiles has %d entries, at most %d",
                                 cJSON_GetArraySize(q), DAE_CALIB_MAX);
        double pairs[DAE_CALIB_MAX][2];
        int n = 0;
        for (const cJSON *e = q->child; e; e = e->next) {
            const char *k = e->string;
            char *end = NULL;
            double pct = k[0] == 'p' && k[1] >= '0' && k[1] <= '9' ? strtod(k + 1, &end) : NAN;
            if (!end || *end || end == k + 1 || !(pct > 0 && pct < 100))
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.quantiles key \"%.40s\", expected "
                                     "\"p<percent>\" with 0 < percent < 100 (\"p99.9\")", k);
            if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble))
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.quantiles.%.40s is not a finite "
                                     "number", k);
            pairs[n][0] = pct / 100;
            pairs[n][1] = e->valuedouble;
            n++;
        }
        qsort(pairs, (size_t)n, sizeof pairs[0], cmp_double);
        for (int i = 0; i < n; i++) {
            if (i > 0 && pairs[i][0] == pairs[i - 1][0])
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.quantiles: level %g given twice",
                                     100 * pairs[i][0]);
            if (i > 0 && pairs[i][1] < pairs[i - 1][1])
                return dae_error_set(err, DAE_EFORMAT,
                                     "config: calibration.quantiles decrease: p%g = %g < "
                                     "p%g = %g", 100 * pairs[i][0], pairs[i][1],
                                     100 * pairs[i - 1][0], pairs[i - 1][1]);
            cal->level[i] = pairs[i][0];
            cal->value[i] = pairs[i][1];
        }
        cal->n = n;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "threshold");
    if (t) {
        if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble))
            return dae_error_set(err, DAE_EFORMAT,
                                 "config: calibration.threshold is not a finite number");
        cal->threshold = t->valuedouble;
    } else if (cal->n > 0) {
        /* p99 when present, else the highest quantile */
        cal->threshold = cal->value[cal->n - 1];
        for (int i = 0; i < cal->n; i++)
            if (fabs(cal->level[i] - 0.99) < 1e-9)
                cal->threshold = cal->value[i];
    }
    return DAE_OK;
}

/* A JSON number that reads back as exactly v (cJSON's own printer keeps 15 digits when
 * they are within an epsilon, which loses the last bits of a fitted statistic). */
static int add_exact(cJSON *obj, const char *key, double v)
{
    char buf[40];
    for (int p = 15; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    cJSON *n = isfinite(v) ? cJSON_CreateRaw(buf) : cJSON_CreateNull();
    return n && cJSON_AddItemToObject(obj, key, n);
}

/* Plain recon terms with identity normalisation: the score string says everything. */
static int spec_needs_terms(const dae_score_spec *spec)
{
    for (int i = 0; i < spec->n_terms; i++) {
        const dae_score_term *t = &spec->term[i];
        if (t->kind != DAE_SCORE_RECON || t->mean != 0 || t->std != 1 || t->weight != 1)
            return 1;
    }
    return 0;
}

char *dae_config_set_score(const char *config_json, const dae_calibration *c,
                           const dae_score_spec *spec, const dae_score_tensor *tensors,
                           int n_tensors, dae_error *err)
{
    char name[64], *out = NULL;
    cJSON *cfg = NULL;
    if (dae_score_spec_check(spec, 0, err))
        return NULL;
    dae_score_spec_name(spec, name, sizeof name);
    if (strlen(name) >= sizeof c->score) {
        dae_error_set(err, DAE_EINVAL, "score \"%s\": name longer than %zu bytes", name,
                      sizeof c->score - 1);
        return NULL;
    }
    if (!(cfg = cJSON_Parse(config_json)) || !cJSON_IsObject(cfg)) {
        dae_error_set(err, DAE_EFORMAT, "config is not a JSON object");
        goto done;
    }
    cJSON *cal = cJSON_GetObjectItemCaseSensitive(cfg, "calibration");
    if (!cJSON_IsObject(cal)) {
        cJSON_DeleteItemFromObjectCaseSensitive(cfg, "calibration");
        cal = cJSON_AddObjectToObject(cfg, "calibration");
    }
    static const char *const replaced[] = {"score", "terms", "quantiles", "threshold"};
    for (int i = 0; i < 4; i++)
        cJSON_DeleteItemFromObjectCaseSensitive(cal, replaced[i]);
    int ok = cal && cJSON_AddStringToObject(cal, "score", name) != NULL;
    if (ok && spec_needs_terms(spec)) {
        cJSON *terms = cJSON_AddArrayToObject(cal, "terms");
        int knn = 0;
        ok = terms != NULL;
        for (int i = 0; ok && i < spec->n_terms; i++) {
            const dae_score_term *t = &spec->term[i];
            cJSON *o = cJSON_CreateObject();
            ok = o && cJSON_AddItemToArray(terms, o);
            if (!ok)
                break;
            int is_knn = t->kind == DAE_SCORE_KNN;
            ok = cJSON_AddStringToObject(o, "kind", is_knn ? "knn" : "recon") &&
                 add_exact(o, "blur", (double)t->blur) &&
                 cJSON_AddNumberToObject(o, is_knn ? "k" : "top", is_knn ? t->k : t->top) &&
                 add_exact(o, "mean", t->mean) && add_exact(o, "std", t->std) &&
                 add_exact(o, "weight", t->weight);
            if (ok && is_knn) {
                if (knn >= n_tensors) {
                    dae_error_set(err, DAE_EINVAL, "score \"%s\": term %d is knn but only %d "
                                  "tensors are given", name, i, n_tensors);
                    goto done;
                }
                ok = cJSON_AddStringToObject(o, "tensor", tensors[knn++].name) != NULL;
            }
        }
    }
    if (ok && c && c->n > 0) {
        cJSON *q = cJSON_AddObjectToObject(cal, "quantiles");
        ok = q != NULL;
        for (int i = 0; ok && i < c->n; i++) {
            char key[32];
            snprintf(key, sizeof key, "p%.10g", 100 * c->level[i]);
            ok = add_exact(q, key, c->value[i]);
        }
        ok = ok && add_exact(cal, "threshold", c->threshold);
    }
    if (!ok || !(out = cJSON_PrintUnformatted(cfg)))
        dae_error_set(err, DAE_ENOMEM, "config: out of memory writing the calibration");
done:
    cJSON_Delete(cfg);
    return out;
}
