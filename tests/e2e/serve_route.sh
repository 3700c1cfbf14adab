#!/usr/bin/env bash
# serve_route.sh — which model answers /v1/denoise without ?model=, with the shipped models
# (./models): the decoded image's size and channels decide, never its encoding (PNG, JSON
# base64, JSON pixels); colour never comes back gray; JSON pixels and v2 data take any
# finite value and answers stay in [0, 1]; NaN/inf refused; X-Model on every model answer;
# GET /v1/models lists the defaults per kind of image.
source "$(dirname "$0")/lib.bash"

J=(-H 'Content-Type: application/json')
A=(-H 'Accept: application/json')

# pixels W H C: a JSON pixels image, -0.2 on the top half and 1.3 on the bottom half of
# each channel (noisy measurements leave [0, 1]; a residual model answers outside [0, 1]
# unless clipped)
pixels() {
    awk -v w="$1" -v h="$2" -v c="$3" 'BEGIN {
        printf "{\"width\":%d,\"height\":%d,\"channels\":%d,\"pixels\":[", w, h, c
        for (i = 0; i < w * h * c; i++)
            printf "%s%s", (i ? "," : ""), (i % (w * h) < w * h / 2 ? "-0.2" : "1.3")
        printf "]}" }'
}
# in01 WHAT: every "pixels" / "data" value of the last JSON answer is in [0, 1]
in01() {
    local r
    r=$(grep -oE '"(pixels|data)":\[[^]]*\]' "$T/body" | sed -E 's/"(pixels|data)":\[//; s/\]$//' |
        tr ',' '\n' | awk 'NF { n++; if ($1 < 0 || $1 > 1) bad++ } END { print n + 0, bad + 0 }')
    [ "${r#* }" = 0 ] && [ "${r% *}" -gt 0 ] && ok "$1: $r values, all in [0, 1]" ||
        fail "$1: (values, outside [0, 1]) = $r"
}
# body_type FILE: the Content-Type header for a test body
body_type() { case "$1" in *.json) echo 'Content-Type: application/json' ;; *.jpg) echo 'Content-Type: image/jpeg' ;; *) echo 'Content-Type: image/png' ;; esac; }
# answered_by MODEL CHANNELS WHAT: the last answer (JSON) came from MODEL with CHANNELS
answered_by() {
    expect 200 "$3"
    hdr_has "X-Model: $1" "$3: X-Model $1"
    body_has "\"model\":\"$1\"" "$3: answered by $1"
    body_has "\"channels\":$2," "$3: $2 channel(s) back"
}

pixels 28 28 1 >"$T/d28.json"
pixels 64 64 1 >"$T/g64.json"
pixels 40 40 3 >"$T/c40.json"
pixels 28 28 3 >"$T/c28.json"
"$B/helpers/mkpng" "$T/g64.png" 64 64 1
"$B/helpers/mkpng" "$T/c40.png" 40 40 3
"$B/helpers/mkpng" "$T/c40.jpg" 40 40 3
"$B/helpers/mkpng" "$T/c28.png" 28 28 3
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
for f in g64 c40 c28; do echo "{\"png\":\"$(base64 -w0 "$T/$f.png")\"}" >"$T/$f.b64.json"; done

start_daed shipped --models "$ROOT/models" --workers 2

# ---- the defaults, per kind of image
req GET /v1/models; expect 200 "models list"
body_has '"defaults":{"denoise":"fmnist-denoise",' "task defaults kept"
body_has '"denoise_defaults":{"digits":"fmnist-denoise","gray_photo":"photo-denoise","color_photo":"photo-dncnn-rgb"}' \
    "denoise defaults per kind"

