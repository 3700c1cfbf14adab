/* halfres.h — a plane at half resolution and back: the chroma path of colour denoising.
 *
 * In the opponent colour space (io/photo.h) the two chroma planes of a photo carry little
 * detail: halving them (2x2 means) and doubling them again (bicubic) costs Kodak24 an error
 * of 1.4 and 0.4 (mean square, 0-255 scale) in the two planes, while it halves the noise a
 * denoiser sees there and quarters its work. A per-channel photo model with "chroma_half"
 * (photo.h) denoises the luma at full resolution and the chroma at half (docs/photos.md).
 *
 * Sizes: a plane of w x h has a half of dae_half_side(w) x dae_half_side(h) = ceil(w/2) x
 * ceil(h/2); an odd last row or column is averaged with itself (the border repeated).
 */
#ifndef DAED_HALFRES_H
#define DAED_HALFRES_H

/* ceil(n / 2): the side of the half-resolution plane. */
int dae_half_side(int n);

/* dst (dae_half_side(w) x dae_half_side(h)) = the mean of each 2x2 block of src (w x h),
 * as cv2.INTER_AREA for an exact halving. */
void dae_plane_half(const float *src, int w, int h, float *dst);

/* Row y of that half: dst (dae_half_side(w) values) from src, or from 8-bit src8 (then on
 * the 0..1 scale: the four bytes' sum / 255, a quarter of it), whichever is not NULL. For
 * whoever needs a few rows of the half, not all of it (io/photo.h's coarse estimate). */
void dae_plane_half_row(const float *src, const unsigned char *src8, int w, int h, int y,
                        float *dst);

/* dst (w x h) = src (dae_half_side(w) x dae_half_side(h)) doubled by bicubic interpolation
 * as cv2.INTER_CUBIC (pixel centres aligned: x_src = (x + 0.5) / 2 - 0.5; Keys' kernel with
 * a = -0.75; the border repeated). src and dst must not overlap. */
void dae_plane_double(const float *src, int w, int h, float *dst);

#endif
