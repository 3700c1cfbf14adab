/* safetensors.c — strict safetensors parsing from memory and atomic writing. */
#include "daed/io/json.h"
#include "daed/io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "daed reads and writes tensor data in host order and requires a little-endian host"
#endif

#define MAX_NAME_BYTES 256 /* tensor names and metadata keys */
#define MAX_OFFSET ((double)(1ULL << 53)) /* largest integer a JSON double holds exactly */

dae_st_limits dae_st_default_limits(void)
{
    dae_st_limits l = {.max_file_bytes = (size_t)256 << 20,
                       .max_header_bytes = (size_t)1 << 20,
                       .max_tensors = 4096};
    return l;
}

static const struct {
    const char *name;
    int size;
} dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
    {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},   {"U64", 8},     {"U32", 4},
    {"U16", 2}, {"U8", 1},  {"BOOL", 1},
};

int dae_st_dtype_size(const char *dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtype, dtypes[i].name) == 0)
            return dtypes[i].size;
    return 0;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13); /* infinity, NaN */
    } else if (e) {
        bits = sign | ((e + 112) << 23) | (m << 13);
    } else { /* zero or subnormal: m * 2^-24, exact in float */
        float v = (float)m * 0x1p-24f;
        memcpy(&bits, &v, sizeof bits);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static uint16_t float_to_half(float f)
{
    uint32_t b;
    memcpy(&b, &f, sizeof b);
    uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
    uint32_t a = b & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: a quiet one */
        return sign | 0x7e00;
    if (a >= 0x477ff000u) /* rounds to 65520 or more (or infinity): infinity */
        return sign | 0x7c00;
    if (a < 0x38800000u) { /* under 2^-14: subnormal (or zero), units of 2^-24 */
        float v;
        memcpy(&v, &a, sizeof v);
        return sign | (uint16_t)lrintf(v * 0x1p24f); /* nearest even (default mode) */
    }
    /* normal: drop 13 mantissa bits, nearest even (a carry into the exponent is right) */
    uint32_t r = a + 0xfffu + ((a >> 13) & 1);
    return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

void dae_f16_decode(const unsigned char *src, size_t n, float *dst)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
}

void dae_f16_encode(const float *src, size_t n, unsigned char *dst)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h = float_to_half(src[i]);
        dst[2 * i] = (unsigned char)(h & 0xff);
        dst[2 * i + 1] = (unsigned char)(h >> 8);
    }
}

