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
    size_t max_pixels;         /* w*h, default 16 Mpx */
} dae_image_limits;

dae_image_limits dae_image_default_limits(void);

/* Allocate a zeroed c x h x w image (with an alpha plane if with_alpha). */
int dae_image_alloc(dae_image *im, int w, int h, int c, int with_alpha, dae_error *err);
void dae_image_free(dae_image *im);

/* Convert in place to c channels (1: ITU-R BT.601 luma 0.299/0.587/0.114; 3: gray copied). */
int dae_image_to_channels(dae_image *im, int c, dae_error *err);

/* Bilinear resize (align_corners=False, like cv2.INTER_LINEAR / PyTorch) into a new image. */
int dae_image_resize(const dae_image *src, int w, int h, dae_image *dst, dae_error *err);

/* ---- PNG (libpng) ---- */
/* Any PNG kind: gray, gray+alpha, RGB, RGBA, palette (with tRNS), 1/2/4/8/16-bit,
 * interlaced. The result has 1 channel for gray sources, 3 for colour ones, and an alpha
 * plane when the source carries transparency. */
int dae_png_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                   dae_image *out, dae_error *err);
/* Encode c = 1 or 3 planes (values clamped to [0,1], rounded to 8 bits) as PNG with zlib
 * level `level` (0-9; 1 is fast). *out is malloc'd; caller frees. */
int dae_png_encode(const float *px, int w, int h, int c, int level, unsigned char **out,
                   size_t *out_len, dae_error *err);
int dae_png_encode_image(const dae_image *im, int level, unsigned char **out,
                         size_t *out_len, dae_error *err);

/* ---- JPEG (libturbojpeg) ---- */
int dae_jpeg_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                    dae_image *out, dae_error *err);
int dae_jpeg_encode(const float *px, int w, int h, int c, int quality, unsigned char **out,
                    size_t *out_len, dae_error *err);

/* PNG or JPEG by magic bytes; DAE_EFORMAT for anything else. */
int dae_image_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                     dae_image *out, dae_error *err);

/* ---- files ---- */
int dae_image_read_file(const char *path, const dae_image_limits *lim, dae_image *out,
                        dae_error *err);
int dae_png_write_file(const char *path, const dae_image *im, dae_error *err);

/* ---- base64 (RFC 4648, standard alphabet, padding required on decode; whitespace is
 * rejected) ---- */
size_t dae_base64_encoded_len(size_t n);
/* out must hold dae_base64_encoded_len(n) + 1 bytes; NUL-terminated. */
void dae_base64_encode(const unsigned char *in, size_t n, char *out);
/* Decodes into a malloc'd buffer; DAE_EFORMAT naming the offset of the first bad byte. */
int dae_base64_decode(const char *in, size_t n, unsigned char **out, size_t *out_len,
                      dae_error *err);

#endif
