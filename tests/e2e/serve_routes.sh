#!/usr/bin/env bash
# serve_routes.sh — every daed route and error path against the real daemon on loopback.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
"$B/helpers/mkpng" "$T/g30.png" 30 30 1
"$B/helpers/mkpng" "$T/g14.png" 14 14 1
"$B/helpers/mkpng" "$T/c32.png" 32 32 3
"$B/helpers/mkpng" "$T/hole28.png" 28 28 1 hole
"$B/helpers/mkpng" "$T/big.png" 128 128 1

# ---- configuration errors and --help
if "$B/daed" --port 99999 >"$T/cfg.out" 2>&1; then fail "--port 99999 accepted"; else
    grep -qF -- "--port: 99999 is out of range, expected 0 to 65535" "$T/cfg.out" &&
        ok "bad option refused with range" || fail "bad option message: $(cat "$T/cfg.out")"; fi
if DAED_WORKERS=abc "$B/daed" >"$T/cfg.out" 2>&1; then fail "DAED_WORKERS=abc accepted"; else
    grep -qF "environment DAED_WORKERS" "$T/cfg.out" && ok "bad environment refused" ||
        fail "env message: $(cat "$T/cfg.out")"; fi
"$B/daed" --help >"$T/help.out"
missing=""
for o in --port DAED_PORT --models DAED_MODELS --workers --max-batch --batch-delay-us \
    --api-key --max-body --max-pixels --conn-timeout --per-ip-limit --shutdown-timeout; do
    grep -qF -- "$o" "$T/help.out" || missing="$missing $o"
done
[ -z "$missing" ] && ok "--help lists the options" || fail "--help lacks:$missing"

start_daed main --models "$T/models" --workers 2 --max-body 200k --max-pixels 5000 \
    --max-batch-images 4 --openapi "$ROOT/openapi.yaml"
grep -q "model conv loaded: file conv.safetensors, tasks denoise,inpaint,encode,score, input \[1,28,28\]" "$LOG" &&
    ok "start-up log names each model" || fail "model log line missing"
grep -q "openblas: " "$LOG" && ok "openblas config logged" || fail "no openblas log line"

# ---- health, readiness, metrics, docs
req GET /healthz; expect 200 "healthz"
req GET /readyz; expect 200 "readyz"; body_has '"models":4' "readyz counts models"
req GET /v2/health/live; expect 200 "v2 live"
req GET /v2/health/ready; expect 200 "v2 ready"; body_has '"ready":true' "v2 ready body"
req GET /v2; expect 200 "v2 server metadata"; body_has '"name":"daed"' "v2 server name"
req GET /openapi.yaml; expect 200 "openapi"; body_has "openapi: 3" "openapi document"
req HEAD /healthz -I; expect 200 "HEAD healthz"

# ---- models
req GET /v1/models; expect 200 "models list"
body_has '"name":"conv"' "list has conv"; body_has '"denoise":"conv"' "default denoise is the first by name"
body_has '"superres":"sr"' "default superres"
req GET /v1/models/conv; expect 200 "model detail"
body_has '"calibration":{"score":"mse","threshold":0.12' "detail has calibration"
body_has '"training":{' "detail has training facts"; body_has '"parameters":1321' "detail has parameters"
req GET /v1/models/nope; expect 404 "unknown model detail"; body_has '"code":"not_found"' "404 code"
req GET /v2/models/mlp; expect 200 "v2 model metadata"
body_has '"inputs":[{"name":"input","datatype":"FP32","shape":[-1,1,28,28]}]' "v2 input tensor"
req GET /v2/models/mlp/ready; expect 200 "v2 model ready"
req GET /v2/models/nope/ready; expect 404 "v2 unknown model ready"

# ---- routing errors
req GET /nope; expect 404 "unknown route"; body_has '{"error":{"code":"not_found","message":' "error shape"
req GET /v1/denoise; expect 405 "GET on a POST route"; hdr_has "Allow: POST" "405 Allow header"
req DELETE /healthz; expect 405 "DELETE healthz"; hdr_has "Allow: GET, HEAD" "Allow GET, HEAD"

