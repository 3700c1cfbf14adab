#!/usr/bin/env bash
# readme-examples.sh — runs every curl example of README.md against a real daed and prints
# each command with its output, to paste into the README.
#
# Starts build/daed on a free loopback port with ./models (and, for the error examples, a
# few short-lived daemons with bad settings), makes the input images from the Fashion-MNIST
# evaluation set (data/eval, make eval-data) with build/docs/f32png, and runs each example in
# a scratch directory. Commands are printed with http://localhost:8080, the address `make run`
# serves; they run against the real port. Long number arrays are cut after 4 values
# ("..."), and long lines after 400 characters ("... (N more characters)").
# Usage: scripts/readme-examples.sh   (BUILD=build, MODELS=models, EVAL=data/eval)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
MODELS=${MODELS:-models}
EVAL=${EVAL:-data/eval}
DAED=$ROOT/$BUILD/daed
F32=$ROOT/$BUILD/docs/f32png
for f in "$DAED" "$F32"; do
    [ -x "$f" ] || { echo "readme-examples: $f not built (make readme-examples)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "readme-examples: needs jq (apt-get install jq)" >&2; exit 1; }
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# start NAME ARGS...: a daed on a free loopback port, run in $CWD (default the repository);
# sets PORT (0 if it did not come up).
start() {
    local name=$1; shift
    rm -f "$T/$name.port"
    (cd "${CWD:-$ROOT}" && exec "$DAED" --bind 127.0.0.1 --port 0 --port-file "$T/$name.port" \
        --openapi "$ROOT/openapi.yaml" "$@" >"$T/$name.log" 2>&1) &
    PIDS+=($!)
    PORT=0
    for _ in $(seq 100); do
        [ -s "$T/$name.port" ] && { PORT=$(cat "$T/$name.port"); return; }
        kill -0 "${PIDS[-1]}" 2>/dev/null || return
        sleep 0.1
    done
}

# Cut long number arrays and long lines.
trim() {
    sed -E 's/((-?[0-9][0-9.e+-]*,){4})(-?[0-9][0-9.e+-]*,)+(-?[0-9][0-9.e+-]*)/\1.../g' |
        awk '{ if (length($0) > 400) printf "%s... (%d more characters)\n", substr($0, 1, 400),
               length($0) - 400; else print }'
}

# ex 'COMMAND': print it (as the README shows it), run it against the real port, print output.
ex() {
    echo "\$ $1"
    (cd "$T/work" && eval "${1//http:\/\/localhost:8080/http://127.0.0.1:$PORT}") 2>&1 | trim
    echo
}
section() { printf '\n#### %s\n\n' "$*"; }

# Inputs: Fashion-MNIST evaluation images (never used for training).
mkdir -p "$T/work"
W=$T/work
"$F32" "$EVAL/fmnist_clean.f32" 28 28 0 "$W/shoe.png"
"$F32" "$EVAL/fmnist_clean.f32" 28 28 1 "$W/pullover.png"
"$F32" "$EVAL/fmnist_denoise-g20_input.f32" 28 28 0 "$W/noisy.png"
"$F32" "$EVAL/fmnist_inpaint-14_input.f32" 28 28 0 "$W/holes.png" \
    --mask "$EVAL/fmnist_inpaint-14_mask.f32"
"$F32" "$EVAL/fmnist_sr2_input.f32" 14 14 0 "$W/small.png"
cp "$ROOT/tests/fixtures/grad_rgb.png" "$W/rgb.png"

start main --models "$ROOT/$MODELS"
[ "$PORT" != 0 ] || { cat "$T/main.log" >&2; exit 1; }
echo "(daed $("$DAED" --version | cut -d' ' -f2) with $MODELS/, $(date -u +%Y-%m-%d))"

section "health, readiness, metrics, the API document"
ex 'curl -s http://localhost:8080/healthz'
ex 'curl -s http://localhost:8080/readyz'
ex "curl -s http://localhost:8080/metrics | grep -E '^daed_(requests_total|models_loaded)' | head -4"
ex 'curl -s http://localhost:8080/openapi.yaml | head -3'

section "models"
ex "curl -s http://localhost:8080/v1/models | jq -c '.models[] | [.name, .tasks, .input]'"
ex "curl -s http://localhost:8080/v1/models | jq -c .defaults"
ex "curl -s http://localhost:8080/v1/models | jq -c .denoise_defaults"
ex "curl -s http://localhost:8080/v1/models/fmnist-denoise | jq -c '{name, tasks, input, parameters, file_bytes, calibration: .calibration.score, keys: keys}'"

section "denoise, inpaint, superres (PNG in, PNG out)"
ex "curl -s --data-binary @noisy.png -H 'Content-Type: image/png' http://localhost:8080/v1/denoise -o denoised.png -w '%{http_code} %{content_type} %{size_download} bytes\n'"
ex "curl -s --data-binary @noisy.png -H 'Accept: application/json' 'http://localhost:8080/v1/denoise?model=fmnist-denoise'"
ex "curl -s --data-binary @holes.png http://localhost:8080/v1/inpaint -o inpainted.png -w '%{http_code} %{content_type} %{size_download} bytes\n'"
ex "curl -s --data-binary @small.png http://localhost:8080/v1/superres -o big.png -w '%{http_code} %{content_type} %{size_download} bytes\n' && file big.png"
ex "curl -s --data-binary @rgb.png -H 'Accept: image/jpeg' 'http://localhost:8080/v1/denoise?model=photo-denoise-rgb' -o rgb.jpg -w '%{http_code} %{content_type} %{size_download} bytes\n'"
ex "curl -s -o /dev/null -D - --data-binary @rgb.png http://localhost:8080/v1/denoise | grep -i '^x-model' | tr -d '\\r'"