void dae_st_free(dae_st_file *f)
{
    if (!f)
        return;
    for (int i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    for (int i = 0; i < f->n_meta; i++) {
        free(f->meta_keys[i]);
        free(f->meta_vals[i]);
    }
    free(f->meta_keys);
    free(f->meta_vals);
    free(f);
}

const dae_st_tensor *dae_st_find(const dae_st_file *f, const char *name)
{
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *dae_st_meta(const dae_st_file *f, const char *key)
{
    for (int i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta_keys[i], key) == 0)
            return f->meta_vals[i];
    return NULL;
}

/* A JSON number that is an integer in [0, max]. */
static int json_uint(const cJSON *v, double max, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d < 0 || d > max || d != floor(d))
        return 0;
    *out = (uint64_t)d;
    return 1;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static int parse_metadata(dae_st_file *f, const cJSON *meta, dae_error *err)
{
    if (!cJSON_IsObject(meta))
        return dae_error_set(err, DAE_EFORMAT, "__metadata__ is not a JSON object");
    int oom;
    const char *dup = dae_json_object_duplicate_key(meta, &oom);
    if (oom)
        return dae_error_set(err, DAE_ENOMEM, "out of memory checking __metadata__");
    if (dup)
        return dae_error_set(err, DAE_EFORMAT, "duplicate __metadata__ key \"%.64s\"", dup);
    int n = cJSON_GetArraySize(meta);
    f->meta_keys = calloc((size_t)n + 1, sizeof *f->meta_keys);
    f->meta_vals = calloc((size_t)n + 1, sizeof *f->meta_vals);
    f->n_meta = 0;
    if (!f->meta_keys || !f->meta_vals)
        return dae_error_set(err, DAE_ENOMEM, "out of memory reading __metadata__");
    for (const cJSON *c = meta->child; c; c = c->next) {
        if (!cJSON_IsString(c))
            return dae_error_set(err, DAE_EFORMAT,
                                 "__metadata__ value of \"%.64s\" is not a string", c->string);
        if (strlen(c->string) >= MAX_NAME_BYTES)
            return dae_error_set(err, DAE_EFORMAT, "__metadata__ key \"%.64s...\" too long",
                                 c->string);
        f->meta_keys[f->n_meta] = xstrdup(c->string);
        f->meta_vals[f->n_meta] = xstrdup(c->valuestring);
        if (!f->meta_keys[f->n_meta] || !f->meta_vals[f->n_meta]) {
            free(f->meta_keys[f->n_meta]);
            free(f->meta_vals[f->n_meta]);
            return dae_error_set(err, DAE_ENOMEM, "out of memory reading __metadata__");
        }
        f->n_meta++;
    }
    return DAE_OK;
}

static void shape_str(char *buf, size_t n, const int64_t *shape, int ndim)
{
    size_t k = 0;
    buf[0] = '\0';
    k += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%" PRId64, i ? "," : "", shape[i]);
    if (k < n)
        snprintf(buf + k, n - k, "]");
}

/* One tensor entry; t->name already set. */
static int parse_tensor(dae_st_tensor *t, const cJSON *e, size_t data_bytes, dae_error *err)
{
    const char *nm = t->name;
    if (!cJSON_IsObject(e))
        return dae_error_set(err, DAE_EFORMAT, "tensor %s: entry is not a JSON object", nm);
    int oom;
    const char *dup = dae_json_object_duplicate_key(e, &oom);
    if (oom)
        return dae_error_set(err, DAE_ENOMEM, "out of memory checking tensor %s", nm);
    if (dup)
        return dae_error_set(err, DAE_EFORMAT, "tensor %s: duplicate field \"%.64s\"", nm, dup);
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *c = e->child; c; c = c->next) {
        if (strcmp(c->string, "dtype") == 0)
            dtype = c;
        else if (strcmp(c->string, "shape") == 0)
            shape = c;
        else if (strcmp(c->string, "data_offsets") == 0)
            offs = c;
        else
            return dae_error_set(err, DAE_EFORMAT,
                                 "tensor %s: unknown field \"%.64s\" (expected dtype, shape, "
                                 "data_offsets)", nm, c->string);
    }
    if (!dtype || !shape || !offs)
        return dae_error_set(err, DAE_EFORMAT, "tensor %s: missing \"%s\"", nm,
                             !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

    if (!cJSON_IsString(dtype))
        return dae_error_set(err, DAE_EFORMAT, "tensor %s: dtype is not a string", nm);
    t->elem_size = dae_st_dtype_size(dtype->valuestring);
    if (t->elem_size == 0)
        return dae_error_set(err, DAE_EFORMAT, "tensor %s: unknown dtype \"%.16s\"", nm,
                             dtype->valuestring);
    snprintf(t->dtype, sizeof t->dtype, "%s", dtype->valuestring);

    if (!cJSON_IsArray(shape))
        return dae_error_set(err, DAE_EFORMAT, "tensor %s: shape is not an array", nm);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > DAE_ST_MAX_DIMS)
        return dae_error_set(err, DAE_EFORMAT, "tensor %s: %d dims, at most %d supported", nm,
                             ndim, DAE_ST_MAX_DIMS);
    t->ndim = 0;
    size_t count = 1;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (!json_uint(d, (double)(DAE_ST_MAX_DIM_VALUE - 1), &v)) {
            char txt[40] = "?";
            char *js = cJSON_PrintUnformatted(d);
            if (cJSON_IsNumber(d))
                snprintf(txt, sizeof txt, "%.17g", d->valuedouble);
            else if (js)
                snprintf(txt, sizeof txt, "%.32s", js);
            free(js);
            return dae_error_set(err, DAE_EFORMAT,
                                 "tensor %s: shape dim %d is %s, expected an integer in "
                                 "[0, %" PRId64 ")", nm, t->ndim, txt, DAE_ST_MAX_DIM_VALUE);
        }
        t->shape[t->ndim++] = (int64_t)v;
        if (v != 0 && count > SIZE_MAX / v)
            return dae_error_set(err, DAE_EFORMAT, "tensor %s: element count overflows", nm);
        count *= (size_t)v;
    }
    t->n_elem = count;
    if (count > SIZE_MAX / (size_t)t->elem_size)
        return dae_error_set(err, DAE_EFORMAT, "tensor %s: byte size overflows", nm);

    uint64_t b, en;
    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
        !json_uint(offs->child, MAX_OFFSET, &b) || !json_uint(offs->child->next, MAX_OFFSET, &en))
        return dae_error_set(err, DAE_EFORMAT,
                             "tensor %s: data_offsets is not [begin, end] of non-negative "
                             "integers", nm);
    if (b > en)
        return dae_error_set(err, DAE_EFORMAT,
                             "tensor %s: data_offsets [%" PRIu64 ",%" PRIu64 "] end before "
                             "begin", nm, b, en);
    if (en > data_bytes)
        return dae_error_set(err, DAE_EFORMAT,
                             "tensor %s: data_offsets [%" PRIu64 ",%" PRIu64 "] beyond the "
                             "data section (%zu bytes; file truncated?)", nm, b, en, data_bytes);
    t->begin = (size_t)b;
    t->end = (size_t)en;
    if (count * (size_t)t->elem_size != t->end - t->begin) {
        char s[160];
        shape_str(s, sizeof s, t->shape, t->ndim);
        return dae_error_set(err, DAE_EFORMAT,
                             "tensor %s: shape %s of %s needs %zu bytes, data_offsets span %zu",
                             nm, s, t->dtype, count * (size_t)t->elem_size, t->end - t->begin);
    }
    return DAE_OK;
}

