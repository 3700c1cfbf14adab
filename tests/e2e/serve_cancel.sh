#!/usr/bin/env bash
# serve_cancel.sh — a client that hangs up stops its photo: the tiles not yet run are
# skipped, so daed's CPU time for an abandoned request stays far below a full run
# (hangup.h). CPU time, not wall time, is compared: both runs do the same work per tile
# whatever the machine's load. Prints the numbers it measured.
source "$(dirname "$0")/lib.bash"

mkdir -p "$T/models"
# under a sanitizer the model runs ~20x slower: a smaller photo, and the tiles already in a
# worker's batch when the client leaves are a large share of it, so the CPU ratio is only
# checked in the plain build (the hang-up itself is checked in both).
# CANCEL_TINY_MODEL=1 (make tsan): a tiny stand-in under the same name, on a 1200x900 photo
# (the real model on 400x300 takes minutes under ThreadSanitizer; the tiny one on 800x600
# took 2.5 s of CPU there, too close to the client's 1 s on an idle machine)
san=0
case "$B" in *asan* | *tsan*) big="400 300" san=1 ;; *) big="1200 900" ;; esac
if [ "${CANCEL_TINY_MODEL:-0}" = 1 ]; then
    "$B/helpers/mkmodel" "$T/models/photo-denoise-rgb.safetensors" dncnn-rgb photo-denoise-rgb >/dev/null
    big="1200 900"
else
    cp models/photo-denoise-rgb.json models/photo-denoise-rgb.safetensors "$T/models/"
fi
# shellcheck disable=SC2086
"$B/helpers/mkpng" "$T/big.png" $big 3
"$B/helpers/mkpng" "$T/small.png" 400 300 3
metric() { sed -n "s/^$1 //p" "$T/body"; }

# fp32: with bf16 on AMX tiles the real model runs the 1200x900 photo in ~4 s of CPU, so a
# client leaving after 1 s (2 workers) would already have had half of it
start_daed cancel --models "$T/models" --workers 2 --precision fp32
# daed's user + system CPU time in clock ticks
cpu() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
# wait until daed has logged N access lines (the request is over, answered or dropped)
wait_access() {
    for _ in $(seq 1200); do
        [ "$(grep -c ' access ' "$LOG")" -ge "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

c0=$(cpu)
req POST /v1/denoise --data-binary @"$T/big.png"
expect 200 "a ${big/ /x} colour photo, run to the end"
wait_access 1 || fail "no access line for the full run"
full=$(($(cpu) - c0))

c0=$(cpu)
curl -s -o /dev/null --max-time 1 --data-binary @"$T/big.png" "$URL/v1/denoise" || true
wait_access 2 || fail "the abandoned request never ended"
sleep 1 # tiles that were running when the client left
gone=$(($(cpu) - c0))
echo "daed CPU: full run $full ticks, client gone after 1 s: $gone ticks (ticks: $(getconf CLK_TCK)/s)"
grep -q 'access POST /v1/denoise 0 .*(connection lost)' "$LOG" &&
    ok "the access log says the connection was lost" || fail "no lost-connection line in the log"
if [ "$san" = 1 ]; then
    echo "skip: CPU ratio not checked under a sanitizer (full $full, abandoned $gone ticks)"
elif [ "$full" -gt 0 ] && [ $((gone * 3)) -lt "$full" ]; then
    ok "an abandoned request used less than a third of a full run's CPU"
else
    fail "abandoned request used $gone ticks of CPU, full run $full"
fi
req GET /metrics
[ "$(metric daed_client_gone_total)" = "1" ] && ok "daed_client_gone_total counts it" ||
    fail "daed_client_gone_total $(metric daed_client_gone_total)"
# a pipelined second request is not taken for a hang-up: both are answered
exec 3<>"/dev/tcp/127.0.0.1/$PORT"
{ printf 'POST /v1/denoise HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' "$(stat -c %s "$T/small.png")"
  cat "$T/small.png"
  printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'; } >&3
timeout 120 cat <&3 >"$T/pipe" || true
exec 3<&-
[ "$(grep -ao 'HTTP/1.1 200 OK' "$T/pipe" | wc -l)" = 2 ] && ok "a pipelined request behind a running one: both answered" ||
    fail "pipelined: $(grep -a '^HTTP/1.1' "$T/pipe" | tr '\r\n' '  ')"
stop_daed
finish
