/* error.h — the one error vocabulary of daed: a code plus a message a user can act on.
 *
 * Every fallible function takes a `dae_error *err` (may be NULL) as its last argument and
 * returns DAE_OK (0) or one of the codes below; on failure it fills err->msg with the
 * object, the bad value and the expected one ("model.safetensors: tensor encoder.0.weight:
 * shape [32,1,3,3], expected [32,1,5,5]"). The serving layer maps codes to HTTP statuses.
 */
#ifndef DAED_ERROR_H
#define DAED_ERROR_H

#include <stddef.h>

enum {
    DAE_OK = 0,
    DAE_EINVAL,    /* bad argument or request (400) */
    DAE_ESHAPE,    /* data does not fit the model's shape (422) */
    DAE_ELIMIT,    /* input exceeds a configured cap (413) */
    DAE_EFORMAT,   /* malformed file or body: PNG, JSON, safetensors, IDX (400 / load error) */
    DAE_ENOTFOUND, /* no such model, file or route (404) */
    DAE_EIO,       /* read/write failure (500 / start-up error) */
    DAE_ENOMEM,    /* allocation failed (503) */
    DAE_EBUSY,     /* queue full, try later (503) */
    DAE_EINTERNAL  /* a bug: an invariant did not hold (500) */
};

typedef struct dae_error {
    int code;
    char msg[512];
} dae_error;

/* Set err (if not NULL) and return code. printf-style message. */
int dae_error_set(dae_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix an existing message with context ("file.safetensors: "). Returns err->code. */
int dae_error_prefix(dae_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Stable lowercase name of a code, used as the "code" field of JSON errors. */
const char *dae_error_name(int code);

#endif
