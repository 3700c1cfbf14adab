/* weights_image.h — the weights of a linear layer that touches the image, drawn as tiles of
 * the image's shape (dae-model weights).
 */
#ifndef DAED_WEIGHTS_IMAGE_H
#define DAED_WEIGHTS_IMAGE_H

#include "daed/core/error.h"
#include "daed/io/image.h"
#include "daed/core/model.h"

#define DAE_WEIGHTS_MAX_SIDE 16384 /* pixels per side of the picture */

/* decoder 0: the first encoder linear layer whose inputs are the whole input image, one
 * tile per unit (row: its receptive field); decoder 1: the last decoder linear layer whose
 * outputs are the whole output image, one tile per column (what a code unit draws). Each
 * tile is scaled on its own: 0.5 = 0, 1 and 0 = +-its largest |weight|; tiles `scale`
 * times magnified, `cols` per row, 1 pixel apart on white. count > 0 draws only the first
 * count units. *out (freed by the caller) and *units (tiles drawn) are set on success;
 * `what` names the model in error messages. */
int dae_weights_image(const dae_model *m, const char *what, int decoder, int cols, int scale,
                      int count, dae_image *out, int *units, dae_error *err);

#endif
