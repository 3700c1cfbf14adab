/* check_jpeg.c — JPEG round trips within JPEG tolerance, limits from the header, and
 * refusal of garbage, truncated, CMYK and scan-bomb input. */
#include "check_quiet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "daed/io/image.h"
#include "daed/io/jpeg.h"

/* Smooth planes (what JPEG keeps well): gradients, a different one per channel. */
static float *smooth(int w, int h, int c)
{
    float *px = malloc(sizeof(float) * w * h * c);
    for (int ch = 0; ch < c; ch++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                px[((size_t)ch * h + y) * w + x] =
                    0.5f + 0.4f * sinf((x + 3 * ch) / 9.0f) * cosf((y - 5 * ch) / 7.0f);
    return px;
}

static void round_trip(int w, int h, int c, int quality, float max_tol, float mean_tol)
{
    float *px = smooth(w, h, c);
    unsigned char *jpg;
    size_t len;
    dae_error e = {0};
    ck_assert_int_eq(dae_jpeg_encode(px, w, h, c, quality, &jpg, &len, &e), DAE_OK);
    ck_assert_uint_gt(len, 100);
    ck_assert(jpg[0] == 0xff && jpg[1] == 0xd8);
    dae_image im;
    int rc = dae_jpeg_decode(jpg, len, NULL, &im, &e);
    ck_assert_msg(rc == DAE_OK, "%s", e.msg);
    ck_assert_int_eq(im.w, w);
    ck_assert_int_eq(im.h, h);
    ck_assert_int_eq(im.c, c);
    ck_assert_ptr_null(im.alpha);
    double sum = 0, worst = 0;
    size_t n = (size_t)w * h * c;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(im.px[i] - px[i]);
        sum += d;
        worst = d > worst ? d : worst;
    }
    ck_assert_msg(worst <= max_tol && sum / n <= mean_tol,
                  "%dx%dx%d q%d: max error %g, mean %g", w, h, c, quality, worst, sum / n);
    dae_image_free(&im);
    free(jpg);
    free(px);
}

START_TEST(test_round_trips)
{
    round_trip(64, 48, 1, 95, 0.02f, 0.005f);
    round_trip(64, 48, 3, 95, 0.05f, 0.008f); /* 4:2:0 chroma */
    round_trip(28, 28, 1, 90, 0.03f, 0.008f);
    round_trip(13, 7, 3, 90, 0.08f, 0.015f);  /* partial MCUs */
    round_trip(1, 1, 3, 100, 0.02f, 0.02f);
}
END_TEST

/* JPEG made by TurboJPEG directly, for kinds our encoder does not produce. */
static unsigned char *tj_make(int w, int h, int pf, int samp, int flags, unsigned long *len)
{
    int ps = tjPixelSize[pf];
    unsigned char *pix = malloc((size_t)w * h * ps);
    for (int i = 0; i < w * h * ps; i++)
        pix[i] = (unsigned char)(i * 7);
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    ck_assert_int_eq(tjCompress2(tj, pix, w, 0, h, pf, &jpg, len, samp, 90, flags), 0);
    tjDestroy(tj);
    free(pix);
    return jpg;
}

START_TEST(test_progressive_and_kinds)
{
    unsigned long len;
    dae_image im;
    dae_error e = {0};
    unsigned char *jpg = tj_make(40, 24, TJPF_RGB, TJSAMP_444, TJFLAG_PROGRESSIVE, &len);
    ck_assert_int_eq(dae_jpeg_decode(jpg, len, NULL, &im, &e), DAE_OK);
    ck_assert_int_eq(im.c, 3);
    ck_assert_int_eq(im.w, 40);
    dae_image_free(&im);
    tjFree(jpg);

    jpg = tj_make(17, 9, TJPF_GRAY, TJSAMP_GRAY, TJFLAG_PROGRESSIVE, &len);
    ck_assert_int_eq(dae_jpeg_decode(jpg, len, NULL, &im, &e), DAE_OK);
    ck_assert_int_eq(im.c, 1);
    dae_image_free(&im);
    tjFree(jpg);

    /* CMYK input makes an Adobe YCCK JPEG: refused with the colour space named */
    jpg = tj_make(16, 16, TJPF_CMYK, TJSAMP_444, 0, &len);
    im.w = 5;
    ck_assert_int_eq(dae_jpeg_decode(jpg, len, NULL, &im, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "YCCK colour space is not supported"));
    ck_assert_ptr_null(im.px);
    tjFree(jpg);
}
END_TEST

/* dae_jpeg_decode8 and dae_jpeg_decode of buf agree: the same result code and message,
 * and on success every sample is the float value * 255 rounded, and sample / 255.0f that
 * float bit for bit. */