# ---- denoise
req POST /v1/denoise --data-binary @"$T/g28.png" -H 'Content-Type: image/png'
expect 200 "denoise PNG"; hdr_has "Content-Type: image/png" "PNG answer"
is_png "$T/body" && [ "$(png_size "$T/body")" = "28 28" ] && ok "denoise answer is a 28x28 PNG" || fail "denoise answer not a 28x28 PNG"
req POST "/v1/denoise?model=mlp" --data-binary @"$T/g28.png" -H 'Accept: application/json'
expect 200 "denoise JSON answer"; body_has '"model":"mlp","image":{"width":28,"height":28,"channels":1,"pixels":[' "JSON image"
PIX=$(for _ in $(seq 784); do echo 0.25; done | paste -sd, -)
echo "{\"width\":28,\"height\":28,\"channels\":1,\"pixels\":[$PIX]}" >"$T/pix.json"
req POST /v1/denoise --data-binary @"$T/pix.json" -H 'Content-Type: application/json'
expect 200 "denoise JSON pixels -> PNG"; is_png "$T/body" && ok "PNG for JSON input" || fail "not PNG"
B64=$(base64 -w0 "$T/g28.png")
echo "{\"images\":[{\"png\":\"$B64\"},{\"width\":28,\"height\":28,\"channels\":1,\"pixels\":[$PIX]}]}" >"$T/batch.json"
req POST /v1/denoise --data-binary @"$T/batch.json" -H 'Content-Type: application/json'
expect 200 "denoise batch"; body_has '"images":[{"width":28' "batch answers a list"
[ "$(grep -o '"width":28' "$T/body" | wc -l)" = 2 ] && ok "two images back" || fail "batch count"
req POST "/v1/denoise?model=rgb" --data-binary @"$T/c32.png"
expect 200 "denoise colour"; [ "$(png_size "$T/body")" = "32 32" ] && ok "rgb 32x32" || fail "rgb size"
req POST "/v1/denoise?model=conv" --data-binary @"$T/c32.png"
expect 200 "colour to gray model (fully convolutional, 32 = 8*4)"
req POST "/v1/denoise?model=mlp" --data-binary @"$T/g30.png"
expect 422 "size mismatch"; body_has "expected (1,28,28)" "422 names the expected size"
req POST "/v1/denoise?model=mlp&resize=1" --data-binary @"$T/g30.png"
expect 200 "resize=1"; [ "$(png_size "$T/body")" = "30 30" ] && ok "resized back to 30x30" || fail "resize back"
req POST "/v1/denoise?model=nope" --data-binary @"$T/g28.png"; expect 404 "unknown model"
req POST "/v1/denoise?model=sr" --data-binary @"$T/g28.png"; expect 400 "model without the task"
body_has "does not declare the task denoise" "task message"
req POST "/v1/denoise?resize=maybe" --data-binary @"$T/g28.png"; expect 400 "bad resize flag"

