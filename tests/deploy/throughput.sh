#!/usr/bin/env bash
# throughput.sh — requests/s of POST /v1/denoise (28x28 PNG, the fixture model) straight to
# one daed, and through nginx (docker/nginx.conf) to 1 and to 3 replicas. Prints numbers,
# asserts nothing: on a 2-core machine nginx, wrk and the replicas share the same two cores,
# so 3 replicas show the proxy's overhead, not scaling. Not run by `make test`.
#   DAED_BUILD=build bash tests/deploy/throughput.sh [SECONDS] [CONNECTIONS]
set -uo pipefail
DEPLOY_NAME=deploy/throughput
. "$(dirname "$0")/lib.sh"

SECS=${1:-10}
DEPLOY_WORKERS=${DEPLOY_WORKERS:-1}
CONNS=${2:-8}
require_daed
require_tools
prepare_inputs
for n in 1 2 3; do start_daed $n; done
say "daed --workers $DEPLOY_WORKERS each; wrk -t1 -c$CONNS -d${SECS}s; $(nproc) CPUs;" \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"

# CPU ticks (user + system) used so far by the given processes.
ticks() {
    local p sum=0 f
    for p in "$@"; do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        f=${f##*) } # fields after the command name; utime and stime are the 12th and 13th
        set -- $f
        sum=$((sum + ${12} + ${13}))
        shift $#
    done
    echo $sum
}

# measure LABEL — requests/s, and the CPU time daed, nginx and wrk spent per request: on a
# shared machine the rate swings with the neighbours' load, the CPU cost per request much less.
measure() {
    local hz ngx d0 n0 w1 d1 n1 wrk_t
    hz=$(getconf CLK_TCK)
    ngx="$NGINX_PID $( [ -n "$NGINX_PID" ] && pgrep -P "$NGINX_PID" | tr '\n' ' ')"
    d0=$(ticks "${DAED_PID[@]}")
    n0=$(ticks $ngx)
    start_load "$1" "$SECS" "$CONNS"
    sleep $((SECS - 1))
    w1=$(ticks "$WRK_PID") # wrk's own, just before it ends
    wait_load "$1"
    d1=$(ticks "${DAED_PID[@]}")
    n1=$(ticks $ngx)
    us() { echo $(($1 * 1000000 / hz / (WRK_REQUESTS > 0 ? WRK_REQUESTS : 1))); }
    printf '%s: %-26s %6d req/s  CPU/request: daed %3d us, nginx %3d us, wrk >=%3d us  (%d requests, %d failed)\n' \
        "$DEPLOY_NAME" "$1" "$WRK_RPS" "$(us $((d1 - d0)))" "$(us $((n1 - n0)))" "$(us "$w1")" \
        "$WRK_REQUESTS" "$WRK_ERRORS"
}

NGINX_PORT=${DAED_PORT[1]} # wrk straight at replica 1
measure "direct, 1 replica"
start_nginx 1
measure "through nginx, 1 replica"
stop_nginx
start_nginx 1 2 3
measure "through nginx, 3 replicas"
stop_nginx
DEPLOY_OK=1
