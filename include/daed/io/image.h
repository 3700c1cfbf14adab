/* image.h — images as float planes: allocation, channels, resizing, decoding a PNG or a JPEG
 * by its magic bytes, reading and writing image files. The codecs are png.h and jpeg.h.
 *
 * A dae_image is planar float32 in [0,1]: px[(ch*h + y)*w + x], c = 1 (gray) or 3 (RGB),
 * plus an optional alpha plane (NULL if the source had none) used as the inpainting mask
 * (alpha 0 = missing pixel). It owns its planes: dae_image_free() releases them.
 *
 * Decoders (here, png.h, jpeg.h) treat their input as hostile: the dimensions are read from
 * the header and checked against the limits *before* any pixel buffer is allocated
 * (DAE_ELIMIT), and a malformed stream is DAE_EFORMAT with a message saying what is wrong.
 */
#ifndef DAED_IMAGE_H
#define DAED_IMAGE_H

#include <stddef.h>

#include "daed/core/error.h"

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

/* PNG or JPEG by magic bytes (dae_png_decode, dae_jpeg_decode); DAE_EFORMAT for anything
 * else. Checks len <= max_bytes. *out as for dae_png_decode. */
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

/* ---- 8-bit planes ----
 * Planes of unsigned char (px[(ch*h + y)*w + x], 0..255), for the server's large images:
 * a 16-megapixel colour image is 48 MB as 8-bit planes, 192 MB as float ones. */
/* The 8-bit samples the encoders write for n float values: v*255 rounded, clamped to
 * 0..255, NaN -> 0. out may be (unsigned char *)px (converted in place, front to back). */
void dae_planes_quantize(const float *px, size_t n, unsigned char *out);

/* An image decoded to 8-bit planes: the samples the float decoders divide by 255, kept as
 * bytes (1 byte a value instead of 4). Same layout and channel rules as dae_image; owns its
 * planes (dae_image8_free). */
typedef struct dae_image8 {
    int w, h, c;          /* c = 1 or 3 */
    unsigned char *px;    /* c*h*w, owned */
    unsigned char *alpha; /* h*w or NULL, owned */
} dae_image8;

/* Allocate a zeroed c x h x w 8-bit image (with an alpha plane if with_alpha), as
 * dae_image_alloc. On failure *im is left all zero. */
int dae_image8_alloc(dae_image8 *im, int w, int h, int c, int with_alpha, dae_error *err);
/* Free the planes and zero *im; NULL or an all-zero image is a no-op. */
void dae_image8_free(dae_image8 *im);

/* As dae_image_decode, to 8-bit planes (dae_png_decode8, dae_jpeg_decode8): the same
 * checks, limits and errors; on success out->px[i] / 255.0f is, bit for bit, the value
 * dae_image_decode gives. A colour image peaks at about 2 bytes a value while it decodes
 * (the decoder's interleaved samples and the planes), a gray one without alpha at 1. */
int dae_image_decode8(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                      dae_image8 *out, dae_error *err);

/* The float image of *src (v / 255, as the float decoders) into *dst; src's planes are
 * freed as they are converted (src is zeroed), so the peak is 4 bytes a value plus one
 * 8-bit plane. On failure (DAE_ENOMEM) *src is freed too and *dst zeroed. */
int dae_image8_to_float(dae_image8 *src, dae_image *dst, dae_error *err);

/* Convert in place to c channels, as dae_image_to_channels: gray to colour copies the
 * plane (exact in 8 bits). Colour to gray (luma) is not a byte: DAE_EINVAL, convert to
 * float first. On failure *im is unchanged. */
int dae_image8_to_channels(dae_image8 *im, int c, dae_error *err);

#endif
