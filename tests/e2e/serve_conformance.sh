#!/usr/bin/env bash
# serve_conformance.sh — third-party conformance suites through the daemon (the decoders
# themselves are unit-tested in check_pngsuite / check_json): every PngSuite x* file is a
# JSON 400; every JSONTestSuite n_ file is a 400 alone and inside an otherwise valid request;
# every y_ file inside a valid request is served (duplicate keys excepted: refused). Alpha
# is passed through, and a damaged PNG signature is named.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
start_daed conf --models "$T/models" --workers 2
PNGS=tests/conformance/pngsuite
JSONS=tests/conformance/jsontestsuite

is_json_error() { grep -q '^{"error":{"code":"[a-z_]*","message":"' "$T/body"; }

n=0
for f in "$PNGS"/x*.png; do
    req POST "/v1/denoise?model=conv&resize=1" --data-binary @"$f"
    if [ "$CODE" = 400 ] && is_json_error; then n=$((n + 1)); else
        fail "$(basename "$f"): $CODE $(head -c 200 "$T/body")"; fi
done
[ "$n" -eq 14 ] && ok "PngSuite: all 14 x* files are a JSON 400" || fail "PngSuite x*: $n of 14"

# A 32x32 16-bit interlaced file (decoded wrongly by libpng's simplified API) is served.
req POST "/v1/denoise?model=conv&resize=1" --data-binary @"$PNGS/basi0g16.png"
expect 200 "basi0g16 (16-bit interlaced) served"

b64=$(base64 -w0 "$T/g28.png")
wrap() { # wrap FILE OUT: {"extra": <FILE>, "png": "<28x28 PNG>"}
    { printf '{"extra": '; cat "$1"; printf ', "png": "%s"}' "$b64"; } >"$2"
}
wrap /dev/stdin "$T/wrapped.json" <<<'[1, {"a": "b"}]'
req POST "/v1/denoise?model=conv" --data-binary @"$T/wrapped.json" -H 'Content-Type: application/json'
expect 200 "a valid request with an extra member"

alone=0 inside=0 total=0
for f in "$JSONS"/n_*.json; do
    total=$((total + 1))
    req POST "/v1/denoise?model=conv" --data-binary @"$f" -H 'Content-Type: application/json'
    if [ "$CODE" = 400 ] && is_json_error; then alone=$((alone + 1)); else
        fail "$(basename "$f") alone: $CODE $(head -c 200 "$T/body")"; fi
    wrap "$f" "$T/wrapped.json"
    req POST "/v1/denoise?model=conv" --data-binary @"$T/wrapped.json" -H 'Content-Type: application/json'
    if [ "$CODE" = 400 ] && is_json_error; then inside=$((inside + 1)); else
        fail "$(basename "$f") inside a valid request: $CODE $(head -c 200 "$T/body")"; fi
done
[ "$alone" -eq "$total" ] && [ "$inside" -eq "$total" ] && [ "$total" -eq 188 ] &&
    ok "JSONTestSuite: all $total n_ files are a 400, alone and inside a valid request" ||
    fail "n_ files: $alone alone, $inside inside, of $total (expected 188)"

served=0 total=0
for f in "$JSONS"/y_*.json; do
    total=$((total + 1))
    wrap "$f" "$T/wrapped.json"
    req POST "/v1/denoise?model=conv" --data-binary @"$T/wrapped.json" -H 'Content-Type: application/json'
    case "$(basename "$f")" in
    y_object_duplicated_key*) want=400 ;;
    *) want=200 ;;
    esac
    if [ "$CODE" = "$want" ]; then served=$((served + 1)); else
        fail "$(basename "$f") inside a valid request: $CODE, expected $want $(head -c 200 "$T/body")"; fi
done
[ "$served" -eq "$total" ] && [ "$total" -eq 95 ] &&
    ok "JSONTestSuite: all $total y_ files accepted inside a request (duplicate keys: 400)" ||
    fail "y_ files: $served of $total as expected"
req POST "/v1/denoise?model=conv" --data-binary "{\"png\":\"$b64\",\"png\":\"$b64\"}" \
    -H 'Content-Type: application/json'
expect 400 "duplicate key"; body_has 'duplicate key \"png\"' "duplicate key named"

# ---- alpha is passed through (denoise, superres), used as the mask by inpaint
"$B/helpers/mkpng" "$T/ga28.png" 28 28 1 hole
"$B/helpers/mkpng" "$T/rgba32.png" 32 32 3 hole
"$B/helpers/mkpng" "$T/ga14.png" 14 14 1 hole
ctype() { od -An -tu1 -j25 -N1 "$T/body" | tr -d ' '; } # IHDR colour type of the answer
req POST "/v1/denoise?model=conv" --data-binary @"$T/ga28.png"
expect 200 "denoise gray+alpha"; [ "$(ctype)" = 4 ] && ok "gray+alpha in, gray+alpha out" ||
    fail "denoise gray+alpha answered colour type $(ctype)"
req POST "/v1/denoise?model=rgb" --data-binary @"$T/rgba32.png"
expect 200 "denoise RGBA"; [ "$(ctype)" = 6 ] && ok "RGBA in, RGBA out" ||
    fail "denoise RGBA answered colour type $(ctype)"
req POST "/v1/superres?model=sr" --data-binary @"$T/ga14.png"
expect 200 "superres gray+alpha"
[ "$(ctype)" = 4 ] && [ "$(png_size "$T/body")" = "28 28" ] && ok "superres keeps alpha, resized" ||
    fail "superres gray+alpha: colour type $(ctype), size $(png_size "$T/body")"
req POST "/v1/inpaint?model=conv" --data-binary @"$T/ga28.png"
expect 200 "inpaint"; [ "$(ctype)" = 0 ] && ok "inpaint: alpha was the mask, answer opaque" ||
    fail "inpaint answered colour type $(ctype)"
# JSON pixels: the alpha plane as it came (the centre 14x14 of 28x28 is 0)
req POST "/v1/denoise?model=conv&encoding=pixels" --data-binary @"$T/ga28.png" \
    -H 'Accept: application/json'
zeros=$(sed 's/.*"alpha":\[\([^]]*\)\].*/\1/' "$T/body" | tr ',' '\n' | grep -cx '0' || true)
ones=$(sed 's/.*"alpha":\[\([^]]*\)\].*/\1/' "$T/body" | tr ',' '\n' | grep -cx '1' || true)
[ "$zeros" = 196 ] && [ "$ones" = 588 ] && ok "JSON answer carries the input's alpha unchanged" ||
    fail "JSON alpha: $zeros zeros, $ones ones (want 196, 588): $(head -c 300 "$T/body")"

# ---- a damaged signature is named
printf '\x89PNG\n\x1a\n\x00\x00\x00\x0dIHDR' >"$T/lf.png"
req POST "/v1/denoise?model=conv" --data-binary @"$T/lf.png"
expect 400 "PNG with CR LF changed"; body_has "byte 4 is 0a, expected 0d" "signature fault named"

stop_daed
finish
