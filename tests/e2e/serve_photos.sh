#!/usr/bin/env bash
# serve_photos.sh — photos on /v1/denoise: any size, PNG or JPEG in, PNG or JPEG out; the
# fully convolutional model for the image's channel count is picked without ?model=; tiles
# give the same pixels as one whole-image pass, also under concurrent requests; a big
# colour JPEG comes back with bounded memory; the sigma hint; a clear 422 when no model fits.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkmodel" "$T/models/photo-gray.safetensors" dncnn photo-gray
"$B/helpers/mkmodel" "$T/models/photo-rgb.safetensors" dncnn-rgb photo-rgb
# a fully convolutional digit denoiser, first by name: it must not take the photos
"$B/helpers/mkmodel" "$T/models/digits.safetensors" dncnn-digits digits
"$B/helpers/mkpng" "$T/g.png" 1000 700 1
"$B/helpers/mkpng" "$T/c.jpg" 900 601 3
"$B/helpers/mkpng" "$T/g.jpg" 333 257 1
"$B/helpers/mkpng" "$T/big.jpg" 3000 2000 3

# jpeg_size FILE -> "W H" from the first SOF marker
jpeg_size() {
    od -An -tu1 -v "$1" | tr -s ' \n' '\n\n' | sed '/^$/d' | awk '
        { b[n++] = $1 }
        END { for (i = 2; i + 8 < n; i++) if (b[i] == 255 && (b[i+1] == 192 || b[i+1] == 194)) {
                  print b[i+7] * 256 + b[i+8], b[i+5] * 256 + b[i+6]; exit } }'
}
is_jpeg() { [ "$(od -An -tx1 -N3 "$1" | tr -d ' \n')" = "ffd8ff" ]; }

# Two daemons: small tiles (many per image) and tiles larger than any test image (one pass).
start_daed tiles --models "$T/models" --workers 2 --tile 64
URL_T=$URL
PID_T=$PID
start_daed whole --models "$T/models" --workers 2 --tile 4096
URL_W=$URL

for name in g.png c.jpg g.jpg; do
    for u in "$URL_T" "$URL_W"; do
        URL=$u req POST /v1/denoise --data-binary @"$T/$name"
        expect 200 "$name on $u"
        cp "$T/body" "$T/out-$name-${u##*:}.png"
    done
    if cmp -s "$T/out-$name-${URL_T##*:}.png" "$T/out-$name-${URL_W##*:}.png"; then
        ok "$name: tiles of 64 give the same pixels as one whole-image pass"
    else
        fail "$name: tiled output differs from the whole-image output"
    fi
done
URL=$URL_T
req POST /v1/denoise --data-binary @"$T/g.png"
hdr_has "X-Model: photo-gray" "a gray PNG goes to the gray photo model (not the digit model first by name)"
[ "$(png_size "$T/body")" = "1000 700" ] && ok "answer has the image's size" || fail "size $(png_size "$T/body")"
req POST /v1/denoise --data-binary @"$T/c.jpg"
hdr_has "X-Model: photo-rgb" "a colour JPEG goes to the colour model"
hdr_has "Content-Type: image/png" "PNG by default"
req POST /v1/denoise --data-binary @"$T/c.jpg" -H 'Accept: image/jpeg'
expect 200 "JPEG answer"
hdr_has "Content-Type: image/jpeg" "Accept: image/jpeg gives a JPEG"
is_jpeg "$T/body" && [ "$(jpeg_size "$T/body")" = "900 601" ] && ok "a 900x601 JPEG" ||
    fail "not a 900x601 JPEG: $(jpeg_size "$T/body")"
req POST "/v1/denoise?model=mlp" --data-binary @"$T/g.png"
expect 422 "?model= still decides: the 28x28 mlp model does not take 1000x700"

# concurrency: tiles of several requests share the pool; every answer is the same image
CPIDS=()
for i in 1 2 3 4; do
    curl -sS -o "$T/conc$i.png" --max-time 120 --data-binary @"$T/c.jpg" "$URL/v1/denoise" &
    CPIDS+=($!)
