/* v2.c — KServe Open Inference Protocol v2 over HTTP/REST: health, server and model
 * metadata, model readiness, and inference on FP32 tensors (field names as in the spec). */
#include <cjson/cJSON.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define V2_VERSION "1"

/* Tensor shape as the protocol shows it: [-1, C, H, W], -1 for free dimensions. */
static void tensor_meta(sbuf *b, const char *name, dae_shape s, int free_hw)
{
    dae_sb_str(b, "{\"name\":");
    dae_sb_json_str(b, name);
    if (s.h == 1 && s.w == 1 && !free_hw)
        dae_sb_printf(b, ",\"datatype\":\"FP32\",\"shape\":[-1,%d]}", s.c);
    else if (free_hw)
        dae_sb_printf(b, ",\"datatype\":\"FP32\",\"shape\":[-1,%d,-1,-1]}", s.c);
    else
        dae_sb_printf(b, ",\"datatype\":\"FP32\",\"shape\":[-1,%d,%d,%d]}", s.c, s.h, s.w);
}

static void model_meta(dae_req *r, dae_entry *e)
{
    const dae_model *m = e->mf->model;
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "{\"name\":");
    dae_sb_json_str(&b, e->name);
    dae_sb_str(&b, ",\"versions\":[\"" V2_VERSION "\"],\"platform\":\"daed\",\"inputs\":[");
    tensor_meta(&b, "input", m->in_shape, m->fully_conv);
    dae_sb_str(&b, "],\"outputs\":[");
    tensor_meta(&b, "output", m->out_shape, m->fully_conv);
    dae_sb_str(&b, ",");
    tensor_meta(&b, "latent", m->latent_shape, m->fully_conv);
    dae_sb_str(&b, "]}\n");
    dae_req_answer_sb(r, 200, "application/json", &b);
}

void dae_v2_handle(dae_req *r)
{
    sbuf b;
    dae_sb_init(&b);
    switch (r->route->id) {
    case DAE_ROUTE_V2_SERVER:
        dae_sb_str(&b, "{\"name\":\"daed\",\"version\":\"1.0\",\"extensions\":[]}\n");
        dae_req_answer_sb(r, 200, "application/json", &b);
        return;
    case DAE_ROUTE_V2_LIVE:
        dae_sb_str(&b, "{\"live\":true}\n");
        dae_req_answer_sb(r, 200, "application/json", &b);
        return;
    case DAE_ROUTE_V2_READY: {
        int ready = dae_server_is_ready(r->s);
        dae_sb_printf(&b, "{\"ready\":%s}\n", ready ? "true" : "false");
        dae_req_answer_sb(r, ready ? 200 : 503, "application/json", &b);
        return;
    }
    default:
        break;
    }
    r->entry = dae_registry_get(r->s->reg, r->param);
    if (!r->entry) {
        dae_req_error(r, ERR_NOT_FOUND, "no model named %.64s", r->param);
        return;
    }
    switch (r->route->id) {
    case DAE_ROUTE_V2_MODEL:
        model_meta(r, r->entry);
        return;
    case DAE_ROUTE_V2_MODEL_READY:
        dae_sb_str(&b, "{\"name\":");
        dae_sb_json_str(&b, r->entry->name);
        dae_sb_str(&b, ",\"ready\":true}\n");
        dae_req_answer_sb(r, 200, "application/json", &b);
        return;
    case DAE_ROUTE_V2_INFER:
        if (r->len == 0) {
            dae_req_error(r, ERR_INVALID_ARGUMENT, "empty body: expected an inference request "
                          "{\"inputs\":[{\"name\",\"shape\",\"datatype\",\"data\"}]}");
            return;
        }
        dae_req_submit(r, OP_FORWARD);
        return;
    default:
        dae_req_error(r, ERR_NOT_FOUND, "no route %.120s", r->path);
        return;
    }
}

/* ------------------------------------------------------------------ worker side */

