/* web.c — the static files of the browser page and the API docs (--web-dir): path checks,
 * types, reading, and the handler of GET /, /docs and /web/<path>. */
#include "web.h"

#include <errno.h>
#include <stdio.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"
#include "sbuf.h"

static const struct {
    const char *ext;
    const char *type;
} TYPES[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".png", "image/png"},
    {".svg", "image/svg+xml"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
    {".json", "application/json"},
    {".yaml", "application/yaml"},
};

const char *dae_web_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return NULL;
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (!strcmp(dot, TYPES[i].ext))
            return TYPES[i].type;
    return NULL;
}

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

int dae_web_path_check(const char *path, size_t n, dae_error *err)
{
    if (n == 0)
        return dae_error_set(err, DAE_EINVAL, "web: empty file path");
    if (n > DAE_WEB_MAX_PATH)
        return dae_error_set(err, DAE_EINVAL, "web: file path of %zu bytes, at most %d", n,
                             DAE_WEB_MAX_PATH);
    if (memchr(path, '\0', n))
        return dae_error_set(err, DAE_EINVAL, "web: file path with a NUL byte");
    int segs = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && path[j] != '/')
            j++;
        if (j == i)
            return dae_error_set(err, DAE_EINVAL, "web: empty segment at byte %zu (absolute "
                                 "path, '//' or a trailing '/')", i);
        if (path[i] == '.')
            return dae_error_set(err, DAE_EINVAL, "web: segment at byte %zu starts with '.' "
                                 "('..' and hidden files are not served)", i);
        for (size_t k = i; k < j; k++)
            if (!name_char((unsigned char)path[k]))
                return dae_error_set(err, DAE_EINVAL, "web: byte 0x%02x at %zu: file paths "
                                     "are made of A-Z a-z 0-9 _ . - and /",
                                     (unsigned char)path[k], k);
        if (++segs > DAE_WEB_MAX_DEPTH)
            return dae_error_set(err, DAE_EINVAL, "web: more than %d path segments",
                                 DAE_WEB_MAX_DEPTH);
        if (j == n - 1)
            return dae_error_set(err, DAE_EINVAL, "web: empty segment at byte %zu (absolute "
                                 "path, '//' or a trailing '/')", n);
        i = j + 1;
    }
    char tmp[DAE_WEB_MAX_PATH + 1];
    memcpy(tmp, path, n);
    tmp[n] = '\0';
    if (!dae_web_type(tmp))
        return dae_error_set(err, DAE_EINVAL, "web: %s: not a served file type (html, js, "
                             "css, png, svg, ico, txt, json, yaml)", tmp);
    return DAE_OK;
}

/* Read the regular file `full` (not a symbolic link) of at most DAE_WEB_MAX_FILE bytes;
 * `path` names it in the messages. */
