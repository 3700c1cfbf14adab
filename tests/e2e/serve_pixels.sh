#!/usr/bin/env bash
# serve_pixels.sh — --pixel-budget bounds the image memory of the requests in flight:
# 16 concurrent 16-megapixel colour photos (a tiny photo model, so the test stays short)
# are all answered 200 and daed's peak RSS stays under 1.5 GB with --pixel-budget 512M
# (each photo holds ~430 MB of planes while it runs: 16 at once would be ~7 GB).
# Measured by hand, 8 concurrent: peak RSS 874 MB with 512M, 2567 MB with 0 (no bound).
source "$(dirname "$0")/lib.bash"

mkdir -p "$T/models"
"$B/helpers/mkmodel" "$T/models/photo-rgb.safetensors" dncnn-rgb photo-rgb >/dev/null
"$B/helpers/mkpng" "$T/big.jpg" 4000 4000 3

start_daed pixels --models "$T/models" --workers 2 --pixel-budget 512M
pids=()
for i in $(seq 16); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 600 --data-binary @"$T/big.jpg" \
        -H 'Accept: image/jpeg' "$URL/v1/denoise" >"$T/code$i" &
    pids+=($!)
done
wait "${pids[@]}"
n200=$(cat "$T"/code* | grep -c '^200$' || true)
[ "$n200" = 16 ] && ok "16 concurrent 16-megapixel photos: all 200" ||
    fail "only $n200 of 16 answered 200: $(cat "$T"/code* | tr '\n' ' ')"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$PID/status")
echo "daed peak RSS: $((hwm / 1024)) MB"
[ "$hwm" -lt $((1536 * 1024)) ] && ok "peak RSS under 1.5 GB with --pixel-budget 512M" ||
    fail "peak RSS $((hwm / 1024)) MB"
stop_daed
finish