/* The one input tensor of the body: inputs[0], named "input", of datatype FP32. */
static const cJSON *v2_input(const dae_req *r, const cJSON *j, dae_error *err)
{
    const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(j, "inputs");
    if (!cJSON_IsArray(inputs) || cJSON_GetArraySize(inputs) != 1) {
        dae_error_set(err, DAE_EINVAL, "\"inputs\": expected an array of one tensor");
        return NULL;
    }
    const cJSON *t = inputs->child;
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(t, "datatype");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
    if (!cJSON_IsString(name) || strcmp(name->valuestring, "input") != 0) {
        /* The model metadata names the one input tensor "input". */
        dae_error_set(err, DAE_EINVAL, "inputs[0].name: %s%.64s%s, expected \"input\" "
                      "(GET /v2/models/%s)", cJSON_IsString(name) ? "\"" : "",
                      cJSON_IsString(name) ? name->valuestring : "not a string",
                      cJSON_IsString(name) ? "\"" : "", r->entry->name);
        return NULL;
    }
    if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "FP32") != 0) {
        dae_error_set(err, DAE_EINVAL, "inputs[0].datatype: expected \"FP32\"");
        return NULL;
    }
    return t;
}

/* inputs[0].shape, [B,C,H,W] or [B,C*H*W], checked against the limits and the model: the
 * batch into w->n, the sample shape into w->in (w->v2_flat for the flat form). */
static int v2_shape(const dae_req *r, const cJSON *shape, work *w, dae_error *err)
{
    const dae_model *m = r->entry->mf->model;
    const dae_serve_config *cfg = &r->s->cfg;
    long long d[4];
    int nd = 0;
    for (const cJSON *v = cJSON_IsArray(shape) ? shape->child : NULL; v; v = v->next) {
        if (nd >= 4 || !cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
            v->valuedouble < 1 || v->valuedouble > 1e9) {
            nd = -1;
            break;
        }
        d[nd++] = (long long)v->valuedouble;
    }
    if (nd != 2 && nd != 4)
        return dae_error_set(err, DAE_EINVAL, "inputs[0].shape: expected [B,C,H,W] or "
                             "[B,C*H*W] with positive integers");
    if (d[0] > cfg->max_batch_images)
        return dae_error_set(err, DAE_EINVAL, "inputs[0].shape: batch of %lld, at most %d "
                             "(--max-batch-images)", d[0], cfg->max_batch_images);
    w->n = (int)d[0];
    if (nd == 2) {
        if (d[1] != (long long)dae_shape_size(m->in_shape))
            return dae_error_set(err, DAE_ESHAPE, "inputs[0].shape [%lld,%lld]: model %s takes "
                                 "[B,%d] (or [B,%d,%d,%d])", d[0], d[1], r->entry->name,
                                 m->in_shape.c * m->in_shape.h * m->in_shape.w, m->in_shape.c,
                                 m->in_shape.h, m->in_shape.w);
        w->in = m->in_shape;
        w->v2_flat = 1;
        return DAE_OK;
    }
    if (d[1] > 4 || d[2] > cfg->max_side || d[3] > cfg->max_side ||
        (size_t)(d[2] * d[3]) > cfg->max_pixels)
        return dae_error_set(err, DAE_ELIMIT, "inputs[0].shape [%lld,%lld,%lld,%lld] exceeds "
                             "the limits (--max-side %d, --max-pixels %zu)", d[0], d[1], d[2],
                             d[3], cfg->max_side, cfg->max_pixels);
    w->in = (dae_shape){(int)d[1], (int)d[2], (int)d[3]};
    dae_error cerr = {0};
    if (dae_model_check_input(m, w->in, &cerr) != DAE_OK)
        return dae_error_set(err, DAE_ESHAPE, "inputs[0].shape: %s", cerr.msg);
    return DAE_OK;
}

/* inputs[0].data: exactly w->n samples of w->in as finite FP32 numbers, into w->x. */
static int v2_data(const cJSON *data, work *w, dae_error *err)
{
    size_t total = dae_shape_size(w->in) * (size_t)w->n;
    if (!cJSON_IsArray(data))
        return dae_error_set(err, DAE_EINVAL, "inputs[0].data: expected a flat array of %zu "
                             "numbers", total);
    w->x = malloc(total * sizeof *w->x);
    if (!w->x)
        return dae_error_set(err, DAE_ENOMEM, "out of memory for %zu values", total);
    size_t i = 0;
    for (const cJSON *v = data->child; v; v = v->next, i++) {
        /* any finite FP32 value (noisy measurements leave [0, 1]); not NaN or infinity
         * (1e999 parses to inf), nor a double beyond the float range */
        if (i >= total || !cJSON_IsNumber(v) || !(fabs(v->valuedouble) <= FLT_MAX))
            return dae_error_set(err, DAE_EINVAL, i >= total
                                 ? "inputs[0].data: more than %zu values for the shape"
                                 : "inputs[0].data[%zu]: expected a finite FP32 number",
                                 i >= total ? total : i);
        w->x[i] = (float)v->valuedouble;
    }
    if (i != total)
        return dae_error_set(err, DAE_EINVAL, "inputs[0].data: %zu values, the shape needs %zu",
                             i, total);
    return DAE_OK;
}

