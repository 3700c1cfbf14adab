/* sbuf.h — a growable byte buffer for building HTTP bodies (JSON, Prometheus text).
 * Internal to src/serve. Appends never fail loudly: an allocation failure sets `oom`, later
 * appends do nothing, and the caller checks oom once at the end. */
#ifndef DAED_SERVE_SBUF_H
#define DAED_SERVE_SBUF_H

#include <stddef.h>

typedef struct sbuf {
    char *p;    /* owned, NUL-terminated when len > 0 */
    size_t len, cap;
    int oom;
} sbuf;

void sb_init(sbuf *b);
void sb_free(sbuf *b);
int sb_reserve(sbuf *b, size_t extra);
void sb_add(sbuf *b, const void *s, size_t n);
void sb_str(sbuf *b, const char *s);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with escapes (quotes included). */
void sb_json_str(sbuf *b, const char *s);
/* A float as a short JSON number (%.7g; NaN/Inf become null). */
void sb_json_float(sbuf *b, double v);
/* "[v0,v1,...]" */
void sb_json_floats(sbuf *b, const float *v, size_t n);
/* Hand the bytes over (caller frees); the buffer is reset. Never NULL unless oom. */
char *sb_take(sbuf *b, size_t *len);

#endif
