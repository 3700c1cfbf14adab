/* web.h — the browser page (GET /) and the API docs (GET /docs) that daed serves from a
 * folder of static files (--web-dir, default ./web): which paths may be served, as what
 * type, with which headers.
 *
 * Only these URLs reach the folder: "/" (index.html), "/docs" (docs.html) and
 * "/web/<path>" (the file <path> inside the folder). A <path> is served only when
 * dae_web_path_check() accepts it: relative, at most DAE_WEB_MAX_PATH bytes and
 * DAE_WEB_MAX_DEPTH segments, each segment made of [A-Za-z0-9_.-] and not starting with
 * '.' (so no "..", no dotfiles), no empty segment, and an extension of the type table
 * (html, js, css, png, svg, ico, txt, json, yaml). The file must be a regular file (not a
 * symbolic link) of at most DAE_WEB_MAX_FILE bytes. Every answer from the folder carries
 * DAE_WEB_CSP (the page may load and connect only to daed itself; no inline script, no
 * eval), X-Content-Type-Options: nosniff and Cache-Control: no-cache.
 *
 * A file may be stored gzip-compressed instead, as <path>.gz (the container image keeps
 * the vendored Swagger UI so: 1.5 MB less): a client whose Accept-Encoding takes gzip gets
 * those bytes with Content-Encoding: gzip, any other the file inflated (at most
 * DAE_WEB_MAX_FILE bytes); both answers carry Vary: Accept-Encoding. The plain file, when
 * both exist, wins.
 */
#ifndef DAED_WEB_H
#define DAED_WEB_H

#include <stddef.h>

#include "daed/core/error.h"

enum {
    DAE_WEB_MAX_PATH = 120, /* bytes of a path inside the folder */
    DAE_WEB_MAX_DEPTH = 4   /* segments ("vendor/swagger-ui/x.css" is 3) */
};
#define DAE_WEB_MAX_FILE ((size_t)8 << 20) /* bytes of one served file */

/* Content-Security-Policy of every file served from the folder: scripts, styles, fonts
 * and requests only to daed's own origin; images also from blob: (the images the page
 * picks or receives) and data: (icons in the API docs' stylesheet); no plugins, no
 * framing, no <base>. */
#define DAE_WEB_CSP                                                                          \
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "  \
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "             \
    "form-action 'self'; frame-ancestors 'none'"

/* Is `path` (n bytes, not NUL-terminated necessarily: an embedded NUL is refused) a file
 * daed may serve from the web folder? DAE_OK, or DAE_EINVAL naming what is wrong. */
int dae_web_path_check(const char *path, size_t n, dae_error *err);

/* Content-Type of a file by its extension ("text/html; charset=utf-8"), NULL when the
 * extension is not served. */
const char *dae_web_type(const char *path);

/* Read dir/path into *data (malloc'd, caller frees; *len set). The path must pass
 * dae_web_path_check. DAE_ENOTFOUND when there is no such regular file (or it is a
 * symbolic link), DAE_ELIMIT past DAE_WEB_MAX_FILE, DAE_EIO, DAE_ENOMEM. */
int dae_web_read(const char *dir, const char *path, char **data, size_t *len,
                 dae_error *err);

/* A file as it is sent: its bytes (malloc'd, caller frees), gzip-encoded or not. */
typedef struct dae_web_file {
    char *data;
    size_t len;
    int gzip;        /* data is the stored gzip stream (answer with Content-Encoding) */
    int stored_gzip; /* the folder holds <path>.gz, not <path> (answer with Vary) */
} dae_web_file;

/* dir/path as dae_web_read reads it, else dir/<path>.gz: as it is when gzip_ok, else
 * inflated. Errors as dae_web_read's; a .gz that is not one whole gzip stream is DAE_EIO,
 * one that inflates past DAE_WEB_MAX_FILE DAE_ELIMIT. */
int dae_web_load(const char *dir, const char *path, int gzip_ok, dae_web_file *f,
                 dae_error *err);

#endif
