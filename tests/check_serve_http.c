/* check_serve_http.c — routing (404/405 + Allow), statuses, JSON caps, Bearer, Accept,
 * error bodies, and the metrics exposition. */
#include "check_quiet.h"
#include <stdlib.h>
#include <string.h>

#include "../src/serve/http.h"
#include "../src/serve/prom.h"
#include "../src/serve/errcode.h"

static const struct {
    const char *path;
    unsigned method;
    int status;
    int route;          /* expected id on 200 */
    const char *param;  /* expected {name} */
    unsigned allow;     /* expected on 405 */
} ROUTING[] = {
    {"/healthz", DAE_HTTP_GET, 200, DAE_ROUTE_HEALTHZ, "", 0},
    {"/healthz", DAE_HTTP_HEAD, 200, DAE_ROUTE_HEALTHZ, "", 0},
    {"/healthz", DAE_HTTP_POST, 405, 0, NULL, DAE_HTTP_GET | DAE_HTTP_HEAD},
    {"/readyz", DAE_HTTP_GET, 200, DAE_ROUTE_READYZ, "", 0},
    {"/metrics", DAE_HTTP_GET, 200, DAE_ROUTE_METRICS, "", 0},
    {"/openapi.yaml", DAE_HTTP_GET, 200, DAE_ROUTE_OPENAPI, "", 0},
    {"/v1/models", DAE_HTTP_GET, 200, DAE_ROUTE_V1_MODELS, "", 0},
    {"/v1/models/fm-1.2", DAE_HTTP_GET, 200, DAE_ROUTE_V1_MODEL, "fm-1.2", 0},
    {"/v1/models/", DAE_HTTP_GET, 404, 0, NULL, 0},
    {"/v1/models/a/b", DAE_HTTP_GET, 404, 0, NULL, 0},
    {"/v1/denoise", DAE_HTTP_POST, 200, DAE_ROUTE_V1_DENOISE, "", 0},
    {"/v1/denoise", DAE_HTTP_GET, 405, 0, NULL, DAE_HTTP_POST},
    {"/v1/denoise/", DAE_HTTP_POST, 404, 0, NULL, 0},
    {"/v1/inpaint", DAE_HTTP_POST, 200, DAE_ROUTE_V1_INPAINT, "", 0},
    {"/v1/superres", DAE_HTTP_POST, 200, DAE_ROUTE_V1_SUPERRES, "", 0},
    {"/v1/encode", DAE_HTTP_POST, 200, DAE_ROUTE_V1_ENCODE, "", 0},
    {"/v1/decode", DAE_HTTP_POST, 200, DAE_ROUTE_V1_DECODE, "", 0},
    {"/v1/interpolate", DAE_HTTP_POST, 200, DAE_ROUTE_V1_INTERPOLATE, "", 0},
    {"/v1/score", DAE_HTTP_PUT, 405, 0, NULL, DAE_HTTP_POST},
    {"/v1/admin/reload", DAE_HTTP_POST, 200, DAE_ROUTE_V1_RELOAD, "", 0},
    {"/v2", DAE_HTTP_GET, 200, DAE_ROUTE_V2_SERVER, "", 0},
    {"/v2/health/live", DAE_HTTP_GET, 200, DAE_ROUTE_V2_LIVE, "", 0},
    {"/v2/health/ready", DAE_HTTP_GET, 200, DAE_ROUTE_V2_READY, "", 0},
    {"/v2/models/m1", DAE_HTTP_GET, 200, DAE_ROUTE_V2_MODEL, "m1", 0},
    {"/v2/models/m1/ready", DAE_HTTP_GET, 200, DAE_ROUTE_V2_MODEL_READY, "m1", 0},
    {"/v2/models/m1/infer", DAE_HTTP_POST, 200, DAE_ROUTE_V2_INFER, "m1", 0},
    {"/v2/models/m1/infer", DAE_HTTP_GET, 405, 0, NULL, DAE_HTTP_POST},
    {"/v2/models/m1/explain", DAE_HTTP_POST, 404, 0, NULL, 0},
    {"/", DAE_HTTP_GET, 200, DAE_ROUTE_WEB_INDEX, "", 0},
    {"/", DAE_HTTP_POST, 405, 0, NULL, DAE_HTTP_GET | DAE_HTTP_HEAD},
    {"/docs", DAE_HTTP_HEAD, 200, DAE_ROUTE_WEB_DOCS, "", 0},
    {"/docs/", DAE_HTTP_GET, 404, 0, NULL, 0},
    {"/web/app.js", DAE_HTTP_GET, 200, DAE_ROUTE_WEB_FILE, "app.js", 0},
    {"/web/vendor/swagger-ui/swagger-ui.css", DAE_HTTP_GET, 200, DAE_ROUTE_WEB_FILE,
     "vendor/swagger-ui/swagger-ui.css", 0},
    {"/web/../openapi.yaml", DAE_HTTP_GET, 200, DAE_ROUTE_WEB_FILE, "../openapi.yaml", 0},
    {"/web/", DAE_HTTP_GET, 404, 0, NULL, 0},
    {"/web", DAE_HTTP_GET, 404, 0, NULL, 0},
    {"", DAE_HTTP_GET, 404, 0, NULL, 0},
    {"/healthz?x=1", DAE_HTTP_GET, 404, 0, NULL, 0},
};

