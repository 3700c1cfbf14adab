#!/usr/bin/env bash
# serve_conns.sh — transport-level limits: chunked bodies, JPEG bodies, the per-address
# connection cap, the idle-connection timeout, and clients that vanish mid-request.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
"$B/helpers/mkpng" "$T/g28.jpg" 28 28 3

start_daed conns --models "$T/models" --workers 1 --max-body 64k --conn-timeout 2 --per-ip-limit 3
req POST /v1/denoise --data-binary @"$T/g28.jpg" -H 'Content-Type: image/jpeg'
expect 200 "JPEG body"; is_png "$T/body" && ok "JPEG in, PNG out" || fail "answer not PNG"
req POST /v1/denoise --data-binary @"$T/g28.png" -H 'Transfer-Encoding: chunked'
expect 200 "chunked body"
head -c 200000 /dev/urandom >"$T/big.bin"
req POST /v1/denoise --data-binary @"$T/big.bin" -H 'Transfer-Encoding: chunked'
expect 413 "chunked body over --max-body"; body_has "exceeds the limit of 65536 bytes" "413 names the limit"

# Three idle connections from this address are the cap: a fourth is refused.
exec 5<>"/dev/tcp/127.0.0.1/$PORT" 6<>"/dev/tcp/127.0.0.1/$PORT" 7<>"/dev/tcp/127.0.0.1/$PORT"
sleep 0.3
CODE=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$URL/healthz") || true
[ "$CODE" = 000 ] && ok "per-address connection cap" || fail "fourth connection got $CODE"
# Idle connections are closed after --conn-timeout; then there is room again.
sleep 3
rc=0
read -r -t 20 line <&5 || rc=$?
# read: 1 at end of file (closed by daed), >128 on its own timeout (still open)
[ "$rc" = 1 ] && ok "idle connection closed after the timeout" || fail "idle connection: read status $rc"
exec 5>&- 6>&- 7>&-
req GET /healthz; expect 200 "room again after the timeout"

# A client that sends half a request and vanishes, and one that sends garbage.
for _ in 1 2 3; do
    (exec 8<>"/dev/tcp/127.0.0.1/$PORT"; printf 'POST /v1/denoise HTTP/1.1\r\nContent-Length: 500\r\n\r\nab' >&8; exec 8>&-) || true
    (exec 8<>"/dev/tcp/127.0.0.1/$PORT"; head -c 3000 /dev/urandom >&8; exec 8>&-) || true
done
# (their connections count against --per-ip-limit until daed has seen them go)
for _ in $(seq 100); do req GET /healthz; [ "$CODE" = 200 ] && break; sleep 0.1; done
expect 200 "alive after vanishing and garbage clients"
req POST /v1/denoise --data-binary @"$T/g28.png"; expect 200 "still serving inference"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"

# With --epoll 0 a client that vanishes mid-body is noticed at once (with epoll,
# libmicrohttpd 0.9.75 notices it only at --conn-timeout).
start_daed poll --models "$T/models" --workers 1 --epoll 0
for _ in 1 2 3; do
    (exec 8<>"/dev/tcp/127.0.0.1/$PORT"; printf 'POST /v1/denoise HTTP/1.1\r\nContent-Length: 500\r\n\r\nab' >&8; exec 8>&-) || true
done
n=x
for _ in $(seq 100); do
    req GET /metrics
    n=$(sed -n 's/^daed_inflight_requests //p' "$T/body")
    [ "$n" = 1 ] && break
    sleep 0.1
done
[ "$n" = 1 ] && ok "vanished clients released (poll mode)" || fail "in flight: $n"
req POST /v1/denoise --data-binary @"$T/g28.png"; expect 200 "poll mode serves"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"
grep -q "draining: 0 requests in flight" "$LOG" && ok "nothing left to drain" || fail "drain waited"
finish
