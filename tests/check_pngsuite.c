/* check_pngsuite.c — PngSuite (tests/conformance/pngsuite): every valid file decodes to the
 * reference pixels in expected.txt (made by scripts/pngsuite_ref.py, an independent decoder
 * with the same sample rules: as stored, no gamma, 16-bit -> high byte), every x* file is
 * refused with DAE_EFORMAT and a message; dae_png_decode8 gives the same samples as
 * bytes (and the same errors) for every file. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "daed/io/image.h"
#include "daed/io/png.h"

#define DIR "tests/conformance/pngsuite/"

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    unsigned char *b = malloc(1 << 16);
    *len = fread(b, 1, 1 << 16, f);
    ck_assert_msg(feof(f), "%s: larger than 64 KB", path);
    fclose(f);
    return b;
}

/* CRC-32 of the interleaved 8-bit samples (channels, then alpha), as the script computes. */
static unsigned long pixel_crc(const dae_image *im)
{
    size_t n = (size_t)im->w * im->h;
    int nch = im->c + (im->alpha != NULL);
    unsigned char *b = malloc(n * nch);
    for (size_t i = 0; i < n; i++) {
        for (int ch = 0; ch < im->c; ch++)
            b[i * nch + ch] = (unsigned char)(im->px[ch * n + i] * 255.0f + 0.5f);
        if (im->alpha)
            b[i * nch + im->c] = (unsigned char)(im->alpha[i] * 255.0f + 0.5f);
    }
    unsigned long crc = crc32(0L, b, (uInt)(n * nch));
    free(b);
    return crc;
}

/* dae_png_decode8 of the same file: the same answer, and on success every sample is the
 * float decoder's value * 255 rounded, with sample / 255.0f that value bit for bit. */
static void check_decode8(const char *name, const unsigned char *buf, size_t len, int rc,
                          const dae_image *im, const dae_error *e)
{
    dae_image8 b;
    dae_error e8 = {0};
    int rc8 = dae_png_decode8(buf, len, NULL, &b, &e8);
    ck_assert_msg(rc8 == rc, "%s: decode8 rc %d, decode rc %d", name, rc8, rc);
    if (rc != DAE_OK) {
        ck_assert_msg(strcmp(e8.msg, e->msg) == 0, "%s: decode8 says '%s', decode '%s'",
                      name, e8.msg, e->msg);
        ck_assert_ptr_null(b.px);
        return;
    }
    ck_assert_msg(b.w == im->w && b.h == im->h && b.c == im->c &&
                  (b.alpha != NULL) == (im->alpha != NULL), "%s: decode8 shape differs", name);
    size_t n = (size_t)im->w * im->h;
    for (size_t i = 0; i < n * (size_t)im->c + (im->alpha ? n : 0); i++) {
        float f = i < n * (size_t)im->c ? im->px[i] : im->alpha[i - n * im->c];
        unsigned char v = i < n * (size_t)im->c ? b.px[i] : b.alpha[i - n * im->c];
        float back = (float)v / 255.0f;
        ck_assert_msg(v == (unsigned char)lrintf(f * 255.0f) &&
                      memcmp(&back, &f, sizeof f) == 0,
                      "%s: value %zu is %u as 8-bit, %.9g as float", name, i, v, f);
    }
    dae_image8_free(&b);
}

static void check_one(const char *line, int *valid, int *invalid)
{
    char name[64], path[128];
    int w, h, c, a;
    unsigned long want;
    int nf = sscanf(line, "%63s %d %d %d %d %lx", name, &w, &h, &c, &a, &want);
    snprintf(path, sizeof path, DIR "%s", name);
    size_t len;
    unsigned char *buf = slurp(path, &len);
    dae_image im;
    dae_error e = {0};
    int rc = dae_png_decode(buf, len, NULL, &im, &e);
    check_decode8(name, buf, len, rc, &im, &e);
    free(buf);
    if (nf == 1 && strstr(line, " error")) {
        ck_assert_msg(rc == DAE_EFORMAT && e.msg[0], "%s: rc %d, want DAE_EFORMAT", name, rc);
        ++*invalid;
        return;
    }
    ck_assert_msg(nf == 6, "bad line in expected.txt: %s", line);
    ck_assert_msg(rc == DAE_OK, "%s: %s", name, e.msg);
    ck_assert_msg(im.w == w && im.h == h && im.c == c && (im.alpha != NULL) == a,
                  "%s: %dx%d c=%d alpha=%d, want %dx%d c=%d alpha=%d", name, im.w, im.h, im.c,
                  im.alpha != NULL, w, h, c, a);
    unsigned long got = pixel_crc(&im);
    ck_assert_msg(got == want, "%s: pixels differ from the reference (crc %08lx, want %08lx)",
                  name, got, want);
    dae_image_free(&im);
    ++*valid;
}

START_TEST(test_pngsuite)
{
    FILE *f = fopen(DIR "expected.txt", "r");
    ck_assert_msg(f != NULL, "cannot open " DIR "expected.txt");
    char line[256];
    int valid = 0, invalid = 0;
    while (fgets(line, sizeof line, f))
        check_one(line, &valid, &invalid);
    fclose(f);
    ck_assert_int_eq(valid, 161); /* the whole suite, not a silently shorter list */
    ck_assert_int_eq(invalid, 14);
}
END_TEST

Suite *suite_pngsuite(void)
{
    Suite *s = suite_create("pngsuite");
    TCase *tc = tcase_create("pngsuite");
    tcase_add_test(tc, test_pngsuite);
    suite_add_tcase(s, tc);
    return s;
}