static int cmp_by_offset(const void *a, const void *b)
{
    const dae_st_tensor *x = *(const dae_st_tensor *const *)a;
    const dae_st_tensor *y = *(const dae_st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors must tile the data section: sorted by offset, no holes, no overlaps. */
static int check_tiling(const dae_st_file *f, dae_error *err)
{
    int rc = DAE_OK;
    const dae_st_tensor **order = NULL;
    if (f->n_tensors == 0) {
        if (f->data_bytes != 0)
            return dae_error_set(err, DAE_EFORMAT,
                                 "%zu data bytes after the header but no tensors",
                                 f->data_bytes);
        return DAE_OK;
    }
    order = malloc((size_t)f->n_tensors * sizeof *order);
    if (!order)
        return dae_error_set(err, DAE_ENOMEM, "out of memory checking tensor offsets");
    for (int i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];
    qsort(order, (size_t)f->n_tensors, sizeof *order, cmp_by_offset);
    if (order[0]->begin != 0) {
        rc = dae_error_set(err, DAE_EFORMAT,
                           "hole at the start of the data: first tensor %s begins at %zu, "
                           "expected 0", order[0]->name, order[0]->begin);
        goto done;
    }
    for (int i = 1; i < f->n_tensors; i++) {
        const dae_st_tensor *p = order[i - 1], *t = order[i];
        if (t->begin < p->end) {
            rc = dae_error_set(err, DAE_EFORMAT,
                               "tensor %s data [%zu,%zu) overlaps tensor %s [%zu,%zu)",
                               t->name, t->begin, t->end, p->name, p->begin, p->end);
            goto done;
        }
        if (t->begin > p->end) {
            rc = dae_error_set(err, DAE_EFORMAT,
                               "hole in the data: tensor %s ends at %zu but the next, %s, "
                               "begins at %zu", p->name, p->end, t->name, t->begin);
            goto done;
        }
    }
    const dae_st_tensor *last = order[f->n_tensors - 1];
    if (last->end != f->data_bytes)
        rc = dae_error_set(err, DAE_EFORMAT,
                           "data section is %zu bytes but the tensors end at %zu (%zu trailing "
                           "bytes)", f->data_bytes, last->end, f->data_bytes - last->end);
done:
    free(order);
    return rc;
}

/* The header length of a file of len bytes (the first 8 bytes, little-endian) into *out,
 * checked against the limits and the file. Nonzero with err set when it does not fit. */
static int header_length(const unsigned char *buf, size_t len, const dae_st_limits *lp,
                         uint64_t *out, dae_error *err)
{
    if (len > lp->max_file_bytes)
        return dae_error_set(err, DAE_ELIMIT, "file is %zu bytes, the limit is %zu", len,
                             lp->max_file_bytes);
    if (len < 8)
        return dae_error_set(err, DAE_EFORMAT,
                             "file is %zu bytes, too short for the 8-byte header length", len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = (n << 8) | buf[i];
    *out = n;
    if (n > lp->max_header_bytes)
        return dae_error_set(err, DAE_ELIMIT, "header length %" PRIu64 " exceeds the limit %zu",
                             n, lp->max_header_bytes);
    if (n > len - 8)
        return dae_error_set(err, DAE_EFORMAT,
                             "header length %" PRIu64 " is larger than the rest of the file "
                             "(%zu bytes; truncated?)", n, len - 8);
    if (n < 2)
        return dae_error_set(err, DAE_EFORMAT, "header length %" PRIu64 " is too short", n);
    return DAE_OK;
}

/* The tensors (and __metadata__) of header object root into f. */
static int add_tensors(dae_st_file *f, const cJSON *root, const dae_st_limits *lp,
                       dae_error *err)
{
    dae_st_limits L = *lp;
    int rc = DAE_OK;
    for (const cJSON *c = root->child; c; c = c->next) {
        if (strcmp(c->string, "__metadata__") == 0) {
            if ((rc = parse_metadata(f, c, err)) != DAE_OK)
                return rc;
            continue;
        }
        if (f->n_tensors >= L.max_tensors) {
            rc = dae_error_set(err, DAE_ELIMIT, "more than %d tensors", L.max_tensors);
            return rc;
        }
        size_t nl = strlen(c->string);
        if (nl == 0 || nl >= MAX_NAME_BYTES) {
            rc = dae_error_set(err, DAE_EFORMAT, "tensor name of %zu bytes (expected 1..%d)",
                               nl, MAX_NAME_BYTES - 1);
            return rc;
        }
        dae_st_tensor *t = &f->tensors[f->n_tensors];
        if (!(t->name = xstrdup(c->string))) {
            rc = dae_error_set(err, DAE_ENOMEM, "out of memory for tensor names");
            return rc;
        }
        f->n_tensors++;
        if ((rc = parse_tensor(t, c, f->data_bytes, err)) != DAE_OK)
            return rc;
        t->data = f->data + t->begin;
    }
    return DAE_OK;
}

dae_st_file *dae_st_parse(const unsigned char *buf, size_t len, const dae_st_limits *lim,
                          dae_error *err)
{
    dae_st_limits L = lim ? *lim : dae_st_default_limits();
    dae_st_file *f = NULL;
    char *hdr = NULL;
    cJSON *root = NULL;
    int rc = DAE_OK;

    uint64_t n = 0;
    if (header_length(buf, len, &L, &n, err))
        goto fail;
    /* NUL-terminated copy: cJSON must see the whole header and nothing after it. */
    hdr = malloc((size_t)n + 1);
    if (!hdr) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory for a %" PRIu64 "-byte header", n);
        goto fail;
    }
    memcpy(hdr, buf + 8, (size_t)n);
    hdr[n] = '\0';
    if (memchr(hdr, '\0', (size_t)n)) {
        rc = dae_error_set(err, DAE_EFORMAT, "header contains a NUL byte");
        goto fail;
    }
    if ((rc = dae_json_check(hdr, (size_t)n, NULL, err)) != DAE_OK) {
        dae_error_prefix(err, "header is not valid JSON: ");
        goto fail;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, (size_t)n + 1, &end, 1);
    if (!root) {
        size_t at = end && end >= hdr && end <= hdr + n ? (size_t)(end - hdr) : 0;
        rc = dae_error_set(err, DAE_EFORMAT, "header is not valid JSON (error near byte %zu)",
                           at);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        rc = dae_error_set(err, DAE_EFORMAT, "header is not a JSON object");
        goto fail;
    }
    int oom;
    const char *dup = dae_json_object_duplicate_key(root, &oom);
    if (oom) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory checking the header");
        goto fail;
    }
    if (dup) {
        rc = dae_error_set(err, DAE_EFORMAT, "duplicate key \"%.64s\" in the header", dup);
        goto fail;
    }

    int n_keys = cJSON_GetArraySize(root);
    f = calloc(1, sizeof *f);
    if (!f || !(f->tensors = calloc((size_t)n_keys + 1, sizeof *f->tensors))) {
        rc = dae_error_set(err, DAE_ENOMEM, "out of memory for the tensor table");
        goto fail;
    }
    f->n_meta = -1;
    f->header_bytes = (size_t)n;
    f->data = buf + 8 + n;
    f->data_bytes = len - 8 - (size_t)n;
    if ((rc = add_tensors(f, root, &L, err)) != DAE_OK)
        goto fail;
    if ((rc = check_tiling(f, err)) != DAE_OK)
        goto fail;
    cJSON_Delete(root);
    free(hdr);
    return f;

fail:
    (void)rc; /* the code is in err */
    cJSON_Delete(root);
    free(hdr);
    dae_st_free(f);
    return NULL;
}

/* ---- files ---- */

/* Open a regular file of at most max_bytes: *fd and its size in *size. */
static int open_checked(const char *path, size_t max_bytes, int *fd, size_t *size,
                        dae_error *err)
{
    int rc = DAE_OK;
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return dae_error_set(err, errno == ENOENT ? DAE_ENOTFOUND : DAE_EIO, "%s: %s", path,
                             strerror(errno));
    struct stat st;
    if (fstat(*fd, &st) != 0)
        rc = dae_error_set(err, DAE_EIO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = dae_error_set(err, DAE_EINVAL, "%s: not a regular file", path);
    else if ((uint64_t)st.st_size > (uint64_t)max_bytes)
        rc = dae_error_set(err, DAE_ELIMIT, "%s: file is %lld bytes, the limit is %zu", path,
                           (long long)st.st_size, max_bytes);
    if (rc != DAE_OK) {
        close(*fd);
        *fd = -1;
        return rc;
    }
    *size = (size_t)st.st_size;
    return DAE_OK;
}

/* Read size bytes of fd into a malloc'd buffer. */
static int read_all(int fd, const char *path, size_t size, unsigned char **out, dae_error *err)
{
    int rc = DAE_OK;
    unsigned char *buf = NULL;
    if (!(buf = malloc(size ? size : 1))) {
        rc = dae_error_set(err, DAE_ENOMEM, "%s: out of memory for %zu bytes", path, size);
        goto done;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = dae_error_set(err, DAE_EIO, "%s: read: %s", path, strerror(errno));
            goto done;
        }
        if (r == 0) {
            rc = dae_error_set(err, DAE_EIO, "%s: file shrank while reading (%zu of %zu bytes)",
                               path, got, size);
            goto done;
        }
        got += (size_t)r;
    }
    *out = buf;
    buf = NULL;
done:
    free(buf);
    return rc;
}

int dae_file_read(const char *path, size_t max_bytes, unsigned char **out, size_t *len,
                  dae_error *err)
{
    int mapped;
    return dae_file_load(path, max_bytes, DAE_FILE_MAP_NEVER, out, len, &mapped, err);
}

static const char *const MAP_NAMES[] = {"auto", "always", "never"};

int dae_file_map_from_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, MAP_NAMES[i]) == 0)
            return i;
    return -1;
}

