/* route.h — which denoiser answers an image sent to /v1/denoise without ?model=.
 *
 * The choice depends on the decoded image's size and channel count (and the ?sigma= and
 * ?resize= hints, or without ?sigma= its estimated noise level) only, never on how it was
 * sent (PNG, JPEG, JSON pixels or base64): the same picture picks the same model (JSON
 * floats that are not 8-bit levels estimate a hair differently). The rule, in order (README "Which model answers"):
 *
 *  1. the task's default model keeps an image of exactly its input size (and channels);
 *  2. with a ?sigma= hint (without one, the level estimated in the decoded first image,
 *     photo.h dae_noise_estimate, is the hint: v1.c), the denoiser running in tiles (any
 *     size) for the image's channel count whose trained range (or "sigma_range", photo.h)
 *     holds the hint most narrowly: a specialist trained for sigma 10-20 answers ?sigma=15 before a generalist
 *     trained for 0-75; of equal widths the default, else the first by name. An estimated
 *     hint chooses only among models that take the level (a noise-level map, not blind
 *     without ?sigma=): a blind model has no use for it, and the estimate reads JPEG and
 *     real camera noise as Gaussian noise it is not (a noisy JPEG at sigma 25 reads as
 *     13-19, a real camera photo as ~1), which a model trained on that mix takes better;
 *     but one colour photo whose noise reads as spatially correlated (the estimate one
 *     scale coarser at least DAE_NOISE_CORR_RATIO times the finest one: real camera noise)
 *     is routed with DAE_NOISE_CORR_GAIN x that coarser estimate as if it were ?sigma=,
 *     among the noise-map models (those blind without ?sigma= too), which are given it;
 *  3. without a hint (daed always gives one: ?sigma=, the estimate, or before the body
 *     is decoded an estimated 0, v1.c), the default keeps an image of its channel count
 *     when it runs in tiles (any size);
 *  4. else the first denoiser by name that runs in tiles for the image's channel count,
 *     photo models (a trained noise range) before the others; when no range holds a
 *     hint, the default if it runs in tiles for the channel count, else the first;
 *  5. else a denoiser for the channel count that takes the size as it is (or any size with
 *     ?resize=1), the default first;
 *  6. else a gray image goes to the default (converted to its channels; a size it does
 *     not take is refused unless ?resize=1);
 *  7. else (a colour image and no colour model takes it) refused: a colour image never
 *     comes back gray unless ?model= names a gray model.
 *
 * Pure: reads the entries, references nothing, thread-safe.
 */
#ifndef DAED_SERVE_ROUTE_H
#define DAED_SERVE_ROUTE_H

#include "daed/core/error.h"
#include "registry.h"

typedef struct dae_denoise_want {
    int w, h;          /* the image's size; 0 x 0: a size no model has as its input size */
    int c;             /* its channels: 1 gray, 3 colour */
    int has_sigma;
    double sigma;      /* ?sigma= hint, 0-255 scale */
    int estimated;     /* the hint is the image's estimated level, not ?sigma= */
    int correlated;    /* the hint is a level estimated for correlated noise (io/photo.h
                          DAE_NOISE_CORR_*), for the noise-map models only */
    int resize;        /* ?resize=1 */
} dae_denoise_want;

/* The entry that answers `want`, from list[0..n) (sorted by name) and the denoise
 * default def (may be NULL: none loaded). Returns one of them (not referenced: the caller
 * holds them), or NULL with err set: DAE_ESHAPE and a message saying what is missing. */
const dae_entry *dae_denoise_route(dae_entry *const *list, int n, const dae_entry *def,
                                   const dae_denoise_want *want, dae_error *err);

/* Does the ?sigma= hint (if any) fall in e's trained noise range? Models without a range
 * (not photo models) never match a hint. */
int dae_denoise_sigma_fits(const dae_denoise_want *want, const dae_entry *e);

#endif
