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

void dae_sb_init(sbuf *b);
void dae_sb_free(sbuf *b);
int dae_sb_reserve(sbuf *b, size_t extra);
void dae_sb_add(sbuf *b, const void *s, size_t n);
void dae_sb_str(sbuf *b, const char *s);
void dae_sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string literal with escapes (quotes included). */
void dae_sb_json_str(sbuf *b, const char *s);
/* A float as a short JSON number (%.7g; NaN/Inf become null). */
void dae_sb_json_float(sbuf *b, double v);
/* "[v0,v1,...]" */
void dae_sb_json_floats(sbuf *b, const float *v, size_t n);
/* Hand the bytes over (caller frees); the buffer is reset. Never NULL unless oom. */
char *dae_sb_take(sbuf *b, size_t *len);

#endif
