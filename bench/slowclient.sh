#!/usr/bin/env bash
# slowclient.sh — the slow-client benchmark of issue 7: normal clients' latency alone, then
# next to 500 slowloris connections (headers one byte a second) and 50 slow uploads (a body
# one byte a second), all reopened as soon as daed closes them. Prints both phases' p50/p99
# side by side, their ratio, and how long daed let the slow connections live
# (--request-timeout). Passes when no normal request failed, every slow connection was
# closed by the deadline (plus one sweep and slack) and the loaded p99 is within --p99-ratio
# (default 2) of the unloaded one. Loopback only; the slow connections come from 127.0.0.2 to
# 127.0.0.11 (daed's default --per-ip-limit is 256 per address).
#
#   bash bench/slowclient.sh                      # 20 s alone, 40 s loaded, deadline 10 s
#   bash bench/slowclient.sh --epoll "1 0"       # daed's epoll (default) and poll modes, in turn
#   options: --slowloris N --uploaders N --timeout S (daed --request-timeout)
#            --baseline S --seconds S --normal C --rate R (normal req/s) --p99-ratio X
#            --epoll "MODES" --build DIR
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DAED_BUILD:-build}
LORIS=500 UPLOAD=50 TIMEOUT=10 BASE=20 SECS=40 NORMAL=4 RATE=200 RATIO=2 MODES=1
while [ $# -gt 0 ]; do
    case $1 in
    --slowloris) LORIS=$2; shift 2 ;;
    --uploaders) UPLOAD=$2; shift 2 ;;
    --timeout) TIMEOUT=$2; shift 2 ;;
    --baseline) BASE=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    --normal) NORMAL=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --p99-ratio) RATIO=$2; shift 2 ;;
    --epoll) MODES=$2; shift 2 ;;
    --build) B=$2; shift 2 ;;
    *) echo "slowclient.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
make -s BUILD="$B" "$B/daed" "$B/helpers/mkmodel" "$B/helpers/mkpng" "$B/helpers/slowclient" >&2

T=$(mktemp -d /tmp/daed-slow.XXXXXX)
DPID=""
cleanup() { [ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
mkdir -p "$T/models"
"$B/helpers/mkmodel" "$T/models/conv.safetensors" conv conv
"$B/helpers/mkpng" "$T/g28.png" 28 28 1

rss() { awk '$1 == "VmRSS:" {print $2}' "/proc/$DPID/status"; }
conns() { ls "/proc/$DPID/fd" | wc -l; }
FAILED=""

# run MODE: one daed (--epoll MODE), both phases; appends to FAILED.
run() {
    local mode=$1 rc=0
    rm -f "$T/port"
    "$B/daed" --bind 127.0.0.1 --port 0 --port-file "$T/port" --models "$T/models" --workers 2 \
        --access-log 0 --request-timeout "$TIMEOUT" --epoll "$mode" >"$T/daed.log" 2>&1 &
    DPID=$!
    for _ in $(seq 300); do [ -s "$T/port" ] && break; sleep 0.1; done
    [ -s "$T/port" ] || { cat "$T/daed.log" >&2; echo "slowclient.sh: daed did not start" >&2; exit 1; }
    local port
    port=$(cat "$T/port")
    echo "== daed --epoll $mode --request-timeout $TIMEOUT; normal: $NORMAL connections, $RATE req/s of POST /v1/denoise (28x28 PNG, conv model)"
    echo "   phase 1: ${BASE} s alone; phase 2: ${SECS} s next to $LORIS slowloris + $UPLOAD slow uploads (1 byte/s, reopened when closed)"
    ( sleep "$((BASE + SECS / 2))"; echo "mid-load: daed RSS $(rss) kB, $(conns) descriptors" >"$T/mid.txt" ) &
    local mid=$!
    # Slack over the deadline: one sweep (0.25 s), the client's tick and a loaded machine.
    "$B/helpers/slowclient" --port "$port" --slowloris "$LORIS" --uploaders "$UPLOAD" --src-addrs 10 \
        --reconnect --baseline "$BASE" --seconds "$SECS" --normal "$NORMAL" --rate "$RATE" \
        --path /v1/denoise --body "$T/g28.png" --type image/png \
        --max-life "$((TIMEOUT + 3))" >"$T/out.txt" || rc=$?
    wait "$mid" 2>/dev/null || true
    cat "$T/out.txt"
    cat "$T/mid.txt" 2>/dev/null || true
    local u l
    u=$(sed -n "s/^NORMAL phase=unloaded .* p99_ms=\([0-9.]*\) .*/\1/p" "$T/out.txt")
    l=$(sed -n "s/^NORMAL phase=loaded .* p99_ms=\([0-9.]*\) .*/\1/p" "$T/out.txt")
    echo "p99: unloaded $u ms, loaded $l ms, ratio $(awk -v u="$u" -v l="$l" 'BEGIN {printf "%.2f", l / u}') (target <= $RATIO)"
    grep -h 'request timeout: closed' "$T/daed.log" |
        awk '{n += $6} END {print "daed closed " n + 0 " slow connections by --request-timeout"}'
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
    kill "$DPID"
    wait "$DPID" 2>/dev/null || true
    DPID=""
    if [ "$rc" != 0 ]; then
        echo "epoll=$mode: FAILED (normal errors or a slow connection outlived the deadline)"
        FAILED="$FAILED epoll=$mode"
    elif ! awk -v u="$u" -v l="$l" -v r="$RATIO" 'BEGIN {exit !(l <= u * r)}'; then
        echo "epoll=$mode: FAILED: loaded p99 over $RATIO x unloaded"
        FAILED="$FAILED epoll=$mode"
    else
        echo "epoll=$mode: passed"
    fi
}

for m in $MODES; do run "$m"; done
[ -z "$FAILED" ] || { echo "slowclient.sh: FAILED:$FAILED" >&2; exit 1; }
echo "slowclient.sh: passed"
