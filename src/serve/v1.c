/* v1.c — the /v1 API and the operational routes on the HTTP thread: health, readiness,
 * metrics, the OpenAPI document, model listings, and handing image work to the pool. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daed/io/photo.h"
#include "internal.h"
#include "route.h"
#include "sbuf.h"

static void shape_json(sbuf *b, dae_shape s)
{
    dae_sb_printf(b, "[%d,%d,%d]", s.c, s.h, s.w);
}

/* Appends "key":<member of the config object> when present. */
static void config_member(sbuf *b, const cJSON *cfg, const char *key)
{
    const cJSON *v = cfg ? cJSON_GetObjectItemCaseSensitive(cfg, key) : NULL;
    char *txt = v ? cJSON_PrintUnformatted(v) : NULL;
    dae_sb_str(b, ",");
    dae_sb_json_str(b, key);
    dae_sb_str(b, ":");
    dae_sb_str(b, txt ? txt : "null");
    free(txt);
}

/* The model described as JSON: summary, or full with file, calibration, config. */
static void model_describe(sbuf *b, const dae_entry *e, int full)
{
    const dae_modelfile *mf = e->mf;
    const dae_model *m = mf->model;
    dae_sb_str(b, "{\"name\":");
    dae_sb_json_str(b, e->name);
    dae_sb_str(b, ",\"tasks\":[");
    int first = 1;
    for (unsigned bit = 1; bit <= DAE_TASK_SCORE; bit <<= 1) {
        if (!(mf->tasks & bit))
            continue;
        if (!first)
            dae_sb_str(b, ",");
        dae_sb_json_str(b, dae_task_name(bit));
        first = 0;
    }
    dae_sb_str(b, "],\"input\":");
    shape_json(b, m->in_shape);
    dae_sb_str(b, ",\"output\":");
    shape_json(b, m->out_shape);
    dae_sb_str(b, ",\"latent\":");
    shape_json(b, m->latent_shape);
    dae_sb_printf(b, ",\"fully_convolutional\":%s,\"size_div\":%d,\"residual\":%s,"
                  "\"noise_level\":\"%s\",\"without_sigma\":\"%s\",\"parameters\":%zu",
                  m->fully_conv ? "true" : "false", m->size_div, m->residual ? "true" : "false",
                  m->noise_map ? "map" : "none",
                  m->noise_map && !e->photo.blind_default ? "estimated" : "blind",
                  m->n_params);
    if (!full) {
        dae_sb_str(b, "}");
        return;
    }
    char when[32];
    struct tm tm;
    gmtime_r(&e->loaded_at, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    dae_sb_str(b, ",\"file\":");
    dae_sb_json_str(b, e->file);
    dae_sb_printf(b, ",\"file_bytes\":%zu,\"loaded_at\":\"%s\"", mf->file_bytes, when);
    dae_sb_printf(b, ",\"flops_per_sample\":%.0f", dae_model_flops(m, m->in_shape));
    if (mf->calib.n > 0) {
        dae_sb_str(b, ",\"calibration\":{\"score\":");
        dae_sb_json_str(b, mf->calib.score[0] ? mf->calib.score : "mse");
        dae_sb_str(b, ",\"threshold\":");
        dae_sb_json_float(b, mf->calib.threshold);
        dae_sb_str(b, ",\"quantiles\":[");
        for (int i = 0; i < mf->calib.n; i++) {
            dae_sb_str(b, i ? ",{\"level\":" : "{\"level\":");
            dae_sb_json_float(b, mf->calib.level[i]);
            dae_sb_str(b, ",\"value\":");
            dae_sb_json_float(b, mf->calib.value[i]);
            dae_sb_str(b, "}");
        }
        dae_sb_str(b, "]}");
    } else {
        dae_sb_str(b, ",\"calibration\":null");
    }
    cJSON *cfg = mf->config_json ? cJSON_Parse(mf->config_json) : NULL;
    config_member(b, cfg, "training");
    config_member(b, cfg, "corruption");
    config_member(b, cfg, "quality");
    char *txt = cfg ? cJSON_PrintUnformatted(cfg) : NULL;
    dae_sb_str(b, ",\"config\":");
    dae_sb_str(b, txt ? txt : "null");
    free(txt);
    cJSON_Delete(cfg);
    cJSON *meta = mf->metadata_json ? cJSON_Parse(mf->metadata_json) : NULL;
    if (meta) /* the config is shown above, parsed; the rest of __metadata__ as stored */
        cJSON_DeleteItemFromObjectCaseSensitive(meta, "config");
    txt = meta ? cJSON_PrintUnformatted(meta) : NULL;
    dae_sb_str(b, ",\"metadata\":");
    dae_sb_str(b, txt ? txt : "null");
    free(txt);
    cJSON_Delete(meta);
    dae_sb_str(b, "}");
}

/* "denoise_defaults": the model /v1/denoise picks without ?model= or ?sigma=, per kind of
 * image (route.h): "digits" (the default model's own input size and channels), "gray_photo"
 * and "color_photo" (1 and 3 channels of a size the default model does not have as its
 * input, whose estimated level is 0: real camera noise reads ~1); null when no model takes
 * such images. */
static void denoise_defaults(dae_req *r, sbuf *b, dae_entry **list, int n)
{
    dae_server *s = r->s;
    int t = dae_serve_task_index(DAE_TASK_DENOISE);
    dae_entry *def = dae_registry_default(s->reg, DAE_TASK_DENOISE, s->cfg.default_model[t]);
    const dae_model *dm = def ? def->mf->model : NULL;
    const dae_denoise_want kinds[3] = {
        {.w = dm ? dm->in_shape.w : 0, .h = dm ? dm->in_shape.h : 0,
         .c = def ? def->photo.channels : 1},
        {.c = 1, .has_sigma = 1, .estimated = 1},
        {.c = 3, .has_sigma = 1, .estimated = 1},
    };
    static const char *const names[3] = {"digits", "gray_photo", "color_photo"};
    dae_sb_str(b, "{");
    for (int k = 0; k < 3; k++) {
        const dae_entry *e = dae_denoise_route(list, n, def, &kinds[k], NULL);
        dae_sb_str(b, k ? "," : "");
        dae_sb_json_str(b, names[k]);
        dae_sb_str(b, ":");
        if (e && (k > 0 || def))
            dae_sb_json_str(b, e->name);
        else
            dae_sb_str(b, "null");
    }
    dae_sb_str(b, "}");
    dae_entry_unref(def);
}

static void models_list(dae_req *r)
{
    int n;
    dae_entry **list = dae_registry_list(r->s->reg, &n);
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "{\"models\":[");
    for (int i = 0; i < n; i++) {
        if (i)
            dae_sb_str(&b, ",");
        model_describe(&b, list[i], 0);
    }
    dae_sb_str(&b, "],\"defaults\":{");
    for (int t = 0; t < DAE_SERVE_N_TASKS; t++) {
        unsigned bit = 1u << t;
        dae_entry *e = dae_registry_default(r->s->reg, bit, r->s->cfg.default_model[t]);
        dae_sb_str(&b, t ? "," : "");
        dae_sb_json_str(&b, dae_task_name(bit));
        dae_sb_str(&b, ":");
        if (e)
            dae_sb_json_str(&b, e->name);
        else
            dae_sb_str(&b, "null");
        dae_entry_unref(e);
    }
    dae_sb_str(&b, "},\"denoise_defaults\":");
    denoise_defaults(r, &b, list, n);
    dae_sb_str(&b, "}\n");
    dae_registry_release(list, n);
    dae_req_answer_sb(r, 200, "application/json", &b);
}

