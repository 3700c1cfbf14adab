/* sbuf.c — growable byte buffer with JSON helpers. */
#include "sbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dae_sb_init(sbuf *b)
{
    memset(b, 0, sizeof *b);
}

void dae_sb_free(sbuf *b)
{
    free(b->p);
    dae_sb_init(b);
}

int dae_sb_reserve(sbuf *b, size_t extra)
{
    if (b->oom)
        return -1;
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->oom = 1;
        return -1;
    }
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void dae_sb_add(sbuf *b, const void *s, size_t n)
{
    if (dae_sb_reserve(b, n) != 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void dae_sb_str(sbuf *b, const char *s)
{
    dae_sb_add(b, s, strlen(s));
}

void dae_sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof tmp) {
        dae_sb_add(b, tmp, (size_t)n);
        return;
    }
    if (dae_sb_reserve(b, (size_t)n) != 0)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void dae_sb_json_str(sbuf *b, const char *s)
{
    dae_sb_add(b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"': dae_sb_add(b, "\\\"", 2); break;
        case '\\': dae_sb_add(b, "\\\\", 2); break;
        case '\n': dae_sb_add(b, "\\n", 2); break;
        case '\r': dae_sb_add(b, "\\r", 2); break;
        case '\t': dae_sb_add(b, "\\t", 2); break;
        default:
            if (*c < 0x20)
                dae_sb_printf(b, "\\u%04x", *c);
            else
                dae_sb_add(b, c, 1);
        }
    }
    dae_sb_add(b, "\"", 1);
}

void dae_sb_json_float(sbuf *b, double v)
{
    if (!isfinite(v)) {
        dae_sb_add(b, "null", 4);
        return;
    }
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%.7g", v);
    dae_sb_add(b, tmp, (size_t)n);
}

void dae_sb_json_floats(sbuf *b, const float *v, size_t n)
{
    if (n < SIZE_MAX / 16 && dae_sb_reserve(b, n * 10 + 2) != 0)
        return;
    dae_sb_add(b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            dae_sb_add(b, ",", 1);
        dae_sb_json_float(b, v[i]);
    }
    dae_sb_add(b, "]", 1);
}

char *dae_sb_take(sbuf *b, size_t *len)
{
    if (b->oom) {
        dae_sb_free(b);
        return NULL;
    }
    if (!b->p && dae_sb_reserve(b, 0) != 0)
        return NULL;
    b->p[b->len] = '\0';
    char *p = b->p;
    if (len)
        *len = b->len;
    dae_sb_init(b);
    return p;
}