# ---- inpaint: known pixels kept
req POST /v1/inpaint --data-binary @"$T/hole28.png"; expect 200 "inpaint alpha mask"
req POST /v1/inpaint --data-binary @"$T/g28.png"; expect 400 "inpaint without mask"; body_has "needs a mask" "mask message"
MASK=$(for i in $(seq 0 783); do if [ $((i % 28)) -lt 14 ]; then echo 1; else echo 0; fi; done | paste -sd, -)
echo "{\"width\":28,\"height\":28,\"channels\":1,\"pixels\":[$PIX],\"mask\":[$MASK]}" >"$T/inp.json"
req POST /v1/inpaint --data-binary @"$T/inp.json" -H 'Content-Type: application/json' -H 'Accept: application/json'
expect 200 "inpaint JSON mask"
KEPT=$(grep -o '"pixels":\[[^]]*\]' "$T/body" | sed 's/"pixels":\[//; s/\]//' | tr ',' '\n' |
    awk '{ if ((NR - 1) % 28 < 14 && $1 != 0.25) bad++; if ((NR - 1) % 28 >= 14 && $1 == 0.25) same++ }
         END { print bad + 0, same + 0, NR }')
[ "$KEPT" != "${KEPT#0 }" ] && [ "${KEPT##* }" = 784 ] && ok "inpaint keeps every known pixel ($KEPT)" || fail "paste-back: $KEPT"

# ---- superres
req POST /v1/superres --data-binary @"$T/g14.png"; expect 200 "superres"
[ "$(png_size "$T/body")" = "28 28" ] && ok "superres doubles the size" || fail "superres size $(png_size "$T/body")"

# ---- score
req POST /v1/score --data-binary @"$T/g28.png"; expect 200 "score"
body_has '"model":"conv","score":' "score fields"; body_has '"threshold":0.12' "calibrated threshold"
body_has '"is_anomaly":' "is_anomaly"; body_has '"percentile":' "percentile"
req POST "/v1/score?threshold=0" --data-binary @"$T/g28.png"; body_has '"is_anomaly":true' "threshold override"
req POST "/v1/score?threshold=x" --data-binary @"$T/g28.png"; expect 400 "bad threshold"
req POST "/v1/score?heatmap=1" --data-binary @"$T/g28.png"; body_has '"heatmap":"iVBOR' "heatmap as base64 PNG"
req POST "/v1/score?heatmap=1" --data-binary @"$T/g28.png" -H 'Accept: image/png'
expect 200 "heatmap PNG body"; is_png "$T/body" && ok "heatmap is a PNG" || fail "heatmap not PNG"
hdr_has "X-Heatmap-Max:" "heatmap scale header"
req POST "/v1/score?model=mlp" --data-binary @"$T/batch.json" -H 'Content-Type: application/json'
expect 200 "score batch"; body_has '"results":[{"score":' "score list"; body_has '"threshold":null' "uncalibrated threshold is null"

# ---- encode / decode / interpolate
req POST "/v1/encode?model=mlp" --data-binary @"$T/g28.png"; expect 200 "encode"
body_has '"shape":[8,1,1],"latent":[' "latent"
LAT=$(grep -o '"latent":\[[^]]*\]' "$T/body" | sed 's/"latent"://')
echo "{\"latent\":$LAT}" >"$T/lat.json"
req POST "/v1/decode?model=mlp" --data-binary @"$T/lat.json" -H 'Content-Type: application/json'
expect 200 "decode"; [ "$(png_size "$T/body")" = "28 28" ] && ok "decoded 28x28" || fail "decode size"
req POST "/v1/decode?model=mlp" --data-binary '{"latent":[1,2]}' -H 'Content-Type: application/json'
expect 400 "decode wrong length"; body_has "2 values, expected 8" "decode length message"
echo "{\"images\":[{\"png\":\"$B64\"},{\"png\":\"$B64\"}],\"steps\":5}" >"$T/two.json"
req POST /v1/interpolate --data-binary @"$T/two.json" -H 'Content-Type: application/json'
expect 200 "interpolate strip"; [ "$(png_size "$T/body")" = "140 28" ] && ok "strip of 5 steps" || fail "strip size $(png_size "$T/body")"
req POST "/v1/interpolate?steps=3" --data-binary @"$T/two.json" -H 'Accept: application/json'
expect 200 "interpolate JSON"; body_has '"steps":3' "steps override"
req POST /v1/interpolate --data-binary @"$T/g28.png"; expect 400 "interpolate needs two images"
req POST "/v1/interpolate?steps=8" --data-binary @"$T/two.json"; expect 413 "steps x pixels over --max-pixels"

# ---- v2 inference
ONES=$(for _ in $(seq 784); do echo 0.5; done | paste -sd, -)
echo "{\"id\":\"r1\",\"inputs\":[{\"name\":\"input\",\"shape\":[1,1,28,28],\"datatype\":\"FP32\",\"data\":[$ONES]}]}" >"$T/v2.json"
req POST /v2/models/mlp/infer --data-binary @"$T/v2.json" -H 'Content-Type: application/json'
expect 200 "v2 infer"; body_has '"model_name":"mlp","model_version":"1","id":"r1","outputs":[{"name":"output","shape":[1,1,28,28],"datatype":"FP32","data":[' "v2 answer fields"
echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[$ONES]}],\"outputs\":[{\"name\":\"latent\"}]}" >"$T/v2b.json"
req POST /v2/models/mlp/infer --data-binary @"$T/v2b.json"; expect 200 "v2 latent output"
body_has '"outputs":[{"name":"latent","shape":[1,8]' "v2 latent"
req POST /v2/models/mlp/infer --data-binary '{"inputs":[{"name":"input","shape":[1,784],"datatype":"INT8","data":[1]}]}'
expect 400 "v2 wrong datatype"; body_has '{"error":"inputs[0].datatype: expected \"FP32\""}' "v2 error shape"
req POST /v2/models/nope/infer --data-binary @"$T/v2.json"; expect 404 "v2 unknown model"