const char *dae_file_map_name(dae_file_map m)
{
    return (unsigned)m < 3 ? MAP_NAMES[m] : "?";
}

int dae_file_load(const char *path, size_t max_bytes, dae_file_map policy, unsigned char **out,
                  size_t *len, int *mapped, dae_error *err)
{
    size_t size = 0;
    int fd, rc;
    *out = NULL;
    *len = 0;
    *mapped = 0;
    if ((rc = open_checked(path, max_bytes, &fd, &size, err)) != DAE_OK)
        return rc;
    int map = size > 0 && policy != DAE_FILE_MAP_NEVER;
    if (map && policy == DAE_FILE_MAP_AUTO) {
        struct statvfs vfs;
        map = fstatvfs(fd, &vfs) == 0 && (vfs.f_flag & ST_RDONLY);
    }
    void *p = map ? mmap(NULL, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0) : MAP_FAILED;
    if (p != MAP_FAILED) {
        *out = p;
        *mapped = 1;
    } else { /* not allowed, or mmap failed (a filesystem without it): copy */
        rc = read_all(fd, path, size, out, err);
    }
    close(fd);
    if (rc == DAE_OK)
        *len = size;
    return rc;
}

void dae_file_release(unsigned char *buf, size_t len, int mapped)
{
    if (mapped)
        munmap(buf, len);
    else
        free(buf);
}