static void same_as_float(const char *what, const unsigned char *buf, size_t len,
                          const dae_image_limits *lim)
{
    dae_image f;
    dae_image8 b;
    dae_error e = {0}, e8 = {0};
    int rc = dae_jpeg_decode(buf, len, lim, &f, &e);
    b.w = 3; /* zeroed by the decoder whatever happens */
    int rc8 = dae_jpeg_decode8(buf, len, lim, &b, &e8);
    ck_assert_msg(rc8 == rc, "%s: decode8 rc %d, decode rc %d (%s)", what, rc8, rc, e8.msg);
    if (rc != DAE_OK) {
        ck_assert_str_eq(e8.msg, e.msg);
        ck_assert_ptr_null(b.px);
        ck_assert_int_eq(b.w, 0);
        return;
    }
    ck_assert_msg(b.w == f.w && b.h == f.h && b.c == f.c && !b.alpha, "%s: shape", what);
    size_t n = (size_t)f.w * f.h * f.c;
    for (size_t i = 0; i < n; i++) {
        float back = (float)b.px[i] / 255.0f;
        ck_assert_msg(b.px[i] == (unsigned char)lrintf(f.px[i] * 255.0f) &&
                      memcmp(&back, &f.px[i], sizeof back) == 0,
                      "%s: value %zu is %u as 8-bit, %.9g as float", what, i, b.px[i],
                      f.px[i]);
    }
    dae_image_free(&f);
    dae_image8_free(&b);
}

START_TEST(test_decode8)
{
    const struct {
        int w, h, pf, samp, flags;
    } kinds[] = {
        {40, 24, TJPF_RGB, TJSAMP_420, 0},  {37, 23, TJPF_RGB, TJSAMP_422, 0},
        {16, 9, TJPF_RGB, TJSAMP_444, TJFLAG_PROGRESSIVE}, {33, 17, TJPF_GRAY, TJSAMP_GRAY, 0},
        {17, 9, TJPF_GRAY, TJSAMP_GRAY, TJFLAG_PROGRESSIVE}, {1, 1, TJPF_RGB, TJSAMP_420, 0},
        {16, 16, TJPF_CMYK, TJSAMP_444, 0}, /* refused by both */
    };
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        unsigned long len;
        unsigned char *jpg = tj_make(kinds[k].w, kinds[k].h, kinds[k].pf, kinds[k].samp,
                                     kinds[k].flags, &len);
        char what[64];
        snprintf(what, sizeof what, "kind %zu", k);
        same_as_float(what, jpg, len, NULL);
        same_as_float("cut in half", jpg, len / 2, NULL);
        same_as_float("SOI only", jpg, 2, NULL);
        dae_image_limits lim = dae_image_default_limits();
        lim.max_width = kinds[k].w - 1;
        same_as_float("over the width limit", jpg, len, &lim);
        tjFree(jpg);
    }
    /* our own encoder's output, a smooth photo-like image */
    float *px = smooth(120, 80, 3);
    unsigned char *jpg;
    size_t len;
    dae_error e = {0};
    ck_assert_int_eq(dae_jpeg_encode(px, 120, 80, 3, 85, &jpg, &len, &e), DAE_OK);
    same_as_float("encoded smooth colour", jpg, len, NULL);
    free(jpg);
    free(px);
}
END_TEST

START_TEST(test_limits)
{
    float *px = smooth(64, 48, 3);
    unsigned char *jpg;
    size_t len;
    dae_error e = {0};
    ck_assert_int_eq(dae_jpeg_encode(px, 64, 48, 3, 80, &jpg, &len, &e), DAE_OK);
    dae_image im;
    dae_image_limits lim = dae_image_default_limits();
    lim.max_width = 63;
    ck_assert_int_eq(dae_jpeg_decode(jpg, len, &lim, &im, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "jpeg: image is 64x48, limit 63x16384"));
    lim = dae_image_default_limits();
    lim.max_pixels = 64 * 48 - 1;
    ck_assert_int_eq(dae_jpeg_decode(jpg, len, &lim, &im, &e), DAE_ELIMIT);
    lim = dae_image_default_limits();
    lim.max_bytes = len - 1;
    ck_assert_int_eq(dae_jpeg_decode(jpg, len, &lim, &im, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "bytes, limit"));

    /* header claiming 65000x65000 (SOF0 height/width fields) is refused before decoding */
    unsigned char *big = malloc(len);
    memcpy(big, jpg, len);
    size_t sof = 0;
    for (size_t i = 2; i + 9 < len; i++)
        if (big[i] == 0xff && big[i + 1] == 0xc0) {
            sof = i;
            break;
        }
    ck_assert_uint_gt(sof, 0);
    big[sof + 5] = 0xfd;
    big[sof + 6] = 0xe8;
    big[sof + 7] = 0xfd;
    big[sof + 8] = 0xe8;
    ck_assert_int_eq(dae_jpeg_decode(big, len, NULL, &im, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "65000x65000"));
    free(big);

    /* more than 1000 SOS markers: an APP15 segment full of FF DA after SOI */
    size_t app = 4 + 2 * 1001, blen = len + app;
    unsigned char *bomb = malloc(blen);
    memcpy(bomb, jpg, 2);
    bomb[2] = 0xff;
    bomb[3] = 0xef;
    bomb[4] = (unsigned char)((app - 2) >> 8);
    bomb[5] = (unsigned char)(app - 2);
    for (size_t i = 0; i < 1001; i++) {
        bomb[6 + 2 * i] = 0xff;
        bomb[7 + 2 * i] = 0xda;
    }
    memcpy(bomb + 2 + app, jpg + 2, len - 2);
    ck_assert_int_eq(dae_jpeg_decode(bomb, blen, NULL, &im, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "scans, limit 1000"));
    /* the same segment with 999 markers decodes (APPn data is skipped) */
    for (size_t i = 999; i < 1001; i++)
        bomb[7 + 2 * i] = 0x00;
    ck_assert_int_eq(dae_jpeg_decode(bomb, blen, NULL, &im, &e), DAE_OK);
    dae_image_free(&im);
    free(bomb);
    free(jpg);
    free(px);
}
END_TEST

