/* errcode.c — the table of error answers (see errcode.h). */
#include "errcode.h"

#include "daed/core/error.h"

static const struct {
    const char *name;
    int status;
} ERRCODES[ERR_COUNT] = {
    [ERR_INVALID_ARGUMENT] = {"invalid_argument", 400},
    [ERR_MALFORMED] = {"malformed", 400},
    [ERR_UNAUTHORIZED] = {"unauthorized", 401},
    [ERR_NOT_FOUND] = {"not_found", 404},
    [ERR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405},
    [ERR_JOB_NOT_READY] = {"not_ready", 409},
    [ERR_TOO_LARGE] = {"too_large", 413},
    [ERR_SHAPE_MISMATCH] = {"shape_mismatch", 422},
    [ERR_INTERNAL] = {"internal", 500},
    [ERR_IO] = {"io_error", 500},
    [ERR_NOT_IMPLEMENTED] = {"not_implemented", 501},
    [ERR_OUT_OF_MEMORY] = {"out_of_memory", 503},
    [ERR_BUSY] = {"busy", 503},
    [ERR_SHUTTING_DOWN] = {"shutting_down", 503},
    [ERR_CANCELLED] = {"cancelled", 503},
    [ERR_NOT_READY] = {"not_ready", 503},
    [ERR_INSUFFICIENT_STORAGE] = {"insufficient_storage", 507},
};

static dae_errcode valid(dae_errcode c)
{
    return (unsigned)c < ERR_COUNT ? c : ERR_INTERNAL;
}

int dae_errcode_status(dae_errcode c)
{
    return ERRCODES[valid(c)].status;
}

const char *dae_errcode_name(dae_errcode c)
{
    return ERRCODES[valid(c)].name;
}

dae_errcode dae_errcode_of(int dae_code)
{
    switch (dae_code) {
    case DAE_EINVAL: return ERR_INVALID_ARGUMENT;
    case DAE_ESHAPE: return ERR_SHAPE_MISMATCH;
    case DAE_ELIMIT: return ERR_TOO_LARGE;
    case DAE_EFORMAT: return ERR_MALFORMED;
    case DAE_ENOTFOUND: return ERR_NOT_FOUND;
    case DAE_EIO: return ERR_IO;
    case DAE_ENOMEM: return ERR_OUT_OF_MEMORY;
    case DAE_EBUSY: return ERR_BUSY;
    default: return ERR_INTERNAL;
    }
}
