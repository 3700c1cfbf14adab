#!/usr/bin/env bash
# serve_openapi.sh — real daed answers of every route, success and error, checked against
# openapi.yaml by tests/e2e/openapi_check.py (status, media type, JSON schema, headers).
source "$(dirname "$0")/lib.bash"

PY=/usr/bin/python3
if ! "$PY" -c 'import yaml, jsonschema' 2>/dev/null; then
    skip "serve_openapi.sh needs Debian's python3-yaml and python3-jsonschema for $PY" \
        "(apt-get install python3-yaml python3-jsonschema)"
fi

# ---- the checker itself: crafted disagreements must each fail, a right answer pass
S="$T/self"
mkdir -p "$S"
selfcase() { # METHOD PATH STATUS HEADERS BODY
    local i=$((${SN:-0} + 1))
    SN=$i
    printf 'HTTP/1.1 %s X\r\n%b\r\n' "$3" "$4" >"$S/$i.h"
    printf '%s' "$5" >"$S/$i.b"
    printf '%s\t%s\t-\t-\t%s\t%s\t%s\n' "$1" "$2" "$3" "$S/$i.h" "$S/$i.b" >>"$S/manifest"
}
CTJ='Content-Type: application/json\r\n'
selfcase GET /healthz 200 "$CTJ" '{"status":"ok"}'
selfcase GET /healthz 200 "$CTJ" '{"status":"ok","uptime":3}'
selfcase GET /healthz 418 "$CTJ" '{"status":"ok"}'
selfcase GET /v1/models 200 'Content-Type: text/html\r\n' '<p>'
selfcase GET /readyz 200 "$CTJ" '{"status":"ready","models":"4"}'
selfcase DELETE /healthz 405 "$CTJ" '{"error":{"code":"method_not_allowed","message":"m"}}'
selfcase POST /v1/denoise 503 "${CTJ}Retry-After: soon\r\n" '{"error":{"code":"busy","message":"m"}}'
selfcase GET /v1/models/x 200 "$CTJ" '{"name":"x"}'
selfcase GET /nope 200 "$CTJ" '{}'
selfcase POST '/v1/score?bogus=1' 200 "$CTJ" '{"model":"m","score":0.1,"score_kind":"mse","threshold":null,"is_anomaly":null,"percentile":null}'
"$PY" tests/e2e/openapi_check.py --partial openapi.yaml "$S/manifest" >"$S/out" 2>&1 || true
if grep -q '^openapi_check: 10 exchanges, 9 failure(s)$' "$S/out" && grep -q '^ok: openapi: GET /healthz -> 200$' "$S/out"; then
    ok "the checker fails each crafted disagreement"
else
    fail "the checker's self-test: $(cat "$S/out")"
fi

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
"$B/helpers/mkpng" "$T/g30.png" 30 30 1
"$B/helpers/mkpng" "$T/g14.png" 14 14 1
"$B/helpers/mkpng" "$T/c32.png" 32 32 3
"$B/helpers/mkpng" "$T/hole28.png" 28 28 1 hole
"$B/helpers/mkpng" "$T/g28.jpg" 28 28 1
"$B/helpers/mkpng" "$T/big.png" 128 128 1
"$B/helpers/mkpng" "$T/large.png" 1024 1024 1

M="$T/manifest"
: >"$M"
N=0
# cap STATUS METHOD PATH REQ_TYPE REQ_FILE [curl args...]: one exchange, recorded in the
# manifest for the schema check; the status must be STATUS (the case meant to be covered).
cap() {
    local want=$1 m=$2 p=$3 ct=$4 f=$5
    shift 5
    N=$((N + 1))
    local args=(-sS -X "$m" -o "$T/r$N.body" -D "$T/r$N.hdrs" -w '%{http_code}' --max-time 120)
    [ "$m" = HEAD ] && args=(-sS -I -o "$T/r$N.body" -D "$T/r$N.hdrs" -w '%{http_code}' --max-time 120)
    [ "$ct" != - ] && args+=(-H "Content-Type: $ct")
    [ "$f" != - ] && args+=(--data-binary "@$f")
    local code
    code=$(curl "${args[@]}" "$@" "$URL$p") || code=000
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$p" "$ct" "$f" "$code" "$T/r$N.hdrs" "$T/r$N.body" >>"$M"
    if [ "$code" != "$want" ]; then fail "$m $p: status $code, expected $want: $(head -c 300 "$T/r$N.body" | tr -d '\0')"; fi
}
J=application/json
AJ=(-H 'Accept: application/json')

