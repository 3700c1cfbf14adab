#!/bin/sh
# export-photo-eval.sh — the PHOTOS.md held-out test set as PNG files, with the exact noisy
# inputs of the reference (same photos, crops and seeded noise), so daed's PSNR is measured on
# identical noise. Made by the project's scripts/export_photo_eval.py with Debian's
# python3-skimage (installed when missing); byte-identical to the reference's export.
#
#   data/photos/test/gray/<name>.png, <name>_s15.png, <name>_s25.png, <name>_s50.png
#   data/photos/test/color/<name>.png, ... (RGB)
#   data/photos/test/MANIFEST.sha256
# Idempotent. PHOTO_EVAL_DIR overrides the destination, PY the interpreter.
set -e

here=$(cd "$(dirname "$0")/.." && pwd)
out=${PHOTO_EVAL_DIR:-$here/data/photos/test}
py=${PY:-/usr/bin/python3}

if [ ! -s "$out/MANIFEST.sha256" ]; then
    if ! "$py" -c 'import skimage' 2>/dev/null; then
        echo "export-photo-eval: installing python3-skimage" >&2
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-skimage
    fi
    mkdir -p "$out"
    "$py" "$here/scripts/export_photo_eval.py" "$out"
    (cd "$out" && sha256sum gray/*.png color/*.png > MANIFEST.sha256.tmp && mv MANIFEST.sha256.tmp MANIFEST.sha256)
fi
(cd "$out" && sha256sum -c --quiet MANIFEST.sha256) || { echo "export-photo-eval: $out changed since export" >&2; exit 1; }
echo "export-photo-eval: $(ls "$out/gray" | wc -l) gray and $(ls "$out/color" | wc -l) colour files in $out"
