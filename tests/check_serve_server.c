/* check_serve_server.c — the service in-process: keep-alive, early answers, the worker
 * round trip, reload, and a clean stop, over a real loopback socket. */
#include "check_quiet.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/modelfile.h"
#include "daed/serve/serve.h"
#include "helpers/httpc.h"

static char dir[64];
static dae_server *srv;
static pthread_t runner;
static int run_rc = -1;

static void *run_main(void *arg)
{
    run_rc = dae_server_run(arg);
    return NULL;
}

static void setup(void)
{
    strcpy(dir, "/tmp/daed-srv-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    const char *cfg =
        "{\"name\":\"tiny\",\"tasks\":[\"denoise\",\"score\"],\"input\":[1,4,4],"
        "\"encoder\":[{\"type\":\"flatten\"},{\"type\":\"linear\",\"in_features\":16,"
        "\"out_features\":3}],\"decoder\":[{\"type\":\"linear\",\"in_features\":3,"
        "\"out_features\":16},{\"type\":\"sigmoid\"},{\"type\":\"unflatten\","
        "\"unflattened_size\":[1,4,4]}]}";
    dae_error e = {0};
    dae_model *m = dae_model_from_config(cfg, &e);
    ck_assert_msg(m != NULL, "%s", e.msg);
    dae_model_init_params(m, 3);
    char path[128];
    snprintf(path, sizeof path, "%s/tiny.safetensors", dir);
    ck_assert_int_eq(dae_modelfile_save(path, m, cfg, NULL, &e), DAE_OK);
    dae_model_free(m);

    dae_serve_config c;
    dae_serve_config_defaults(&c);
    strcpy(c.bind, "127.0.0.1");
    c.port = 0;
    snprintf(c.models, sizeof c.models, "%s", dir);
    c.workers = 2;
    c.max_body = 4096;
    c.access_log = 0;
    srv = dae_server_create(&c, &e);
    ck_assert_msg(srv != NULL, "%s", e.msg);
    ck_assert_int_eq(pthread_create(&runner, NULL, run_main, srv), 0);
}

static void teardown(void)
{
    dae_server_stop(srv);
    pthread_join(runner, NULL);
    ck_assert_int_eq(run_rc, 0);
    dae_server_free(srv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int dial(void)
{
    int fd = httpc_connect("127.0.0.1", dae_server_port(srv), NULL, 30);
    ck_assert_int_ge(fd, 0);
    return fd;
}

/* Send, then read one answer (headers and body) into buf; returns its status, -1 when it
 * did not come whole. */
static int roundtrip(int fd, const char *req, size_t req_len, char *buf, size_t cap)
{
    ck_assert_int_eq(httpc_send_all(fd, req, req_len), 0);
    httpc_response r;
    return httpc_read(fd, buf, cap, &r) == HTTPC_OK ? r.status : -1;
}

START_TEST(test_keepalive_get)
{
    /* Two GETs on one connection: the first answer must not close it. */
    int fd = dial();
    char buf[8192];
    const char *get = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(roundtrip(fd, get, strlen(get), buf, sizeof buf), 200);
    ck_assert_ptr_null(strcasestr(buf, "Connection: close"));
    ck_assert_int_eq(roundtrip(fd, get, strlen(get), buf, sizeof buf), 200);
    ck_assert_ptr_nonnull(strstr(buf, "{\"status\":\"ok\"}"));
    const char *models = "GET /v1/models HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(roundtrip(fd, models, strlen(models), buf, sizeof buf), 200);
    ck_assert_ptr_nonnull(strstr(buf, "\"name\":\"tiny\""));
    close(fd);
}
END_TEST

START_TEST(test_errors_keep_connection)
{
    int fd = dial();
    char buf[8192];
    const char *r404 = "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(roundtrip(fd, r404, strlen(r404), buf, sizeof buf), 404);
    const char *r405 = "PUT /healthz HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n";
    ck_assert_int_eq(roundtrip(fd, r405, strlen(r405), buf, sizeof buf), 405);
    ck_assert_ptr_nonnull(strstr(buf, "Allow: GET, HEAD"));
    const char *ok = "GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(roundtrip(fd, ok, strlen(ok), buf, sizeof buf), 200);
    close(fd);
}
END_TEST

START_TEST(test_early_413)
{
    /* Content-Length over --max-body from a client waiting for a go-ahead: answered before
     * the body is sent. */
    int fd = dial();
    char buf[8192];
    const char *big = "POST /v1/denoise HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n"
                      "Expect: 100-continue\r\n\r\n";
    ck_assert_int_eq(roundtrip(fd, big, strlen(big), buf, sizeof buf), 413);
    ck_assert_ptr_nonnull(strstr(buf, "\"code\":\"too_large\""));
    ck_assert_ptr_nonnull(strcasestr(buf, "Connection: close"));
    close(fd);
}
END_TEST

START_TEST(test_413_after_body)
{
    /* Without Expect the client sends its body at once: it is read and dropped, then the
     * 413 comes (closing before reading it would reset the client's upload). */
    int fd = dial();
    size_t n = 100000, hl;
    char head[128];
    hl = (size_t)snprintf(head, sizeof head, "POST /v1/denoise HTTP/1.1\r\nHost: t\r\n"
                          "Content-Length: %zu\r\n\r\n", n);
    char *req = calloc(1, hl + n);
    memcpy(req, head, hl);
    char buf[8192];
    ck_assert_int_eq(roundtrip(fd, req, hl + n, buf, sizeof buf), 413);
    ck_assert_ptr_nonnull(strstr(buf, "exceeds the limit of 4096 bytes"));
    free(req);
    close(fd);
}
END_TEST

START_TEST(test_inference_roundtrip)
{
    /* A 4x4 PNG through a worker and back, twice on one connection. */
    float px[16];
    for (int i = 0; i < 16; i++)
        px[i] = (float)i / 15.0f;
    unsigned char *png = NULL;
    size_t n = 0;
    ck_assert_int_eq(dae_png_encode(px, 4, 4, 1, 1, &png, &n, NULL), DAE_OK);
    char req[4096];
    int hl = snprintf(req, sizeof req, "POST /v1/denoise HTTP/1.1\r\nHost: t\r\n"
                      "Content-Type: image/png\r\nContent-Length: %zu\r\n\r\n", n);
    memcpy(req + hl, png, n);
    int fd = dial();
    char buf[8192];
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(roundtrip(fd, req, (size_t)hl + n, buf, sizeof buf), 200);
        ck_assert_ptr_nonnull(strcasestr(buf, "Content-Type: image/png"));
    }
    hl = snprintf(req, sizeof req, "POST /v1/score HTTP/1.1\r\nHost: t\r\n"
                  "Content-Length: %zu\r\n\r\n", n);
    memcpy(req + hl, png, n);
    ck_assert_int_eq(roundtrip(fd, req, (size_t)hl + n, buf, sizeof buf), 200);
    ck_assert_ptr_nonnull(strstr(buf, "{\"model\":\"tiny\",\"score\":"));
    ck_assert_ptr_nonnull(strstr(buf, "\"threshold\":null,\"is_anomaly\":null"));
    const char *bad = "POST /v1/denoise HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello";
    ck_assert_int_eq(roundtrip(fd, bad, strlen(bad), buf, sizeof buf), 400);
    close(fd);
    free(png);
}
END_TEST

START_TEST(test_reload_api)
{
    ck_assert_int_eq(dae_server_reload(srv), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/broken.safetensors", dir);
    FILE *f = fopen(path, "wb");
    fputs("junk", f);
    fclose(f);
    ck_assert_int_eq(dae_server_reload(srv), 1);
    int fd = dial();
    char buf[16384];
    const char *m = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
    ck_assert_int_eq(roundtrip(fd, m, strlen(m), buf, sizeof buf), 200);
    ck_assert_ptr_nonnull(strstr(buf, "daed_reload_failures_total 1\n"));
    ck_assert_ptr_nonnull(strstr(buf, "daed_models_loaded 1\n"));
    close(fd);
}
END_TEST

Suite *suite_serve_server(void)
{
    Suite *s = suite_create("serve_server");
    TCase *tc = tcase_create("loopback");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_keepalive_get);
    tcase_add_test(tc, test_errors_keep_connection);
    tcase_add_test(tc, test_early_413);
    tcase_add_test(tc, test_413_after_body);
    tcase_add_test(tc, test_inference_roundtrip);
    tcase_add_test(tc, test_reload_api);
    suite_add_tcase(s, tc);
    return s;
}