static void model_one(dae_req *r)
{
    dae_entry *e = dae_registry_get(r->s->reg, r->param);
    if (!e) {
        dae_req_error(r, ERR_NOT_FOUND, "no model named %.64s (GET /v1/models lists them)",
                      r->param);
        return;
    }
    sbuf b;
    dae_sb_init(&b);
    model_describe(&b, e, 1);
    dae_sb_str(&b, "\n");
    dae_entry_unref(e);
    dae_req_answer_sb(r, 200, "application/json", &b);
}

/* daed_jobs_*: the asynchronous requests (jobs.h). */
static void jobs_metrics(dae_jobs_stats j, sbuf *b)
{
    dae_sb_printf(b, "# HELP daed_jobs Asynchronous jobs held, by status (finished ones until "
                  "fetched and deleted or --job-ttl).\n# TYPE daed_jobs gauge\n"
                  "daed_jobs{status=\"queued\"} %d\ndaed_jobs{status=\"running\"} %d\n"
                  "daed_jobs{status=\"finished\"} %d\n", j.queued, j.running,
                  j.held - j.queued - j.running);
    dae_sb_printf(b, "# HELP daed_jobs_memory_bytes Bytes held for jobs: bodies of unfinished "
                  "ones, answers of finished ones (--job-memory).\n"
                  "# TYPE daed_jobs_memory_bytes gauge\ndaed_jobs_memory_bytes %zu\n", j.bytes);
    dae_sb_printf(b, "# HELP daed_jobs_created_total Jobs accepted (202).\n"
                  "# TYPE daed_jobs_created_total counter\ndaed_jobs_created_total %llu\n"
                  "# HELP daed_jobs_refused_total Jobs refused: --max-jobs or --job-memory "
                  "full.\n"
                  "# TYPE daed_jobs_refused_total counter\ndaed_jobs_refused_total %llu\n",
                  (unsigned long long)j.created, (unsigned long long)j.refused);
    dae_sb_printf(b, "# HELP daed_jobs_finished_total Jobs finished, by outcome.\n"
                  "# TYPE daed_jobs_finished_total counter\n"
                  "daed_jobs_finished_total{status=\"done\"} %llu\n"
                  "daed_jobs_finished_total{status=\"failed\"} %llu\n"
                  "daed_jobs_finished_total{status=\"cancelled\"} %llu\n"
                  "# HELP daed_jobs_expired_total Finished jobs dropped after --job-ttl.\n"
                  "# TYPE daed_jobs_expired_total counter\ndaed_jobs_expired_total %llu\n",
                  (unsigned long long)j.done, (unsigned long long)j.failed,
                  (unsigned long long)j.cancelled, (unsigned long long)j.expired);
}