section "JSON bodies and batches"
ex "curl -s -H 'Content-Type: application/json' -H 'Accept: application/json' -d \"{\\\"png\\\":\\\"\$(base64 -w0 noisy.png)\\\"}\" http://localhost:8080/v1/denoise | jq -c '.image.png = (.image.png[0:24] + \"...\")'"
ex "jq -n --arg a \"\$(base64 -w0 shoe.png)\" --arg b \"\$(base64 -w0 pullover.png)\" '{images: [{png: \$a}, {png: \$b}]}' > batch.json && curl -s -d @batch.json http://localhost:8080/v1/denoise | jq -c '[.images[] | {width, height, png: (.png[0:16] + \"...\")}]'"
ex "jq -n '{width: 64, height: 64, channels: 1, pixels: [range(4096) | (. % 8) / 5 - 0.2]}' | curl -s -H 'Accept: application/json' -d @- http://localhost:8080/v1/denoise | jq -c '{model, channels: .image.channels, min: (.image.pixels | min), max: (.image.pixels | max)}'"

section "latent codes"
ex 'curl -s --data-binary @shoe.png http://localhost:8080/v1/encode'
ex "curl -s --data-binary @shoe.png http://localhost:8080/v1/encode | jq -c '{latent}' | curl -s -d @- http://localhost:8080/v1/decode -o decoded.png -w '%{http_code} %{content_type} %{size_download} bytes\n'"
ex "jq -n --arg a \"\$(base64 -w0 shoe.png)\" --arg b \"\$(base64 -w0 pullover.png)\" '{images: [{png: \$a}, {png: \$b}], steps: 6}' | curl -s -d @- http://localhost:8080/v1/interpolate -o strip.png -w '%{http_code} %{content_type} %{size_download} bytes\n' && file strip.png"

section "anomaly score"
ex 'curl -s --data-binary @shoe.png http://localhost:8080/v1/score'
ex "curl -s --data-binary @noisy.png 'http://localhost:8080/v1/score?model=fmnist-ae&heatmap=1' | jq -c '.heatmap = (.heatmap[0:16] + \"...\")'"

section "reload"
ex 'curl -s -X POST http://localhost:8080/v1/admin/reload'

section "KServe Open Inference Protocol v2"
ex 'curl -s http://localhost:8080/v2'
ex 'curl -s http://localhost:8080/v2/health/live -w "%{http_code}\n"'
ex 'curl -s http://localhost:8080/v2/health/ready -w "%{http_code}\n"'
ex 'curl -s http://localhost:8080/v2/models/fmnist-denoise'
ex 'curl -s http://localhost:8080/v2/models/fmnist-denoise/ready -w "%{http_code}\n"'
ex "jq -n '{inputs: [{name: \"input\", shape: [1,1,28,28], datatype: \"FP32\", data: [range(784) | 0.5]}]}' | curl -s -d @- http://localhost:8080/v2/models/fmnist-denoise/infer"

section "errors"
ex "curl -s -w ' %{http_code}\n' --data-binary @noisy.png 'http://localhost:8080/v1/denoise?model=nope'"
ex "curl -s -w ' %{http_code}\n' --data-binary @small.png 'http://localhost:8080/v1/encode'"
ex "curl -s -w ' %{http_code}\n' --data-binary @shoe.png 'http://localhost:8080/v1/inpaint'"
ex "curl -s -w ' %{http_code}\n' -d 'not an image' http://localhost:8080/v1/denoise"
ex "head -c 17000000 /dev/zero | curl -s -w ' %{http_code}\n' --data-binary @- http://localhost:8080/v1/denoise"
ex "curl -s -w ' %{http_code}\n' http://localhost:8080/v1/denoise"
ex "curl -s -w ' %{http_code}\n' http://localhost:8080/v1/nothing"

# 503: one worker, a queue of one, and several large photo requests at once.
"$F32" "$EVAL/fmnist_clean.f32" 28 28 2 "$W/tile.png" --scale 16
start busy --models "$ROOT/$MODELS" --workers 1 --queue-size 1 --access-log 0
if [ "$PORT" != 0 ]; then
    section "503 when the queue is full (daed --workers 1 --queue-size 1, 8 requests at once)"
    ex "for i in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null -D - --data-binary @tile.png 'http://localhost:8080/v1/denoise?model=photo-denoise' | grep -E '^(HTTP|Retry-After)' & done; wait"
fi

section "start-up problems (daed's log)"
mkdir -p "$T/mymodels"
cp "$ROOT/$MODELS/fmnist-sr2.safetensors" "$T/mymodels/"
head -c 3000 "$ROOT/$MODELS/fmnist-ae.safetensors" >"$T/mymodels/broken.safetensors"
echo '$ build/daed --port 8080   # while another process listens on 8080'
"$DAED" --bind 127.0.0.1 --port "$(cat "$T/main.port")" --models "$ROOT/$MODELS" 2>&1 |
    grep -vE ' info (model|daed starting|openblas)' | sed -E 's/[0-9]{5}/8080/g'
echo "exit status ${PIPESTATUS[0]}"
echo
echo '$ build/daed --models ./no-such-dir'
CWD=$T start nodir --models ./no-such-dir
sleep 0.5
grep -vE ' info (daed starting|openblas)' "$T/nodir.log"
echo
echo '$ build/daed --models ./mymodels   # one truncated file'
CWD=$T start bad --models ./mymodels
sleep 0.5
grep -vE ' info (daed starting|openblas)' "$T/bad.log"
echo
echo '$ build/daed --workers 1000'
"$DAED" --workers 1000 2>&1; echo "exit status $?"
