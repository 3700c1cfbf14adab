#!/bin/sh
# make-docs.sh — the README's before/after picture, made by daed's own tools from the shipped
# models: docs/img/before-after.png (three panels, one per task, each a grid of three rows
# by N test images):
#   denoise   noisy input (PROTOCOL denoise-g50; DENOISE=denoise-g20 for light noise) /
#             fmnist-denoise's output / clean
#   inpaint   input with its hole painted orange (inpaint-14) / fmnist-inpaint's output / clean
#   superres  14x14 input shown at 2x (sr2) / fmnist-sr2's 28x28 output / clean
# Inputs are the first N images of the PROTOCOL §3.6 Fashion-MNIST evaluation sets in
# data/eval (make eval-data): never used for training or model selection. The models run
# through `dae-model run` on 8-bit PNGs, as a client would POST them.
# Usage: scripts/make-docs.sh  (BUILD=build, N=6, MODELS=models, EVAL=data/eval,
#        DENOISE=denoise-g50)
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${N:-6}
MODELS=${MODELS:-models}
EVAL=${EVAL:-data/eval}
DENOISE=${DENOISE:-denoise-g50}
OUT=docs/img/before-after.png
DM=$BUILD/dae-model
F32=$BUILD/eval/f32png
T=$BUILD/docs/strip
for f in "$DM" "$F32"; do
    [ -x "$f" ] || { echo "make-docs: $f is not built (make docs builds it)" >&2; exit 1; }
done
for f in fmnist_clean fmnist_${DENOISE}_input fmnist_inpaint-14_input fmnist_inpaint-14_mask \
         fmnist_sr2_input; do
    [ -s "$EVAL/$f.f32" ] || { echo "make-docs: $EVAL/$f.f32 missing: run make eval-data" >&2
                               exit 1; }
done
rm -rf "$T"
mkdir -p "$T" docs/img

i=0
while [ "$i" -lt "$N" ]; do
    "$F32" "$EVAL/fmnist_clean.f32" 28 28 "$i" "$T/clean-$i.png"
    # denoise: the noisy input as PNG, and the model's answer to it
    "$F32" "$EVAL/fmnist_${DENOISE}_input.f32" 28 28 "$i" "$T/noisy-$i.png"
    "$DM" run "$MODELS/fmnist-denoise.safetensors" "$T/noisy-$i.png" "$T/denoised-$i.png"
    # inpaint: the mask travels as the PNG's alpha channel; the picture shows the hole
    "$F32" "$EVAL/fmnist_inpaint-14_input.f32" 28 28 "$i" "$T/masked-in-$i.png" \
        --mask "$EVAL/fmnist_inpaint-14_mask.f32"
    "$F32" "$EVAL/fmnist_inpaint-14_input.f32" 28 28 "$i" "$T/masked-$i.png" \
        --holes "$EVAL/fmnist_inpaint-14_mask.f32"
    "$DM" run "$MODELS/fmnist-inpaint.safetensors" "$T/masked-in-$i.png" "$T/inpainted-$i.png"
    # superres: the 14x14 input goes to the model as is; the picture shows it at 2x
    "$F32" "$EVAL/fmnist_sr2_input.f32" 14 14 "$i" "$T/lowres-in-$i.png"
    "$F32" "$EVAL/fmnist_sr2_input.f32" 14 14 "$i" "$T/lowres-$i.png" --scale 2
    "$DM" run "$MODELS/fmnist-sr2.safetensors" "$T/lowres-in-$i.png" "$T/superres-$i.png"
    i=$((i + 1))
done

# One panel per task: row 1 the input, row 2 daed's answer, row 3 the clean image.
panel() { # OUT ROW1 ROW2 ROW3
    out=$1; shift
    files=""
    for row in "$@"; do
        i=0
        while [ "$i" -lt "$N" ]; do files="$files $T/$row-$i.png"; i=$((i + 1)); done
    done
    # shellcheck disable=SC2086  # file names are ours, without spaces
    "$DM" grid "$out" $files --cols "$N" --scale 2 --pad 2 >/dev/null
}
panel "$T/panel-denoise.png" noisy denoised clean
panel "$T/panel-inpaint.png" masked inpainted clean
panel "$T/panel-superres.png" lowres superres clean
"$DM" grid "$OUT" "$T/panel-denoise.png" "$T/panel-inpaint.png" "$T/panel-superres.png" \
    --cols 3 --pad 12 >/dev/null
echo "make-docs: wrote $OUT ($(wc -c <"$OUT") bytes)"