done
wait "${CPIDS[@]}"
same=1
for i in 1 2 3 4; do cmp -s "$T/conc$i.png" "$T/out-c.jpg-${URL_T##*:}.png" || same=0; done
[ $same = 1 ] && ok "4 concurrent tiled requests: identical answers" || fail "concurrent answers differ"

# sigma hint: the model stays blind (same answer with or without it); it picks, among the
# models for the channel count, one whose trained range holds it; out of 0..255 is refused
req POST "/v1/denoise?sigma=25" --data-binary @"$T/g.png"
cmp -s "$T/body" "$T/out-g.png-${URL_T##*:}.png" && ok "sigma=25: same answer as blind" ||
    fail "sigma=25 changed the answer"
req POST "/v1/denoise?sigma=110" --data-binary @"$T/g.png"
expect 200 "sigma=110 (no model's range holds it)"
hdr_has "X-Model: photo-gray" "sigma=110: the first gray model, blind"
cmp -s "$T/body" "$T/out-g.png-${URL_T##*:}.png" && ok "sigma=110: same answer as blind" ||
    fail "sigma=110 changed the answer"
req POST "/v1/denoise?sigma=300" --data-binary @"$T/g.png"
expect 400 "sigma=300"
body_has "0 to 255" "the sigma error names the range"

# planes held as 8-bit (the body decoded to 8-bit planes, each tile quantized as it is
# pasted; tiles.c) answer the bytes of the float path: a JSON answer with ?encoding=png
# keeps float planes from decode to encode. Colour (the opponent colour space: each tile
# back to RGB), gray, and RGBA (the alpha passed through); the per-channel model below.
"$B/helpers/mkpng" "$T/ca.png" 301 199 3 hole
same_as_float() { # same_as_float FILE QUERY WHAT
    URL=$URL_T req POST "/v1/denoise$2" --data-binary @"$T/$1"
    cp "$T/body" "$T/raw8.png"
    URL=$URL_T req POST "/v1/denoise${2:-?}${2:+&}encoding=png" -H 'Accept: application/json' \
        --data-binary @"$T/$1"
    python3 -c 'import json, base64, sys
sys.stdout.buffer.write(base64.b64decode(json.load(open(sys.argv[1]))["image"]["png"]))' \
        "$T/body" >"$T/float.png" 2>/dev/null || true
    cmp -s "$T/raw8.png" "$T/float.png" && ok "$3: 8-bit planes give the float path's bytes" ||
        fail "$3: the 8-bit path's PNG differs from the float path's"
}
same_as_float c.jpg "" "colour JPEG, opponent colour model"
same_as_float g.png "" "gray PNG"
same_as_float ca.png "" "RGBA PNG"
same_as_float c.jpg "?nonlocal=1" "colour JPEG, non-local stage"
same_as_float g.png "?nonlocal=1" "gray PNG, non-local stage"

# a 6 Mpx colour JPEG: back at full size; the daemon's peak memory stays far below what one
# whole-image pass would need (its im2col buffer alone: 72 x 6M floats = 1.7 GB)
req POST /v1/denoise --data-binary @"$T/big.jpg" -H 'Accept: image/jpeg'
expect 200 "3000x2000 colour JPEG"
[ "$(jpeg_size "$T/body")" = "3000 2000" ] && ok "3000x2000 back" || fail "size $(jpeg_size "$T/body")"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID_T/status")
[ "$hwm" -lt 1048576 ] && ok "peak memory ${hwm} kB < 1 GiB" || fail "peak memory ${hwm} kB"

# no fully convolutional model for the channel count: a clear 422
mkdir -p "$T/only"
cp "$T/models/conv.safetensors" "$T/models/photo-gray.safetensors" "$T/only/"
start_daed only --models "$T/only" --workers 1
req POST /v1/denoise --data-binary @"$T/c.jpg"
expect 422 "colour photo with only gray models"
body_has "no fully convolutional denoise model for 3 channels" "the 422 says what is missing"
req POST /v1/denoise --data-binary @"$T/g.jpg"
expect 200 "gray JPEG with the gray model"
hdr_has "X-Model: photo-gray" "gray JPEG picked photo-gray"