START_TEST(test_routing)
{
    const dae_route *r;
    char param[64];
    unsigned allow = 0;
    int st = dae_route_match(ROUTING[_i].path, ROUTING[_i].method, &r, param, sizeof param,
                             &allow);
    ck_assert_msg(st == ROUTING[_i].status, "%s: status %d, expected %d", ROUTING[_i].path, st,
                  ROUTING[_i].status);
    if (st == 200) {
        ck_assert_int_eq(r->id, ROUTING[_i].route);
        ck_assert_str_eq(param, ROUTING[_i].param);
    } else {
        ck_assert_ptr_null(r);
    }
    if (st == 405)
        ck_assert_uint_eq(allow, ROUTING[_i].allow);
}
END_TEST

START_TEST(test_route_table)
{
    const dae_route *r;
    const dae_route *t = dae_routes();
    const char *const *names = dae_route_names();
    for (int i = 0; i < DAE_ROUTE_COUNT; i++) {
        ck_assert_int_eq(t[i].id, i);
        ck_assert_str_eq(t[i].pattern, names[i]);
    }
    /* Only health and the browser page's static files (web.h) are public. */
    for (int i = 0; i < DAE_ROUTE_COUNT; i++) {
        int pub = (t[i].flags & DAE_ROUTE_PUBLIC) != 0;
        int health = i == DAE_ROUTE_HEALTHZ || i == DAE_ROUTE_READYZ || i == DAE_ROUTE_V2_LIVE ||
                     i == DAE_ROUTE_V2_READY;
        int web = i == DAE_ROUTE_WEB_INDEX || i == DAE_ROUTE_WEB_DOCS || i == DAE_ROUTE_WEB_FILE;
        ck_assert_int_eq(pub, health || web);
        if (web)
            ck_assert_uint_eq(t[i].flags & DAE_ROUTE_BODY, 0);
    }
    /* A {path} longer than the buffer is not a match either. */
    char four[4];
    ck_assert_int_eq(dae_route_match("/web/abcd", DAE_HTTP_GET, &r, four, sizeof four, NULL),
                     404);
    /* A {name} longer than the buffer is not a match. */
    char small[4];
    ck_assert_int_eq(dae_route_match("/v1/models/abcdef", DAE_HTTP_GET, &r, small, sizeof small,
                                     NULL), 404);
    char allow[64];
    dae_http_allow_text(DAE_HTTP_GET | DAE_HTTP_HEAD | DAE_HTTP_POST, allow, sizeof allow);
    ck_assert_str_eq(allow, "GET, HEAD, POST");
    ck_assert_uint_eq(dae_http_method("PATCH"), DAE_HTTP_OTHER);
    ck_assert_uint_eq(dae_http_method("GET"), DAE_HTTP_GET);
}
END_TEST