# ---- value ranges: any finite value in, [0, 1] out
req POST /v1/denoise --data-binary @"$T/d28.json" "${J[@]}" "${A[@]}"
answered_by fmnist-denoise 1 "28x28 JSON pixels with -0.2 and 1.3"
in01 "28x28 answer"
req POST /v1/denoise --data-binary @"$T/g64.json" "${J[@]}" "${A[@]}"
answered_by photo-denoise 1 "64x64 gray JSON pixels"
in01 "64x64 answer of the residual photo model (clipped)"
req POST /v1/denoise --data-binary @"$T/c40.json" "${J[@]}" "${A[@]}"
answered_by photo-dncnn-rgb 3 "40x40 colour JSON pixels"
in01 "40x40 colour answer"
sed 's/\[-0.2,/[1e999,/' "$T/d28.json" >"$T/inf.json"
req POST /v1/denoise --data-binary @"$T/inf.json" "${J[@]}"
expect 400 "1e999 (parses to inf)"
body_has '{"error":{"code":"invalid_argument","message":"\"pixels\"[0]: expected a finite number"}}' \
    "inf refused with a JSON error"
sed 's/\[-0.2,/[-1e999,/' "$T/d28.json" >"$T/ninf.json"
req POST /v1/denoise --data-binary @"$T/ninf.json" "${J[@]}"; expect 400 "-1e999"
sed 's/\[-0.2,/[1e300,/' "$T/d28.json" >"$T/dbl.json"
req POST /v1/denoise --data-binary @"$T/dbl.json" "${J[@]}"; expect 400 "1e300 (no float)"
sed 's/\[-0.2,/[NaN,/' "$T/d28.json" >"$T/nan.json"
req POST /v1/denoise --data-binary @"$T/nan.json" "${J[@]}"; expect 400 "NaN (not JSON)"
body_has '"code":"malformed"' "NaN: malformed JSON"
sed 's/\[-0.2,/["0.5",/' "$T/d28.json" >"$T/str.json"
req POST /v1/denoise --data-binary @"$T/str.json" "${J[@]}"; expect 400 "a string pixel"
req POST /v1/score --data-binary @"$T/d28.json" "${J[@]}"
expect 200 "score takes any finite value too"; hdr_has "X-Model: fmnist-ae" "score: X-Model"

# ---- the same shape in every encoding picks the same model; colour stays colour
req POST /v1/denoise --data-binary @"$T/g64.png" "${A[@]}"
answered_by photo-denoise 1 "64x64 gray PNG"
req POST /v1/denoise --data-binary @"$T/g64.b64.json" "${J[@]}" "${A[@]}"
answered_by photo-denoise 1 "64x64 gray base64 PNG in JSON"
for f in c40.png c40.jpg c40.b64.json; do
    req POST /v1/denoise --data-binary @"$T/$f" -H "$(body_type "$f")" "${A[@]}"
    answered_by photo-dncnn-rgb 3 "40x40 colour $f"
done
for f in c28.png c28.b64.json c28.json; do
    req POST /v1/denoise --data-binary @"$T/$f" -H "$(body_type "$f")" "${A[@]}"
    answered_by photo-dncnn-rgb 3 "28x28 colour $f (the gray default's size)"
done
req POST /v1/denoise --data-binary "{\"images\":[$(cat "$T/g64.json"),$(cat "$T/g64.b64.json")]}" "${J[@]}"
expect 200 "a batch of two 64x64 gray images"; hdr_has "X-Model: photo-denoise" "batch: X-Model"
body_has '"images":[{"width":64,"height":64,"channels":1,' "batch answered as a list"
req POST "/v1/denoise?model=fmnist-denoise" --data-binary @"$T/c28.json" "${J[@]}" "${A[@]}"
answered_by fmnist-denoise 1 "?model= still decides (colour to a gray model you named)"