static int write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsync the directory holding path so the rename itself is durable. */
static int fsync_parent(const char *path)
{
    size_t n = strlen(path);
    char *dir = malloc(n + 2);
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        strcpy(dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    /* Some filesystems cannot fsync directories; the rename is then as durable as it gets. */
    if (r != 0 && (e == EINVAL || e == EROFS))
        r = 0;
    errno = e;
    return r;
}

int dae_file_write_atomic(const char *path, const dae_iovec *parts, int n_parts,
                          dae_error *err)
{
    int rc = DAE_OK, fd = -1, created = 0;
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (!tmp)
        return dae_error_set(err, DAE_ENOMEM, "%s: out of memory", path);
    snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
    /* O_TRUNC rather than O_EXCL: a temporary left by a crashed process with our pid
     * (common in containers) must not block every later save. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        rc = dae_error_set(err, DAE_EIO, "%s: cannot create temporary %s: %s", path, tmp,
                           strerror(errno));
        goto fail;
    }
    created = 1;
    for (int i = 0; i < n_parts; i++) {
        if (parts[i].len && write_all(fd, parts[i].data, parts[i].len) != 0) {
            rc = dae_error_set(err, DAE_EIO, "%s: write %s: %s", path, tmp, strerror(errno));
            goto fail;
        }
    }
    if (fsync(fd) != 0) {
        rc = dae_error_set(err, DAE_EIO, "%s: fsync %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    int cr = close(fd);
    fd = -1;
    if (cr != 0) {
        rc = dae_error_set(err, DAE_EIO, "%s: close %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        rc = dae_error_set(err, DAE_EIO, "%s: rename from %s: %s", path, tmp, strerror(errno));
        goto fail;
    }
    created = 0;
    if (fsync_parent(path) != 0) {
        rc = dae_error_set(err, DAE_EIO, "%s: written, but fsync of its directory failed: %s",
                           path, strerror(errno));
        goto fail;
    }
    free(tmp);
    return DAE_OK;
fail:
    if (fd >= 0)
        close(fd);
    if (created)
        unlink(tmp);
    free(tmp);
    return rc;
}

/* ---- writer ---- */

static int add_raw_int_array(cJSON *obj, const char *key, const uint64_t *v, int n)
{
    /* Integers written verbatim: cJSON would print large ones as 1e+15, which strict
     * readers (the Rust safetensors crate) refuse. */
    char buf[DAE_ST_MAX_DIMS * 24 + 4];
    size_t k = 0;
    buf[k++] = '[';
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(buf + k, sizeof buf - k, "%s%" PRIu64, i ? "," : "", v[i]);
    snprintf(buf + k, sizeof buf - k, "]");
    return cJSON_AddRawToObject(obj, key, buf) != NULL;
}

/* The "__metadata__" object of the header from meta (key, value, ..., NULL). */
static int header_metadata(cJSON *root, const char *path, const char *const *meta,
                           dae_error *err)
{
    int rc = DAE_OK;
    if (meta && meta[0]) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        if (!m) {
            rc = dae_error_set(err, DAE_ENOMEM, "%s: out of memory", path);
            return rc;
        }
        for (int i = 0; meta[i]; i += 2) {
            if (!meta[i + 1]) {
                rc = dae_error_set(err, DAE_EINVAL, "%s: metadata key \"%s\" has no value",
                                   path, meta[i]);
                return rc;
            }
            if (cJSON_GetObjectItemCaseSensitive(m, meta[i])) {
                rc = dae_error_set(err, DAE_EINVAL, "%s: duplicate metadata key \"%s\"", path,
                                   meta[i]);
                return rc;
            }
            if (!cJSON_AddStringToObject(m, meta[i], meta[i + 1])) {
                rc = dae_error_set(err, DAE_ENOMEM, "%s: out of memory", path);
                return rc;
            }
        }
    }
    return rc;
}

/* One header entry per tensor (dtype, shape, data offsets, packed in order). */
static int header_tensors(cJSON *root, const char *path, const dae_st_out *tensors,
                          int n_tensors, dae_error *err)
{
    int rc = DAE_OK;
    uint64_t off = 0;
    for (int i = 0; i < n_tensors; i++) {
        const dae_st_out *t = &tensors[i];
        int es = dae_st_dtype_size(t->dtype);
        if (es == 0 || t->ndim < 0 || t->ndim > DAE_ST_MAX_DIMS || !t->name[0] ||
            strcmp(t->name, "__metadata__") == 0) {
            rc = dae_error_set(err, DAE_EINVAL, "%s: tensor \"%s\": bad dtype, dims or name",
                               path, t->name);
            return rc;
        }
        if (cJSON_GetObjectItemCaseSensitive(root, t->name)) {
            rc = dae_error_set(err, DAE_EINVAL, "%s: duplicate tensor name \"%s\"", path,
                               t->name);
            return rc;
        }
        uint64_t bytes = (uint64_t)es, dims[DAE_ST_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || t->shape[d] >= DAE_ST_MAX_DIM_VALUE) {
                rc = dae_error_set(err, DAE_EINVAL, "%s: tensor %s: bad dim %" PRId64, path,
                                   t->name, t->shape[d]);
                return rc;
            }
            dims[d] = (uint64_t)t->shape[d];
            if (dims[d] && bytes > UINT64_MAX / 2 / dims[d]) {
                rc = dae_error_set(err, DAE_EINVAL, "%s: tensor %s: size overflows", path,
                                   t->name);
                return rc;
            }
            bytes *= dims[d];
        }
        uint64_t offs[2] = {off, off + bytes};
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", t->dtype) ||
            !add_raw_int_array(e, "shape", dims, t->ndim) ||
            !add_raw_int_array(e, "data_offsets", offs, 2)) {
            rc = dae_error_set(err, DAE_ENOMEM, "%s: out of memory", path);
            return rc;
        }
        off += bytes;
        if (off > (uint64_t)SIZE_MAX / 2) {
            rc = dae_error_set(err, DAE_EINVAL, "%s: tensors too large", path);
            return rc;
        }
    }
    return rc;
}

