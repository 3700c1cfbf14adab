/* route.c — which denoiser answers an image sent without ?model= (the rule is in
 * route.h). */
#include "route.h"

#include "daed/core/tile.h"

static int is_denoiser(const dae_entry *e)
{
    return (e->mf->tasks & DAE_TASK_DENOISE) != 0;
}

/* Runs in tiles (tiles.c): takes any size. */
static int any_size(const dae_entry *e)
{
    return dae_model_tile_radius(e->mf->model) >= 0;
}

int dae_denoise_sigma_fits(const dae_denoise_want *want, const dae_entry *e)
{
    return !want->has_sigma ||
           (e->photo.sigma_hi >= 0 && want->sigma >= e->photo.sigma_lo &&
            want->sigma <= e->photo.sigma_hi);
}

/* Rule 1: e has the image's channels and exactly its size as its input size. */
static int takes_exact(const dae_entry *e, const dae_denoise_want *want)
{
    const dae_model *m = e->mf->model;
    return e->photo.channels == want->c && m->in_shape.h == want->h &&
           m->in_shape.w == want->w;
}

/* e takes a noise level: a noise-map model that does not stay blind without ?sigma= */
static int takes_level(const dae_entry *e)
{
    return e->mf->model->noise_map && !e->photo.blind_default;
}

/* Rule 2: with a ?sigma= hint, the denoiser running in tiles for the channel count whose
 * trained range (or "sigma_range", photo.h) holds the hint most narrowly (a specialist
 * before a generalist); of equal widths the default, else the first by name; an estimated
 * hint, among the models that take it; a correlated level, among the noise-map models.
 * NULL: no range holds it (or no hint). */
static const dae_entry *narrowest_fit(dae_entry *const *list, int n, const dae_entry *def,
                                      const dae_denoise_want *want)
{
    const dae_entry *best = NULL;
    double best_w = 0.0;
    for (int i = 0; want->has_sigma && i < n; i++) {
        const dae_entry *e = list[i];
        if (!is_denoiser(e) || e->photo.channels != want->c || !any_size(e) ||
            !dae_denoise_sigma_fits(want, e) || (want->estimated && !takes_level(e)) ||
            (want->correlated && !e->mf->model->noise_map))
            continue;
        double w = e->photo.sigma_hi - e->photo.sigma_lo;
        if (!best || w < best_w || (w == best_w && e == def && best != def))
            best = e, best_w = w;
    }
    return best;
}

/* Rule 3: e takes the image as it is: its channel count, any size (no hint here: rule 2
 * took every hint a range holds). */
static int takes_as_is(const dae_entry *e, const dae_denoise_want *want)
{
    return e->photo.channels == want->c && any_size(e) && !want->has_sigma;
}

/* Rule 4: the denoiser running in tiles for the channel count (NULL: none). */
static const dae_entry *tiled_for(dae_entry *const *list, int n, const dae_entry *def,
                                  const dae_denoise_want *want)
{
    const dae_entry *first = NULL;
    /* photo models (a trained noise range, photo.h) first: a fully convolutional model
     * trained on 28x28 digits runs on any size too, but should not take a photo */
    for (int photo = 1; photo >= 0; photo--) {
        for (int i = 0; i < n; i++) {
            const dae_entry *e = list[i];
            if (!is_denoiser(e) || e->photo.channels != want->c || !any_size(e) ||
                (e->photo.sigma_hi >= 0) != photo)
                continue;
            if (!first)
                first = e;
            if (dae_denoise_sigma_fits(want, e))
                return e;
        }
    }
    /* no range holds the hint: the model stays blind */
    if (def && any_size(def) && def->photo.channels == want->c)
        return def;
    return first;
}

/* Rule 5: e has the image's channels (no per-channel use: that needs tiles) and takes
 * its size as it is, or any size with ?resize=1. */
static int takes_size(const dae_entry *e, const dae_denoise_want *want)
{
    const dae_model *m = e->mf->model;
    if (!is_denoiser(e) || m->in_shape.c != want->c || e->photo.per_channel)
        return 0;
    return want->resize ||
           dae_model_check_input(m, (dae_shape){want->c, want->h, want->w}, NULL) == DAE_OK;
}

/* Rule 6: a gray image and the default (converted to its channels). */
static const dae_entry *gray_to_default(const dae_entry *def, const dae_denoise_want *want,
                                        dae_error *err)
{
    if (!def) {
        dae_error_set(err, DAE_ESHAPE, "no loaded denoise model takes a gray image of %dx%d "
                      "(choose one with ?model=)", want->w, want->h);
        return NULL;
    }
    const dae_model *m = def->mf->model;
    if (want->resize || any_size(def) ||
        dae_model_check_input(m, (dae_shape){m->in_shape.c, want->h, want->w}, NULL) == DAE_OK)
        return def;
    dae_error_set(err, DAE_ESHAPE, "image %dx%d (1 channel) does not fit the default "
                  "denoise model %s (input %dx%d%s) and no fully convolutional denoise model "
                  "for 1 channel is loaded (choose one with ?model=, or add ?resize=1)",
                  want->w, want->h, def->name, m->in_shape.w, m->in_shape.h,
                  m->fully_conv ? ", or multiples of its size_div" : "");
    return NULL;
}

/* Rule 7: a colour image no colour model takes: refused, saying why. */
static void refuse_colour(dae_entry *const *list, int n, const dae_denoise_want *want,
                          dae_error *err)
{
    int colour_models = 0;
    for (int i = 0; i < n; i++)
        colour_models += is_denoiser(list[i]) && list[i]->photo.channels == want->c;
    dae_error_set(err, DAE_ESHAPE, "image %dx%d (%d channels): no fully convolutional "
                  "denoise model for %d channels is loaded and %s; without ?model= a colour "
                  "image is never answered gray (load a colour model such as "
                  "photo-denoise-rgb, or choose a model with ?model=%s)", want->w, want->h,
                  want->c, want->c, colour_models ? "no other colour denoise model takes "
                  "this size" : "no colour denoise model at all",
                  colour_models ? ", or add ?resize=1" : "");
}

const dae_entry *dae_denoise_route(dae_entry *const *list, int n, const dae_entry *def,
                                   const dae_denoise_want *want, dae_error *err)
{
    if (def && takes_exact(def, want))
        return def;
    const dae_entry *pick = narrowest_fit(list, n, def, want);
    if (pick)
        return pick;
    if (def && takes_as_is(def, want))
        return def;
    pick = tiled_for(list, n, def, want);
    if (pick)
        return pick;
    if (def && takes_size(def, want))
        return def;
    for (int i = 0; i < n; i++)
        if (takes_size(list[i], want))
            return list[i];
    if (want->c == 1)
        return gray_to_default(def, want, err);
    refuse_colour(list, n, want, err);
    return NULL;
}
