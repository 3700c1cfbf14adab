#!/usr/bin/env bash
# dae_model.sh — end-to-end test of dae-model: info, run (PNG, JSON, inpaint), grid, and
# the exit codes (0 ok, 1 invalid input/model, 2 usage). Run from the repository root with
# DAED_BUILD set to the build directory.
set -u
BIN="${DAED_BUILD:-build}/dae-model"
FIX=tests/fixtures
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect CODE CMD...: run CMD, check its exit code; stdout/stderr kept in $TMP/out, $TMP/err.
expect() {
    local want=$1; shift
    "$@" >"$TMP/out" 2>"$TMP/err"
    local got=$?
    if [ "$got" -ne "$want" ]; then
        fail "exit $got, expected $want: $*"
        sed 's/^/    /' "$TMP/err" >&2
    fi
}
has() { grep -q -- "$2" "$TMP/$1" || fail "$1 of the last command lacks \"$2\""; }
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] ||
    fail "$1 is not a PNG"; }
# PNG width and height from the IHDR chunk (big-endian at bytes 16 and 20).
png_size() { od -An -tu1 -j16 -N8 "$1" |
    awk '{printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8}'; }
# Value i (0-based) of the "pixels" array of a JSON file written by dae-model.
pixel() { sed 's/.*"pixels":\[//; s/\].*//' "$1" | tr ',' '\n' | sed -n "$(($2 + 1))p"; }
count_pixels() { sed 's/.*"pixels":\[//; s/\].*//' "$1" | tr ',' '\n' | grep -c .; }

[ -x "$BIN" ] || { echo "FAIL: $BIN not built" >&2; exit 1; }

# --- usage ---
expect 0 "$BIN" --help; has out "dae-model info FILE"
expect 2 "$BIN"
expect 2 "$BIN" frobnicate
expect 2 "$BIN" info
expect 2 "$BIN" run "$FIX/mlp.safetensors" "$FIX/blob_ga.png"
expect 2 "$BIN" run --bogus "$FIX/mlp.safetensors" "$FIX/blob_ga.png" "$TMP/o.png"
expect 2 "$BIN" grid "$TMP/g.png"
expect 2 "$BIN" grid "$TMP/g.png" "$FIX/blob_ga.png" --cols 0

# --- info ---
expect 0 "$BIN" info "$FIX/mlp.safetensors"
has out "fixture-mlp"
has out "denoise inpaint superres encode score"
has out "encoder.1.weight"
has out "\[12, 784\]"
has out "19824"
has out "linear 784 -> 12"
has out "(1,28,28)"
has out "threshold 0.04"
has out "training"
has out "daed-1"
expect 0 "$BIN" info "$FIX/mixed.safetensors"
has out "upsample x2 bilinear"
has out "leaky_relu 0.1"
has out "conv_transpose2d 4 -> 8, k3 s2 p1 op1"
has out "fully convolutional"

# An invalid file: a truncated copy; the loader's message names the file.
head -c 2000 "$FIX/conv.safetensors" >"$TMP/trunc.safetensors"
expect 1 "$BIN" info "$TMP/trunc.safetensors"
has err "trunc.safetensors"
# Cut inside the tensor data: the header is intact, the data too short.
size=$(wc -c <"$FIX/conv.safetensors")
head -c $((size - 4)) "$FIX/conv.safetensors" >"$TMP/short.safetensors"
expect 1 "$BIN" info "$TMP/short.safetensors"
has err "short.safetensors"
expect 1 "$BIN" info "$TMP/does-not-exist.safetensors"
printf 'not a model' >"$TMP/junk.safetensors"
expect 1 "$BIN" info "$TMP/junk.safetensors"

