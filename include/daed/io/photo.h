/* photo.h — natural photos of any size: area downscaling, luma, the opponent colour space,
 * 8-bit Gaussian noise, and an in-memory set of photos for patch training.
 *
 * Pixel values are dae_image planes in [0,1] (image.h). The noise protocol is
 * /work/shared/PHOTOS.md's: Gaussian noise of sigma on the 0-255 scale, rounded to 8-bit
 * levels and clipped to [0,255], so a noisy image is exactly what an 8-bit file holds.
 *
 * Opponent colour space ("opponent"): the orthonormal transform of CBM3D,
 *   A = [1 1 1]/sqrt3, [1 0 -1]/sqrt2, [1 -2 1]/sqrt6,
 * each channel shifted and scaled so that RGB in [0,1] maps into [0,1]:
 *   u0 = (r+g+b)/3,  u1 = (r-b+1)/2,  u2 = (r-2g+b+2)/4.
 * i.i.d. noise of sigma per RGB channel stays i.i.d. in A's space; the scaling makes it
 * sigma/sqrt3, sigma/sqrt2 and sigma*sqrt6/4 in u0, u1, u2. A blind denoiser handles that.
 */
#ifndef DAED_PHOTO_H
#define DAED_PHOTO_H

#include <stddef.h>

#include "daed/core/error.h"
#include "daed/io/image.h"
#include "daed/core/rng.h"

/* Colour spaces a model may work in (model config "color_space"). */
typedef enum { DAE_COLOR_RGB = 0, DAE_COLOR_OPPONENT = 1 } dae_color_space;

/* "rgb" / "opponent"; -1 for anything else. */
int dae_color_space_from_name(const char *name);
const char *dae_color_space_name(dae_color_space cs);

/* In place on planar (3, n) values; rgb -> opponent and back (exact inverses up to float
 * rounding). RGB is a no-op. */
void dae_color_to_space(float *px, size_t n, dae_color_space cs);
void dae_color_from_space(float *px, size_t n, dae_color_space cs);

/* The standard deviation that independent noise of standard deviation 1 in each of R, G, B
 * has in channel ch (0..2) of space cs: 1 in RGB; in the opponent space 1/sqrt(3) (luma),
 * 1/sqrt(2) and sqrt(6)/4 (the transform is not orthonormal). A per-channel model with a
 * noise-level map gets ?sigma= times this for each channel. */
float dae_color_noise_gain(dae_color_space cs, int ch);

/* The standard deviation (0-255 scale) of i.i.d. Gaussian noise in an image, estimated from
 * the image alone (for a noise-map model asked without ?sigma=): per channel, the median
 * absolute response of the 3x3 mask [1 -2 1; -2 4 -2; 1 -2 1] (it cancels flat areas and
 * linear ramps; on white noise of sigma its output has standard deviation 6 sigma) over
 * 6 x 0.6745 (Immerkaer's estimator, CVIU 1996, with a median: robust to edges); the mean
 * over the channels. px8 (8-bit planes) or px (planes in [0,1]), one of them; c x h x w.
 * On Set12 with seeded Gaussian noise: 15.0-16.1 at sigma 15, 24.8-25.8 at 25, 49.4-50.3
 * at 50 (per image). Texture reads as some noise (a clean photo gives 0.5-3); spatially
 * correlated noise (real camera noise after demosaicing) reads below its standard
 * deviation. A large plane is sampled every k-th row (at most ~4M positions). 0 for
 * images under 3x3; -1 when out of memory. */
double dae_noise_estimate(const float *px, const unsigned char *px8, int w, int h, int c);

/* The same estimate one scale coarser: dae_noise_estimate of the image halved (2x2 means),
 * times 2. White noise of sigma reads sigma at both scales (a 2x2 mean has sigma / 2), noise
 * correlated over neighbouring pixels (real camera noise after demosaicing, noisy JPEGs)
 * reads higher here than at the finest scale; texture reads higher too, as it does there.
 * The half is made three rows at a time (no half plane is held). 0 for images whose half is
 * under 3x3; -1 when out of memory. */
double dae_noise_estimate_coarse(const float *px, const unsigned char *px8, int w, int h,
                                 int c);

/* A colour photo sent without ?sigma= whose coarse estimate is at least DAE_NOISE_CORR_RATIO
 * times its finest-scale one has correlated noise (or texture, which wants the same
 * treatment): daed routes it, and gives its model, the level DAE_NOISE_CORR_GAIN x the
 * coarse estimate, the level of white Gaussian noise a model told it removes best. Both
 * were calibrated on camera photos at full resolution (not the test sets) with synthetic
 * camera noise matched to real camera noise (eval/calib_correlated.py; docs/photos.md
 * "Session 18"). */
#define DAE_NOISE_CORR_RATIO 2.5
#define DAE_NOISE_CORR_GAIN 3.5

/* In place to one channel with the luma weights skimage.color.rgb2gray uses (ITU-R
 * BT.709: 0.2125 R + 0.7154 G + 0.0721 B); a gray image is left as it is. */
int dae_image_to_luma709(dae_image *im, dae_error *err);

