/* nlm.h — guided non-local means: a second, non-local stage after a denoising network.
 *
 * A network with a receptive field of a few dozen pixels cannot tell low-frequency noise
 * from low-frequency content; real camera noise after demosaicing has much of its power
 * there (docs/photos.md, CC15). Non-local means averages each pixel of the NOISY image with
 * the pixels around it whose neighbourhoods look alike; similar neighbourhoods tens of
 * pixels apart carry nearly independent noise, so the average removes what a local filter
 * keeps. Judging "alike" on the noisy image itself is what limits classical NLM; here the
 * similarity is measured on a GUIDE, the network's answer, which is nearly clean (the second
 * stage of BM3D uses its first estimate the same way).
 *
 * For each pixel p: m(p) = sum_q w(p,q) noisy(q) / sum_q w(p,q), q = p + d over the offsets
 * d in [-search, search]^2 on a grid of `step`, with
 *   w(p,q) = k(D(p,q) / h^2),  k(t) = max(0, 1 - t/8)^8 (exp(-t) for small t, 0 from t = 8),
 *   D(p,q) = mean over the (2 patch + 1)^2 window and the channels of (guide(p+o) - guide(q+o))^2,
 *   h = strength * s, s = the root mean square of (noisy - guide) over the image,
 * so the filter is as strong as the noise the network took out; the answer is
 * blend * m + (1 - blend) * guide. Pixels beyond the border repeat the border. Planes are
 * (c, h, w), as floats or as 8-bit values (v / 255); an 8-bit answer is quantized as
 * io/image.h dae_planes_quantize does. The work is (offsets x pixels); the memory is a band
 * of rows, whatever the image height.
 *
 * When it helps: when the noise the network removed is spatially correlated. A white-noise
 * estimate (io/photo.h dae_noise_estimate, which sees only the finest scale) reads such
 * noise low, so the ratio of s to it measures the correlation: 2.3-5.3 on the 15 real
 * camera crops of CC15 (where the stage gains ~1.2 dB), 0.8-1.1 on Gaussian noise, even
 * JPEG-compressed (where averaging the noisy pixels loses 2.5 dB to the network's answer).
 * dae_nlm_auto_blend turns the ratio into the blend.
 */
#ifndef DAED_NLM_H
#define DAED_NLM_H

#include "daed/core/error.h"

/* The parameters daed uses (docs/photos.md has the sweep on CC15). */
#define DAE_NLM_SEARCH 16
#define DAE_NLM_STEP 2
#define DAE_NLM_PATCH 1
#define DAE_NLM_STRENGTH 1.7f
/* dae_nlm_auto_blend: 0 up to a ratio of RATIO_OFF, rising linearly to BLEND_MAX at
 * RATIO_FULL and above. */
#define DAE_NLM_RATIO_OFF 1.5
#define DAE_NLM_RATIO_FULL 2.5
#define DAE_NLM_BLEND_MAX 0.8

typedef struct dae_nlm_params {
    int search;     /* offset radius, 1..64 */
    int step;       /* offset grid step, 1..search (1: every offset) */
    int patch;      /* window radius, 0..8 */
    float strength; /* h in units of the residual's RMS, > 0 */
    float blend;    /* share of the non-local mean in the answer, 0..1 */
} dae_nlm_params;

/* One set of planes: f (floats) or u8 (8-bit values, read as v / 255). */
typedef struct dae_nlm_in {
    const float *f;
    const unsigned char *u8;
} dae_nlm_in;
typedef struct dae_nlm_out {
    float *f;
    unsigned char *u8;
} dae_nlm_out;

/* s above: sqrt(mean((noisy - guide)^2)) over n values, on the 0..1 scale. */
double dae_nlm_residual_rms(dae_nlm_in noisy, dae_nlm_in guide, long n);

/* The blend for a residual RMS and a white-noise estimate of the noisy image (both on one
 * scale): see above. 0 when either is not positive. */
float dae_nlm_auto_blend(double residual_rms, double white_sigma);

/* out = the blended guided non-local mean of noisy (c, h, w) with weights from guide;
 * out must not overlap either. DAE_EINVAL for bad parameters, shapes or missing planes,
 * DAE_ENOMEM when the band buffers cannot be allocated. */
int dae_nlm_guided(dae_nlm_in noisy, dae_nlm_in guide, dae_nlm_out out, int c, int h, int w,
                   const dae_nlm_params *p, dae_error *err);

#endif
