/* floor.c — the serving floor for bench/serve.sh: daed's HTTP and threading without a model.
 *
 *   floor --port P [--bind 127.0.0.1] [--workers N (0 = CPUs)] [--epoll 0] [--png-level 1]
 *         [--conn-memory 32768] [--port-file F]
 *
 * Same libmicrohttpd set-up as daed (one internal polling thread, epoll or poll, requests
 * suspended and handed to a dae_workpool, resumed by the worker; the same connection
 * limits but no per-address one, as bench/serve.sh runs daed) and the same codecs
 * (dae_image_decode, dae_png_encode, base64, cJSON), but where daed runs a model the floor
 * does nothing:
 *   POST /v1/denoise  image body -> the image as 1-channel PNG; JSON {"images":[{"png"}..]}
 *                     -> {"images":[{"width","height","channels","png"}..]}
 *   POST /v1/score    image body -> {"score": mean pixel value}
 *   GET  /healthz     {"status":"ok"}
 * Runs until SIGINT/SIGTERM. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/base64.h"
#include "../src/serve/workpool.h"

#define MAX_BODY (16u << 20)

enum { R_HEALTH, R_DENOISE, R_SCORE };

typedef struct {
    dae_job job;
    struct MHD_Connection *conn;
    int route, is_json, waiting, calls;
    char *body;
    size_t len, cap;
    int status;
    const char *type;
    char *resp;
    size_t resp_len;
} freq;

static int g_level = 1;
static volatile sig_atomic_t g_stop;

static void on_sig(int s)
{
    (void)s;
    g_stop = 1;
}

static void set_answer(freq *r, int status, const char *type, char *body, size_t len)
{
    r->status = status;
    r->type = type;
    r->resp = body;
    r->resp_len = len;
}

static void set_error(freq *r, int status, const char *msg)
{
    char *b = malloc(strlen(msg) + 64);
    if (b)
        sprintf(b, "{\"error\":{\"code\":\"error\",\"message\":\"%s\"}}\n", msg);
    set_answer(r, status, "application/json", b, b ? strlen(b) : 0);
}

/* Decodes an image and re-encodes it as a 1-channel PNG (what daed's gray models answer). */
static int reencode(const unsigned char *in, size_t n, unsigned char **png, size_t *len,
                    int *w, int *h, dae_error *err)
{
    dae_image im = {0};
    int rc = dae_image_decode(in, n, NULL, &im, err);
    if (rc == DAE_OK)
        rc = dae_image_to_channels(&im, 1, err);
    if (rc == DAE_OK)
        rc = dae_png_encode(im.px, im.w, im.h, 1, g_level, png, len, err);
    *w = im.w;
    *h = im.h;
    dae_image_free(&im);
    return rc;
}

static void run_batch_json(freq *r)
{
    cJSON *j = cJSON_ParseWithLength(r->body, r->len);
    const cJSON *imgs = j ? cJSON_GetObjectItemCaseSensitive(j, "images") : NULL;
    if (!cJSON_IsArray(imgs)) {
        set_error(r, 400, "expected {\\\"images\\\":[...]}");
        cJSON_Delete(j);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(out, "images");
    const cJSON *it;
    dae_error err = {0};
    int bad = 0;
    cJSON_ArrayForEach(it, imgs) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "png");
        unsigned char *raw = NULL, *png = NULL;
        size_t raw_len, len;
        int w, h;
        if (!cJSON_IsString(p) ||
            dae_base64_decode(p->valuestring, strlen(p->valuestring), &raw, &raw_len, &err) ||
            reencode(raw, raw_len, &png, &len, &w, &h, &err)) {
            free(raw);
            bad = 1;
            break;
        }
        char *b64 = malloc(dae_base64_encoded_len(len) + 1);
        if (b64)
            dae_base64_encode(png, len, b64);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "width", w);
        cJSON_AddNumberToObject(o, "height", h);
        cJSON_AddNumberToObject(o, "channels", 1);
        cJSON_AddStringToObject(o, "png", b64 ? b64 : "");
        cJSON_AddItemToArray(list, o);
        free(b64);
        free(raw);
        free(png);
    }
    if (bad) {
        set_error(r, 400, "bad image");
    } else {
        char *txt = cJSON_PrintUnformatted(out);
        set_answer(r, txt ? 200 : 503, "application/json", txt, txt ? strlen(txt) : 0);
    }
    cJSON_Delete(out);
    cJSON_Delete(j);
}

static void run_one(freq *r)
{
    dae_error err = {0};
    if (r->route == R_DENOISE && r->is_json) {
        run_batch_json(r);
        return;
    }
    if (r->route == R_DENOISE) {
        unsigned char *png = NULL;
        size_t len;
        int w, h;
        if (reencode((unsigned char *)r->body, r->len, &png, &len, &w, &h, &err) != DAE_OK)
            set_error(r, 400, "bad image");
        else
            set_answer(r, 200, "image/png", (char *)png, len);
        return;
    }
    dae_image im = {0};
    if (dae_image_decode((unsigned char *)r->body, r->len, NULL, &im, &err) != DAE_OK) {
        set_error(r, 400, "bad image");
        return;
    }
    double sum = 0;
    size_t n = (size_t)im.w * im.h * im.c;
    for (size_t i = 0; i < n; i++)
        sum += im.px[i];
    dae_image_free(&im);
    char *b = malloc(64);
    if (b)
        snprintf(b, 64, "{\"score\":%.6g}\n", n ? sum / n : 0.0);
    set_answer(r, 200, "application/json", b, b ? strlen(b) : 0);
}