# request bodies
B64=$(base64 -w0 "$T/g28.png")
PIX=$(for _ in $(seq 784); do echo 0.25; done | paste -sd, -)
MASK=$(for i in $(seq 0 783); do if [ $((i % 28)) -lt 14 ]; then echo 1; else echo 0; fi; done | paste -sd, -)
echo "{\"width\":28,\"height\":28,\"channels\":1,\"pixels\":[$PIX]}" >"$T/pix.json"
echo "{\"png\":\"$B64\"}" >"$T/png.json"
echo "{\"images\":[{\"png\":\"$B64\"},{\"width\":28,\"height\":28,\"channels\":1,\"pixels\":[$PIX]}]}" >"$T/batch.json"
echo "{\"width\":28,\"height\":28,\"channels\":1,\"pixels\":[$PIX],\"mask\":[$MASK]}" >"$T/inp.json"
echo "{\"images\":[{\"png\":\"$B64\"},{\"png\":\"$B64\"}],\"steps\":5}" >"$T/two.json"
echo '{"latent":[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]}' >"$T/lat.json"
echo '{"latents":[[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8],[0,0,0,0,0,0,0,0]]}' >"$T/lats.json"
echo '{"latent":[1,2]}' >"$T/lat2.json"
ONES=$(for _ in $(seq 784); do echo 0.5; done | paste -sd, -)
echo "{\"id\":\"r1\",\"inputs\":[{\"name\":\"input\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"data\":[$ONES]}]}" >"$T/v2.json"
echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[$ONES]}],\"outputs\":[{\"name\":\"latent\"}]}" >"$T/v2lat.json"
echo '{"inputs":[{"name":"input","shape":[1,784],"datatype":"INT8","data":[1]}]}' >"$T/v2bad.json"
echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,1,28,30],\"datatype\":\"FP32\",\"data\":[$ONES]}]}" >"$T/v2shape.json"
echo '{"width":28,' >"$T/broken.json"
echo '{"width":100000,"height":28,"channels":1,"pixels":[]}' >"$T/wide.json"
echo 'not an image at all' >"$T/garbage"
head -c 300000 /dev/zero >"$T/huge.bin"

# ---- the main server: every route, success and error
start_daed main --models "$T/models" --workers 2 --max-body 200k --max-pixels 5000 \
    --max-batch-images 4 --openapi "$ROOT/openapi.yaml"
cap 200 GET /healthz - -
cap 200 HEAD /healthz - -
cap 405 DELETE /healthz - -
cap 200 GET /readyz - -
cap 405 POST /readyz - -
cap 200 GET /metrics - -
cap 200 GET /openapi.yaml - -
cap 200 GET /v1/models - -
cap 200 GET /v1/models/conv - -
cap 200 GET /v1/models/mlp - -
cap 404 GET /v1/models/nope - -
cap 405 POST /v1/models - -
cap 404 GET /nope - -
cap 404 GET /v1 - -
cap 200 GET / - -
cap 200 GET /docs - -
cap 405 POST /docs - -
cap 200 GET /web/app.js - -
cap 200 GET /web/style.css - -
cap 200 GET /web/favicon.svg - -
cap 400 GET /web/.hidden.js - -
cap 404 GET /web/nope.js - -

cap 200 POST /v1/denoise image/png "$T/g28.png"
cap 200 POST /v1/denoise image/jpeg "$T/g28.jpg"
cap 200 POST "/v1/denoise?model=mlp" image/png "$T/g28.png" "${AJ[@]}"
cap 200 POST "/v1/denoise?model=mlp&encoding=png" image/png "$T/g28.png" "${AJ[@]}"
cap 200 POST /v1/denoise $J "$T/pix.json"
cap 200 POST /v1/denoise $J "$T/png.json" "${AJ[@]}"
cap 200 POST /v1/denoise $J "$T/batch.json"
cap 200 POST "/v1/denoise?encoding=pixels" $J "$T/batch.json"
cap 200 POST "/v1/denoise?model=mlp&resize=1" image/png "$T/g30.png"
cap 200 POST "/v1/denoise?model=rgb" image/png "$T/c32.png" "${AJ[@]}"
cap 422 POST "/v1/denoise?model=mlp" image/png "$T/g30.png"
cap 404 POST "/v1/denoise?model=nope" image/png "$T/g28.png"
cap 400 POST "/v1/denoise?model=sr" image/png "$T/g28.png"
cap 400 POST "/v1/denoise?resize=maybe" image/png "$T/g28.png"
cap 400 POST "/v1/denoise?encoding=gif" image/png "$T/g28.png"
cap 400 POST /v1/denoise image/png "$T/garbage"
cap 400 POST /v1/denoise $J "$T/broken.json"
cap 413 POST /v1/denoise $J "$T/wide.json"
cap 413 POST /v1/denoise image/png "$T/big.png"
cap 413 POST /v1/denoise application/octet-stream "$T/huge.bin"
cap 400 POST /v1/denoise - -
cap 405 GET /v1/denoise - -

