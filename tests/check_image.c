/* check_image.c — image planes: allocation, channel conversion, bilinear resize, decode
 * dispatch and file read/write. */
#include "check_quiet.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daed/io/image.h"
#include "daed/io/png.h"
#include "daed/io/jpeg.h"

START_TEST(test_alloc_free)
{
    dae_image im;
    dae_error e = {0};
    ck_assert_int_eq(dae_image_alloc(&im, 5, 4, 3, 1, &e), DAE_OK);
    ck_assert_int_eq(im.w, 5);
    ck_assert_int_eq(im.h, 4);
    ck_assert_int_eq(im.c, 3);
    ck_assert_ptr_nonnull(im.alpha);
    for (int i = 0; i < 60; i++)
        ck_assert_float_eq(im.px[i], 0.0f);
    dae_image_free(&im);
    ck_assert_ptr_null(im.px);
    dae_image_free(&im); /* zeroed: second free is a no-op */
    dae_image_free(NULL);

    ck_assert_int_eq(dae_image_alloc(&im, 0, 4, 1, 0, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "0x4"));
    ck_assert_ptr_null(im.px);
    ck_assert_int_eq(dae_image_alloc(&im, 4, 4, 2, 0, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "2 channels"));
}
END_TEST

START_TEST(test_default_limits)
{
    dae_image_limits l = dae_image_default_limits();
    ck_assert_int_eq(l.max_width, 16384);
    ck_assert_int_eq(l.max_height, 16384);
    ck_assert_uint_eq(l.max_pixels, (size_t)1 << 24);
    ck_assert_uint_eq(l.max_bytes, (size_t)64 << 20);
    /* a 12-megapixel photo fits */
    ck_assert(4000u * 3000u <= l.max_pixels);
}
END_TEST

START_TEST(test_to_channels)
{
    dae_image im;
    dae_error e = {0};
    ck_assert_int_eq(dae_image_alloc(&im, 2, 1, 3, 1, &e), DAE_OK);
    float rgb[6] = {1.0f, 0.2f, /* R */ 0.0f, 0.4f, /* G */ 0.0f, 0.6f /* B */};
    memcpy(im.px, rgb, sizeof rgb);
    im.alpha[0] = 0.25f;
    im.alpha[1] = 1.0f;
    ck_assert_int_eq(dae_image_to_channels(&im, 1, &e), DAE_OK);
    ck_assert_int_eq(im.c, 1);
    ck_assert_float_eq_tol(im.px[0], 0.299f, 1e-6f);
    ck_assert_float_eq_tol(im.px[1], 0.299f * 0.2f + 0.587f * 0.4f + 0.114f * 0.6f, 1e-6f);
    ck_assert_float_eq(im.alpha[0], 0.25f); /* alpha untouched */
    /* white stays white: the weights sum to 1 */
    im.px[0] = 1.0f;
    ck_assert_int_eq(dae_image_to_channels(&im, 3, &e), DAE_OK);
    ck_assert_int_eq(im.c, 3);
    for (int ch = 0; ch < 3; ch++) {
        ck_assert_float_eq(im.px[ch * 2 + 0], 1.0f);
        ck_assert_float_eq_tol(im.px[ch * 2 + 1], 0.299f * 0.2f + 0.587f * 0.4f + 0.114f * 0.6f,
                               1e-6f);
    }
    ck_assert_int_eq(dae_image_to_channels(&im, 3, &e), DAE_OK); /* no-op */
    ck_assert_int_eq(dae_image_to_channels(&im, 4, &e), DAE_EINVAL);
    ck_assert_int_eq(im.c, 3);
    dae_image_free(&im);

    ck_assert_int_eq(dae_image_alloc(&im, 1, 1, 3, 0, &e), DAE_OK);
    im.px[0] = im.px[1] = im.px[2] = 1.0f;
    ck_assert_int_eq(dae_image_to_channels(&im, 1, &e), DAE_OK);
    ck_assert_float_eq_tol(im.px[0], 1.0f, 1e-6f);
    dae_image_free(&im);
}
END_TEST