# --- run on PNG: inpaint model with an alpha mask (gray+alpha PNG) ---
expect 0 "$BIN" run "$FIX/mlp.safetensors" "$FIX/blob_ga.png" "$TMP/inpainted.png"
is_png "$TMP/inpainted.png"
[ "$(png_size "$TMP/inpainted.png")" = "28x28" ] || fail "inpainted.png is not 28x28"
# Same through JSON output: known pixels are kept (pixel 0 is a known 0), the hole
# (pixel 14*28+14) comes from the model's sigmoid, never exactly 0.
expect 0 "$BIN" run "$FIX/mlp.safetensors" "$FIX/blob_ga.png" "$TMP/inpainted.json"
has_json() { grep -q "\"width\":28,\"height\":28,\"channels\":1" "$TMP/inpainted.json"; }
has_json || fail "inpainted.json header"
[ "$(count_pixels "$TMP/inpainted.json")" = 784 ] || fail "inpainted.json: not 784 values"
[ "$(pixel "$TMP/inpainted.json" 0)" = 0 ] || fail "known pixel 0 was not kept"
[ "$(pixel "$TMP/inpainted.json" 406)" != 0 ] || fail "hole pixel 406 was not filled"
# A model without the inpaint task ignores the alpha channel: pixel 0 is the model's.
expect 0 "$BIN" run "$FIX/conv.safetensors" "$FIX/blob_ga.png" "$TMP/conv.json"
[ "$(pixel "$TMP/conv.json" 0)" != 0 ] || fail "conv model output kept an input pixel"
# Colour input to a gray model is converted.
expect 0 "$BIN" run "$FIX/conv.safetensors" "$FIX/grad_rgb.png" "$TMP/conv_rgb.png"
is_png "$TMP/conv_rgb.png"

# --- --json ---
{
    printf '{"width":16,"height":16,"channels":3,"pixels":['
    for i in $(seq 0 767); do printf '%s%s' "$([ "$i" -gt 0 ] && echo ,)" "0.$((i % 10))"; done
    printf ']}'
} >"$TMP/in16.json"
expect 0 "$BIN" run --json "$FIX/mixed.safetensors" "$TMP/in16.json" "$TMP/out16"
grep -q '"width":16,"height":16,"channels":3' "$TMP/out16" || fail "out16 header"
[ "$(count_pixels "$TMP/out16")" = 768 ] || fail "out16: not 768 values"
# JSON in, PNG out (the format follows the file name without --json); then PNG back in.
expect 0 "$BIN" run "$FIX/mixed.safetensors" "$TMP/in16.json" "$TMP/out16.png"
is_png "$TMP/out16.png"
[ "$(png_size "$TMP/out16.png")" = "16x16" ] || fail "out16.png is not 16x16"
expect 0 "$BIN" run "$FIX/mixed.safetensors" "$TMP/out16.png" "$TMP/again.png"
# The fully convolutional model takes other multiples of 8 too.
{
    printf '{"width":8,"height":24,"channels":1,"pixels":['
    for i in $(seq 0 191); do printf '%s0.5' "$([ "$i" -gt 0 ] && echo ,)"; done
    printf ']}'
} >"$TMP/in8x24.json"
expect 0 "$BIN" run "$FIX/mixed.safetensors" "$TMP/in8x24.json" "$TMP/out8x24.json"
grep -q '"width":8,"height":24,"channels":3' "$TMP/out8x24.json" || fail "out8x24 header"

# A super-resolution model (mlp has the task) upsamples a half-size image 2x first;
# a model without the task refuses it.
{
    printf '{"width":14,"height":14,"channels":1,"pixels":['
    for i in $(seq 0 195); do printf '%s0.%d' "$([ "$i" -gt 0 ] && echo ,)" $((i % 7)); done
    printf ']}'
} >"$TMP/in14.json"
expect 0 "$BIN" run "$FIX/mlp.safetensors" "$TMP/in14.json" "$TMP/sr.json"
grep -q '"width":28,"height":28,"channels":1' "$TMP/sr.json" || fail "sr.json header"
expect 1 "$BIN" run "$FIX/conv.safetensors" "$TMP/in14.json" "$TMP/x.json"
has err "does not fit"