# ---- correlated noise (io/photo.h DAE_NOISE_CORR_*): without ?sigma=, a colour photo whose
# noise reads as correlated (noise constant over 2x2 squares of sigma 6: 2.0 at the finest
# scale, 11.9 one scale coarser) goes to a noise-map model at 3.5 x the coarser estimate
# (41.7: photo-dncnn-yc-s50, 30-60), as ?sigma=41.66 would, PNG (8-bit planes) or base64
# JSON; white noise stays on the white estimate; ?model= keeps the white estimate
"$B/helpers/mkpng" "$T/cn.png" 256 256 3 cnoise=6
"$B/helpers/mkpng" "$T/wn.png" 256 256 3 noise=10
echo "{\"png\":\"$(base64 -w0 "$T/cn.png")\"}" >"$T/cn.b64.json"
req POST /v1/denoise --data-binary @"$T/cn.png"
expect 200 "colour PNG with correlated noise"
hdr_has "X-Model: photo-dncnn-yc-s50" "correlated noise: the model for its level"
hdr_has "X-Noise-Sigma: 41.66; estimated, correlated noise" "correlated noise: its level"
req POST "/v1/denoise?sigma=41.66" --data-binary @"$T/cn.png"
hdr_has "X-Model: photo-dncnn-yc-s50" "?sigma=41.66: the same model"
req POST /v1/denoise --data-binary @"$T/cn.b64.json" "${J[@]}" "${A[@]}"
answered_by photo-dncnn-yc-s50 3 "the same photo as base64 JSON"
hdr_has "X-Noise-Sigma: 41.66; estimated, correlated noise" "base64 JSON: the same level"
req POST /v1/denoise --data-binary @"$T/wn.png"
hdr_has "X-Model: photo-dncnn-rgb" "white noise: the colour default"
hdr_has "X-Noise-Sigma: 9.97; estimated" "white noise: the white estimate"
req POST "/v1/denoise?model=photo-dncnn-rgb" --data-binary @"$T/cn.png"
hdr_has "X-Noise-Sigma: 1.98; estimated" "?model=: the white estimate"

# ---- X-Model on every model answer, PNG too (it was missing on fmnist-denoise's)
req POST /v1/denoise --data-binary @"$T/g28.png"
expect 200 "28x28 gray PNG"; hdr_has "X-Model: fmnist-denoise" "PNG answer: X-Model"
req POST /v1/superres --data-binary @"$T/g28.png"; hdr_has "X-Model: fmnist-sr2" "superres: X-Model"
req POST /v1/encode --data-binary @"$T/g28.png"; hdr_has "X-Model: fmnist-ae" "encode: X-Model"
V2="{\"inputs\":[{\"name\":\"input\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"data\":$(grep -o '\[.*\]' "$T/d28.json")}]}"
req POST /v2/models/photo-denoise/infer --data-binary "$V2" "${J[@]}"
expect 200 "v2 data with -0.2 and 1.3"; hdr_has "X-Model: photo-denoise" "v2: X-Model"
in01 "v2 output of the residual photo model (clipped)"
req POST /v2/models/photo-denoise/infer --data-binary "${V2/\[-0.2,/[1e999,}" "${J[@]}"
expect 400 "v2 1e999"; body_has '{"error":"inputs[0].data[0]: expected a finite FP32 number"}' "v2 inf message"
for p in /v1/models /v1/models/photo-denoise /v2/models/photo-denoise; do
    req GET "$p"; ! grep -qi '^X-Model' "$T/hdrs" && ok "no X-Model on $p" || fail "X-Model on $p"
done
req POST /v1/denoise --data-binary @"$T/inf.json" "${J[@]}"
! grep -qi '^X-Model' "$T/hdrs" && ok "no X-Model on errors" || fail "X-Model on an error"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit (no leak under ASan)" || fail "exit status $STOP_RC: $(tail -5 "$LOG")"

# ---- only gray models: a colour image is refused (422 says why), never answered gray
mkdir -p "$T/gray"
cp "$ROOT/models/fmnist-denoise.safetensors" "$ROOT/models/photo-denoise.safetensors" "$T/gray/"
start_daed gray --models "$T/gray" --workers 1
for f in c40.json c28.png; do
    req POST /v1/denoise --data-binary @"$T/$f" -H "$(body_type "$f")"
    expect 422 "colour $f with only gray models"
    body_has "never answered gray" "$f: the 422 says why"
done
req GET /v1/models
body_has '"denoise_defaults":{"digits":"fmnist-denoise","gray_photo":"photo-denoise","color_photo":null}' \
    "no colour model: color_photo null"
req POST /v1/denoise --data-binary @"$T/g64.json" "${J[@]}" "${A[@]}"
answered_by photo-denoise 1 "gray still served"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit (no leak under ASan)" || fail "exit status $STOP_RC: $(tail -5 "$LOG")"

finish
