/* image.h — images as float planes, and the PNG / JPEG / base64 codecs that fill them.
 *
 * A dae_image is planar float32 in [0,1]: px[(ch*h + y)*w + x], c = 1 (gray) or 3 (RGB),
 * plus an optional alpha plane (NULL if the source had none) used as the inpainting mask
 * (alpha 0 = missing pixel). It owns its planes: dae_image_free() releases them.
 *
 * Decoders treat their input as hostile: the dimensions are read from the header and
 * checked against the limits *before* any pixel buffer is allocated (DAE_ELIMIT), and a
 * malformed stream is DAE_EFORMAT with a message saying what is wrong.
 */
#ifndef DAED_IMAGE_H
#define DAED_IMAGE_H

#include <stddef.h>

#include "daed/error.h"

typedef struct dae_image {
    int w, h, c;   /* c = 1 or 3 */
    float *px;     /* c*h*w, owned */
    float *alpha;  /* h*w or NULL, owned */
} dae_image;

typedef struct dae_image_limits {
    int max_width, max_height; /* default 16384 each */
    size_t max_pixels;         /* w*h, default 16 Mpx (1 << 24) */
    size_t max_bytes;          /* encoded size (decode input, file read); 0 = 64 MiB */
} dae_image_limits;

/* Wherever a `const dae_image_limits *lim` is taken, NULL means these defaults. */
dae_image_limits dae_image_default_limits(void);

/* Allocate a zeroed c x h x w image (with an alpha plane if with_alpha). On failure *im
 * is left all zero, so dae_image_free(im) is always safe. */
int dae_image_alloc(dae_image *im, int w, int h, int c, int with_alpha, dae_error *err);
/* Free the planes and zero *im; NULL or an all-zero image is a no-op. */
void dae_image_free(dae_image *im);

/* Convert in place to c channels (1: ITU-R BT.601 luma 0.299/0.587/0.114; 3: gray copied).
 * The alpha plane is kept. On failure *im is unchanged. */
int dae_image_to_channels(dae_image *im, int c, dae_error *err);

/* Bilinear resize (align_corners=False, like cv2.INTER_LINEAR and PyTorch bilinear without
 * antialias: source coordinate (x + 0.5) * src_w / w - 0.5, clamped at 0) into a new image
 * *dst (caller frees with dae_image_free). The alpha plane is resized too. Same size gives
 * an exact copy. dst must not be src. */
int dae_image_resize(const dae_image *src, int w, int h, dae_image *dst, dae_error *err);

/* ---- PNG (libpng) ---- */
/* Any PNG kind: gray, gray+alpha, RGB, RGBA, palette (with tRNS), 1/2/4/8/16-bit,
 * interlaced. The result has 1 channel for gray sources, 3 for colour ones (palette images
 * count as colour), and an alpha plane when the source carries transparency (alpha
 * channel or tRNS). Samples are taken as stored, as PIL, OpenCV and torchvision read them:
 * gAMA, sRGB, cHRM, iCCP and sBIT are ignored (no colour or gamma conversion), bit depths
 * below 8 are scaled to 0..255, 16-bit samples are reduced to their high byte (32768 ->
 * 128), palettes are expanded; then divided by 255. Checked against every PngSuite file
 * (tests/check_pngsuite.c). A PNG without IEND whose pixel data is complete is accepted.
 * *out is zeroed first, filled on success (caller frees with dae_image_free). The same
 * holds for dae_jpeg_decode and dae_image_decode. */
int dae_png_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                   dae_image *out, dae_error *err);
/* Encode c = 1 or 3 planes (values clamped to [0,1], v*255 rounded to 8 bits; NaN -> 0) as
 * an 8-bit gray or RGB PNG with zlib level `level` (0-9; 1 is fast, 6 zlib's default).
 * *out is malloc'd; caller frees. */
int dae_png_encode(const float *px, int w, int h, int c, int level, unsigned char **out,
                   size_t *out_len, dae_error *err);
/* As dae_png_encode; with an alpha plane the PNG is gray+alpha or RGBA. */
int dae_png_encode_image(const dae_image *im, int level, unsigned char **out,
                         size_t *out_len, dae_error *err);

/* ---- 8-bit planes ----
 * Planes of unsigned char (px[(ch*h + y)*w + x], 0..255), for the server's large images:
 * a 16-megapixel colour image is 48 MB as 8-bit planes, 192 MB as float ones. */