# a second gray model trained on 40..100: the hint picks it, without a hint the first wins
"$B/helpers/mkmodel" "$T/only/photo-hi.safetensors" dncnn-hi photo-hi 7
req POST /v1/admin/reload -X POST
req POST "/v1/denoise?sigma=80" --data-binary @"$T/g.jpg"
hdr_has "X-Model: photo-hi" "sigma=80 picks the model trained on 40..100"
req POST "/v1/denoise?sigma=20" --data-binary @"$T/g.jpg"
hdr_has "X-Model: photo-gray" "sigma=20 picks the model trained on 0..55"
req POST /v1/denoise --data-binary @"$T/g.jpg"
hdr_has "X-Model: photo-gray" "no hint, a clean image (estimated level ~0): the 0..55 model"
# without ?sigma= the level estimated in the decoded image is the hint (photo.h)
"$B/helpers/mkpng" "$T/n75.png" 200 160 1 noise=75
req POST /v1/denoise --data-binary @"$T/n75.png"
hdr_has "X-Model: photo-hi" "no hint, noise of sigma 75: the estimate picks the 40..100 model"
req POST "/v1/denoise?sigma=20" --data-binary @"$T/n75.png"
hdr_has "X-Model: photo-gray" "the given sigma=20 wins over the estimate"

# the gray model as a colour model, one opponent channel at a time: picked for colour
"$B/dae-model" per-channel "$T/only/photo-gray.safetensors" "$T/only/photo-pc.safetensors" \
    photo-pc >/dev/null
req POST /v1/admin/reload -X POST
req POST /v1/denoise --data-binary @"$T/c.jpg"
expect 200 "colour photo with a per-channel model"
hdr_has "X-Model: photo-pc" "colour JPEG picked the per-channel model"
[ "$(png_size "$T/body")" = "900 601" ] && ok "900x601 colour back" || fail "size $(png_size "$T/body")"
URL_T=$URL same_as_float c.jpg "?model=photo-pc" "per-channel opponent model (float output)"

# a noise-level-map model (FFDNet-style, size_div 2) as the only gray model: odd-sized images
# are padded and cropped back, tiles of 64 equal one whole pass, ?sigma= feeds its map (the
# answer differs from blind), /v1/models says it takes a noise level
mkdir -p "$T/ffd"
"$B/helpers/mkmodel" "$T/ffd/photo-ffd.safetensors" ffd photo-ffd 3
start_daed ffd-tiles --models "$T/ffd" --workers 2 --tile 63
URL_FT=$URL
start_daed ffd-whole --models "$T/ffd" --workers 1 --tile 4096
URL_FW=$URL
for u in "$URL_FT" "$URL_FW"; do
    URL=$u req POST /v1/denoise --data-binary @"$T/g.jpg"
    expect 200 "333x257 gray JPEG, noise-map model, blind ($u)"
    cp "$T/body" "$T/ffd-blind-${u##*:}.png"
    URL=$u req POST "/v1/denoise?sigma=30" --data-binary @"$T/g.jpg"
    expect 200 "333x257 gray JPEG, noise-map model, sigma=30 ($u)"
    cp "$T/body" "$T/ffd-s30-${u##*:}.png"
done
URL=$URL_FT
hdr_has "X-Model: photo-ffd" "the gray JPEG went to the noise-map model"
[ "$(png_size "$T/body")" = "333 257" ] && ok "odd size 333x257 back (padded to 334x258, cropped)" ||
    fail "size $(png_size "$T/body")"
cmp -s "$T/ffd-s30-${URL_FT##*:}.png" "$T/ffd-s30-${URL_FW##*:}.png" &&
    cmp -s "$T/ffd-blind-${URL_FT##*:}.png" "$T/ffd-blind-${URL_FW##*:}.png" &&
    ok "noise-map model: tiles of 62 give the same pixels as one pass" ||
    fail "noise-map model: tiled output differs from the whole-image output"
