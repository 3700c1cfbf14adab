/* photonoise.h — realistic noise for photo-patch training: Gaussian, camera ("unprocessed"
 * Poisson-Gaussian raw noise), spatially correlated Gaussian, and a JPEG post-step.
 *
 * A noise set is a weighted list of kinds; every patch draws one kind (probability
 * weight / sum of weights), then its parameters, adds the noise, and then, with
 * probability p, goes through an in-memory JPEG round trip. Patches are planar float32
 * (c,h,w) in [0,1], c = 1 (gray) or 3 (RGB). Everything is drawn from the caller's dae_rng:
 * the result is deterministic for a given rng state, set and patch size.
 *
 * kind        parameters (a number or [lo,hi]; drawn uniformly unless said)   level
 * gaussian    sigma (0-255 scale)                                              sigma
 *             x + sigma/255 * N(0,1) per value: i.i.d. noise, today's patch noise. With
 *             quantize it is exactly dae_photo_add_noise (rounded to 8 bits, clipped).
 * camera      shot (log-uniform, default [0.0001, 0.012]), read_jitter (0.26),  RMS
 *             demosaic ("malvar" | "bilinear"), chroma ([1, 1]), width ([0, 0])
 *             Real camera noise by "unprocessing" (Brooks et al., CVPR 2019): the sRGB
 *             patch goes back to linear camera raw (inverse smoothstep tone curve, gamma 2.2
 *             inverse, a random camera colour matrix: a convex combination of four
 *             XYZ->camera matrices times sRGB->XYZ, rows normalised; inverse white-balance
 *             and digital gains: red U[1.9,2.4], blue U[1.5,1.9], overall 1/N(0.8,0.1)),
 *             is sampled on an RGGB Bayer mosaic, and gets heteroscedastic Gaussian noise of
 *             variance shot*x + read at raw value x, where
 *             log(read) = 2.18 log(shot) + 1.2 + N(0, read_jitter) (the paper's fit of
 *             real sensors). The noise mosaic is demosaiced (Malvar-He-Cutler 5x5 or
 *             bilinear), scaled by the gains, mapped by the colour matrix back to linear
 *             sRGB, added to the patch in linear light, clipped to [0,1] and taken back
 *             through gamma and the tone curve. The noise is therefore signal-dependent,
 *             spatially correlated (demosaicing) and correlated across channels (the
 *             demosaic kernels and the colour matrix). Only the noise is demosaiced: the
 *             clean signal keeps its detail, so the clean patch stays the exact target (the
 *             training photos already went through a camera's demosaicing). Gray patches run
 *             the pipeline with R = G = B and keep the BT.709 luma of the noisy result
 *             (0.2125 R + 0.7154 G + 0.0721 B, as photo.h). chroma < 1 models a
 *             camera's chroma noise reduction: of the final sRGB noise d, the part off
 *             its BT.709 luma Y is scaled, d' = Y + chroma (d - Y) (colour patches; a
 *             factor drawn per patch; 0 = luminance noise only). width > 0 blurs the
 *             camera's output noise (noisy - clean, after the tone curve, before chroma)
 *             per channel by a Gaussian of the drawn width, borders reflected, clipped to
 *             [0,1] (a camera's own denoising, sharpening and resampling spread its noise
 *             over more pixels than demosaicing does; blurring under the mosaic instead
 *             correlated the channels far too much; 0 draws nothing extra, so a set
 *             without it gives the same patches as before). The level is the RMS of
 *             (noisy - clean) over the patch, on the 0-255 scale, before any JPEG step.
 * correlated  sigma (0-255), width (blur sigma in pixels, default [0.5, 1.5], at most 4),
 *             per_channel (true)                                               sigma
 *             White Gaussian noise blurred by a Gaussian kernel of the drawn width (radius
 *             ceil(3 width), computed on a margin so there are no border effects) and
 *             rescaled by the kernel's norm so its standard deviation is sigma. per_channel
 *             false: one noise field added to every channel (pure luminance noise).
 * jpeg        p (probability, default 1), quality (integers 1-100)
 *             A post-step, not a drawn kind (no weight, at most one): with probability p
 *             the noisy patch is encoded as a JPEG at a quality drawn uniformly from the
 *             integers [lo,hi] (4:2:0 chroma subsampling; gray patches as a grayscale JPEG)
 *             and decoded, in memory. The result is 8-bit valued in [0,1].
 *
 * quantize (dae_photonoise_apply, the recipe's patches.quantize): the noisy patch is rounded
 * to 8-bit levels and clipped to [0,1], what an 8-bit file holds. Without it gaussian and
 * correlated noise is neither rounded nor clipped, camera noise is clipped (the pipeline
 * clips in linear light) but not rounded.
 *
 * JSON form (dae_photonoise_set_parse; recipe key patches.noise): an array of objects,
 * e.g. the recommended mix of docs/photos.md:
 *   [{"type":"gaussian","sigma":[0,75],"weight":2},{"type":"camera","weight":2},
 *    {"type":"correlated","sigma":[0,50],"weight":1},{"type":"jpeg","p":0.3,"quality":[60,95]}]
 * "weight" defaults to 1. Unknown keys, kinds and out-of-range values are refused with a
 * message naming the member and the key. At least one noise kind is needed (gaussian with
 * sigma 0 is a clean patch).
 */