/* The 8-bit samples the encoders write for n float values: v*255 rounded, clamped to
 * 0..255, NaN -> 0. out may be (unsigned char *)px (converted in place, front to back). */
void dae_planes_quantize(const float *px, size_t n, unsigned char *out);
/* As dae_png_encode_image from c = 1 or 3 8-bit planes and an 8-bit alpha plane (NULL:
 * none): the same PNG as from float planes that quantize to these samples. */
int dae_png_encode8(const unsigned char *px, const unsigned char *alpha, int w, int h, int c,
                    int level, unsigned char **out, size_t *out_len, dae_error *err);

/* ---- JPEG (libturbojpeg) ---- */
/* Baseline or progressive; a grayscale JPEG gives 1 channel, a colour one 3, never alpha.
 * CMYK/YCCK JPEGs are refused (DAE_EFORMAT). Strict: libjpeg's corrupt-data warnings
 * (truncated data, bad Huffman codes, extraneous bytes) are errors, not gray filler. More
 * than 1000 scan markers (a CPU-exhaustion pattern of progressive JPEGs) is DAE_ELIMIT. */
int dae_jpeg_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                    dae_image *out, dae_error *err);
/* Encode c = 1 (grayscale JPEG) or 3 (YCbCr 4:2:0) planes at quality 1-100 (values as
 * for PNG). *out is malloc'd; caller frees with free(). */
int dae_jpeg_encode(const float *px, int w, int h, int c, int quality, unsigned char **out,
                    size_t *out_len, dae_error *err);

/* As dae_jpeg_encode from c = 1 or 3 8-bit planes: the same JPEG as from float planes
 * that quantize to these samples. */
int dae_jpeg_encode8(const unsigned char *px, int w, int h, int c, int quality,
                     unsigned char **out, size_t *out_len, dae_error *err);

/* A reusable in-memory JPEG round trip for planes of one size (c = 1 or 3; the trainer's
 * JPEG noise step): the TurboJPEG handles and byte buffers are allocated once by create;
 * run replaces px (c,h,w) with decode(encode(px)) at quality 1-100 (colour as YCbCr 4:2:0,
 * gray as a grayscale JPEG), allocating nothing. Not thread-safe: one per thread. */
typedef struct dae_jpeg_roundtrip dae_jpeg_roundtrip;
dae_jpeg_roundtrip *dae_jpeg_roundtrip_create(int w, int h, int c, dae_error *err);
int dae_jpeg_roundtrip_run(dae_jpeg_roundtrip *j, float *px, int quality, dae_error *err);
void dae_jpeg_roundtrip_free(dae_jpeg_roundtrip *j);

/* PNG or JPEG by magic bytes; DAE_EFORMAT for anything else. Checks len <= max_bytes. */
int dae_image_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                     dae_image *out, dae_error *err);

/* ---- files ---- */
/* Read a PNG or JPEG file of at most lim->max_bytes bytes (DAE_ELIMIT beyond; DAE_ENOTFOUND
 * when it does not exist, DAE_EIO on other read errors) and decode it. Messages start
 * with the path. */
int dae_image_read_file(const char *path, const dae_image_limits *lim, dae_image *out,
                        dae_error *err);
/* Write im (with its alpha plane if any) as a PNG at zlib level 6. */
int dae_png_write_file(const char *path, const dae_image *im, dae_error *err);

/* ---- base64 (RFC 4648, standard alphabet, padding required on decode; whitespace is
 * rejected) ---- */
/* 4 * ceil(n / 3); 0 when that plus the terminator would overflow size_t. */
size_t dae_base64_encoded_len(size_t n);
/* out must hold dae_base64_encoded_len(n) + 1 bytes; NUL-terminated. */
void dae_base64_encode(const unsigned char *in, size_t n, char *out);
/* Decodes into a malloc'd buffer (never NULL on success, even for n = 0; caller frees).
 * DAE_EFORMAT naming the offset of the first bad byte: a character outside the alphabet
 * (whitespace included), a length not a multiple of 4, a misplaced '=', or non-zero bits
 * under the padding (non-canonical encoding). */
int dae_base64_decode(const char *in, size_t n, unsigned char **out, size_t *out_len,
                      dae_error *err);

#endif
