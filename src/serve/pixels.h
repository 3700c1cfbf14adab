/* pixels.h — --pixel-budget: what a request's images will hold once decoded, read from the
 * image header before anything is decoded.
 *
 * A 16-megapixel colour photo is a 25 MB JPEG at most but 96 MB of planes while it is
 * denoised in tiles (8-bit input and output), 384 MB on the float path: the bodies
 * (--body-budget) say little about the memory of the requests in flight. Before a request
 * goes to the workers, its planes are estimated from the PNG IHDR or the JPEG SOF header
 * (width, height, channels) and charged against --pixel-budget; past it the request waits
 * (admit.h, first come first served; one always gets in) until earlier requests finish.
 *
 * The estimate, for an image of W x H with C colour channels (+1 with alpha), per value
 * (W*H*(C+alpha) values):
 *   - 3 bytes when its planes are held as 8-bit (tiles.c: a tiled denoise answered as PNG
 *     or JPEG): the decoder writes 8-bit planes (2 bytes a value at its peak, with its
 *     interleaved samples), the tiles read 8-bit input and write 8-bit output (1 + 1),
 *     and the answer is encoded from it (1 + the encoder's interleaved copy + the answer);
 *   - 5 bytes when only the input is 8-bit: a per-channel model in a colour space that
 *     mixes the channels (photo-denoise-rgb) needs all three outputs of a pixel, from
 *     three tile jobs, before it can go back to RGB, so its output is float (1 + 4);
 *   - 9 bytes otherwise: float input and output (4 + 4) and the 8-bit answer (1);
 *   - 2 bytes more with chroma at half size: two planes of a quarter of the pixels, in and
 *     out (4 + 4), a third of the values: 2.7 bytes a value, rounded down (its 8-bit answer
 *     is counted but PNG encoding is not).
 * Measured (a 16-megapixel colour JPEG denoised by a tiny 3-channel model, answered as
 * JPEG; peak RSS less the idle RSS, 2026-12-06): 115 MB with 8-bit input and output
 * planes (estimate 144 MB); 242 MB with 8-bit input and float output (estimate 240 MB);
 * 452 MB with float planes (estimate then 432 MB).
 * A JSON body is scanned once (strings skipped): 88 bytes per number (its cJSON node, an
 * 80-byte malloc chunk, while parsed, then its float input and output: JSON pixel arrays,
 * v2 tensors, masks), and for each base64 PNG or JPEG string its image (9 bytes per
 * value, read from the header decoded from the string's first characters) plus its
 * decoded bytes; any other string of 64 bytes or more (an image whose header is not read:
 * not within its first 64 KiB of characters, or escapes such as \/ in it) counts 4 bytes
 * per byte, shorter strings (keys, names) nothing. Measured: a 1000x1000 JSON pixel body
 * (7.9 MB) raised the peak RSS by 89.5 MB answered as PNG, 94.3 MB as JSON, the body
 * included (estimate 88 MB, the body being --body-budget's; 32 MB by the earlier rule of 4
 * bytes per body byte). A body that is neither JSON nor a readable PNG or JPEG header
 * counts 4 bytes per byte (the worker then refuses it anyway). Pure functions.
 */
#ifndef DAED_SERVE_PIXELS_H
#define DAED_SERVE_PIXELS_H

#include <stddef.h>

/* Width, height, colour channels (1 or 3) and alpha (0 or 1) from a PNG or JPEG header.
 * 0 on success, -1 when body is neither or its header is cut short. */
int dae_pixels_probe(const unsigned char *body, size_t len, int *w, int *h, int *c, int *alpha);

/* What may run besides the model, for dae_pixels_estimate (a JSON body's estimate, 88
 * bytes a number, covers both): */
enum {
    DAE_PIXELS_NONLOCAL = 1,    /* the non-local stage after the model (tiles.c) */
    DAE_PIXELS_HALF_CHROMA = 2, /* a per-channel model's chroma at half size (photo.h) */
    DAE_PIXELS_REROUTE = 4,     /* no ?model= nor ?sigma=: a colour photo may be routed to a
                                   half-chroma model once decoded (correlated noise, parse.c),
                                   so count that model's planes if they cost more */
};

/* The bytes of image planes a request with this body holds while it runs (above);
 * eight_bit (dae_tiles_8bit): 2 its planes are held as 8-bit, 1 its input only, 0 none;
 * extras: DAE_PIXELS_* flags. */
size_t dae_pixels_estimate(const unsigned char *body, size_t len, int is_json, int eight_bit,
                           int extras);

#endif