# ---- hostile input
req POST /v1/denoise --data-binary 'not an image at all'; expect 400 "garbage body"
head -c 60 "$T/g28.png" >"$T/trunc.png"
req POST /v1/denoise --data-binary @"$T/trunc.png"; expect 400 "truncated PNG"
req POST /v1/denoise --data-binary '{"png":"@@@@"}' -H 'Content-Type: application/json'
expect 400 "bad base64"; body_has "base64" "base64 message"
req POST /v1/denoise --data-binary '{"width":28,' -H 'Content-Type: application/json'
expect 400 "malformed JSON"; body_has "invalid JSON at byte" "JSON position"
DEEP=$(printf '[%.0s' $(seq 100))
req POST /v1/denoise --data-binary "{\"a\":$DEEP" -H 'Content-Type: application/json'
expect 400 "JSON too deep"; body_has "nesting deeper than 16" "depth message"
req POST /v1/denoise --data-binary '{"width":28,"height":28,"channels":1,"pixels":[1e999]}' -H 'Content-Type: application/json'
expect 400 "pixel not finite"; body_has 'expected a finite number' "finite message"
req POST /v1/denoise --data-binary '{"width":100000,"height":28,"channels":1,"pixels":[]}' -H 'Content-Type: application/json'
expect 413 "width over the cap"
req POST /v1/denoise --data-binary @"$T/big.png"; expect 413 "decoded pixels over --max-pixels"
body_has "5000" "names the pixel limit"
head -c 300000 /dev/zero >"$T/huge.bin"
req POST /v1/denoise --data-binary @"$T/huge.bin"; expect 413 "body over --max-body"
FIVE="{\"images\":[{\"png\":\"$B64\"},{\"png\":\"$B64\"},{\"png\":\"$B64\"},{\"png\":\"$B64\"},{\"png\":\"$B64\"}]}"
req POST /v1/denoise --data-binary "$FIVE" -H 'Content-Type: application/json'
expect 400 "batch over --max-batch-images"
req POST /v1/denoise; expect 400 "empty body"

# A client that stops mid-request does not hold up anyone else.
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
printf 'POST /v1/denoise HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc' >&3
printf '\x00\xff garbage \r\n\r\n' | (exec 4<>"/dev/tcp/127.0.0.1/$PORT"; cat >&4; exec 4>&-) || true
req GET /healthz; expect 200 "served while a client stalls"
exec 3>&-

# ---- metrics
req GET /metrics; expect 200 "metrics"
body_has 'daed_requests_total{endpoint="/v1/denoise",status="200"}' "requests by endpoint and status"
body_has 'daed_request_duration_seconds_bucket{endpoint="/v1/denoise",le="+Inf"}' "latency histogram"
body_has 'daed_batch_size_bucket{le="1"}' "batch-size histogram"
body_has 'daed_inference_seconds_total' "inference seconds"
body_has 'daed_queue_depth 0' "queue depth"
body_has 'daed_models_loaded 4' "models loaded"
body_has 'daed_reload_failures_total 0' "reload failures"

