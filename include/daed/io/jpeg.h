/* jpeg.h — JPEG decode and encode with libturbojpeg for dae_image planes (image.h), and a
 * reusable in-memory JPEG round trip (the trainer's JPEG noise step).
 */
#ifndef DAED_JPEG_H
#define DAED_JPEG_H

#include <stddef.h>

#include "daed/core/error.h"
#include "daed/io/image.h"

/* Baseline or progressive; a grayscale JPEG gives 1 channel, a colour one 3, never alpha.
 * CMYK/YCCK JPEGs are refused (DAE_EFORMAT). Strict: libjpeg's corrupt-data warnings
 * (truncated data, bad Huffman codes, extraneous bytes) are errors, not gray filler. More
 * than 1000 scan markers (a CPU-exhaustion pattern of progressive JPEGs) is DAE_ELIMIT. */
int dae_jpeg_decode(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                    dae_image *out, dae_error *err);
/* As dae_jpeg_decode, to 8-bit planes (image.h dae_image8). *out is zeroed first. */
int dae_jpeg_decode8(const unsigned char *buf, size_t len, const dae_image_limits *lim,
                     dae_image8 *out, dae_error *err);
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

#endif
