/* pixels.h — --pixel-budget: what a request's images will hold once decoded, read from the
 * image header before anything is decoded.
 *
 * A 16-megapixel colour photo is a 25 MB JPEG at most but 384 MB of float planes while it
 * is denoised (input and output, 4 bytes a value) plus its 8-bit answer: the bodies
 * (--body-budget) say little about the memory of the requests in flight. Before a request
 * goes to the workers, its planes are estimated from the PNG IHDR or the JPEG SOF header
 * (width, height, channels) and charged against --pixel-budget; past it the request waits
 * (admit.h, first come first served; one always gets in) until earlier requests finish.
 *
 * The estimate, for an image of W x H with C colour channels (+1 with alpha):
 *   W*H*(C+alpha)*4 (decoded input) + W*H*C*4 (output) + W*H*(C+alpha) (8-bit answer),
 * i.e. about 9 bytes per value. A JSON body (pixels or base64 images, one or a batch) is
 * estimated from its length: 4 bytes per body byte (a pixel value takes at least 2 bytes
 * of JSON, "0,", and becomes 4 bytes of input and 4 of output); base64 PNGs inside JSON
 * are undercounted by that rule (they are compressed), JSON pixel arrays overcounted. Any
 * body the header of which cannot be read counts 4 bytes per byte too (the worker then
 * refuses it anyway). Pure functions.
 */
#ifndef DAED_SERVE_PIXELS_H
#define DAED_SERVE_PIXELS_H

#include <stddef.h>

/* Width, height, colour channels (1 or 3) and alpha (0 or 1) from a PNG or JPEG header.
 * 0 on success, -1 when body is neither or its header is cut short. */
int dae_pixels_probe(const unsigned char *body, size_t len, int *w, int *h, int *c, int *alpha);

/* The bytes of image planes a request with this body holds while it runs (above). */
size_t dae_pixels_estimate(const unsigned char *body, size_t len, int is_json);

#endif