START_TEST(test_malformed)
{
    float *px = smooth(64, 48, 3);
    unsigned char *jpg;
    size_t len;
    dae_error e = {0};
    ck_assert_int_eq(dae_jpeg_encode(px, 64, 48, 3, 80, &jpg, &len, &e), DAE_OK);
    dae_image im;
    size_t sos = 0; /* start of the scan header; entropy-coded data follows it */
    for (size_t i = 2; i + 1 < len && !sos; i++)
        if (jpg[i] == 0xff && jpg[i + 1] == 0xda)
            sos = i;
    ck_assert_uint_gt(sos, 0);
    size_t mid_scan = sos + (len - sos) / 2;
    ck_assert_uint_gt(len - sos, 200);
    const unsigned char junk[] = "\xff\xd8\xff\xe0 this is not a JPEG at all, just text";
    const struct {
        const char *name;
        const unsigned char *buf;
        size_t len;
        const char *msg;
    } bad[] = {
        {"empty", jpg, 0, "jpeg: empty input"},
        {"SOI only", jpg, 2, "jpeg: bad header"},
        {"garbage after magic", junk, sizeof junk - 1, "jpeg: bad header"},
        {"cut in headers", jpg, sos / 2, "jpeg: bad header"},
        {"cut before scan", jpg, sos, "missing SOS marker"},
        {"cut in scan", jpg, mid_scan, "Premature end of JPEG file"},
        {"no EOI", jpg, len - 2, "Premature end of JPEG file"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        im.w = 7;
        int rc = dae_jpeg_decode(bad[k].buf, bad[k].len, NULL, &im, &e);
        ck_assert_msg(rc == DAE_EFORMAT, "%s: code %d (%s)", bad[k].name, rc, e.msg);
        ck_assert_msg(strstr(e.msg, bad[k].msg) != NULL, "%s: message '%s', want '%s'",
                      bad[k].name, e.msg, bad[k].msg);
        ck_assert_ptr_null(im.px);
        ck_assert_int_eq(im.w, 0);
    }
    /* a stray marker inside the entropy-coded data is a corrupt-data warning, refused
     * (flipped data bits alone need not be detectable: they may decode as other pixels) */
    unsigned char *bent = malloc(len);
    memcpy(bent, jpg, len);
    bent[mid_scan] = 0xff;
    bent[mid_scan + 1] = 0xd3;
    ck_assert_int_eq(dae_jpeg_decode(bent, len, NULL, &im, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "jpeg: Corrupt JPEG data"));
    free(bent);

    /* encoder argument checks */
    unsigned char *out = (unsigned char *)"x";
    ck_assert_int_eq(dae_jpeg_encode(px, 64, 48, 3, 0, &out, &len, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "quality 0, expected 1-100"));
    ck_assert_ptr_null(out);
    ck_assert_int_eq(dae_jpeg_encode(px, 64, 48, 2, 90, &out, &len, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_jpeg_encode(px, 70000, 1, 1, 90, &out, &len, &e), DAE_ELIMIT);
    free(jpg);
    free(px);
}
END_TEST

Suite *suite_jpeg(void)
{
    Suite *s = suite_create("jpeg");
    TCase *tc = tcase_create("jpeg");
    tcase_add_test(tc, test_round_trips);
    tcase_add_test(tc, test_progressive_and_kinds);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_decode8);
    tcase_add_test(tc, test_malformed);
    suite_add_tcase(s, tc);
    return s;
}