static void check_resize(int sw, int sh, const float *src, int w, int h, const float *want,
                         float tol)
{
    dae_image s, d;
    dae_error e = {0};
    ck_assert_int_eq(dae_image_alloc(&s, sw, sh, 1, 0, &e), DAE_OK);
    memcpy(s.px, src, sizeof(float) * sw * sh);
    ck_assert_int_eq(dae_image_resize(&s, w, h, &d, &e), DAE_OK);
    ck_assert_int_eq(d.w, w);
    ck_assert_int_eq(d.h, h);
    for (int i = 0; i < w * h; i++)
        ck_assert_msg(fabsf(d.px[i] - want[i]) <= tol, "resize %dx%d->%dx%d at %d: %g, want %g",
                      sw, sh, w, h, i, d.px[i], want[i]);
    dae_image_free(&s);
    dae_image_free(&d);
}

START_TEST(test_resize_values)
{
    /* 2x2 -> 4x4: source coordinates -0.25 (clamped to 0), 0.25, 0.75, 1.25 (right tap
     * clamped), so the weights on the second sample are 0, .25, .75, 1. */
    const float s22[4] = {0, 1, 2, 3};
    const float a[4] = {0, 0.25f, 0.75f, 1};
    float want44[16];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            want44[y * 4 + x] = a[x] + 2 * a[y];
    check_resize(2, 2, s22, 4, 4, want44, 1e-6f);

    /* 4x4 -> 2x2 halves at source 0.5 and 2.5: the mean of each 2x2 block. */
    float s44[16];
    for (int i = 0; i < 16; i++)
        s44[i] = (float)i;
    const float want22[4] = {2.5f, 4.5f, 10.5f, 12.5f};
    check_resize(4, 4, s44, 2, 2, want22, 1e-6f);

    /* Non-integer ratios against torch.nn.functional.interpolate(mode="bilinear",
     * align_corners=False) (cv2.resize INTER_LINEAR gives the same). */
    const float s32[6] = {0, 1, 4, 2, 7, 3};
    const float want54[20] = {0.0f, 0.4f, 1.0f, 2.8f, 4.0f,  0.5f, 1.3f, 2.5f, 3.25f, 3.75f,
                              1.5f, 3.1f, 5.5f, 4.15f, 3.25f, 2.0f, 4.0f, 7.0f, 4.6f,  3.0f};
    check_resize(3, 2, s32, 5, 4, want54, 2e-6f * 8);
    float s65[30];
    for (int i = 0; i < 30; i++)
        s65[i] = (float)i;
    const float want43[12] = {2.25f,  3.75f,  5.25f,  6.75f,  12.25f, 13.75f,
                              15.25f, 16.75f, 22.25f, 23.75f, 25.25f, 26.75f};
    check_resize(6, 5, s65, 4, 3, want43, 1e-5f);
}
END_TEST