/* "outputs": which of "output" and "latent" to answer (absent: the output alone). */
static int v2_outputs(const cJSON *j, work *w, dae_error *err)
{
    w->want_output = 1;
    const cJSON *outs = cJSON_GetObjectItemCaseSensitive(j, "outputs");
    if (!outs)
        return DAE_OK;
    if (!cJSON_IsArray(outs) || cJSON_GetArraySize(outs) < 1)
        return dae_error_set(err, DAE_EINVAL, "\"outputs\": expected an array of "
                             "{\"name\": \"output\" | \"latent\"}");
    w->want_output = 0;
    for (const cJSON *o = outs->child; o; o = o->next) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
        if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "output"))
            w->want_output = 1;
        else if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "latent"))
            w->want_latent = 1;
        else
            return dae_error_set(err, DAE_EINVAL, "\"outputs\": unknown output %.64s (this "
                                 "model has \"output\" and \"latent\")",
                                 cJSON_IsString(nm) ? nm->valuestring : "(no name)");
    }
    return DAE_OK;
}

int dae_v2_prepare(dae_req *r, work *w, dae_error *err)
{
    cJSON *j = dae_parse_json_body(r, err);
    if (!j)
        return err->code;
    int rc = DAE_OK;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (id && cJSON_IsString(id))
        snprintf(w->v2_id, sizeof w->v2_id, "%s", id->valuestring);
    const cJSON *t = v2_input(r, j, err);
    if (!t) {
        rc = err->code;
        goto out;
    }
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
    if ((rc = v2_shape(r, shape, w, err)) == DAE_OK && (rc = v2_data(data, w, err)) == DAE_OK)
        rc = v2_outputs(j, w, err);
out:
    cJSON_Delete(j);
    return rc;
}

static void tensor_out(sbuf *b, const char *name, int n, dae_shape s, int flat,
                       const float *data)
{
    dae_sb_str(b, "{\"name\":");
    dae_sb_json_str(b, name);
    if (flat || (s.h == 1 && s.w == 1))
        dae_sb_printf(b, ",\"shape\":[%d,%d]", n, s.c * s.h * s.w);
    else
        dae_sb_printf(b, ",\"shape\":[%d,%d,%d,%d]", n, s.c, s.h, s.w);
    dae_sb_str(b, ",\"datatype\":\"FP32\",\"data\":");
    dae_sb_json_floats(b, data, (size_t)n * s.c * s.h * s.w);
    dae_sb_str(b, "}");
}

void dae_v2_finish(dae_req *r, work *w, int worker)
{
    dae_error err = {0};
    float *z = NULL;
    dae_shape zs = {0, 0, 0};
    if (w->want_latent &&
        dae_infer_encode(r, worker, w->x, w->n, w->in, &z, &zs, &err) != DAE_OK) {
        dae_req_fail(r, &err);
        return;
    }
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "{\"model_name\":");
    dae_sb_json_str(&b, r->entry->name);
    dae_sb_str(&b, ",\"model_version\":\"" V2_VERSION "\"");
    if (w->v2_id[0]) {
        dae_sb_str(&b, ",\"id\":");
        dae_sb_json_str(&b, w->v2_id);
    }
    dae_sb_str(&b, ",\"outputs\":[");
    if (w->want_output) { /* the reconstruction is an image: [0, 1], as on /v1 */
        dae_answer_clip01(w->y, (size_t)w->n * dae_shape_size(w->out));
        tensor_out(&b, "output", w->n, w->out, w->v2_flat, w->y);
    }
    if (w->want_latent) {
        if (w->want_output)
            dae_sb_str(&b, ",");
        tensor_out(&b, "latent", w->n, zs, 0, z);
    }
    dae_sb_str(&b, "]}\n");
    free(z);
    dae_req_answer_sb(r, 200, "application/json", &b);
}
