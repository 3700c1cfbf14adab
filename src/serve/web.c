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

int dae_web_read(const char *dir, const char *path, char **data, size_t *len,
                 dae_error *err)
{
    *data = NULL;
    *len = 0;
    int rc = dae_web_path_check(path, strlen(path), err);
    if (rc != DAE_OK)
        return rc;
    char full[1200];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, path) >= sizeof full)
        return dae_error_set(err, DAE_EINVAL, "web: path %s/%s is too long", dir, path);
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

static const char *const WEB_HEADERS[] = {
    "Content-Security-Policy", DAE_WEB_CSP,
    "X-Content-Type-Options", "nosniff",
    "Cache-Control", "no-cache",
    "Referrer-Policy", "no-referrer",
    NULL,
};

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
    dae_error e = {0};
    char *data;
    size_t len;
    if (dae_web_read(r->s->cfg.web_dir, file, &data, &len, &e) != DAE_OK) {
        if (e.code == DAE_ENOTFOUND && r->route->id != DAE_ROUTE_WEB_FILE)
            web_pointer(r, &e);
        else
            dae_req_fail(r, &e);
        return;
    }
    if (len == 0) {
        free(data);
        data = NULL;
    }
    dae_req_answer(r, 200, dae_web_type(file), data, len);
}
