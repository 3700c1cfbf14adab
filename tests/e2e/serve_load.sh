#!/usr/bin/env bash
# serve_load.sh — 64 concurrent clients on several endpoints with no failed request, and a
# full queue answering 503 + Retry-After at once.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
"$B/helpers/mkpng" "$T/large.png" 1024 1024 1
B64=$(base64 -w0 "$T/g28.png")
echo "{\"images\":[{\"png\":\"$B64\"},{\"png\":\"$B64\"}]}" >"$T/batch.json"
ONES=$(for _ in $(seq 784); do echo 0.5; done | paste -sd, -)
echo "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":[$ONES]}]}" >"$T/v2.json"

start_daed load --models "$T/models" --workers 2 --access-log 0
LG="$B/helpers/loadgen --port $PORT"
$LG --path "/v1/denoise?model=conv" --body "$T/g28.png" --type image/png --conns 64 --requests 25 >"$T/l1" &
L1=$!
$LG --path "/v1/score?model=mlp" --body "$T/batch.json" --type application/json --conns 16 --requests 25 >"$T/l2" &
L2=$!
$LG --path "/v2/models/mlp/infer" --body "$T/v2.json" --type application/json --conns 16 --requests 25 >"$T/l3" &
L3=$!
for l in "$L1:l1" "$L2:l2" "$L3:l3"; do
    if wait "${l%%:*}"; then ok "load ${l#*:}: $(cat "$T/${l#*:}")"; else fail "load ${l#*:}: $(cat "$T/${l#*:}")"; fi
done
grep -q "ok=1600 bad=0 lost=0" "$T/l1" && ok "64 clients x 25 requests all answered 200" || fail "denoise load: $(cat "$T/l1")"
req GET /metrics
echo "batching: $(grep -E '^daed_batch_size_(sum|count)' "$T/body" | tr '\n' ' ')"
body_has 'daed_requests_total{endpoint="/v1/denoise",status="200"} 1600' "metrics count every request"
req GET /healthz; expect 200 "healthy after load"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit after load" || fail "exit $STOP_RC"

# A queue of one behind one worker: a burst of large images gets 503 + Retry-After at once
# for what does not fit, 200 for the rest, nothing else.
start_daed busy --models "$T/models" --workers 1 --queue-size 1 --max-batch 1 --access-log 0
LG="$B/helpers/loadgen --port $PORT"
if $LG --path "/v1/denoise?model=conv" --body "$T/large.png" --type image/png --conns 12 --requests 2 \
    --also 503 >"$T/l4"; then ok "burst: $(cat "$T/l4")"; else fail "burst: $(cat "$T/l4")"; fi
grep -q "status_503=" "$T/l4" && ok "full queue answered 503 with Retry-After" || fail "no 503 in $(cat "$T/l4")"
grep -q "status_200=" "$T/l4" && ok "accepted requests answered 200" || fail "no 200 in $(cat "$T/l4")"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"
finish