static void on_run(void *ctx, int worker, dae_job **jobs, int n)
{
    (void)ctx;
    (void)worker;
    for (int i = 0; i < n; i++) {
        freq *r = (freq *)jobs[i];
        run_one(r);
        MHD_resume_connection(r->conn);
    }
}

static void on_cancel(void *ctx, dae_job *job)
{
    (void)ctx;
    freq *r = (freq *)job;
    set_error(r, 503, "shutting down");
    MHD_resume_connection(r->conn);
}

static enum MHD_Result queue(freq *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->resp_len, r->resp ? r->resp : (char *)"",
                                        r->resp ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->resp = NULL;
    if (r->type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type);
    enum MHD_Result ok = MHD_queue_response(r->conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ok;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **req_cls)
{
    dae_workpool *pool = cls;
    freq *r = *req_cls;
    (void)version;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        *req_cls = r;
        r->conn = conn;
        if (!strcmp(url, "/healthz") && !strcmp(method, "GET"))
            r->route = R_HEALTH;
        else if (!strcmp(url, "/v1/denoise") && !strcmp(method, "POST"))
            r->route = R_DENOISE;
        else if (!strcmp(url, "/v1/score") && !strcmp(method, "POST"))
            r->route = R_SCORE;
        else
            set_error(r, 404, "no route");
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        r->is_json = ct && !strncasecmp(ct, "application/json", 16);
        return MHD_YES; /* answering on the first call would close a keep-alive connection */
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->status)
            return MHD_YES;
        if (r->len + n > MAX_BODY) {
            set_error(r, 413, "body too large");
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 4096;
            while (cap < r->len + n)
                cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b) {
                set_error(r, 503, "no memory");
                return MHD_YES;
            }
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->status)
        return queue(r);
    if (r->route == R_HEALTH) {
        char *b = strdup("{\"status\":\"ok\"}\n");
        set_answer(r, 200, "application/json", b, b ? strlen(b) : 0);
        return queue(r);
    }
    if (r->waiting)
        return MHD_YES; /* spurious call while suspended */
    r->waiting = 1;
    MHD_suspend_connection(conn);
    dae_error err = {0};
    if (dae_workpool_submit(pool, &r->job, &err) != DAE_OK) {
        set_error(r, 503, "busy");
        MHD_resume_connection(conn);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    freq *r = *req_cls;
    if (!r)
        return;
    *req_cls = NULL;
    free(r->body);
    free(r->resp);
    free(r);
}

int main(int argc, char **argv)
{
    int port = 8090, workers = 0, epoll = 0;
    size_t conn_memory = (size_t)16 * 1024; /* daed's --conn-memory default */
    const char *bind_addr = "127.0.0.1", *port_file = NULL;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 >= argc) {
            fprintf(stderr, "floor: %s needs a value\n", argv[i]);
            return 2;
        }
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--bind")) bind_addr = v;
        else if (!strcmp(k, "--workers")) workers = atoi(v);
        else if (!strcmp(k, "--epoll")) epoll = atoi(v);
        else if (!strcmp(k, "--png-level")) g_level = atoi(v);
        else if (!strcmp(k, "--port-file")) port_file = v;
        else if (!strcmp(k, "--conn-memory")) conn_memory = strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "usage: floor --port P [--bind A] [--workers N] [--epoll 0|1] "
                            "[--png-level L] [--conn-memory BYTES] [--port-file F]\n");
            return 2;
        }
    }
    if (workers <= 0)
        workers = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (workers <= 0)
        workers = 1;
    dae_error err = {0};
    dae_workpool_params wp = {.workers = workers, .queue_size = 256, .max_batch = 16,
                              .batch_delay_us = 0};
    dae_workpool *pool = dae_workpool_create(&wp, on_run, on_cancel, NULL, &err);
    if (!pool) {
        fprintf(stderr, "floor: %s\n", err.msg);
        return 1;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, bind_addr, &addr.sin_addr) != 1) {
        fprintf(stderr, "floor: bad --bind %s\n", bind_addr);
        return 2;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | (epoll ? MHD_USE_EPOLL : MHD_USE_POLL) |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_access, pool, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        conn_memory, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "floor: cannot listen on %s:%d\n", bind_addr, port);
        dae_workpool_free(pool);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? info->port : port;
    if (port_file) {
        FILE *f = fopen(port_file, "w");
        if (f) {
            fprintf(f, "%d\n", bound);
            fclose(f);
        }
    }
    fprintf(stderr, "floor: listening on %s:%d, %d workers, %s\n", bind_addr, bound, workers,
            epoll ? "epoll" : "poll");
    signal(SIGINT, on_sig);
    signal(SIGTERM, on_sig);
    while (!g_stop)
        pause();
    /* Let queued jobs finish and resume their connections before the daemon stops. */
    dae_workpool_stop(pool, 1);
    MHD_stop_daemon(d);
    dae_workpool_free(pool);
    return 0;
}