cap 200 POST /v1/inpaint image/png "$T/hole28.png"
cap 200 POST /v1/inpaint $J "$T/inp.json" "${AJ[@]}"
cap 400 POST /v1/inpaint image/png "$T/g28.png"
cap 405 GET /v1/inpaint - -

cap 200 POST /v1/superres image/png "$T/g14.png"
cap 200 POST /v1/superres image/png "$T/g14.png" "${AJ[@]}"
cap 200 POST /v1/superres image/png "$T/g28.png"
cap 404 POST "/v1/superres?model=nope" image/png "$T/g14.png"
cap 405 GET /v1/superres - -

cap 200 POST /v1/score image/png "$T/g28.png"
cap 200 POST "/v1/score?threshold=0.5&heatmap=1" image/png "$T/g28.png"
cap 200 POST "/v1/score?heatmap=1" image/png "$T/g28.png" -H 'Accept: image/png'
cap 200 POST "/v1/score?model=mlp" $J "$T/batch.json"
cap 200 POST "/v1/score?model=mlp" image/png "$T/g28.png"
cap 400 POST "/v1/score?threshold=x" image/png "$T/g28.png"
cap 400 POST "/v1/score?heatmap=2" image/png "$T/g28.png"
cap 422 POST "/v1/score?model=mlp" image/png "$T/g30.png"
cap 405 GET /v1/score - -

cap 200 POST "/v1/encode?model=mlp" image/png "$T/g28.png"
cap 200 POST "/v1/encode?model=mlp" $J "$T/batch.json"
cap 200 POST /v1/encode image/png "$T/g28.png"
cap 400 POST "/v1/encode?model=sr" image/png "$T/g28.png"
cap 422 POST "/v1/encode?model=mlp" image/png "$T/g30.png"
cap 405 GET /v1/encode - -

cap 200 POST "/v1/decode?model=mlp" $J "$T/lat.json"
cap 200 POST "/v1/decode?model=mlp" $J "$T/lat.json" "${AJ[@]}"
cap 200 POST "/v1/decode?model=mlp" $J "$T/lats.json"
cap 400 POST "/v1/decode?model=mlp" $J "$T/lat2.json"
cap 405 GET /v1/decode - -

cap 200 POST /v1/interpolate $J "$T/two.json"
cap 200 POST "/v1/interpolate?steps=3" $J "$T/two.json" "${AJ[@]}"
cap 400 POST /v1/interpolate image/png "$T/g28.png"
cap 400 POST "/v1/interpolate?steps=1" $J "$T/two.json"
cap 413 POST "/v1/interpolate?steps=8" $J "$T/two.json"
cap 405 GET /v1/interpolate - -

cap 200 POST /v1/admin/reload - -
cap 405 GET /v1/admin/reload - -

# asynchronous requests: 202, status, result (a PNG and an error, as sync), delete
PA=(-H 'Prefer: respond-async')
jobloc() { tr -d '\r' <"$T/r$N.hdrs" | sed -n 's/^[Ll]ocation: //p'; }
jobwait() { # the job at $1 finished
    for _ in $(seq 600); do
        curl -s "$URL$1" | grep -q '"status":"\(done\|failed\)"' && return 0
        sleep 0.1
    done
}
cap 202 POST /v1/denoise image/png "$T/g28.png" "${PA[@]}"
JL=$(jobloc)
cap 200 GET "$JL" - -
jobwait "$JL"
cap 200 GET "$JL/result" - -
cap 200 DELETE "$JL" - -
cap 404 GET "$JL" - -
cap 404 GET "$JL/result" - -
cap 404 DELETE "$JL" - -
cap 405 POST "$JL" - -
cap 202 POST /v1/score image/png "$T/g28.png" "${PA[@]}"
cap 202 POST /v1/denoise image/png "$T/garbage" "${PA[@]}"
JL=$(jobloc)
jobwait "$JL"
cap 400 GET "$JL/result" - -

