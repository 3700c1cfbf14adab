#!/usr/bin/env bash
# soak.sh — daed under a long steady load: first the maximum throughput of the request mix
# (bench/soak.lua: every endpoint, valid and invalid requests) is measured, then that mix
# runs at about --fraction (default 0.8) of it for the duration, with daed's RSS sampled
# every second. Passes when there is no 5xx, no connection error, and RSS at the end is
# within --rss-tol percent (default 5) of RSS after the first minute (after a sixth of the
# run when it is shorter than 6 minutes). Loopback only.
#
#   bash bench/soak.sh --minutes 10          # the full soak (a quiet machine: 2 cores busy)
#   bash bench/soak.sh --seconds 60          # the short one (tests/e2e/serve_soak.sh)
#   options: --build DIR (default build), --fraction F, --rss-tol PCT, --conns N (probe),
#            --probe-seconds N (maximum throughput measurement, default 10)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DAED_BUILD:-build}
SECS=600 FRACTION=0.8 RSS_TOL=5 CONNS=16 PROBE=10
while [ $# -gt 0 ]; do
    case $1 in
    --minutes) SECS=$(($2 * 60)); shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --build) B=$2; shift 2 ;;
    --fraction) FRACTION=$2; shift 2 ;;
    --rss-tol) RSS_TOL=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --probe-seconds) PROBE=$2; shift 2 ;;
    *) echo "soak.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
command -v wrk >/dev/null || { echo "soak.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }
[ -x "$B/daed" ] && [ -x "$B/helpers/mkmodel" ] && [ -x "$B/helpers/mkpng" ] ||
    make -s BUILD="$B" "$B/daed" "$B/helpers/mkmodel" "$B/helpers/mkpng" >&2

T=$(mktemp -d /tmp/daed-soak.XXXXXX)
DPID=""
cleanup() { [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$T/models"
"$B/helpers/mkmodel" "$T/models/mlp.safetensors" mlp mlp
"$B/helpers/mkmodel" "$T/models/conv.safetensors" conv conv
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
"$B/helpers/mkpng" "$T/g30.png" 30 30 1
head -c 300 "$T/g28.png" >"$T/bad.png"
B64=$(base64 -w0 "$T/g28.png")
echo "{\"images\":[{\"png\":\"$B64\"},{\"png\":\"$B64\"}]}" >"$T/batch.json"
PIX=$(for _ in $(seq 784); do echo 0.25; done | paste -sd, -)
echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[$PIX]}]}" >"$T/v2.json"
echo '{"latents":[[0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8]]}' >"$T/lat.json"

"$B/daed" --bind 127.0.0.1 --port 0 --port-file "$T/port" --models "$T/models" --workers 2 \
    --access-log 0 >"$T/daed.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || { cat "$T/daed.log" >&2; echo "soak.sh: daed did not start" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$T/port")"
rss() { awk '$1 == "VmRSS:" {print $2}' "/proc/$DPID/status"; }

wrk -t2 -c"$CONNS" -d"${PROBE}s" --timeout 30s -s bench/soak.lua "$URL" -- "$T" 0 >"$T/probe.txt"
MAX=$(sed -n 's/^SOAK .* rps=\([0-9.]*\) .*/\1/p' "$T/probe.txt")
echo "maximum: $(grep '^SOAK' "$T/probe.txt")"
# Each connection waits DELAY ms before each request (wrk's pause has whole milliseconds,
# so the rate is set by the number of connections): SOAK_CONNS / (DELAY + answer time).
P50=$(sed -n 's/^SOAK .* p50_ms=\([0-9.]*\) .*/\1/p' "$T/probe.txt")
TARGET=$(awk -v m="$MAX" -v f="$FRACTION" 'BEGIN {printf "%.1f", m * f}')
DELAY=5
SOAK_CONNS=$(awk -v t="$TARGET" -v d="$DELAY" -v l="$P50" 'BEGIN {c = int(t * (d + l) / 1000 + 0.5); print c < 1 ? 1 : c}')
echo "soak: ${SECS} s at ${TARGET} req/s (fraction $FRACTION of $MAX): $SOAK_CONNS connections, ${DELAY} ms pause per request"

( t=0; while kill -0 "$DPID" 2>/dev/null; do echo "$t $(rss)"; sleep 1; t=$((t + 1)); done ) >"$T/rss.txt" &
SAMPLER=$!
wrk -t2 -c"$SOAK_CONNS" -d"${SECS}s" --timeout 30s -s bench/soak.lua "$URL" -- "$T" "$DELAY" >"$T/soak.txt"
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
LINE=$(grep '^SOAK' "$T/soak.txt")
echo "soak:    $LINE"
echo "achieved: $(echo "$LINE" | sed -n 's/.* rps=\([0-9.]*\) .*/\1/p') req/s = $(echo "$LINE" | awk -v m="$MAX" '{for (i = 1; i <= NF; i++) if ($i ~ /^rps=/) {split($i, a, "="); printf "%.0f%%", a[2] * 100 / m}}') of the maximum"
REF_T=$((SECS >= 360 ? 60 : SECS / 6))
RSS0=$(head -1 "$T/rss.txt" | cut -d' ' -f2)
RSS_REF=$(awk -v t="$REF_T" '$1 >= t {print $2; exit}' "$T/rss.txt")
RSS_END=$(tail -1 "$T/rss.txt" | cut -d' ' -f2)
echo "RSS: start $RSS0 kB, at ${REF_T} s $RSS_REF kB, end $RSS_END kB ($(awk -v a="$RSS_REF" -v b="$RSS_END" 'BEGIN {printf "%+.1f%%", (b - a) * 100 / a}'))"
get() { echo "$LINE" | sed -n "s/.* $1=\([0-9.]*\).*/\1/p"; }
rc=0
[ "$(get s5xx)" = 0 ] || { echo "FAIL: $(get s5xx) answers 5xx" >&2; rc=1; }
errs=$(($(get connect) + $(get read) + $(get write) + $(get timeout)))
[ "$errs" = 0 ] || { echo "FAIL: $errs connection errors" >&2; rc=1; }
[ "$(get s2xx)" -gt 0 ] && [ "$(get s4xx)" -gt 0 ] || { echo "FAIL: the mix lacks 2xx or 4xx" >&2; rc=1; }
awk -v a="$RSS_REF" -v b="$RSS_END" -v tol="$RSS_TOL" 'BEGIN {exit !(b <= a * (1 + tol / 100))}' ||
    { echo "FAIL: RSS grew more than $RSS_TOL% after ${REF_T} s" >&2; rc=1; }
kill -TERM "$DPID"; wait "$DPID" || { echo "FAIL: daed exit status $?" >&2; rc=1; }
DPID=""
[ "$rc" = 0 ] && echo "soak: passed" || echo "soak: FAILED" >&2
exit "$rc"