# --- a noise-level-map model (shuffle: RGB + map, pixel_unshuffle 2 ... pixel_shuffle 2) ---
expect 0 "$BIN" info "$FIX/shuffle.safetensors"
has out "noise level  map: channel 3"
has out "pixel_unshuffle /2"
has out "residual: input image - net(input)"
has out "any H,W multiple of 2"
expect 0 "$BIN" run --sigma 25 "$FIX/shuffle.safetensors" "$FIX/grad_rgb.png" "$TMP/s25.json"
grep -q '"width":28,"height":28,"channels":3' "$TMP/s25.json" || fail "s25.json header"
expect 0 "$BIN" run "$FIX/shuffle.safetensors" "$FIX/grad_rgb.png" "$TMP/blind.json"
expect 0 "$BIN" run --sigma 25 "$FIX/shuffle.safetensors" "$FIX/grad_rgb.png" "$TMP/s25b.json"
cmp -s "$TMP/s25.json" "$TMP/s25b.json" || fail "--sigma 25 twice gave different outputs"
cmp -s "$TMP/s25.json" "$TMP/blind.json" && fail "--sigma 25 and blind gave the same output"
expect 2 "$BIN" run --sigma 300 "$FIX/shuffle.safetensors" "$FIX/grad_rgb.png" "$TMP/x.png"
has err "noise level 0..255"
expect 2 "$BIN" run --sigma "$FIX/shuffle.safetensors" "$FIX/grad_rgb.png" "$TMP/x.png"
expect 1 "$BIN" run --sigma 25 "$FIX/conv.safetensors" "$FIX/grad_rgb.png" "$TMP/x.png"
has err "takes no noise level"
printf '{"width":3,"height":4,"channels":3,"pixels":[%s0]}' "$(printf '0.5,%.0s' $(seq 35))" \
    >"$TMP/in3x4.json"
expect 1 "$BIN" run "$FIX/shuffle.safetensors" "$TMP/in3x4.json" "$TMP/x.json"
has err "multiples of 2"

# --- invalid inputs: exit 1 with a message ---
expect 1 "$BIN" run "$FIX/mixed.safetensors" "$FIX/grad_rgb.png" "$TMP/x.png"  # 28 % 8 != 0
has err "grad_rgb.png"
expect 1 "$BIN" run "$FIX/mlp.safetensors" "$TMP/in16.json" "$TMP/x.png"       # not 28x28
has err "does not fit"
expect 1 "$BIN" run "$TMP/trunc.safetensors" "$FIX/blob_ga.png" "$TMP/x.png"
expect 1 "$BIN" run "$FIX/mlp.safetensors" "$TMP/nope.png" "$TMP/x.png"
printf '{"width":2,"height":2,"channels":1,"pixels":[1,2,3]}' >"$TMP/short.json"
expect 1 "$BIN" run "$FIX/mixed.safetensors" "$TMP/short.json" "$TMP/x.json"
has err "expected 4"
printf '{"width":2,' >"$TMP/broken.json"
expect 1 "$BIN" run "$FIX/mixed.safetensors" "$TMP/broken.json" "$TMP/x.json"
printf 'GIF89a....' >"$TMP/fake.png"
expect 1 "$BIN" run "$FIX/mlp.safetensors" "$TMP/fake.png" "$TMP/x.png"

# --- grid ---
expect 0 "$BIN" grid "$TMP/grid.png" "$FIX/blob_ga.png" "$FIX/grad_rgb.png" \
    "$TMP/inpainted.png" --cols 2 --scale 2 --pad 1
is_png "$TMP/grid.png"
# 2 columns of 56 px + 3 pads; 2 rows of 56 px + 3 pads.
[ "$(png_size "$TMP/grid.png")" = "115x115" ] || fail "grid is $(png_size "$TMP/grid.png")"
expect 0 "$BIN" grid "$TMP/grid1.png" "$FIX/blob_ga.png"
[ "$(png_size "$TMP/grid1.png")" = "32x32" ] || fail "grid1 is $(png_size "$TMP/grid1.png")"
expect 1 "$BIN" grid "$TMP/grid2.png" "$FIX/blob_ga.png" "$TMP/nope.png"
expect 1 "$BIN" grid "$TMP/grid3.png" "$FIX/blob_ga.png" --scale 64 --cols 20 \
    $(for i in $(seq 1 19); do echo "$FIX/blob_ga.png"; done)

if [ "$fails" -ne 0 ]; then
    echo "dae_model.sh: $fails failure(s)" >&2
    exit 1
fi
echo "dae_model.sh: ok"
