/* corrupt.h — the trainer's input corruptions, drawn afresh per sample from a seeded dae_rng.
 *
 * A corruption set is a weighted list; every sample draws one member (probability
 * weight / sum of weights), then that member's parameter (uniform in [lo,hi]; lo == hi is a
 * fixed value and draws nothing), then applies it. Images are planar float32 (c,h,w) in
 * [0,1]. Results are deterministic for a given rng state, set and image size.
 *
 * kind          parameter (lo..hi)        effect
 * none          -                          copy
 * gaussian      sigma                      x + sigma*N(0,1) per value, clipped to [0,1]
 *                                          ("clip": false: not clipped, zero-mean noise,
 *                                          as Noise2Noise targets need)
 * mask          p (drop probability)       each pixel (all channels) set to 0 with prob. p
 * salt_pepper   p                          each pixel hit with prob. p: half 0, half 1
 * block         k (integers lo..hi)        one k x k block set to 0, top uniform in [0,h-k],
 *                                          left uniform in [0,w-k] (PROTOCOL §3.2)
 * blur          sigma (0 = copy)           Gaussian blur, separable, OpenCV's float kernel
 *                                          (ksize = round(8 sigma + 1) | 1), reflect-101
 * down2         -                          2x2 average pooling: output (c, h/2, w/2), floor
 *
 * The known-pixel mask (h*w, 1 = known, 0 = missing) marks the pixels whose value was
 * replaced independently of the clean image: the block (inpainting), dropped pixels (mask)
 * and salt-and-pepper hits; every other kind gives all ones. For down2 it is all ones at
 * the input resolution (h*w).
 *
 * JSON recipe form (dae_corruption_set_parse, dae_corruption_set_json): an array of
 * objects (a single object is accepted as a set of one), e.g.
 *   [{"type":"gaussian","sigma":[0,0.5]},{"type":"mask","p":0.5,"weight":2},
 *    {"type":"block","k":[8,14]},{"type":"blur","sigma":[0.5,1.5]},{"type":"down2"}]
 * A parameter is a number (fixed) or [lo,hi]; "weight" defaults to 1. Parameter names:
 * sigma (gaussian, blur), p (mask, salt_pepper), k (block); gaussian also takes "clip"
 * (default true). Unknown keys are rejected.
 */
#ifndef DAED_CORRUPT_H
#define DAED_CORRUPT_H

#include <stddef.h>

#include "daed/core/error.h"
#include "daed/core/rng.h"

struct cJSON;

typedef enum {
    DAE_CORRUPT_NONE = 0,
    DAE_CORRUPT_GAUSSIAN,
    DAE_CORRUPT_MASK,
    DAE_CORRUPT_SALT_PEPPER,
    DAE_CORRUPT_BLOCK,
    DAE_CORRUPT_BLUR,
    DAE_CORRUPT_DOWN2
} dae_corrupt_kind;

#define DAE_CORRUPT_MAX 8         /* members of a set */
#define DAE_CORRUPT_MAX_DIM 4096  /* h, w */
#define DAE_CORRUPT_MAX_SIGMA 5.0 /* gaussian noise sigma */
#define DAE_CORRUPT_MAX_BLUR 20.0 /* blur sigma */

typedef struct dae_corruption {
    dae_corrupt_kind kind;
    float lo, hi;  /* parameter range; lo == hi: fixed */
    float weight;  /* > 0 */
    int noclip;    /* gaussian: 1 = values not clipped to [0,1] */
} dae_corruption;

typedef struct dae_corruption_set {
    dae_corruption c[DAE_CORRUPT_MAX];
    int n; /* 0 = identity */
} dae_corruption_set;

/* Stable lowercase name ("gaussian", ...) and its inverse (-1 if unknown). */
const char *dae_corrupt_kind_name(dae_corrupt_kind kind);
int dae_corrupt_kind_from_name(const char *name);

/* Append one member; checks the parameter range for the kind (DAE_EINVAL with a message). */
int dae_corruption_set_add(dae_corruption_set *set, dae_corrupt_kind kind, float lo, float hi,
                           float weight, dae_error *err);

/* The PROTOCOL §3.2 tasks as training corruptions: "denoise-g20", "denoise-g50",
 * "denoise-mask50", "inpaint-10", "inpaint-14", "sr2". */
int dae_corruption_set_task(const char *task, dae_corruption_set *set, dae_error *err);

/* Parse a recipe: JSON text of length len / an already-parsed cJSON array or object. The
 * set is overwritten; on failure it is left empty. */
int dae_corruption_set_parse(const char *json, size_t len, dae_corruption_set *set,
                             dae_error *err);
int dae_corruption_set_from_cjson(const struct cJSON *item, dae_corruption_set *set,
                                  dae_error *err);
/* The set as compact JSON in the recipe form (for model metadata). malloc'd; caller frees
 * with free(). NULL only when out of memory. */
char *dae_corruption_set_json(const dae_corruption_set *set);

/* Validate the set for (c,h,w) inputs and give the corrupted shape: (c,h,w), or
 * (c,h/2,w/2) when the set is down2 only. Rejects mixing down2 with same-size kinds, block
 * sizes larger than the image, dims above DAE_CORRUPT_MAX_DIM. Call once before sampling. */
int dae_corruption_out_shape(const dae_corruption_set *set, int c, int h, int w, int *oc,
                             int *oh, int *ow, dae_error *err);

/* Corrupt one sample: clean (c,h,w) -> out (the out_shape), mask (h*w, or NULL if not
 * wanted). The set must have passed dae_corruption_out_shape for these dims. clean and
 * out must not overlap. Returns the index of the member drawn (0 for an empty set). */
int dae_corrupt_sample(const dae_corruption_set *set, dae_rng *r, const float *clean, int c,
                       int h, int w, float *out, float *mask);

/* Noise2Noise pair: two independent corruptions of the same clean sample, `input` by
 * `set` and `target` by `target_set` (NULL or empty: `set` again), each its set's
 * out_shape (down2 sets are allowed but rarely meaningful). */
void dae_corrupt_noise2noise(const dae_corruption_set *set,
                             const dae_corruption_set *target_set, dae_rng *r,
                             const float *clean, int c, int h, int w, float *input,
                             float *target);

/* Single operations, used by dae_corrupt_sample and usable directly (out may equal x for
 * gaussian, mask, salt_pepper and block; not for blur and down2). */
void dae_corrupt_gaussian(dae_rng *r, const float *x, size_t n, float sigma, float *out);
/* The same draws without the clipping: out = x + sigma*N(0,1), any value. */
void dae_corrupt_gaussian_noclip(dae_rng *r, const float *x, size_t n, float sigma, float *out);
void dae_corrupt_mask(dae_rng *r, const float *x, int c, int hw, float p, float *out,
                      float *mask);
void dae_corrupt_salt_pepper(dae_rng *r, const float *x, int c, int hw, float p, float *out,
                             float *mask);
void dae_corrupt_block(const float *x, int c, int h, int w, int top, int left, int k,
                       float *out, float *mask);
/* h, w <= DAE_CORRUPT_MAX_DIM, sigma <= DAE_CORRUPT_MAX_BLUR. */
void dae_corrupt_blur(const float *x, int c, int h, int w, float sigma, float *out);
void dae_corrupt_down2(const float *x, int c, int h, int w, float *out);

#endif
