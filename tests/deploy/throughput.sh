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
say "daed --workers $DEPLOY_WORKERS each; wrk -t1 -c$CONNS -d${SECS}s; $(nproc) CPUs"

measure() { # measure LABEL
    start_load "$1" "$SECS" "$CONNS"
    wait_load "$1"
    printf '%s: %-34s %7d req/s  (%d requests, %d failed)\n' "$DEPLOY_NAME" "$1" \
        "$WRK_RPS" "$WRK_REQUESTS" "$WRK_ERRORS"
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
