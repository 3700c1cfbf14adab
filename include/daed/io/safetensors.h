/* safetensors.h — a strict reader and an atomic writer for safetensors files.
 *
 * Layout: 8-byte little-endian header length N, N bytes of JSON
 *     {"<name>": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]},
 *      ..., "__metadata__": {"<key>": "<string>", ...}}
 * then the data section. Offsets are relative to the start of the data section; the
 * tensors, sorted by offset, tile it exactly (first begins at 0, each begins where the
 * previous ends, the last ends at the end of the file). Writers pad the header with
 * spaces so the data section starts at a multiple of 8.
 *
 * The reader treats its input as hostile: capped header and file sizes, the header must be
 * one JSON object with no duplicate keys (tensor, metadata or field names) and no unknown
 * fields, dtypes must be known, dims non-negative and bounded, element counts
 * overflow-checked and equal to end - begin, offsets contiguous as above, metadata values
 * strings. Any dtype of the safetensors spec is accepted and recorded; callers that need
 * F32 check dae_st_tensor.dtype themselves (so they can say "dtype F16, expected F32").
 *
 * The writer writes `<path>.tmp.<pid>` in the target's directory, fsyncs it, renames it
 * over the target and fsyncs the directory; on failure it removes the temporary and leaves
 * the target untouched. Tensor data is written in host byte order (daed requires a
 * little-endian host).
 */
#ifndef DAED_SAFETENSORS_H
#define DAED_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "daed/core/error.h"

#define DAE_ST_MAX_DIMS 8
#define DAE_ST_MAX_DIM_VALUE ((int64_t)1 << 31) /* each dim must be below this */

typedef struct dae_st_tensor {
    char *name;                     /* owned by the dae_st_file */
    char dtype[8];                  /* "F32", "F16", "BF16", "I64", ... */
    int elem_size;                  /* bytes per element of dtype */
    int ndim;
    int64_t shape[DAE_ST_MAX_DIMS];
    size_t n_elem;                  /* product of shape (1 for a scalar) */
    size_t begin, end;              /* byte offsets in the data section */
    const unsigned char *data;      /* = file data + begin, borrowed from the parsed buffer */
} dae_st_tensor;

typedef struct dae_st_file {
    int n_tensors;
    dae_st_tensor *tensors;         /* owned, in header order */
    int n_meta;                     /* -1: no __metadata__ object at all */
    char **meta_keys, **meta_vals;  /* owned, n_meta each, in header order */
    size_t header_bytes;            /* N */
    const unsigned char *data;      /* data section, borrowed from the parsed buffer */
    size_t data_bytes;
} dae_st_file;

typedef struct dae_st_limits {
    size_t max_file_bytes;   /* default 256 MiB */
    size_t max_header_bytes; /* default 1 MiB */
    int max_tensors;         /* default 4096 */
} dae_st_limits;

dae_st_limits dae_st_default_limits(void);

/* Parse and validate buf[0..len). The result borrows buf (tensor and data pointers point
 * into it): keep buf alive and unchanged until dae_st_free. lim may be NULL for defaults.
 * Returns NULL with a message (no file name; callers prefix it) on failure. */
dae_st_file *dae_st_parse(const unsigned char *buf, size_t len, const dae_st_limits *lim,
                          dae_error *err);
void dae_st_free(dae_st_file *f);

/* The tensor named `name`, or NULL. */
const dae_st_tensor *dae_st_find(const dae_st_file *f, const char *name);
/* The metadata value for `key` (borrowed), or NULL. */
const char *dae_st_meta(const dae_st_file *f, const char *key);

/* Read a whole regular file, refusing files larger than max_bytes (DAE_ELIMIT).
 * *out is malloc'd (caller frees). Messages name the path. */
int dae_file_read(const char *path, size_t max_bytes, unsigned char **out, size_t *len,
                  dae_error *err);

/* Whether dae_file_load maps a file instead of copying it. A mapping costs no copy and no
 * fresh memory (on a VM where a first write to a page costs ~10 us, loading the shipped
 * models went from ~60 ms to a few ms), but its pages are the file's: a file truncated or
 * rewritten in place while mapped changes under the reader or kills it with SIGBUS. AUTO
 * maps only files on a read-only filesystem (a container's read-only root or volume),
 * where that cannot happen; ALWAYS is for callers who replace files only by rename. */
typedef enum {
    DAE_FILE_MAP_AUTO = 0,
    DAE_FILE_MAP_ALWAYS,
    DAE_FILE_MAP_NEVER
} dae_file_map;

/* Name <-> value: "auto", "always", "never"; -1 for an unknown name. */
int dae_file_map_from_name(const char *name);
const char *dae_file_map_name(dae_file_map m);

/* dae_file_read, or a read-only private mapping of the file when the policy allows it and
 * mmap works (*mapped = 1; the bytes must not be written). Release with dae_file_release. */
int dae_file_load(const char *path, size_t max_bytes, dae_file_map policy, unsigned char **out,
                  size_t *len, int *mapped, dae_error *err);
void dae_file_release(unsigned char *buf, size_t len, int mapped);

/* Write the pieces (concatenated) to path atomically: `<path>.tmp.<pid>`, fsync, rename,
 * fsync of the directory. On failure no temporary is left and the target is untouched. */
typedef struct dae_iovec {
    const void *data;
    size_t len;
} dae_iovec;
int dae_file_write_atomic(const char *path, const dae_iovec *parts, int n_parts,
                          dae_error *err);

/* One tensor to write: data holds n_elem(shape) * elem_size(dtype) bytes (borrowed). */
typedef struct dae_st_out {
    const char *name;
    const char *dtype; /* "F32" etc. */
    int ndim;
    int64_t shape[DAE_ST_MAX_DIMS];
    const void *data;
} dae_st_out;

/* Bytes per element of a safetensors dtype name, 0 if unknown. */
int dae_st_dtype_size(const char *dtype);

/* IEEE 754 binary16 ("F16", little-endian bytes, as safetensors stores it) to float and
 * back: decoding is exact (subnormals, infinities and NaN included); encoding rounds to
 * nearest even, overflows to infinity and keeps NaN a NaN. */
void dae_f16_decode(const unsigned char *src, size_t n, float *dst);
void dae_f16_encode(const float *src, size_t n, unsigned char *dst);

/* Write a safetensors file atomically: tensors in the given order (offsets assigned
 * contiguously), metadata from meta = NULL-terminated key,value pairs (NULL for none).
 * Duplicate names or keys are refused (DAE_EINVAL). */
int dae_st_write(const char *path, const dae_st_out *tensors, int n_tensors,
                 const char *const *meta, dae_error *err);

#endif