cmp -s "$T/ffd-s30-${URL_FT##*:}.png" "$T/ffd-blind-${URL_FT##*:}.png" &&
    fail "sigma=30 and blind gave the same answer" || ok "sigma=30 answer differs from blind"
"$B/helpers/mkpng" "$T/f.png" 120 90 1
req POST /v1/denoise --data-binary @"$T/f.png"
expect 200 "gray PNG, noise-map model, blind"
cp "$T/body" "$T/ffd-png-blind.png"
req POST "/v1/denoise?sigma=15" --data-binary @"$T/f.png"
expect 200 "gray PNG, noise-map model, sigma=15"
cmp -s "$T/body" "$T/ffd-png-blind.png" && fail "PNG: sigma=15 and blind gave the same answer" ||
    ok "PNG: sigma=15 answer differs from blind"
req GET /v1/models
body_has '"name":"photo-ffd"' "/v1/models lists the noise-map model"
body_has '"noise_level":"map"' "/v1/models: noise_level map"
body_has '"without_sigma":"estimated"' "/v1/models: without ?sigma= the level is estimated"
# the map gets the given level, or the one estimated in the image (X-Noise-Sigma says which)
req POST "/v1/denoise?sigma=30" --data-binary @"$T/f.png"
hdr_has "X-Noise-Sigma: 30.00; given" "X-Noise-Sigma: the given level"
"$B/helpers/mkpng" "$T/f25.png" 160 120 1 noise=25
# (?nonlocal=0: the non-local stage, which runs without ?sigma= when it judges the removed
# noise correlated, is tested below)
req POST "/v1/denoise?nonlocal=0" --data-binary @"$T/f25.png"
expect 200 "gray PNG with noise of sigma 25, no hint"
est=$(tr -d '\r' < "$T/hdrs" | awk -F': ' 'tolower($1) == "x-noise-sigma" {print $2}')
case "$est" in
    *"; estimated") awk -v e="${est%%;*}" 'BEGIN {exit !(e > 23 && e < 27)}' &&
        ok "X-Noise-Sigma: $est (noise of sigma 25)" || fail "estimate $est, expected 23-27" ;;
    *) fail "X-Noise-Sigma '$est', expected an estimate" ;;
esac
cp "$T/body" "$T/ffd-est.png"
req POST "/v1/denoise?sigma=${est%%;*}" --data-binary @"$T/f25.png"
cmp -s "$T/body" "$T/ffd-est.png" && ok "the estimate as ?sigma= gives the same answer" ||
    fail "the estimated level and the same ?sigma= differ"

# the non-local stage (core/nlm.h): ?nonlocal=1 runs it, ?nonlocal=0 never; with ?sigma= it
# runs only when asked; anything but 0 or 1 is a 400
req POST "/v1/denoise?nonlocal=1" --data-binary @"$T/f25.png"
expect 200 "?nonlocal=1"
cp "$T/body" "$T/nl1.png"
req POST "/v1/denoise?nonlocal=0" --data-binary @"$T/f25.png"
cmp -s "$T/body" "$T/nl1.png" && fail "?nonlocal=1 gave the answer of ?nonlocal=0" ||
    ok "?nonlocal=1 changes the answer"
req POST "/v1/denoise?sigma=25&nonlocal=0" --data-binary @"$T/f25.png"
cp "$T/body" "$T/s25-nl0.png"
req POST "/v1/denoise?sigma=25" --data-binary @"$T/f25.png"
cmp -s "$T/body" "$T/s25-nl0.png" && ok "?sigma= without ?nonlocal=1: no non-local stage" ||
    fail "?sigma= ran the non-local stage unasked"
req POST "/v1/denoise?sigma=25&nonlocal=1" --data-binary @"$T/f25.png"
cmp -s "$T/body" "$T/s25-nl0.png" && fail "?sigma=25&nonlocal=1 ran no non-local stage" ||
    ok "?sigma=25&nonlocal=1 runs it"
