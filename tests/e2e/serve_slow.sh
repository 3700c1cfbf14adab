#!/usr/bin/env bash
# serve_slow.sh — slow clients against --request-timeout: slowloris connections (headers one
# byte a second) and slow uploads (a body one byte a second) are closed at the deadline while
# normal clients keep being served; a request that is slow but within the deadline is
# answered; without the deadline the idle timeout alone never closes them. About 30 s.
source "$(dirname "$0")/lib.bash"

if [ ! -x "$B/helpers/slowclient" ]; then
    san=""
    case "$B" in *asan*) san="SAN=1 OPT=-O1" ;; esac
    # shellcheck disable=SC2086
    make -s BUILD="$B" $san "$B/helpers/slowclient" >&2
fi
make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1

# slow NAME [slowclient options...]: runs the slowclient helper; its output in $T/NAME.out,
# SLOW line fields via field NAME KEY.
slow() {
    local name=$1
    shift
    SLOW_RC=0
    "$B/helpers/slowclient" --port "$PORT" "$@" >"$T/$name.out" 2>"$T/$name.err" || SLOW_RC=$?
    cat "$T/$name.out"
}
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" "$T/$1.out" | head -n 1; }

# 1. Deadline 3 s, idle timeout 2 s (each slow client sends a byte a second, so the idle
#    timeout never fires: whatever closes them is the deadline). 40 slowloris and 10 slow
#    uploads over 4 client addresses, reopened when closed, next to 2 normal clients doing
#    inference at 40 req/s. Every slow connection must be gone within 3 s + one sweep +
#    scheduling slack, and every normal request answered 2xx.
start_daed slow --models "$T/models" --workers 1 --request-timeout 3 --conn-timeout 2
slow deadline --slowloris 40 --uploaders 10 --src-addrs 4 --reconnect --seconds 9 \
    --normal 2 --rate 40 --path /v1/denoise --body "$T/g28.png" --type image/png --max-life 5
[ "$SLOW_RC" = 0 ] && ok "slow connections closed by the deadline, normal clients served" ||
    fail "slowclient: $(cat "$T/deadline.err")"
closed=$(field deadline closed_by_server)
[ "${closed:-0}" -ge 50 ] && ok "$closed slow connections closed by daed" ||
    fail "only ${closed:-0} slow connections closed"
n=$(field deadline requests)
[ "${n:-0}" -ge 100 ] && ok "$n normal requests answered meanwhile" || fail "normal requests: ${n:-0}"
life=$(field deadline life_s_min)
awk -v l="$life" 'BEGIN {exit !(l >= 2.9)}' && ok "none closed before the deadline (min life $life s)" ||
    fail "a slow connection closed after $life s, before the 3 s deadline"
n=$(grep -c 'POST /v1/denoise 0 0 .*(closed: --request-timeout)' "$LOG" || true)
[ "$n" -ge 10 ] && ok "slow uploads logged as closed by --request-timeout ($n)" ||
    fail "access log: $n slow uploads marked closed by the deadline"
grep -q 'warn request timeout: closed [0-9]* connection' "$LOG" && ok "deadline closures logged" ||
    fail "no request-timeout warning in the log"
# Every closed upload has left the in-flight count (only this request remains).
req GET /metrics; expect 200 "metrics after the slow clients"
n=$(sed -n 's/^daed_inflight_requests //p' "$T/body")
[ "$n" = 1 ] && ok "no request left in flight" || fail "in flight after the slow clients: $n"

# 2. Slow but within the deadline: headers in three parts 1 s apart (each gap under the 2 s
#    idle timeout), then a keep-alive request on the same connection after 1.5 s idle: both
#    answered.
exec 5<>"/dev/tcp/127.0.0.1/$PORT"
printf 'GET /healthz HTTP/1.1\r\nHo' >&5
sleep 1
printf 'st: x\r\nX-A: ' >&5
sleep 1
printf 'b\r\n\r\n' >&5
st=""
read -r -t 5 st <&5 || true
[[ "$st" == "HTTP/1.1 200"* ]] && ok "request sent over 2 s (deadline 3 s) answered" ||
    fail "slow-but-in-time request: '$st'"
# (the rest of the first answer is skipped by the status-line search below)
sleep 1.5
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n' >&5
st2=""
while read -r -t 5 l <&5; do [[ "$l" == HTTP/1.1* ]] && { st2=$l; break; }; done
[[ "$st2" == "HTTP/1.1 200"* ]] && ok "keep-alive request after 1.5 s idle answered" ||
    fail "keep-alive request: '$st2'"
exec 5>&-
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"

# 3. The same with epoll for the I/O thread (poll is the default).
start_daed slow_epoll --models "$T/models" --workers 1 --request-timeout 2 --conn-timeout 2 --epoll 1
slow epoll --slowloris 10 --uploaders 5 --seconds 5 --normal 1 --rate 20 --max-life 4
[ "$SLOW_RC" = 0 ] && [ "$(field epoll closed_by_server)" = 15 ] &&
    ok "epoll: 15 slow connections closed by the deadline" ||
    fail "epoll: $(cat "$T/epoll.err") $(cat "$T/epoll.out")"
stop_daed

# 4. Without the deadline, the 2 s idle timeout alone leaves a byte-a-second client open:
#    the reason for --request-timeout.
start_daed nodeadline --models "$T/models" --workers 1 --request-timeout 0 --conn-timeout 2
slow none --slowloris 10 --uploaders 5 --seconds 5
[ "$(field none closed_by_server)" = 0 ] && [ "$(field none open_at_end)" = 15 ] &&
    ok "without --request-timeout the slow clients stay (idle timeout reset by each byte)" ||
    fail "no deadline: $(cat "$T/none.out")"
stop_daed
finish