START_TEST(test_status_map)
{
    ck_assert_int_eq(dae_http_status(DAE_OK), 200);
    ck_assert_int_eq(dae_http_status(DAE_EINVAL), 400);
    ck_assert_int_eq(dae_http_status(DAE_EFORMAT), 400);
    ck_assert_int_eq(dae_http_status(DAE_ESHAPE), 422);
    ck_assert_int_eq(dae_http_status(DAE_ELIMIT), 413);
    ck_assert_int_eq(dae_http_status(DAE_ENOTFOUND), 404);
    ck_assert_int_eq(dae_http_status(DAE_EBUSY), 503);
    ck_assert_int_eq(dae_http_status(DAE_ENOMEM), 503);
    ck_assert_int_eq(dae_http_status(DAE_EIO), 500);
    ck_assert_int_eq(dae_http_status(DAE_EINTERNAL), 500);
}
END_TEST

/* The error answers' table: a dae error answers with dae_error_name's code, and the
 * answers no dae error makes keep the statuses openapi.yaml documents. */
START_TEST(test_errcode_table)
{
    for (int c = DAE_EINVAL; c <= DAE_EINTERNAL; c++)
        ck_assert_str_eq(dae_errcode_name(dae_errcode_of(c)), dae_error_name(c));
    ck_assert_int_eq(dae_errcode_status(ERR_UNAUTHORIZED), 401);
    ck_assert_int_eq(dae_errcode_status(ERR_METHOD_NOT_ALLOWED), 405);
    ck_assert_int_eq(dae_errcode_status(ERR_JOB_NOT_READY), 409);
    ck_assert_str_eq(dae_errcode_name(ERR_JOB_NOT_READY), "not_ready");
    ck_assert_int_eq(dae_errcode_status(ERR_NOT_READY), 503);
    ck_assert_int_eq(dae_errcode_status(ERR_NOT_IMPLEMENTED), 501);
    ck_assert_int_eq(dae_errcode_status(ERR_CANCELLED), 503);
    ck_assert_int_eq(dae_errcode_status(ERR_SHUTTING_DOWN), 503);
    ck_assert_int_eq(dae_errcode_status(ERR_INSUFFICIENT_STORAGE), 507);
    for (int c = 0; c < ERR_COUNT; c++) { /* every row filled */
        ck_assert_ptr_nonnull(dae_errcode_name((dae_errcode)c));
        ck_assert_int_ge(dae_errcode_status((dae_errcode)c), 400);
    }
    ck_assert_str_eq(dae_errcode_name(ERR_COUNT), "internal"); /* out of range */
}
END_TEST

START_TEST(test_bearer)
{
    ck_assert_int_eq(dae_http_bearer_ok("Bearer k3y", "k3y"), 1);
    ck_assert_int_eq(dae_http_bearer_ok("bearer k3y", "k3y"), 1);
    ck_assert_int_eq(dae_http_bearer_ok("Bearer k3", "k3y"), 0);
    ck_assert_int_eq(dae_http_bearer_ok("Bearer k3yy", "k3y"), 0);
    ck_assert_int_eq(dae_http_bearer_ok("Bearer K3Y", "k3y"), 0);
    ck_assert_int_eq(dae_http_bearer_ok("Basic k3y", "k3y"), 0);
    ck_assert_int_eq(dae_http_bearer_ok("k3y", "k3y"), 0);
    ck_assert_int_eq(dae_http_bearer_ok(NULL, "k3y"), 0);
    ck_assert_int_eq(dae_http_bearer_ok("Bearer ", ""), 0);
}
END_TEST

START_TEST(test_accepts)
{
    ck_assert_int_eq(dae_http_accepts("application/json", "application/json"), 1);
    ck_assert_int_eq(dae_http_accepts("image/png, application/json;q=0.5", "application/json"), 1);
    ck_assert_int_eq(dae_http_accepts("application/json;q=0", "application/json"), 0);
    ck_assert_int_eq(dae_http_accepts("*/*", "application/json"), 0);
    ck_assert_int_eq(dae_http_accepts("application/jsonx", "application/json"), 0);
    ck_assert_int_eq(dae_http_accepts(NULL, "image/png"), 0);
    ck_assert_int_eq(dae_http_accepts("text/html,IMAGE/PNG", "image/png"), 1);
}
END_TEST

