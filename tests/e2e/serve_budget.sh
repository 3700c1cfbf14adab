#!/usr/bin/env bash
# serve_budget.sh — --body-budget: a request whose body would pass the budget waits after its
# headers (its body unread) until the bodies already read are parsed; every waiting request
# is answered, under load and through a drain; nothing stays charged afterwards.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
B64=$(base64 -w0 "$T/g28.png")
printf '{"images":[{"png":"%s"},{"png":"%s"},{"png":"%s"}]}' "$B64" "$B64" "$B64" >"$T/batch.json"
SIZE=$(stat -c %s "$T/g28.png")
HALF=$((SIZE / 2))

metric() { sed -n "s/^$1 //p" "$T/body"; }

# hold FD: a denoise request on descriptor FD with only half of its body sent: it is let in
# (nothing else is charged) and then holds the budget of one byte.
hold() {
    eval "exec $1<>/dev/tcp/127.0.0.1/$PORT"
    printf 'POST /v1/denoise?model=conv HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: %d\r\n\r\n' "$SIZE" >&"$1"
    head -c "$HALF" "$T/g28.png" >&"$1"
}
# release FD: the rest of the body; the status line of the answer must be 200.
release() {
    tail -c +$((HALF + 1)) "$T/g28.png" >&"$1"
    local line=""
    read -r -t 20 line <&"$1" || true
    eval "exec $1>&-"
    case "$line" in "HTTP/1.1 200"*) return 0 ;; *) echo "answer: '$line'" >&2; return 1 ;; esac
}

start_daed budget --models "$T/models" --workers 2 --body-budget 1 --access-log 0

# 1. A held body makes the next request with a body wait; requests without a body do not.
hold 5
sleep 0.3
curl -sS -o "$T/w1.png" -w '%{http_code}' --max-time 30 -H 'Content-Type: image/png' \
    --data-binary @"$T/g28.png" "$URL/v1/denoise?model=conv" >"$T/w1.code" &
W1=$!
sleep 0.5
req GET /metrics; expect 200 "metrics while a body is held"
[ "$(metric daed_body_waiting)" = 1 ] && ok "the second upload waits for the budget" ||
    fail "daed_body_waiting $(metric daed_body_waiting), expected 1"
[ "$(metric daed_body_bytes)" -gt 0 ] && ok "the held body is charged ($(metric daed_body_bytes) bytes)" ||
    fail "daed_body_bytes $(metric daed_body_bytes)"
kill -0 $W1 2>/dev/null && ok "the waiting upload is not answered yet" || fail "the waiting upload finished early"
release 5 && ok "the held request completes with 200" || fail "the held request"
wait $W1 || true
[ "$(cat "$T/w1.code")" = 200 ] && is_png "$T/w1.png" && ok "the waiting request is then answered 200 PNG" ||
    fail "waiting request: $(cat "$T/w1.code")"

# 2. Load with one body at a time: 32 clients x 20 requests, every one answered 200.
LG="$B/helpers/loadgen --port $PORT"
if $LG --path "/v1/denoise?model=conv" --body "$T/batch.json" --type application/json \
    --conns 32 --requests 20 >"$T/l1"; then ok "load: $(cat "$T/l1")"; else fail "load: $(cat "$T/l1")"; fi
grep -q "ok=640 bad=0 lost=0" "$T/l1" && ok "32 clients x 20 batch requests all answered 200" ||
    fail "budget load: $(cat "$T/l1")"
req GET /metrics
[ "$(metric daed_body_waited_total)" -gt 1 ] && ok "requests waited under load ($(metric daed_body_waited_total))" ||
    fail "daed_body_waited_total $(metric daed_body_waited_total)"
[ "$(metric daed_body_bytes)" = 0 ] && [ "$(metric daed_body_waiting)" = 0 ] &&
    ok "nothing charged or waiting after the load" ||
    fail "after load: bytes $(metric daed_body_bytes) waiting $(metric daed_body_waiting)"

# 3. Drain: SIGTERM while uploads wait behind a held body. The waiting ones are let in and
#    answered at once; the held one still completes; daed then exits cleanly.
hold 6
sleep 0.3
pids=()
for i in 1 2 3; do
    curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -H 'Content-Type: image/png' \
        --data-binary @"$T/g28.png" "$URL/v1/denoise?model=conv" >"$T/d$i.code" &
    pids+=($!)
done
sleep 0.5
kill -TERM "$PID"
for p in "${pids[@]}"; do wait "$p" || true; done
codes=$(for i in 1 2 3; do printf '%s ' "$(cat "$T/d$i.code")"; done)
case "$codes" in *000*) fail "waiting uploads lost in the drain: $codes" ;;
*) ok "waiting uploads answered during the drain, the held body still unfinished: $codes" ;; esac
release 6 && ok "the held request completes during the drain" || fail "the held request in the drain"
STOP_RC=0
wait "$PID" || STOP_RC=$?
[ "$STOP_RC" = 0 ] && ok "clean exit after the drain" || fail "exit $STOP_RC"

# 4. The option itself.
if "$B/daed" --body-budget 12q 2>"$T/bad.err"; then fail "--body-budget 12q accepted"
elif grep -q "body-budget" "$T/bad.err"; then ok "a bad --body-budget is refused, naming the option"
else fail "bad --body-budget message: $(cat "$T/bad.err")"; fi
finish