int dae_st_write(const char *path, const dae_st_out *tensors, int n_tensors,
                 const char *const *meta, dae_error *err)
{
    int rc = DAE_OK;
    cJSON *root = cJSON_CreateObject();
    char *text = NULL;
    unsigned char *head = NULL;
    dae_iovec *parts = NULL;
    if (!root) {
        rc = dae_error_set(err, DAE_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    if ((rc = header_metadata(root, path, meta, err)) ||
        (rc = header_tensors(root, path, tensors, n_tensors, err)))
        goto done;
    if (!(text = cJSON_PrintUnformatted(root))) {
        rc = dae_error_set(err, DAE_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    size_t tlen = strlen(text), hlen = (tlen + 7) & ~(size_t)7;
    if (!(head = malloc(8 + hlen)) ||
        !(parts = malloc(((size_t)n_tensors + 1) * sizeof *parts))) {
        rc = dae_error_set(err, DAE_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < 8; i++)
        head[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(head + 8, text, tlen);
    memset(head + 8 + tlen, ' ', hlen - tlen);
    parts[0].data = head;
    parts[0].len = 8 + hlen;
    for (int i = 0; i < n_tensors; i++) {
        const dae_st_out *t = &tensors[i];
        size_t bytes = (size_t)dae_st_dtype_size(t->dtype);
        for (int d = 0; d < t->ndim; d++)
            bytes *= (size_t)t->shape[d];
        parts[i + 1].data = t->data;
        parts[i + 1].len = bytes;
    }
    rc = dae_file_write_atomic(path, parts, n_tensors + 1, err);
done:
    free(parts);
    free(head);
    free(text);
    cJSON_Delete(root);
    return rc;
}