START_TEST(test_resize_identity_and_alpha)
{
    dae_image s, d;
    dae_error e = {0};
    ck_assert_int_eq(dae_image_alloc(&s, 7, 5, 3, 1, &e), DAE_OK);
    for (int i = 0; i < 3 * 35; i++)
        s.px[i] = (float)((i * 37) % 101) / 101.0f;
    for (int i = 0; i < 35; i++)
        s.alpha[i] = (i % 3) ? 1.0f : 0.0f;
    ck_assert_int_eq(dae_image_resize(&s, 7, 5, &d, &e), DAE_OK);
    ck_assert_int_eq(memcmp(d.px, s.px, sizeof(float) * 3 * 35), 0);
    ck_assert_int_eq(memcmp(d.alpha, s.alpha, sizeof(float) * 35), 0);
    dae_image_free(&d);

    /* Upscaling a constant image keeps it constant in every plane, alpha included. */
    for (int i = 0; i < 35; i++) {
        s.px[i] = 0.25f;
        s.px[35 + i] = 0.5f;
        s.px[70 + i] = 0.75f;
        s.alpha[i] = 1.0f;
    }
    ck_assert_int_eq(dae_image_resize(&s, 28, 13, &d, &e), DAE_OK);
    ck_assert_int_eq(d.c, 3);
    ck_assert_ptr_nonnull(d.alpha);
    for (int i = 0; i < 28 * 13; i++) {
        ck_assert_float_eq_tol(d.px[i], 0.25f, 1e-6f);
        ck_assert_float_eq_tol(d.px[28 * 13 + i], 0.5f, 1e-6f);
        ck_assert_float_eq_tol(d.px[2 * 28 * 13 + i], 0.75f, 1e-6f);
        ck_assert_float_eq_tol(d.alpha[i], 1.0f, 1e-6f);
    }
    dae_image_free(&d);
    ck_assert_int_eq(dae_image_resize(&s, 0, 3, &d, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_image_resize(&s, 3, 3, &s, &e), DAE_EINVAL);
    dae_image_free(&s);
}
END_TEST

START_TEST(test_decode_dispatch)
{
    dae_image im;
    dae_error e = {0};
    const unsigned char gif[] = "GIF89a\x01\x00\x01\x00";
    ck_assert_int_eq(dae_image_decode(gif, sizeof gif - 1, NULL, &im, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a PNG or JPEG (starts with 47 49 46 38"));
    ck_assert_int_eq(dae_image_decode(gif, 0, NULL, &im, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "empty"));
    ck_assert_int_eq(dae_image_decode(gif, 2, NULL, &im, &e), DAE_EFORMAT);

    /* PNG and JPEG are recognised by their magic bytes. */
    float px[12] = {0, 0.5f, 1, 0.25f, 0, 0.5f, 1, 0.25f, 0, 0.5f, 1, 0.25f};
    unsigned char *buf;
    size_t len;
    ck_assert_int_eq(dae_png_encode(px, 4, 3, 1, 1, &buf, &len, &e), DAE_OK);
    ck_assert_int_eq(dae_image_decode(buf, len, NULL, &im, &e), DAE_OK);
    ck_assert_int_eq(im.w, 4);
    ck_assert_float_eq(im.px[1], 128.0f / 255.0f);
    dae_image_free(&im);
    dae_image_limits lim = dae_image_default_limits();
    lim.max_bytes = len - 1;
    ck_assert_int_eq(dae_image_decode(buf, len, &lim, &im, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "bytes, limit"));
    free(buf);
    ck_assert_int_eq(dae_jpeg_encode(px, 4, 3, 1, 90, &buf, &len, &e), DAE_OK);
    ck_assert_int_eq(dae_image_decode(buf, len, NULL, &im, &e), DAE_OK);
    ck_assert_int_eq(im.h, 3);
    ck_assert_int_eq(im.c, 1);
    dae_image_free(&im);
    free(buf);
}
END_TEST

START_TEST(test_image8)
{
    dae_image8 b;
    dae_image f;
    dae_error e = {0};
    const unsigned char gif[] = "GIF89a\x01\x00\x01\x00";
    b.w = 4;
    ck_assert_int_eq(dae_image_decode8(gif, sizeof gif - 1, NULL, &b, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "not a PNG or JPEG (starts with 47 49 46 38"));
    ck_assert_int_eq(b.w, 0);
    ck_assert_int_eq(dae_image_decode8(gif, 0, NULL, &b, &e), DAE_EFORMAT);
    ck_assert_ptr_nonnull(strstr(e.msg, "empty"));

    /* an RGBA PNG by its magic: the bytes, then to float exactly as dae_image_decode */
    ck_assert_int_eq(dae_image_alloc(&f, 5, 3, 3, 1, &e), DAE_OK);
    for (int i = 0; i < 45; i++)
        f.px[i] = (float)((i * 37) % 256) / 255.0f;
    for (int i = 0; i < 15; i++)
        f.alpha[i] = (float)((i * 53) % 256) / 255.0f;
    unsigned char *png;
    size_t len;
    ck_assert_int_eq(dae_png_encode_image(&f, 6, &png, &len, &e), DAE_OK);
    dae_image_free(&f);
    dae_image_limits lim = dae_image_default_limits();
    lim.max_bytes = len - 1;
    ck_assert_int_eq(dae_image_decode8(png, len, &lim, &b, &e), DAE_ELIMIT);
    ck_assert_int_eq(dae_image_decode8(png, len, NULL, &b, &e), DAE_OK);
    ck_assert(b.w == 5 && b.h == 3 && b.c == 3 && b.alpha);
    for (int i = 0; i < 45; i++)
        ck_assert_int_eq(b.px[i], (i * 37) % 256);
    for (int i = 0; i < 15; i++)
        ck_assert_int_eq(b.alpha[i], (i * 53) % 256);
    dae_image ref;
    ck_assert_int_eq(dae_image_decode(png, len, NULL, &ref, &e), DAE_OK);
    ck_assert_int_eq(dae_image8_to_float(&b, &f, &e), DAE_OK);
    ck_assert_ptr_null(b.px); /* consumed */
    ck_assert(f.w == 5 && f.h == 3 && f.c == 3 && f.alpha);
    ck_assert_int_eq(memcmp(f.px, ref.px, 45 * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(f.alpha, ref.alpha, 15 * sizeof(float)), 0);
    dae_image_free(&f);
    dae_image_free(&ref);
    free(png);

    /* channels: gray to colour copies the plane; colour to gray is refused */
    ck_assert_int_eq(dae_image8_alloc(&b, 3, 2, 1, 0, &e), DAE_OK);
    for (int i = 0; i < 6; i++)
        b.px[i] = (unsigned char)(40 * i + 1);
    ck_assert_int_eq(dae_image8_to_channels(&b, 2, &e), DAE_EINVAL);
    ck_assert_int_eq(dae_image8_to_channels(&b, 1, &e), DAE_OK);
    ck_assert_int_eq(dae_image8_to_channels(&b, 3, &e), DAE_OK);
    ck_assert_int_eq(b.c, 3);
    for (int ch = 0; ch < 3; ch++)
        for (int i = 0; i < 6; i++)
            ck_assert_int_eq(b.px[ch * 6 + i], 40 * i + 1);
    ck_assert_int_eq(dae_image8_to_channels(&b, 1, &e), DAE_EINVAL);
    ck_assert_ptr_nonnull(strstr(e.msg, "convert to float planes first"));
    ck_assert_int_eq(b.c, 3);
    dae_image8_free(&b);
    ck_assert_ptr_null(b.px);
    dae_image8_free(&b); /* a freed image frees again */
    dae_image8_free(NULL);
    ck_assert_int_eq(dae_image8_alloc(&b, 0, 2, 1, 0, &e), DAE_EINVAL);
    ck_assert_ptr_null(b.px);
}
END_TEST

START_TEST(test_files)
{
    char path[] = "/tmp/daed_check_image_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    dae_image im, back;
    dae_error e = {0};
    ck_assert_int_eq(dae_image_alloc(&im, 9, 6, 3, 1, &e), DAE_OK);
    for (int i = 0; i < 3 * 54; i++)
        im.px[i] = (float)((i * 29) % 256) / 255.0f;
    for (int i = 0; i < 54; i++)
        im.alpha[i] = (float)((i * 7) % 256) / 255.0f;
    ck_assert_int_eq(dae_png_write_file(path, &im, &e), DAE_OK);
    ck_assert_int_eq(dae_image_read_file(path, NULL, &back, &e), DAE_OK);
    ck_assert_int_eq(back.c, 3);
    ck_assert_ptr_nonnull(back.alpha);
    ck_assert_int_eq(memcmp(back.px, im.px, sizeof(float) * 3 * 54), 0);
    ck_assert_int_eq(memcmp(back.alpha, im.alpha, sizeof(float) * 54), 0);
    dae_image_free(&back);

    dae_image_limits lim = dae_image_default_limits();
    lim.max_bytes = 20;
    ck_assert_int_eq(dae_image_read_file(path, &lim, &back, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, path));
    lim = dae_image_default_limits();
    lim.max_width = 8;
    ck_assert_int_eq(dae_image_read_file(path, &lim, &back, &e), DAE_ELIMIT);
    ck_assert_ptr_nonnull(strstr(e.msg, "9x6"));
    ck_assert_int_eq(strncmp(e.msg, path, strlen(path)), 0);

    FILE *f = fopen(path, "wb");
    fputs("hello", f);
    fclose(f);
    ck_assert_int_eq(dae_image_read_file(path, NULL, &back, &e), DAE_EFORMAT);
    unlink(path);
    ck_assert_int_eq(dae_image_read_file(path, NULL, &back, &e), DAE_ENOTFOUND);
    ck_assert_int_eq(dae_image_read_file("/tmp", NULL, &back, &e), DAE_EIO);
    ck_assert_int_eq(dae_png_write_file("/nonexistent-dir/x.png", &im, &e), DAE_EIO);
    dae_image_free(&im);
}
END_TEST

Suite *suite_image(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("image");
    tcase_add_test(tc, test_alloc_free);
    tcase_add_test(tc, test_default_limits);
    tcase_add_test(tc, test_to_channels);
    tcase_add_test(tc, test_resize_values);
    tcase_add_test(tc, test_resize_identity_and_alpha);
    tcase_add_test(tc, test_decode_dispatch);
    tcase_add_test(tc, test_image8);
    tcase_add_test(tc, test_files);
    suite_add_tcase(s, tc);
    return s;
}
