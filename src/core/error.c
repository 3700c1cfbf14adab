/* error.c — dae_error helpers. */
#include "daed/core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int dae_error_set(dae_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int dae_error_prefix(dae_error *err, const char *fmt, ...)
{
    if (!err)
        return DAE_EINTERNAL;
    char pre[256], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t n = strnlen(pre, sizeof err->msg - 1);
    memcpy(err->msg, pre, n);
    size_t m = strnlen(old, sizeof old);
    if (m > sizeof err->msg - 1 - n)
        m = sizeof err->msg - 1 - n;
    memcpy(err->msg + n, old, m);
    err->msg[n + m] = '\0';
    return err->code;
}

const char *dae_error_name(int code)
{
    switch (code) {
    case DAE_OK: return "ok";
    case DAE_EINVAL: return "invalid_argument";
    case DAE_ESHAPE: return "shape_mismatch";
    case DAE_ELIMIT: return "too_large";
    case DAE_EFORMAT: return "malformed";
    case DAE_ENOTFOUND: return "not_found";
    case DAE_EIO: return "io_error";
    case DAE_ENOMEM: return "out_of_memory";
    case DAE_EBUSY: return "busy";
    default: return "internal";
    }
}
