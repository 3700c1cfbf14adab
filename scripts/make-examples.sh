#!/usr/bin/env bash
# make-examples.sh — (maintainers) regenerate examples/, the input images the README's
# commands use, so that a fresh clone has them. Users never need to run this: the files are
# committed. Needs the PROTOCOL evaluation sets (make eval-data; EVAL=dir) and Debian's
# python3-skimage (for the photo).
#   examples/shoe.png, pullover.png  Fashion-MNIST evaluation images 0 and 1, clean
#   examples/noisy.png               image 0 with Gaussian noise sigma 0.2 (denoise-g20)
#   examples/holes.png               image 0 with a 14x14 hole in its alpha channel (inpaint-14)
#   examples/small.png               image 0 at 14x14 (sr2)
#   examples/digit.png               MNIST evaluation image 0 (an anomaly for fmnist-ae)
#   examples/tile.png                image 2 scaled to 448x448
#   examples/rgb.png                 a 28x28 colour gradient (tests/fixtures/grad_rgb.png)
#   examples/noisy-photo.png         skimage's chelsea, 160x160 crop, noise sigma 25 (0-255)
#   examples/photo.png               the same crop, clean
#   examples/my-images/img0..99.png  the first 100 Fashion-MNIST training images (make data),
#                                    the README's "train your own model" folder
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
EVAL=${EVAL:-data/eval}
F32=$BUILD/eval/f32png
[ -x "$F32" ] || make --no-print-directory "$F32"
mkdir -p examples
"$F32" "$EVAL/fmnist_clean.f32" 28 28 0 examples/shoe.png
"$F32" "$EVAL/fmnist_clean.f32" 28 28 1 examples/pullover.png
"$F32" "$EVAL/fmnist_denoise-g20_input.f32" 28 28 0 examples/noisy.png
"$F32" "$EVAL/fmnist_inpaint-14_input.f32" 28 28 0 examples/holes.png \
    --mask "$EVAL/fmnist_inpaint-14_mask.f32"
"$F32" "$EVAL/fmnist_sr2_input.f32" 14 14 0 examples/small.png
"$F32" "$EVAL/mnist_clean.f32" 28 28 0 examples/digit.png
"$F32" "$EVAL/fmnist_clean.f32" 28 28 2 examples/tile.png --scale 16
cp tests/fixtures/grad_rgb.png examples/rgb.png
/usr/bin/python3 - <<'PY'
import numpy as np
from skimage import data
from skimage.io import imsave
clean = data.chelsea()[60:220, 150:310]          # 160x160 RGB, the cat's face
rng = np.random.default_rng(25)
noisy = np.clip(clean + rng.normal(0, 25, clean.shape), 0, 255).round().astype(np.uint8)
imsave("examples/photo.png", clean, check_contrast=False)
imsave("examples/noisy-photo.png", noisy, check_contrast=False)
PY
rm -rf examples/my-images && mkdir -p examples/my-images
/usr/bin/python3 - <<'PY'
import gzip
import numpy as np
from skimage.io import imsave
raw = gzip.open("data/fashion-mnist/train-images-idx3-ubyte.gz").read()
imgs = np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 28, 28)
for i in range(100):
    imsave(f"examples/my-images/img{i}.png", imgs[i], check_contrast=False)
PY
ls -l examples; du -sh examples examples/my-images