START_TEST(test_error_json)
{
    size_t len;
    char *s = dae_http_error_json("not_found", "no model \"x\"\n", &len);
    ck_assert_str_eq(s, "{\"error\":{\"code\":\"not_found\",\"message\":\"no model \\\"x\\\"\\n\"}}\n");
    ck_assert_uint_eq(len, strlen(s));
    free(s);
}
END_TEST

START_TEST(test_prom)
{
    const char *names[] = {"/a", "/b"};
    dae_prom *m = dae_prom_create(names, 2);
    dae_prom_request(m, 0, 200, 0.002);
    dae_prom_request(m, 0, 200, 0.2);
    dae_prom_request(m, 1, 503, 0.001);
    dae_prom_request(m, 7, 418, 0.001); /* unknown endpoint and status */
    dae_prom_batch(m, 3, 0.01);
    dae_prom_batch(m, 16, 0.02);
    dae_prom_reload(m, 2);
    ck_assert_uint_eq(dae_prom_count(m, 0, 200), 2);
    ck_assert_uint_eq(dae_prom_count(m, 0, 0), 2);
    ck_assert_uint_eq(dae_prom_count(m, 1, 503), 1);
    dae_prom_gauges g = {.queue_depth = 5, .models_loaded = 2, .inflight = 1, .ready = 1,
                         .workers = 2, .body_budget = 2097152, .pixel_bytes = 1234567,
                         .pixel_budget = 536870912, .pixel_requests = 3, .pixel_waiting = 4,
                         .pixel_waited_total = 9};
    size_t len;
    char *t = dae_prom_render(m, &g, &len);
    ck_assert_uint_eq(len, strlen(t));
    const char *want[] = {
        "daed_requests_total{endpoint=\"/a\",status=\"200\"} 2\n",
        "daed_requests_total{endpoint=\"/b\",status=\"503\"} 1\n",
        "daed_requests_total{endpoint=\"other\",status=\"other\"} 1\n",
        "daed_request_duration_seconds_bucket{endpoint=\"/a\",le=\"0.0025\"} 1\n",
        "daed_request_duration_seconds_bucket{endpoint=\"/a\",le=\"+Inf\"} 2\n",
        "daed_request_duration_seconds_count{endpoint=\"/a\"} 2\n",
        "daed_batch_size_bucket{le=\"2\"} 0\n",
        "daed_batch_size_bucket{le=\"4\"} 1\n",
        "daed_batch_size_bucket{le=\"16\"} 2\n",
        "daed_batch_size_sum 19\n",
        "daed_inference_seconds_total 0.03",
        "daed_queue_depth 5\n",
        "daed_models_loaded 2\n",
        "daed_reloads_total 1\n",
        "daed_reload_failures_total 2\n",
        "# TYPE daed_batch_size histogram\n",
        "daed_body_budget_bytes 2097152\n",
        "daed_pixel_bytes 1234567\n",
        "daed_pixel_budget_bytes 536870912\n",
        "daed_pixel_requests 3\n",
        "daed_pixel_waiting 4\n",
        "# TYPE daed_pixel_waited_total counter\ndaed_pixel_waited_total 9\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_msg(strstr(t, want[i]), "metrics lack %s", want[i]);
    free(t);
    dae_prom_free(m);
}
END_TEST

Suite *suite_serve_http(void)
{
    Suite *s = suite_create("serve_http");
    TCase *tc = tcase_create("basic");
    tcase_add_loop_test(tc, test_routing, 0, sizeof ROUTING / sizeof ROUTING[0]);
    tcase_add_test(tc, test_route_table);
    tcase_add_test(tc, test_status_map);
    tcase_add_test(tc, test_errcode_table);
    tcase_add_test(tc, test_bearer);
    tcase_add_test(tc, test_accepts);
    tcase_add_test(tc, test_error_json);
    tcase_add_test(tc, test_prom);
    suite_add_tcase(s, tc);
    return s;
}