static void metrics(dae_req *r)
{
    dae_server *s = r->s;
    dae_admit_stats bs = dae_admit_get_stats(s->admit);
    dae_admit_stats ps = dae_admit_get_stats(s->pixels);
    dae_prom_gauges g = {
        .queue_depth = dae_workpool_depth(s->pool),
        .models_loaded = dae_registry_count(s->reg),
        .inflight = atomic_load(&s->inflight),
        .ready = atomic_load(&s->ready) && !atomic_load(&s->draining),
        .workers = s->n_workers,
        .body_bytes = bs.charged,
        .body_waiting = bs.waiting,
        .body_waited_total = bs.waited_total,
        .hangups_total = dae_hangup_total(s->hangup),
        .body_budget = s->cfg.body_budget,
        .pixel_bytes = ps.charged,
        .pixel_budget = s->cfg.pixel_budget,
        .pixel_requests = ps.admitted,
        .pixel_waiting = ps.waiting,
        .pixel_waited_total = ps.waited_total,
    };
    size_t len;
    char *body = dae_prom_render(s->prom, &g, &len);
    if (!body) {
        dae_req_error(r, ERR_OUT_OF_MEMORY, "no memory for the metrics");
        return;
    }
    sbuf b;
    dae_sb_init(&b);
    dae_sb_add(&b, body, len);
    free(body);
    jobs_metrics(dae_jobs_get_stats(s->jobs), &b);
    dae_req_answer_sb(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

static void openapi(dae_req *r)
{
    const char *path = r->s->cfg.openapi;
    FILE *f = path[0] ? fopen(path, "rb") : NULL;
    if (!f) {
        dae_req_error(r, ERR_NOT_FOUND, "the OpenAPI document %s is not there (--openapi)",
                      path);
        return;
    }
    sbuf b;
    dae_sb_init(&b);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && b.len < (8u << 20))
        dae_sb_add(&b, chunk, n);
    fclose(f);
    dae_req_answer_sb(r, 200, "application/yaml", &b);
}

/* Ready: models loaded and not draining. */
int dae_server_is_ready(dae_server *s)
{
    return atomic_load(&s->ready) && !atomic_load(&s->draining) &&
           dae_registry_count(s->reg) > 0;
}

static void readyz(dae_req *r)
{
    dae_server *s = r->s;
    int n = dae_registry_count(s->reg);
    if (dae_server_is_ready(s)) {
        sbuf b;
        dae_sb_init(&b);
        dae_sb_printf(&b, "{\"status\":\"ready\",\"models\":%d}\n", n);
        dae_req_answer_sb(r, 200, "application/json", &b);
    } else if (atomic_load(&s->draining)) {
        dae_req_error(r, ERR_NOT_READY, "draining: the server is shutting down");
    } else {
        dae_req_error(r, ERR_NOT_READY, "no model loaded from %s", s->cfg.models);
    }
}

/* Pick r's model: ?model= or the task's default. 0 on success, else answered. */
static int v1_pick_model(dae_req *r, unsigned task, const char *name)
{
    dae_server *s = r->s;
    int t = dae_serve_task_index(task);
    if (name && name[0]) {
        r->entry = dae_registry_get(s->reg, name);
        if (!r->entry) {
            dae_req_error(r, ERR_NOT_FOUND, "no model named %.64s (GET /v1/models lists them)",
                          name);
            return -1;
        }
    } else {
        r->entry = dae_registry_default(s->reg, task, t >= 0 ? s->cfg.default_model[t] : "");
        if (!r->entry) {
            if (t >= 0 && s->cfg.default_model[t][0])
                dae_req_error(r, ERR_NOT_FOUND, "the default %s model %.64s is not loaded",
                              dae_task_name(task), s->cfg.default_model[t]);
            else
                dae_req_error(r, ERR_NOT_FOUND, "no loaded model declares the task %s",
                              dae_task_name(task));
            return -1;
        }
    }
    if (task && !(r->entry->mf->tasks & task)) {
        dae_req_error(r, ERR_INVALID_ARGUMENT, "model %s does not declare the task %s",
                      r->entry->name, dae_task_name(task));
        return -1;
    }
    return 0;
}

int dae_v1_denoise_route(dae_req *r, int w, int h, int c, dae_error *err)
{
    dae_server *s = r->s;
    int t = dae_serve_task_index(DAE_TASK_DENOISE);
    dae_entry *def = dae_registry_default(s->reg, DAE_TASK_DENOISE, s->cfg.default_model[t]);
    if (!def) { /* unloaded since the request picked it: it stays the default */
        def = r->entry;
        dae_entry_ref(def);
    }
    int n;
    dae_entry **list = dae_registry_list(s->reg, &n);
    /* without ?sigma=, the decoded image's estimated level is the hint (parse.c), or for
     * a photo with correlated noise the level it is given, as ?sigma= would be; before the
     * body is decoded, a level of 0 stands for it (real photos read ~1), as in
     * denoise_defaults: the request then queues for the model most photos end with */
    double hint = r->has_sigma   ? r->sigma
                  : r->correlated ? r->corr_level
                  : r->has_est    ? r->est_sigma
                                  : 0;
    dae_denoise_want want = {.w = w, .h = h, .c = c, .has_sigma = 1, .sigma = hint,
                             .estimated = !r->has_sigma && !r->correlated,
                             .correlated = !r->has_sigma && r->correlated,
                             .resize = r->resize};
    /* one of list or def, which this function holds: referenced below if kept */
    dae_entry *pick = (dae_entry *)dae_denoise_route(list, n, def, &want, err);
    if (pick && pick != r->entry) {
        dae_entry_ref(pick);
        dae_entry_unref(r->entry);
        r->entry = pick;
    }
    dae_registry_release(list, n);
    dae_entry_unref(def);
    return pick ? DAE_OK : err->code;
}

/* /v1/denoise without ?model=, a PNG or JPEG body: the model for its size and channels from
 * the header alone (route.h), so the request queues for the model that will run it and an
 * image no model takes is answered 422 before it is decoded. The worker routes again on
 * the decoded image (parse.c), as it does for JSON bodies. 0 = go on. */
static int pick_for_image(dae_req *r)
{
    int w, h, c;
    if (r->is_json || dae_image_probe((const unsigned char *)r->body, r->len, &w, &h, &c,
                                      NULL) != DAE_OK)
        return 0; /* JSON bodies, and bad images (the worker explains what is wrong) */
    if ((size_t)w * (size_t)h > r->s->cfg.max_pixels || w > r->s->cfg.max_side ||
        h > r->s->cfg.max_side)
        return 0; /* too large whatever the model: the decoder answers 413 */
    dae_error err = {0};
    if (dae_v1_denoise_route(r, w, h, c, &err) != DAE_OK) {
        dae_req_fail(r, &err);
        return -1;
    }
    return 0;
}

/* Samples a body carries, for the batcher (workpool.h): an image body 1; JSON, one per
 * "png" or "pixels" key ({"images":[...]} lists), at least 1. An estimate made before
 * parsing; the worker still parses and checks the body. */
static int body_weight(const dae_req *r)
{
    if (!r->is_json)
        return 1;
    int n = 0;
    const char *p = r->body, *end = r->body + r->len;
    while (p < end && (p = memchr(p, '"', (size_t)(end - p))) != NULL) {
        p++;
        if ((end - p >= 4 && !memcmp(p, "png\"", 4)) ||
            (end - p >= 7 && !memcmp(p, "pixels\"", 7)))
            n++;
    }
    return n > 1 ? n : 1;
}

static void image_route(dae_req *r, unsigned task, int op)
{
    if (r->status) /* a bad query parameter */
        return;
    if (r->len == 0) {
        dae_req_error(r, ERR_INVALID_ARGUMENT,
                      "empty body: send a PNG or JPEG image, or JSON (see /openapi.yaml)");
        return;
    }
    if (v1_pick_model(r, task, r->model_name) != 0)
        return;
    if (task == DAE_TASK_DENOISE && !r->model_name[0] && pick_for_image(r) != 0)
        return;
    r->job.weight = body_weight(r);
    dae_req_submit(r, op);
}

void dae_v1_handle(dae_req *r)
{
    sbuf b;
    switch (r->route->id) {
    case DAE_ROUTE_HEALTHZ:
        dae_sb_init(&b);
        dae_sb_str(&b, "{\"status\":\"ok\"}\n");
        dae_req_answer_sb(r, 200, "application/json", &b);
        break;
    case DAE_ROUTE_READYZ: readyz(r); break;
    case DAE_ROUTE_METRICS: metrics(r); break;
    case DAE_ROUTE_OPENAPI: openapi(r); break;
    case DAE_ROUTE_V1_MODELS: models_list(r); break;
    case DAE_ROUTE_V1_MODEL: model_one(r); break;
    case DAE_ROUTE_V1_DENOISE: image_route(r, DAE_TASK_DENOISE, OP_FORWARD); break;
    case DAE_ROUTE_V1_INPAINT: image_route(r, DAE_TASK_INPAINT, OP_FORWARD); break;
    case DAE_ROUTE_V1_SUPERRES: image_route(r, DAE_TASK_SUPERRES, OP_FORWARD); break;
    case DAE_ROUTE_V1_SCORE: image_route(r, DAE_TASK_SCORE, OP_FORWARD); break;
    case DAE_ROUTE_V1_ENCODE: image_route(r, DAE_TASK_ENCODE, OP_ENCODE); break;
    case DAE_ROUTE_V1_DECODE: image_route(r, DAE_TASK_ENCODE, OP_DECODE); break;
    case DAE_ROUTE_V1_INTERPOLATE: image_route(r, DAE_TASK_ENCODE, OP_INTERPOLATE); break;
    case DAE_ROUTE_V1_RELOAD: dae_server_request_reload(r); break;
    case DAE_ROUTE_V1_JOB:
    case DAE_ROUTE_V1_JOB_RESULT: dae_jobs_http_handle(r); break;
    default:
        dae_req_error(r, ERR_NOT_FOUND, "no route %.120s", r->path);
        break;
    }
}
