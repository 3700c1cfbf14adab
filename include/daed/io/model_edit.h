/* model_edit.h — model surgery: new model files made from an existing one.
 *
 * Both functions write a model file derived from mf (loaded with dae_modelfile_load) as the
 * colour model `name` in colour space `space` ("opponent" or "rgb", photo.h): its config
 * gets "name", "color_space" and "derived_from" (mf's name) and loses any earlier ones.
 * `what` names mf in error messages (its path). They return DAE_OK, or an error code with
 * err set; nothing is written then.
 */
#ifndef DAED_MODEL_EDIT_H
#define DAED_MODEL_EDIT_H

#include "daed/core/error.h"
#include "daed/io/modelfile.h"

/* Options of a per-channel model (photo.h): chroma_half (opponent space only), and a
 * sigma_range [lo, hi] for routing when hi >= 0. */
typedef struct dae_per_channel_opts {
    int chroma_half;
    double sigma_lo, sigma_hi;
} dae_per_channel_opts;

/* per-channel: a 1-channel denoiser as a colour model that denoises each channel of the
 * colour space on its own: the same weights, with "per_channel": true in the config (and
 * o's facts; o NULL: none), stored as F16 when mf's are (mf->params_f16), else F32. */
int dae_model_save_per_channel(const dae_modelfile *mf, const char *what, const char *name,
                               const char *space, const dae_per_channel_opts *o,
                               const char *path, dae_error *err);

/* widen: a 1-channel residual conv denoiser (first and last layers conv2d) as the first
 * weights of a 3-channel one. The first convolution reads channel 0 with the gray weights,
 * the last writes channel 0 with them; the weights of channels 1 and 2 are 0 when
 * init_scale is 0 (the widened model is then exactly the gray one on channel 0 and the
 * identity on the others), else drawn from U(+-init_scale / sqrt(fan_in)) with a fixed
 * seed. The middle layers are copied. The config's architecture is the widened model's;
 * its calibration (measured on the gray model) is dropped. init_scale is in [0, 1]. Its
 * parameters are stored as F32 (a start for training). */
int dae_model_save_widened(const dae_modelfile *mf, const char *what, const char *name,
                           const char *space, double init_scale, const char *path,
                           dae_error *err);

/* f16: the same model (config and every metadata entry kept) with its parameters stored
 * as F16 (dae_modelfile_save_f16): half the file. Calibrated score tensors are refused
 * (DAE_EINVAL: knn banks stay F32; keep such a model as it is). */
int dae_model_save_f16(const dae_modelfile *mf, const char *path, dae_error *err);

/* sigma-range: the same model with "sigma_range": [lo, hi] in its config (replacing any):
 * the ?sigma= range (0-255, of the colour image for a colour model) daed routes to it
 * instead of its trained one (photo.h, serve/route.h). Parameters stored as they were (F16
 * or F32), every other metadata entry kept. DAE_EINVAL unless 0 <= lo <= hi <= 255 and mf
 * is a denoiser without score tensors. */
int dae_model_save_sigma_range(const dae_modelfile *mf, const char *what, double lo,
                               double hi, const char *path, dae_error *err);

#endif
