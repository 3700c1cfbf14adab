#!/bin/sh
# export-photo-eval.sh — the PHOTOS.md held-out test set as PNG files, with the exact noisy
# inputs of the reference (reference/photos/common.py: test_set, add_noise), so daed's PSNR
# is measured on identical noise. Needs Debian's /usr/bin/python3 with python3-skimage.
#
#   data/photos/test/gray/<name>.png, <name>_s15.png, <name>_s25.png, <name>_s50.png
#   data/photos/test/color/<name>.png, ... (RGB)
#   data/photos/test/MANIFEST.sha256
# Idempotent. PHOTO_EVAL_DIR overrides the destination, PY the interpreter, REFERENCE the
# directory of common.py.
set -e

here=$(cd "$(dirname "$0")/.." && pwd)
out=${PHOTO_EVAL_DIR:-$here/data/photos/test}
py=${PY:-/usr/bin/python3}
ref=${REFERENCE:-/work/shared/reference/photos}

if [ ! -s "$out/MANIFEST.sha256" ]; then
    mkdir -p "$out/gray" "$out/color"
    PYTHONPATH="$ref" OUT="$out" "$py" - <<'PY'
import os, numpy as np
from skimage.io import imsave
from common import test_set, add_noise, SIGMAS
out = os.environ["OUT"]
gray, color = test_set()
for kind, items in (("gray", gray), ("color", color)):
    for name, clean in items:
        imsave(f"{out}/{kind}/{name}.png", clean, check_contrast=False)
        for s in SIGMAS:
            imsave(f"{out}/{kind}/{name}_s{s}.png", add_noise(clean, s, name), check_contrast=False)
PY
    (cd "$out" && sha256sum gray/*.png color/*.png > MANIFEST.sha256.tmp && mv MANIFEST.sha256.tmp MANIFEST.sha256)
fi
(cd "$out" && sha256sum -c --quiet MANIFEST.sha256) || { echo "export-photo-eval: $out changed since export" >&2; exit 1; }
echo "export-photo-eval: $(ls "$out/gray" | wc -l) gray and $(ls "$out/color" | wc -l) colour files in $out"