/* Area-average downscale (cv2.INTER_AREA for shrinking: each output pixel is the mean of
 * the source area it covers, with fractional weights at the edges) into a new image *dst
 * (caller frees). w <= src->w and h <= src->h; the alpha plane is not carried over. */
int dae_image_area_downscale(const dae_image *src, int w, int h, dae_image *dst,
                             dae_error *err);

/* Round values to 8-bit levels: v = round(v*255)/255 clipped to [0,1]. */
void dae_photo_quantize(float *px, size_t n);

/* A training photo prepared in place (dae-model prep): with gray, luma (dae_image_to_luma709);
 * with shortside > 0, area-downscaled so its shorter side is shortside pixels (never
 * upscaled); the alpha plane dropped; values rounded to 8-bit levels. */
int dae_photo_prepare(dae_image *im, int gray, int shortside, dae_error *err);

/* A prepared colour photo made the training image of one of its chroma channels as a
 * "chroma_half" model sees it (dae-model prep --chroma): channel k (1 or 2) of the
 * opponent space, halved (core/halfres.h), rounded to 8 bits; im becomes that 1-channel
 * image (a gray photo gives a flat one, as its colour copy would). DAE_EINVAL for another
 * k. */
int dae_photo_chroma_half(dae_image *im, int k, dae_error *err);

/* out = quantize(clean + sigma255/255 * N(0,1)) per value (out may equal clean). */
void dae_photo_add_noise(dae_rng *r, const float *clean, size_t n, float sigma255,
                         float *out);

/* Width, height and channel count (1 gray, 3 colour: what dae_image_decode would give) of a
 * PNG or JPEG from its header alone, without decoding pixels. DAE_EFORMAT if neither. */
int dae_image_probe(const unsigned char *buf, size_t len, int *w, int *h, int *c,
                    dae_error *err);

/* What a model config says about photos (all optional; absent = a plain model):
 *   "without_sigma": "blind" | "estimate"  a noise-map model without ?sigma=: blind, or the
 *                                       level estimated in the image (the default)
 *   "color_space": "rgb" | "opponent"   the space a colour image is denoised in
 *   "per_channel": true                 a 1-channel model that denoises a colour image one
 *                                       channel (of the colour space) at a time
 *   "chroma_half": true                 such a model in the opponent space denoises the two
 *                                       chroma channels at half resolution (core/halfres.h)
 *   "corruption": {"type": "gaussian255", "sigma": [lo, hi]}   the trained noise range
 *   "sigma_range": [lo, hi]             the ?sigma= range daed routes to the model (the level
 *                                       of the image as sent, 0-255), when it differs from
 *                                       the trained range (a per-channel model's trained
 *                                       range is that of one channel) */
typedef struct dae_photo_facts {
    dae_color_space cs;
    int per_channel;
    int chroma_half;         /* per-channel, opponent: the chroma channels at half size */
    int channels;            /* image channels it denoises: the model's, or 3 per channel */
    double sigma_lo, sigma_hi; /* 0-255 scale; hi < 0 when not a photo model */
    int blind_default;       /* "without_sigma": "blind": a noise-map model that runs blind
                                without ?sigma= instead of getting the estimated level (the
                                trainer writes it for models trained blind only) */
} dae_photo_facts;

/* Read the facts from a model config (model_channels = its input channels). A per_channel
 * model must have 1 input channel, chroma_half needs per_channel in the opponent space, a
 * sigma_range two numbers 0 <= lo <= hi <= 255 (DAE_EINVAL otherwise, as bad colour
 * spaces are). */
int dae_photo_facts_parse(const char *config_json, int model_channels, dae_photo_facts *f,
                          dae_error *err);

/* ---- a set of photos of any size, in memory ---- */
typedef struct dae_photoset {
    int n, c;        /* n images, each with c channels (1 or 3) */
    dae_image *im;   /* n images, owned */
    char **names;    /* n file names (without the directory), owned */
    double *cum;     /* n cumulative pixel counts (area-proportional sampling), owned */
} dae_photoset;

/* Every *.png / *.jpg / *.jpeg in dir (byte-wise sorted names, hidden entries skipped),
 * decoded under lim (NULL = image.h defaults), converted to `channels` (1: BT.709 luma as
 * dae_image_to_luma709; 3: gray replicated). Images smaller than min_side in either
 * dimension are refused with a message naming the file. At most max_images files.
 * Caller frees with dae_photoset_free. */
dae_photoset *dae_photoset_load_dir(const char *dir, int channels, int min_side,
                                    int max_images, const dae_image_limits *lim,
                                    dae_error *err);
/* An empty set of c channels to which dae_photoset_add can append (takes ownership of
 * *im on success and zeroes it). */
dae_photoset *dae_photoset_create(int c, dae_error *err);
int dae_photoset_add(dae_photoset *ps, dae_image *im, const char *name, dae_error *err);
void dae_photoset_free(dae_photoset *ps);

/* Total pixels (h*w summed over the images). */
double dae_photoset_pixels(const dae_photoset *ps);

/* A random p x p crop of a random photo (probability proportional to its area) into out
 * (c, p, p); with augment, one of the 8 rotations/flips. Every photo must be at least p on
 * each side (checked at load by min_side). */
void dae_photoset_sample_patch(const dae_photoset *ps, dae_rng *r, int p, int augment,
                               float *out);

#endif
