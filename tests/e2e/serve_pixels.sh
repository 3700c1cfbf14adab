#!/usr/bin/env bash
# serve_pixels.sh — --pixel-budget bounds the image memory of the requests in flight:
# 16 concurrent 16-megapixel colour photos (a tiny photo model, so the test stays short)
# are all answered 200 and daed's peak RSS stays under 1.5 GB with --pixel-budget 512M
# (each photo holds ~100 MB of 8-bit planes while it runs, input and output, ~250 MB with
# float output, 400 MB all float: 16 at once would be 1.6-6 GB). Measured by hand, 8
# concurrent with 0 (no bound): peak RSS 589 MB (1574-1673 MB with float output, 2557 MB
# all float); this test: 440-502 MB (757-845 MB, 916 MB).
# The daed_pixel_* metrics show the waiting requests and the bytes charged. ?nonlocal=0:
# the non-local stage after the model (tiles.c) would add ~8 s of one thread per photo here
# (minutes under the sanitizers); its bytes fit in the 8-bit figure (pixels.c).
source "$(dirname "$0")/lib.bash"

mkdir -p "$T/models"
"$B/helpers/mkmodel" "$T/models/photo-rgb.safetensors" dncnn-rgb photo-rgb >/dev/null
"$B/helpers/mkpng" "$T/big.jpg" 4000 4000 3

metric() { sed -n "s/^$1 //p" "$T/body"; }

start_daed pixels --models "$T/models" --workers 2 --pixel-budget 512M
req GET /metrics
[ "$(metric daed_pixel_budget_bytes)" = 536870912 ] && [ "$(metric daed_pixel_bytes)" = 0 ] &&
    ok "daed_pixel_budget_bytes 512M, nothing charged at start" ||
    fail "at start: budget $(metric daed_pixel_budget_bytes) bytes $(metric daed_pixel_bytes)"
pids=()
for i in $(seq 16); do
    curl -s -o /dev/null -w '%{http_code}\n' --max-time 600 --data-binary @"$T/big.jpg" \
        -H 'Accept: image/jpeg' "$URL/v1/denoise?nonlocal=0" >"$T/code$i" &
    pids+=($!)
done
# while they run: one photo (~430 MB estimated) is in, the others wait
seen=0
for _ in $(seq 600); do
    req GET /metrics
    if [ "$(metric daed_pixel_waiting)" -gt 0 ] 2>/dev/null; then
        seen=1
        break
    fi
    sleep 0.1
done
[ "$seen" = 1 ] && [ "$(metric daed_pixel_bytes)" -gt 0 ] && [ "$(metric daed_pixel_requests)" -ge 1 ] &&
    ok "in flight: $(metric daed_pixel_requests) let in ($(metric daed_pixel_bytes) bytes), $(metric daed_pixel_waiting) waiting" ||
    fail "in flight: waiting $(metric daed_pixel_waiting) bytes $(metric daed_pixel_bytes) requests $(metric daed_pixel_requests)"
wait "${pids[@]}"
n200=$(cat "$T"/code* | grep -c '^200$' || true)
[ "$n200" = 16 ] && ok "16 concurrent 16-megapixel photos: all 200" ||
    fail "only $n200 of 16 answered 200: $(cat "$T"/code* | tr '\n' ' ')"
req GET /metrics
[ "$(metric daed_pixel_bytes)" = 0 ] && [ "$(metric daed_pixel_waiting)" = 0 ] &&
    [ "$(metric daed_pixel_requests)" = 0 ] && [ "$(metric daed_pixel_waited_total)" -gt 0 ] &&
    ok "after: nothing charged, $(metric daed_pixel_waited_total) requests had waited" ||
    fail "after: bytes $(metric daed_pixel_bytes) waiting $(metric daed_pixel_waiting) waited $(metric daed_pixel_waited_total)"
hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$PID/status")
echo "daed peak RSS: $((hwm / 1024)) MB"
[ "$hwm" -lt $((1536 * 1024)) ] && ok "peak RSS under 1.5 GB with --pixel-budget 512M" ||
    fail "peak RSS $((hwm / 1024)) MB"
stop_daed
finish
