#!/usr/bin/env bash
# nginx_timeouts.sh — docker/nginx.conf's two timeout rules, with stand-in replicas
# (tests/deploy/standin.py) instead of daed, so each case is exact:
#   1. a replica whose address answers nothing (connect times out: a stopped container) costs
#      no request: nginx passes it on to a live replica (proxy_next_upstream timeout);
#   2. a request that was sent and then timed out waiting for its answer (a replica busy with
#      a long photo) is NOT sent to another replica: the client gets 504, the request reached
#      exactly one replica (proxy_next_upstream_timeout below proxy_read_timeout).
# The file runs verbatim except the upstream servers, listen line and log path (lib.sh) and
# three timeouts, scaled to keep the test short: proxy_read_timeout and
# proxy_next_upstream_timeout divided by 100 (300 s -> 3 s, 120 s -> 1.2 s: their order is the
# file's), proxy_connect_timeout 0.3 s (below the retry window, as the file's 2 s is).
# Needs nginx, curl and python3 (installed if missing); no daed. NGINX_TIMEOUTS_SRC=FILE tests
# FILE instead of docker/nginx.conf (the configuration before the fix fails case 1; one whose
# retry window is not below the read timeout fails case 2).
set -uo pipefail
DEPLOY_NAME=deploy/nginx-timeouts
. "$(dirname "$0")/lib.sh"

require_tools
src=${NGINX_TIMEOUTS_SRC:-$DEPLOY_ROOT/docker/nginx.conf}
secs() { sed -n "s/^[[:space:]]*$1[[:space:]]\{1,\}\([0-9]\{1,\}\)s;.*/\1/p" "$src"; }
read_s=$(secs proxy_read_timeout)
next_s=$(secs proxy_next_upstream_timeout)
conn_s=$(secs proxy_connect_timeout)
[ "$(wc -w <<<"$read_s $next_s $conn_s")" = 3 ] ||
    die "docker/nginx.conf: expected one proxy_read_timeout, proxy_next_upstream_timeout and proxy_connect_timeout in seconds (got '$read_s' '$next_s' '$conn_s')"
[ "$conn_s" -lt "$next_s" ] || die "docker/nginx.conf: proxy_connect_timeout ${conn_s}s is not below proxy_next_upstream_timeout ${next_s}s"
sed -e "s/^\([[:space:]]*proxy_read_timeout[[:space:]]\{1,\}\)${read_s}s;/\1$((read_s * 10))ms;/" \
    -e "s/^\([[:space:]]*proxy_next_upstream_timeout[[:space:]]\{1,\}\)${next_s}s;/\1$((next_s * 10))ms;/" \
    -e "s/^\([[:space:]]*proxy_connect_timeout[[:space:]]\{1,\}\)${conn_s}s;/\1300ms;/" \
    "$src" >"$T/scaled.conf"
[ "$(grep -cE "^\s*proxy_(read|next_upstream|connect)_timeout\s+[0-9]+ms;" "$T/scaled.conf")" = 3 ] ||
    die "could not rewrite the three timeouts of docker/nginx.conf"
export NGINX_CONF_SRC=$T/scaled.conf
say "timeouts: read ${read_s}s -> $((read_s * 10))ms, retry window ${next_s}s -> $((next_s * 10))ms, connect ${conn_s}s -> 300ms"

# standin N MODE — a stand-in replica N (its port in DAED_PORT[N], its log $T/standin-N.log).
standin() {
    local n=$1 t=0
    : >"$T/standin-$n.log"
    python3 "$DEPLOY_ROOT/tests/deploy/standin.py" "$2" "$T/sport$n" "$T/standin-$n.log" \
        2>>"$T/standin-$n.err" &
    DAED_PID[$n]=$!
    until [ -s "$T/sport$n" ]; do
        kill -0 "${DAED_PID[$n]}" 2>/dev/null || die "stand-in $n ($2) exited: $(cat "$T/standin-$n.err")"
        [ $t -ge 100 ] && die "stand-in $n ($2) wrote no port"
        sleep 0.1
        t=$((t + 1))
    done
    DAED_PORT[$n]=$(cat "$T/sport$n")
}
received() { cat "$@" | wc -l; } # requests that reached these stand-ins
post() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 30 --data-binary 'x' \
        -H 'Content-Type: image/png' "http://127.0.0.1:$NGINX_PORT/v1/denoise"
}
fails=0
check() { # check CONDITION-STATUS MESSAGE
    if [ "$1" -eq 0 ]; then say "ok   $2"; else say "FAIL $2"; fails=$((fails + 1)); fi
}

# ---- 1. replica 1's address answers nothing; 2 and 3 answer
standin 1 blackhole
standin 2 ok
standin 3 ok
start_nginx 1 2 3
codes=""
for _ in 1 2 3 4; do codes="$codes $(post)"; done
[ "$codes" = " 200 200 200 200" ]
check $? "4 POSTs with one replica's address silent: HTTP$codes"
passed=$(grep -c "upstream=127.0.0.1:${DAED_PORT[1]}, 127.0.0.1:[0-9]* upstream_status=504, 200" "$T/access.log")
check $((passed < 1)) "nginx passed $passed of them on after the connect timeout"
check $((! $(grep -c 'timed out.*while connecting to upstream' "$T/nginx-error.log") > 0)) \
    "nginx logged a connect timeout"
n=$(received "$T/standin-2.log" "$T/standin-3.log")
check $((n != 4)) "the live replicas received each request once ($n for 4)"
stop_nginx

# ---- 2. replica 4 takes the request and never answers; 5 and 6 answer at once
standin 4 silent
standin 5 ok
standin 6 ok
: >"$T/access.log"
start_nginx 4 5 6 # round robin starts at the first server: replica 4
code=$(post)
[ "$code" = 504 ]
check $? "a POST that timed out after it was sent: HTTP $code (504 expected)"
n4=$(received "$T/standin-4.log")
n56=$(received "$T/standin-5.log" "$T/standin-6.log")
check $((n4 != 1 || n56 != 0)) "it reached one replica only: $n4 on the silent one, $n56 on the others"
check $((! $(grep -c "upstream=127.0.0.1:${DAED_PORT[4]} upstream_status=504 " "$T/access.log") == 1)) \
    "nginx's log names one upstream for it"
check $((! $(grep -c 'timed out.*while reading response header' "$T/nginx-error.log") > 0)) \
    "nginx logged a read timeout"
stop_nginx

[ $fails -eq 0 ] || die "$fails checks failed"
DEPLOY_OK=1
say "all checks passed"