static int read_file(const char *full, const char *path, char **data, size_t *len,
                     dae_error *err)
{
    /* O_NOFOLLOW: a symbolic link as the file itself is refused (ELOOP), so a link in the
     * folder cannot point the server at a file elsewhere. */
    int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return dae_error_set(err, errno == ENOENT || errno == ELOOP || errno == ENOTDIR
                                  ? DAE_ENOTFOUND : DAE_EIO,
                             "web: %s: %s", path, errno == ELOOP ? "a symbolic link" :
                             errno == ENOENT || errno == ENOTDIR ? "no such file" :
                             strerror(errno));
    struct stat st;
    char *buf = NULL;
    int rc = DAE_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = dae_error_set(err, DAE_ENOTFOUND, "web: %s: not a regular file", path);
        goto done;
    }
    if ((size_t)st.st_size > DAE_WEB_MAX_FILE) {
        rc = dae_error_set(err, DAE_ELIMIT, "web: %s: %lld bytes, at most %zu", path,
                           (long long)st.st_size, DAE_WEB_MAX_FILE);
        goto done;
    }
    size_t want = (size_t)st.st_size, got = 0;
    if (!(buf = malloc(want ? want : 1))) {
        rc = dae_error_set(err, DAE_ENOMEM, "web: no memory for %s", path);
        goto done;
    }
    while (got < want) {
        ssize_t k = read(fd, buf + got, want - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    if (got != want) { /* shrank while read, or an I/O error */
        rc = dae_error_set(err, DAE_EIO, "web: %s: read %zu of %zu bytes", path, got, want);
        goto done;
    }
    *data = buf;
    *len = got;
    buf = NULL;
done:
    free(buf);
    close(fd);
    return rc;
}

/* dir/path into `full`; DAE_EINVAL when it does not fit. */
static int full_path(char *full, size_t n, const char *dir, const char *path,
                     const char *suffix, dae_error *err)
{
    if ((size_t)snprintf(full, n, "%s/%s%s", dir, path, suffix) >= n)
        return dae_error_set(err, DAE_EINVAL, "web: path %s/%s is too long", dir, path);
    return DAE_OK;
}

int dae_web_read(const char *dir, const char *path, char **data, size_t *len,
                 dae_error *err)
{
    *data = NULL;
    *len = 0;
    char full[1200];
    int rc = dae_web_path_check(path, strlen(path), err);
    if (rc == DAE_OK)
        rc = full_path(full, sizeof full, dir, path, "", err);
    return rc == DAE_OK ? read_file(full, path, data, len, err) : rc;
}

/* The gzip stream gz (n bytes) inflated into *out (malloc'd), at most DAE_WEB_MAX_FILE
 * bytes: a stored file that inflates past it is refused like a plain one that large. */
static int gunzip(const char *gz, size_t n, const char *path, char **out, size_t *len,
                  dae_error *err)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return dae_error_set(err, DAE_ENOMEM, "web: no memory to inflate %s.gz", path);
    size_t cap = 0, used = 0;
    char *buf = NULL;
    int zr = Z_OK, rc = DAE_OK;
    zs.next_in = (Bytef *)gz;
    zs.avail_in = (uInt)n;
    while (zr == Z_OK) {
        if (used == cap) {
            size_t ncap = cap ? cap * 2 : 4 * n + 4096;
            if (cap == DAE_WEB_MAX_FILE + 1) {
                rc = dae_error_set(err, DAE_ELIMIT, "web: %s.gz inflates past %zu bytes",
                                   path, DAE_WEB_MAX_FILE);
                break;
            }
            ncap = ncap > DAE_WEB_MAX_FILE + 1 ? DAE_WEB_MAX_FILE + 1 : ncap;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                rc = dae_error_set(err, DAE_ENOMEM, "web: no memory to inflate %s.gz", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        zs.next_out = (Bytef *)buf + used;
        zs.avail_out = (uInt)(cap - used);
        zr = inflate(&zs, Z_NO_FLUSH);
        used = cap - zs.avail_out;
    }
    if (rc == DAE_OK && used > DAE_WEB_MAX_FILE)
        rc = dae_error_set(err, DAE_ELIMIT, "web: %s.gz inflates past %zu bytes", path,
                           DAE_WEB_MAX_FILE);
    else if (rc == DAE_OK && (zr != Z_STREAM_END || zs.avail_in != 0))
        rc = dae_error_set(err, DAE_EIO, "web: %s.gz: not one whole gzip stream (%s)", path,
                           zs.msg ? zs.msg : "truncated, or bytes after its end");
    inflateEnd(&zs);
    if (rc != DAE_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = used;
    return DAE_OK;
}

int dae_web_load(const char *dir, const char *path, int gzip_ok, dae_web_file *f,
                 dae_error *err)
{
    memset(f, 0, sizeof *f);
    int rc = dae_web_read(dir, path, &f->data, &f->len, err);
    if (rc != DAE_ENOTFOUND)
        return rc;
    char full[1200];
    char *gz = NULL;
    size_t n = 0;
    dae_error e2 = {0};
    if (full_path(full, sizeof full, dir, path, ".gz", &e2) != DAE_OK ||
        read_file(full, path, &gz, &n, &e2) != DAE_OK) {
        if (e2.code == DAE_ENOTFOUND)
            return rc; /* neither: the plain file's message */
        *err = e2;
        return e2.code;
    }
    f->stored_gzip = 1;
    if (gzip_ok) {
        f->data = gz;
        f->len = n;
        f->gzip = 1;
        return DAE_OK;
    }
    rc = gunzip(gz, n, path, &f->data, &f->len, err);
    free(gz);
    return rc;
}

/* ---- the server side */

void dae_web_log_start(const dae_serve_config *cfg)
{
    char full[1100];
    struct stat st;
    snprintf(full, sizeof full, "%s/index.html", cfg->web_dir);
    if (stat(full, &st) == 0 && S_ISREG(st.st_mode))
        dae_log(DAE_LOG_INFO, "web: the page at / and the API docs at /docs, from %s",
                cfg->web_dir);
    else
        dae_log(DAE_LOG_WARN, "web: %s: %s: GET / answers a pointer to the API (--web-dir)",
                full, strerror(errno));
}

/* ---- the handler (HTTP thread) */

/* The headers of every answer from the folder (web.h). */
#define WEB_BASE_HEADERS                                                                     \
    "Content-Security-Policy", DAE_WEB_CSP, "X-Content-Type-Options", "nosniff",            \
        "Cache-Control", "no-cache", "Referrer-Policy", "no-referrer"
static const char *const WEB_HEADERS[] = {WEB_BASE_HEADERS, NULL};
/* A file stored as <path>.gz: sent as it is to a client that takes gzip, else inflated;
 * either way caches must key on Accept-Encoding. */
static const char *const WEB_HEADERS_GZIP[] = {
    WEB_BASE_HEADERS, "Content-Encoding", "gzip", "Vary", "Accept-Encoding", NULL};
static const char *const WEB_HEADERS_VARY[] = {WEB_BASE_HEADERS, "Vary", "Accept-Encoding",
                                               NULL};

/* GET / or /docs without the page's files: a pointer to the API instead of an error. */
static void web_pointer(dae_req *r, const dae_error *e)
{
    sbuf b;
    dae_sb_init(&b);
    dae_sb_str(&b, "{\"name\":\"daed\",\"message\":");
    char msg[700];
    snprintf(msg, sizeof msg, "the web page is not installed (%.300s; --web-dir %.300s): "
             "use the HTTP API", e->msg, r->s->cfg.web_dir);
    dae_sb_json_str(&b, msg);
    dae_sb_str(&b, ",\"api\":\"/openapi.yaml\",\"models\":\"/v1/models\"}\n");
    size_t len;
    char *body = dae_sb_take(&b, &len);
    if (!body)
        dae_req_error(r, ERR_OUT_OF_MEMORY, "no memory for the answer");
    else
        dae_req_answer(r, 200, "application/json", body, len);
}

void dae_web_handle(dae_req *r)
{
    const char *file = r->route->id == DAE_ROUTE_WEB_INDEX ? "index.html"
                       : r->route->id == DAE_ROUTE_WEB_DOCS ? "docs.html"
                                                            : r->param;
    r->headers = WEB_HEADERS;
    const char *ae = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept-Encoding");
    dae_error e = {0};
    dae_web_file f;
    if (dae_web_load(r->s->cfg.web_dir, file, dae_http_accepts(ae, "gzip"), &f, &e) != DAE_OK) {
        if (e.code == DAE_ENOTFOUND && r->route->id != DAE_ROUTE_WEB_FILE)
            web_pointer(r, &e);
        else
            dae_req_fail(r, &e);
        return;
    }
    if (f.stored_gzip)
        r->headers = f.gzip ? WEB_HEADERS_GZIP : WEB_HEADERS_VARY;
    if (f.len == 0) {
        free(f.data);
        f.data = NULL;
    }
    dae_req_answer(r, 200, dae_web_type(file), f.data, f.len);
}