cap 200 GET /v2 - -
cap 405 POST /v2 - -
cap 200 GET /v2/health/live - -
cap 200 GET /v2/health/ready - -
cap 405 POST /v2/health/live - -
cap 200 GET /v2/models/mlp - -
cap 200 GET /v2/models/conv - -
cap 404 GET /v2/models/nope - -
cap 200 GET /v2/models/mlp/ready - -
cap 404 GET /v2/models/nope/ready - -
cap 200 POST /v2/models/mlp/infer $J "$T/v2.json"
cap 200 POST /v2/models/mlp/infer $J "$T/v2lat.json"
cap 400 POST /v2/models/mlp/infer $J "$T/v2bad.json"
cap 400 POST /v2/models/mlp/infer $J "$T/broken.json"
cap 400 POST /v2/models/mlp/infer - -
cap 404 POST /v2/models/nope/infer $J "$T/v2.json"
cap 413 POST /v2/models/mlp/infer $J "$T/huge.bin"
cap 422 POST /v2/models/mlp/infer $J "$T/v2shape.json"
cap 405 GET /v2/models/mlp/infer - -
stop_daed

# ---- API key: 401 on every guarded route, health stays open
start_daed key --models "$T/models" --workers 1 --api-key 'k3y' --openapi "$ROOT/openapi.yaml"
for p in /metrics /openapi.yaml /v1/models /v1/models/conv /v2 /v2/models/mlp /v2/models/mlp/ready; do
    cap 401 GET "$p" - -
done
for p in /v1/denoise /v1/inpaint /v1/superres /v1/score /v1/encode /v1/interpolate /v2/models/mlp/infer; do
    cap 401 POST "$p" image/png "$T/g28.png"
done
cap 401 POST /v1/decode $J "$T/lat.json"
cap 401 POST /v1/admin/reload - -
cap 200 GET /healthz - -
cap 200 GET / - -
cap 200 GET /web/app.js - -
cap 200 GET /v1/models - - -H 'Authorization: Bearer k3y'
stop_daed

# ---- PyTorch-written model files (no calibration, other metadata)
mkdir -p "$T/fixtures"
cp tests/fixtures/*.safetensors "$T/fixtures/"
start_daed fixtures --models "$T/fixtures" --workers 1 --openapi "$T/no-such-file.yaml"
cap 200 GET /v1/models - -
for n in $(sed -n 's/.*model \([^ ]*\) loaded.*/\1/p' "$LOG"); do cap 200 GET "/v1/models/$n" - -; cap 200 GET "/v2/models/$n" - -; done
cap 404 GET /openapi.yaml - -
stop_daed
start_daed noweb --models "$T/fixtures" --workers 1 --web-dir "$T/no-such-dir"
cap 200 GET / - -
cap 200 GET /docs - -
stop_daed

# ---- no models: not ready
mkdir -p "$T/empty"
start_daed empty --models "$T/empty" --workers 1
cap 503 GET /readyz - -
cap 503 GET /v2/health/ready - -
cap 404 POST /v1/denoise image/png "$T/g28.png"
cap 200 GET /v1/models - -
stop_daed

# ---- a full queue: 503 + Retry-After (v1 and v2 shapes)
start_daed busy --models "$T/models" --workers 1 --queue-size 1 --max-batch 1 --access-log 0
BIGT=$(for _ in $(seq 16384); do echo 0.5; done | paste -sd, -)
echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,1,128,128],\"datatype\":\"FP32\",\"data\":[$BIGT]}]}" >"$T/v2big.json"
BM="$T/burst"
: >"$BM"
pids=()
for i in $(seq 12); do
    ( if [ $((i % 4)) = 0 ]; then p=/v2/models/conv/infer f="$T/v2big.json" ct=$J; else p="/v1/denoise?model=conv" f="$T/large.png" ct=image/png; fi
      code=$(curl -sS -o "$T/b$i.body" -D "$T/b$i.hdrs" -w '%{http_code}' --max-time 120 \
          -H "Content-Type: $ct" --data-binary "@$f" "$URL$p") || code=000
      printf 'POST\t%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$ct" "$f" "$code" "$T/b$i.hdrs" "$T/b$i.body" >"$T/b$i.line" ) &
    pids+=($!)
done
wait "${pids[@]}"
cat "$T"/b*.line >>"$M"
grep -qP '^POST\t/v1/denoise[^\t]*\t[^\t]*\t[^\t]*\t503\t' "$M" && ok "a burst met a full queue (503)" ||
    fail "no 503 in the burst: $(cut -f2,5 "$T"/b*.line | tr '\n' ' ')"
stop_daed

# ---- the check itself
if "$PY" tests/e2e/openapi_check.py openapi.yaml "$M" >"$T/check.out" 2>&1; then
    ok "$(tail -1 "$T/check.out")"
else
    grep -v '^ok: ' "$T/check.out" >&2
    fail "responses disagree with openapi.yaml"
fi
finish