#ifndef DAED_PHOTONOISE_H
#define DAED_PHOTONOISE_H

#include <stddef.h>

#include "daed/core/error.h"
#include "daed/core/rng.h"

struct cJSON;

typedef enum {
    DAE_PNOISE_GAUSSIAN = 0,
    DAE_PNOISE_CAMERA,
    DAE_PNOISE_CORRELATED
} dae_pnoise_kind;

typedef enum { DAE_DEMOSAIC_MALVAR = 0, DAE_DEMOSAIC_BILINEAR = 1 } dae_demosaic_kind;

#define DAE_PNOISE_MAX 8            /* noise kinds in a set */
#define DAE_PNOISE_MAX_SIGMA 255.0  /* gaussian / correlated sigma, 0-255 scale */
#define DAE_PNOISE_MAX_WIDTH 4.0    /* correlated blur sigma, pixels */
#define DAE_PNOISE_MIN_SHOT 1e-6    /* camera shot-noise factor */
#define DAE_PNOISE_MAX_SHOT 1.0
#define DAE_PNOISE_MAX_JITTER 2.0   /* camera read_jitter */
#define DAE_PNOISE_MAX_SIDE 1024    /* patch height and width */

typedef struct dae_pnoise {
    dae_pnoise_kind kind;
    float weight;            /* > 0 */
    float lo, hi;            /* sigma (gaussian, correlated, 0-255) or shot (camera) */
    float width_lo, width_hi; /* correlated: blur sigma in pixels */
    int per_channel;         /* correlated: 1 = an independent field per channel */
    float read_jitter;       /* camera: standard deviation of log(read) around the line */
    float cut_lo, cut_hi;    /* camera: removed fraction of the noise's chroma part, i.e.
                                1 - the JSON "chroma" (0 = none, so a zeroed member keeps
                                all of it) */
    dae_demosaic_kind demosaic; /* camera */
} dae_pnoise;

typedef struct dae_photonoise_set {
    dae_pnoise m[DAE_PNOISE_MAX];
    int n;                   /* noise kinds; 0 = no set (the recipe's sigma range is used) */
    float jpeg_p;            /* probability of the JPEG step; 0 = none */
    int jpeg_qlo, jpeg_qhi;  /* quality range */
} dae_photonoise_set;

/* Stable name of a kind ("gaussian", "camera", "correlated"). */
const char *dae_pnoise_kind_name(dae_pnoise_kind kind);

/* Parse the JSON form: text of length len / an already parsed cJSON array. The set is
 * overwritten; on failure it is left empty (n = 0) and err names the bad member and key. */
int dae_photonoise_set_parse(const char *json, size_t len, dae_photonoise_set *set,
                             dae_error *err);
int dae_photonoise_set_from_cjson(const struct cJSON *item, dae_photonoise_set *set,
                                  dae_error *err);
/* The set in the JSON form with every default written out (for model metadata).
 * malloc'd, caller frees; NULL only when out of memory. */
char *dae_photonoise_set_json(const dae_photonoise_set *set);

/* The range of the nominal levels of the set's gaussian and correlated members (0-255);
 * returns 0 (lo, hi untouched) when it has none of them. */
int dae_photonoise_sigma_range(const dae_photonoise_set *set, double *lo, double *hi);

/* ---- applying a set ---- */

/* A generator: scratch for c x h x w patches (c 1 or 3, h and w up to DAE_PNOISE_MAX_SIDE)
 * and a TurboJPEG round trip (jpeg.h), all allocated here once (about 12 h w floats plus
 * the codec's buffers). The set is copied. Not thread-safe: one generator per thread. */
typedef struct dae_photonoise dae_photonoise;
dae_photonoise *dae_photonoise_create(const dae_photonoise_set *set, int c, int h, int w,
                                      dae_error *err);
void dae_photonoise_free(dae_photonoise *g);

/* noisy = clean (c,h,w as created) with noise drawn from the set with r (see above; an
 * empty set is gaussian of sigma 0); clean and noisy must not overlap. *level = the patch's nominal noise level on the
 * 0-255 scale. Allocates nothing. Fails only if the JPEG codec does (DAE_EINTERNAL). */
int dae_photonoise_apply(dae_photonoise *g, dae_rng *r, const float *clean, int quantize,
                         float *noisy, double *level, dae_error *err);

/* One kind with fixed parameters, for tests, pictures and benchmarks: the member m (its
 * ranges are drawn from as usual; set lo = hi to fix them) without the set's JPEG step. */
int dae_photonoise_apply_member(dae_photonoise *g, dae_rng *r, const dae_pnoise *m,
                                const float *clean, int quantize, float *noisy,
                                double *level);
/* The JPEG step alone at a given quality, in place on a (c,h,w) patch of the generator's
 * size (works whether or not the set has a JPEG step). */
int dae_photonoise_jpeg(dae_photonoise *g, float *px, int quality, dae_error *err);

/* The camera pipeline's fixed curves, per value: sRGB value -> linear light (inverse
 * smoothstep tone curve, then x^2.2) and back. */
float dae_photonoise_to_linear(float srgb);
float dae_photonoise_from_linear(float lin);

#endif
