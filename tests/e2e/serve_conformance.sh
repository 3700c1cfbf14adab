#!/usr/bin/env bash
# serve_conformance.sh — third-party conformance suites through the daemon (the decoders
# themselves are unit-tested in check_pngsuite / check_json): every PngSuite x* file is a
# JSON 400; every JSONTestSuite n_ file is a 400 alone and inside an otherwise valid request;
# every y_ file inside a valid request is served (duplicate keys excepted: refused).
source "$(dirname "$0")/lib.bash"

make_models
"$B/bench/mkpng" "$T/g28.png" 28 28 1
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

stop_daed
finish