req POST "/v1/denoise?nonlocal=yes" --data-binary @"$T/f25.png"
expect 400 "?nonlocal=yes"
body_has "expected 0 or 1" "the nonlocal error says what is allowed"

# a per-channel noise-map model in the opponent space: each channel's map is ?sigma= times
# the noise gain of that channel (photo.h), in daed's tiles as in dae-model run
mkdir -p "$T/pcmap"
"$B/helpers/mkmodel" "$T/pcmap-g.safetensors" dncnn-map photo-gm 5
"$B/dae-model" per-channel "$T/pcmap-g.safetensors" "$T/pcmap/photo-pcmap.safetensors" photo-pcmap \
    >/dev/null
"$B/helpers/mkpng" "$T/pc.png" 150 110 3
"$B/dae-model" run --sigma 30 "$T/pcmap/photo-pcmap.safetensors" "$T/pc.png" "$T/pcmap-ref.png" \
    >/dev/null
start_daed pcmap --models "$T/pcmap" --workers 2 --tile 48
req POST "/v1/denoise?sigma=30" --data-binary @"$T/pc.png"
expect 200 "colour PNG, per-channel noise-map model, sigma=30"
# (both PNGs re-encoded by one encoder: equal files = equal pixels)
"$B/dae-model" grid "$T/pcmap-a.png" "$T/body" --pad 0 >/dev/null
"$B/dae-model" grid "$T/pcmap-b.png" "$T/pcmap-ref.png" --pad 0 >/dev/null
cmp -s "$T/pcmap-a.png" "$T/pcmap-b.png" &&
    ok "per-channel noise-map model: daed's tiles = dae-model run (per-channel levels)" ||
    fail "per-channel noise-map model: daed and dae-model run differ"

# the same with its chroma at half resolution (core/halfres.h) and a ?sigma= range of its
# own: an odd-sized photo, several tiles on the luma and on the half chroma planes
mkdir -p "$T/pchalf"
"$B/dae-model" per-channel "$T/pcmap-g.safetensors" "$T/pchalf/photo-pchalf.safetensors" \
    photo-pchalf --chroma-half --sigma-range 20,40 >/dev/null
"$B/helpers/mkpng" "$T/pco.png" 151 111 3
"$B/dae-model" run --sigma 30 "$T/pchalf/photo-pchalf.safetensors" "$T/pco.png" \
    "$T/pchalf-ref.png" >/dev/null
"$B/dae-model" run --sigma 30 "$T/pcmap/photo-pcmap.safetensors" "$T/pco.png" \
    "$T/pcfull-ref.png" >/dev/null
start_daed pchalf --models "$T/pchalf" --workers 2 --tile 48
req POST "/v1/denoise?sigma=30" --data-binary @"$T/pco.png"
expect 200 "colour PNG, per-channel model with half chroma, sigma=30"
hdr_has "X-Model: photo-pchalf" "its sigma_range took ?sigma=30"
"$B/dae-model" grid "$T/pchalf-a.png" "$T/body" --pad 0 >/dev/null
"$B/dae-model" grid "$T/pchalf-b.png" "$T/pchalf-ref.png" --pad 0 >/dev/null
"$B/dae-model" grid "$T/pcfull-b.png" "$T/pcfull-ref.png" --pad 0 >/dev/null
cmp -s "$T/pchalf-a.png" "$T/pchalf-b.png" &&
    ok "half-chroma model: daed's tiles = dae-model run" ||
    fail "half-chroma model: daed and dae-model run differ"
cmp -s "$T/pchalf-b.png" "$T/pcfull-b.png" && fail "half chroma answered as the full one" ||
    ok "half chroma differs from full-resolution chroma"
req POST "/v1/denoise?sigma=30" -H "Accept: application/json" --data-binary @"$T/pco.png"
expect 200 "half-chroma model, JSON answer"
body_has '"channels":3' "half-chroma JSON answer is colour"

finish
