/* fuzz_safetensors.c — libFuzzer target: dae_st_parse of a whole file (header and data).
 * An accepted file must satisfy every invariant safetensors.h promises, and writing it back
 * with dae_st_write must give a file that parses to the same tensors and metadata.
 * FUZZ_OPTIONS: -max_len=65536 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daed/io/safetensors.h"
#include "fuzz_util.h"

typedef struct {
    size_t begin, end;
} span;

static int cmp_span(const void *a, const void *b)
{
    const span *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static void check_file(const dae_st_file *f, const uint8_t *data, size_t size,
                       const dae_st_limits *lim)
{
    FUZZ_CHECK(f->header_bytes <= lim->max_header_bytes);
    FUZZ_CHECK(8 + f->header_bytes + f->data_bytes == size);
    FUZZ_CHECK(f->data == data + 8 + f->header_bytes);
    FUZZ_CHECK(f->n_tensors >= 0 && f->n_tensors <= lim->max_tensors);
    FUZZ_CHECK(f->n_tensors == 0 || f->tensors != NULL);
    span *sp = calloc((size_t)f->n_tensors + 1, sizeof *sp);
    FUZZ_CHECK(sp != NULL);
    unsigned sum = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        const dae_st_tensor *t = &f->tensors[i];
        FUZZ_CHECK(t->name != NULL && strcmp(t->name, "__metadata__") != 0);
        FUZZ_CHECK(memchr(t->dtype, '\0', sizeof t->dtype) != NULL);
        FUZZ_CHECK(t->elem_size > 0 && dae_st_dtype_size(t->dtype) == t->elem_size);
        FUZZ_CHECK(t->ndim >= 0 && t->ndim <= DAE_ST_MAX_DIMS);
        size_t n = 1;
        for (int d = 0; d < t->ndim; d++) {
            FUZZ_CHECK(t->shape[d] >= 0 && t->shape[d] < DAE_ST_MAX_DIM_VALUE);
            FUZZ_CHECK(n <= SIZE_MAX / (size_t)(t->shape[d] ? t->shape[d] : 1));
            n *= (size_t)t->shape[d];
        }
        FUZZ_CHECK(t->n_elem == n);
        FUZZ_CHECK(t->begin <= t->end && t->end <= f->data_bytes);
        FUZZ_CHECK(t->end - t->begin == n * (size_t)t->elem_size);
        FUZZ_CHECK(t->data == f->data + t->begin);
        for (size_t b = t->begin; b < t->end; b++) /* every byte readable (ASan) */
            sum += f->data[b];
        FUZZ_CHECK(dae_st_find(f, t->name) == t); /* names are unique */
        sp[i] = (span){t->begin, t->end};
    }
    (void)sum;
    /* Sorted by offset, the tensors tile the data section exactly. */
    qsort(sp, (size_t)f->n_tensors, sizeof *sp, cmp_span);
    size_t at = 0;
    for (int i = 0; i < f->n_tensors; i++) {
        FUZZ_CHECK(sp[i].begin == at);
        at = sp[i].end;
    }
    FUZZ_CHECK(at == f->data_bytes);
    free(sp);
    FUZZ_CHECK(f->n_meta >= -1);
    for (int i = 0; i < f->n_meta; i++) {
        FUZZ_CHECK(f->meta_keys[i] && f->meta_vals[i]);
        FUZZ_CHECK(dae_st_meta(f, f->meta_keys[i]) == f->meta_vals[i]); /* keys unique */
    }
}

/* Write f with dae_st_write and parse the result: same tensors, same metadata. */
static void round_trip(const dae_st_file *f)
{
    const char *dir = fuzz_scratch_dir();
    if (!dir)
        return;
    char path[128];
    snprintf(path, sizeof path, "%s/st.safetensors", dir);
    dae_st_out *outs = calloc((size_t)f->n_tensors + 1, sizeof *outs);
    const char **meta = calloc(2 * (size_t)(f->n_meta > 0 ? f->n_meta : 0) + 1, sizeof *meta);
    FUZZ_CHECK(outs && meta);
    for (int i = 0; i < f->n_tensors; i++) {
        const dae_st_tensor *t = &f->tensors[i];
        outs[i].name = t->name;
        outs[i].dtype = t->dtype;
        outs[i].ndim = t->ndim;
        memcpy(outs[i].shape, t->shape, sizeof t->shape);
        outs[i].data = t->data;
    }
    for (int i = 0; i < f->n_meta; i++) {
        meta[2 * i] = f->meta_keys[i];
        meta[2 * i + 1] = f->meta_vals[i];
    }
    dae_error err = {0};
    int rc = dae_st_write(path, outs, f->n_tensors, meta, &err);
    if (rc != DAE_OK)
        fprintf(stderr, "dae_st_write: %s\n", err.msg);
    FUZZ_CHECK(rc == DAE_OK); /* whatever the reader accepts, the writer can write */
    unsigned char *buf = NULL;
    size_t len = 0;
    rc = dae_file_read(path, (size_t)1 << 24, &buf, &len, &err);
    FUZZ_CHECK(rc == DAE_OK);
    unlink(path);
    dae_st_limits big = dae_st_default_limits();
    dae_st_file *g = dae_st_parse(buf, len, &big, &err);
    if (!g)
        fprintf(stderr, "re-parse: %s\n", err.msg);
    FUZZ_CHECK(g != NULL);
    FUZZ_CHECK((8 + g->header_bytes) % 8 == 0); /* writers pad the header */
    FUZZ_CHECK(g->n_tensors == f->n_tensors && g->data_bytes == f->data_bytes);
    for (int i = 0; i < f->n_tensors; i++) {
        const dae_st_tensor *a = &f->tensors[i], *b = &g->tensors[i];
        FUZZ_CHECK(strcmp(a->name, b->name) == 0 && strcmp(a->dtype, b->dtype) == 0);
        FUZZ_CHECK(a->ndim == b->ndim);
        FUZZ_CHECK(memcmp(a->shape, b->shape, sizeof(int64_t) * (size_t)a->ndim) == 0);
        FUZZ_CHECK(a->end - a->begin == b->end - b->begin);
        FUZZ_CHECK(a->end == a->begin || memcmp(a->data, b->data, a->end - a->begin) == 0);
    }
    int na = f->n_meta > 0 ? f->n_meta : 0, nb = g->n_meta > 0 ? g->n_meta : 0;
    FUZZ_CHECK(na == nb);
    for (int i = 0; i < na; i++)
        FUZZ_CHECK(strcmp(f->meta_keys[i], g->meta_keys[i]) == 0 &&
                   strcmp(f->meta_vals[i], g->meta_vals[i]) == 0);
    dae_st_free(g);
    free(buf);
    free(meta);
    free(outs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dae_st_limits lim = {.max_file_bytes = (size_t)1 << 20,
                         .max_header_bytes = (size_t)1 << 16,
                         .max_tensors = 256};
    dae_error err = {0};
    dae_st_file *f = dae_st_parse(data, size, &lim, &err);
    if (!f) {
        fuzz_check_error(err.code, &err);
        FUZZ_CHECK(err.code == DAE_EFORMAT || err.code == DAE_ELIMIT);
        return 0;
    }
    fuzz_note("accepted", NULL);
    check_file(f, data, size, &lim);
    if (f->n_tensors <= 64)
        round_trip(f);
    dae_st_free(f);
    return 0;
}
