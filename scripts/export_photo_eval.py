#!/usr/bin/env python3
"""export_photo_eval.py — the held-out photo test set of ../shared/PHOTOS.md as PNG files,
made by the project itself with Debian's python3-skimage (its sample photos are the set).

  export_photo_eval.py OUT_DIR

The protocol: skimage.data photos, centre-cropped to at most 512x512. Colour: astronaut,
coffee, chelsea, rocket, motorcycle (stereo_motorcycle()[0]); gray: camera, moon, coins,
and NAME_g = the colour ones in skimage luma (rgb2gray * 255, rounded). Noise for image KEY
at sigma S (15, 25, 50 on 0-255): numpy default_rng(7 * 1000003 + 1000 * sum of KEY's
character codes + S).standard_normal(shape) * S added in float64, rounded, clipped to
uint8. Writes gray/NAME.png, gray/NAME_sS.png, color/... (scripts/export-photo-eval.sh
records their SHA-256 in MANIFEST.sha256).
"""
import os
import sys

import numpy as np
import skimage.data as skd
from skimage.color import rgb2gray
from skimage.io import imsave

SIGMAS = (15, 25, 50)


def crop512(x):
    h, w = x.shape[:2]
    ch, cw = min(h, 512), min(w, 512)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(x[y0:y0 + ch, x0:x0 + cw])


def luma(rgb):
    return np.clip(np.round(rgb2gray(rgb) * 255.0), 0, 255).astype(np.uint8)


def noisy(clean, sigma, key):
    rng = np.random.default_rng(7 * 1_000_003 + sum(ord(c) for c in key) * 1000 + sigma)
    n = rng.standard_normal(clean.shape) * sigma
    return np.clip(np.round(clean.astype(np.float64) + n), 0, 255).astype(np.uint8)


def main():
    out = sys.argv[1]
    color = [("astronaut", skd.astronaut()), ("coffee", skd.coffee()), ("chelsea", skd.chelsea()),
             ("rocket", skd.rocket()), ("motorcycle", skd.stereo_motorcycle()[0])]
    color = [(n, crop512(x)) for n, x in color]
    gray = [("camera", crop512(skd.camera())), ("moon", crop512(skd.moon())),
            ("coins", crop512(skd.coins()))] + [(n + "_g", luma(x)) for n, x in color]
    for kind, items in (("gray", gray), ("color", color)):
        os.makedirs(os.path.join(out, kind), exist_ok=True)
        for name, clean in items:
            imsave(os.path.join(out, kind, f"{name}.png"), clean, check_contrast=False)
            for s in SIGMAS:
                imsave(os.path.join(out, kind, f"{name}_s{s}.png"), noisy(clean, s, name),
                       check_contrast=False)


if __name__ == "__main__":
    main()