# ---- admin reload and access log
req POST /v1/admin/reload; expect 200 "admin reload"; body_has '"unchanged":4' "reload report"
grep -q 'access POST /v1/denoise 200 [0-9]* [0-9]*us model=conv batch=1' "$LOG" && ok "access log line" || fail "no access log line"

# Start-up errors: the port taken, the model folder missing.
if timeout 30 "$B/daed" --bind 127.0.0.1 --port "$PORT" --models "$T/models" >"$T/dup.out" 2>&1; then
    fail "a second daed on a taken port started"; else
    grep -q "cannot listen on 127.0.0.1:$PORT" "$T/dup.out" && ok "taken port refused with a message" ||
        fail "taken port: $(cat "$T/dup.out")"; fi
if timeout 30 "$B/daed" --port 0 --models "$T/nowhere" >"$T/nodir.out" 2>&1; then
    fail "daed started without its model folder"; else
    grep -q "model folder $T/nowhere" "$T/nodir.out" && ok "missing model folder refused" ||
        fail "missing folder: $(cat "$T/nodir.out")"; fi

stop_daed
[ "$STOP_RC" = 0 ] && ok "SIGTERM exits 0" || fail "exit status $STOP_RC"

# ---- API key
start_daed key --models "$T/models" --workers 1 --api-key 'k3y-secret' --default-denoise mlp
req GET /healthz; expect 200 "health without key"
req GET /readyz; expect 200 "readyz without key"
req GET /v1/models; expect 401 "models without key"; hdr_has "WWW-Authenticate: Bearer" "401 challenge"
req GET /v1/models -H 'Authorization: Bearer wrong'; expect 401 "wrong key"
req GET /v1/models -H 'Authorization: Bearer k3y-secret'; expect 200 "right key"
req GET /metrics; expect 401 "metrics need the key"
req POST /v1/admin/reload; expect 401 "reload needs the key"
req POST /v1/admin/reload -H 'Authorization: Bearer k3y-secret'; expect 200 "reload with the key"
req POST /v1/denoise --data-binary @"$T/g28.png"; expect 401 "inference needs the key"
req POST /v1/denoise --data-binary @"$T/g28.png" -H 'Authorization: Bearer k3y-secret'; expect 200 "inference with the key"
req POST /v1/denoise --data-binary @"$T/g28.png" -H 'Authorization: Bearer k3y-secret' -H 'Accept: application/json'
body_has '"model":"mlp"' "--default-denoise picks the model"
req GET /v1/models -H 'Authorization: Bearer k3y-secret'; body_has '"denoise":"mlp"' "defaults show the option"
stop_daed
grep -q "k3y-secret" "$LOG" && fail "the API key appears in the log" || ok "API key never logged"

# ---- model files written by PyTorch (tests/fixtures): loaded and served; data files skipped
mkdir -p "$T/fixtures"
cp tests/fixtures/*.safetensors "$T/fixtures/"
start_daed fixtures --models "$T/fixtures" --workers 1
grep -q "model fixture-mlp loaded" "$LOG" && ok "PyTorch-written model loaded" || fail "fixture-mlp not loaded"
grep -q "model file mlp.io.safetensors skipped: .*no __metadata__" "$LOG" &&
    ok "a non-model safetensors file is skipped with the reason" || fail "io file not reported"
req POST "/v1/denoise?model=fixture-mlp" --data-binary @"$T/g28.png"; expect 200 "fixture model denoises"
req POST "/v1/score?model=fixture-mlp" --data-binary @"$T/g28.png"; expect 200 "fixture model scores"
stop_daed

# ---- no models: not ready
mkdir -p "$T/empty"
start_daed empty --models "$T/empty" --workers 1
req GET /readyz; expect 503 "readyz with no model"
req GET /v2/health/ready; expect 503 "v2 ready with no model"
req POST /v1/denoise --data-binary @"$T/g28.png"; expect 404 "no model for the task"
kill -INT "$PID"
STOP_RC=0
wait "$PID" || STOP_RC=$?
[ "$STOP_RC" = 0 ] && ok "SIGINT exits 0" || fail "SIGINT exit $STOP_RC"

finish
