#!/usr/bin/env bash
# serve_bombs.sh — oversized and bomb inputs: a 100 MB body (sized and chunked), a PNG that
# claims 100000x100000 pixels, 1000:1 compressed PNGs, JSON nested a million deep, a JSON
# array of 10 million numbers, base64 with garbage, a batch over the limit, pixel counts
# that lie. Each gets its 4xx (or, for an endless chunked body, a hang-up) and daed keeps
# serving with bounded memory: peak RSS (VmHWM) is printed and checked.
source "$(dirname "$0")/lib.bash"
PY=/usr/bin/python3

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
# --max-body 32M so the 20 MB JSON array reaches the JSON scan (the 100 MB body does not).
start_daed bombs --models "$T/models" --workers 2 --access-log 0 --max-body 32M
rss() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$PID/status"; }
echo "RSS after start: $(rss VmRSS) kB"

# bomb NAME EXPECTED PATH FILE [curl args]: one request, its status and seconds.
bomb() {
    local name=$1 want=$2 path=$3 file=$4
    shift 4
    local out
    out=$(curl -sS -o "$T/body" -w '%{http_code} %{time_total}' --max-time 300 -X POST \
        --data-binary @"$file" "$URL$path" "$@" 2>"$T/curl.err") || true
    CODE=${out%% *}
    if [ "$CODE" = "$want" ]; then ok "$name -> $CODE in ${out#* } s"; else
        fail "$name: status $CODE (expected $want) $(head -c 300 "$T/body") $(cat "$T/curl.err")"; fi
}

"$PY" - "$T" <<'EOF'
import base64, json, struct, sys, zlib
T = sys.argv[1]
def chunk(k, b):
    return struct.pack(">I", len(b)) + k + b + struct.pack(">I", zlib.crc32(k + b) & 0xffffffff)
def png(w, h, idat):
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
# claims 100000 x 100000 (10^10 pixels) with 1 KB of data
open(T + "/claim.png", "wb").write(png(100000, 100000, zlib.compress(b"\0" * 100001)[:1024]))
# 1000:1 bombs: all-zero rows deflate about 1000:1
for name, side in (("bomb36m", 6000), ("bomb4m", 2000)):
    raw = (b"\0" * (side + 1)) * side
    z = zlib.compress(raw, 9)
    open(T + "/%s.png" % name, "wb").write(png(side, side, z))
    print("%s.png: %dx%d, %d bytes, ratio %d:1" % (name, side, side, len(z), len(raw) // len(z)))
open(T + "/deep.json", "w").write("[" * 1000000 + "]" * 1000000)
with open(T + "/array10m.json", "w") as f:
    f.write('{"width":28,"height":28,"channels":1,"pixels":[')
    f.write(",".join(["0"] * 10000000))
    f.write("]}")
png28 = base64.b64encode(open(T + "/g28.png", "rb").read()).decode()
open(T + "/garbage64.json", "w").write(json.dumps({"png": png28[:50] + "\u00e9*\x01!!" + png28[50:]}))
open(T + "/garbage64b.json", "w").write(json.dumps({"png": "====" + png28}))
open(T + "/batch65.json", "w").write(json.dumps({"images": [{"png": png28}] * 65}))
open(T + "/liar.json", "w").write('{"width":100000,"height":100000,"channels":1,"pixels":[0,1]}')
open(T + "/v2liar.json", "w").write(json.dumps({"inputs": [{"name": "input", "datatype": "FP32",
    "shape": [1000000, 1, 28, 28], "data": [0.5] * 784}]}))
EOF
head -c 100M /dev/zero >"$T/100m.bin"

bomb "100 MB body" 413 /v1/denoise "$T/100m.bin" -H 'Content-Type: image/png'
body_has "exceeds the limit of 33554432 bytes" "413 names --max-body"
# Chunked, no length: daed reads and drops up to --max-body, then hangs up (it cannot
# answer in the middle of a body); any answer must be a 413, never 2xx or 5xx.
out=$(curl -sS -o "$T/body" -w '%{http_code} %{time_total}' --max-time 300 -X POST \
    -H 'Transfer-Encoding: chunked' --data-binary @"$T/100m.bin" "$URL/v1/denoise" 2>/dev/null) || true
case "${out%% *}" in 413 | 000 | 100) ok "100 MB chunked body -> ${out%% *} (413, or a hang-up: 000, or 100 when after 100 Continue) in ${out#* } s" ;;
*) fail "100 MB chunked body: status ${out%% *}" ;; esac
bomb "PNG claiming 100000x100000" 413 /v1/denoise "$T/claim.png" -H 'Content-Type: image/png'
bomb "1000:1 PNG of 6000x6000 (36 Mpx)" 413 /v1/denoise "$T/bomb36m.png" -H 'Content-Type: image/png'
bomb "1000:1 PNG of 2000x2000 (4 Mpx, within --max-pixels)" 422 "/v1/denoise?model=mlp" "$T/bomb4m.png" -H 'Content-Type: image/png'
bomb "JSON nested 10^6 deep" 400 /v1/denoise "$T/deep.json" -H 'Content-Type: application/json'
body_has "nesting deeper than" "depth named"
bomb "JSON array of 10^7 numbers" 400 /v1/denoise "$T/array10m.json" -H 'Content-Type: application/json'
body_has "more than" "array cap named"
bomb "base64 with garbage inside" 400 /v1/denoise "$T/garbage64.json" -H 'Content-Type: application/json'
bomb "base64 with garbage in front" 400 /v1/denoise "$T/garbage64b.json" -H 'Content-Type: application/json'
bomb "batch of 65 images (limit 64)" 400 /v1/denoise "$T/batch65.json" -H 'Content-Type: application/json'
bomb "JSON claiming 10^10 pixels" 413 /v1/denoise "$T/liar.json" -H 'Content-Type: application/json'
bomb "v2 tensor claiming 10^6 images" 400 /v2/models/mlp/infer "$T/v2liar.json" -H 'Content-Type: application/json'

req POST "/v1/denoise?model=mlp" --data-binary @"$T/g28.png"; expect 200 "still serving after the bombs"
peak=$(rss VmHWM)
echo "peak RSS (VmHWM) over all bombs: $peak kB"
# The largest legitimate buffers: a 20 MB body, a 4 Mpx image as floats (16 MB) and its
# PNG rows. Sanitizer builds keep freed memory in quarantine: their bound is looser.
case "$B" in *asan* | *tsan*) cap=2097152 ;; *) cap=262144 ;; esac
[ "$peak" -lt "$cap" ] && ok "peak RSS $peak kB under $cap kB" || fail "peak RSS $peak kB over $cap kB"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"
finish
