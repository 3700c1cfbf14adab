#!/usr/bin/env bash
# serve_reload.sh — reloading under load (SIGHUP and POST /v1/admin/reload) fails no
# request; a broken file leaves the old version serving and is counted.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
# Mapped model files (--model-mmap always): every replace below is atomic (rename), the
# way mapped files must be replaced; old mappings are released when their last request ends.
start_daed reload --models "$T/models" --workers 2 --access-log 0 --model-mmap always
LG="$B/helpers/loadgen --port $PORT"
$LG --path "/v1/denoise?model=conv" --body "$T/g28.png" --type image/png --conns 24 --requests 80 >"$T/l1" &
L1=$!
$LG --path "/v1/denoise?model=mlp" --body "$T/g28.png" --type image/png --conns 8 --requests 80 >"$T/l2" &
L2=$!
for i in $(seq 1 8); do
    # A new conv (atomic replace: new inode), a broken mlp, a new model appearing.
    "$B/helpers/mkmodel" "$T/models/conv.safetensors" conv conv "$((i + 10))"
    if [ "$i" = 3 ]; then
        printf 'broken' >"$T/mlp.tmp" && mv "$T/mlp.tmp" "$T/models/mlp.safetensors"
        "$B/helpers/mkmodel" "$T/models/extra.safetensors" conv extra
    fi
    if [ $((i % 2)) = 0 ]; then kill -HUP "$PID"; else
        req POST /v1/admin/reload
        [ "$CODE" = 200 ] || fail "admin reload $i: $CODE $(cat "$T/body")"
    fi
    sleep 0.2
done
for l in "$L1:l1" "$L2:l2"; do
    if wait "${l%%:*}"; then ok "load during reloads ${l#*:}: $(cat "$T/${l#*:}")"; else
        fail "load during reloads ${l#*:}: $(cat "$T/${l#*:}")"; fi
done
req POST /v1/admin/reload; expect 200 "final reload"
body_has '"failed":1' "the broken file is reported"; body_has '"file":"mlp.safetensors"' "by name"
req GET /v1/models/mlp; expect 200 "old mlp still serving"
req GET /v1/models/extra; expect 200 "new model appeared"
req POST "/v1/denoise?model=mlp" --data-binary @"$T/g28.png"; expect 200 "old mlp answers"
grep -q "model file mlp.safetensors failed to load, previous version of mlp keeps serving" "$LOG" &&
    ok "failure logged with the reason" || fail "no failure log line"
grep -q "model conv reloaded" "$LOG" && ok "conv reloaded" || fail "conv never reloaded"
grep -q "SIGHUP: reloading" "$LOG" && ok "SIGHUP reloads" || fail "no SIGHUP reload"
req GET /metrics
grep -Eq '^daed_reload_failures_total [1-9]' "$T/body" && ok "reload failures in /metrics" || fail "reload failures not counted"
grep -Eq '^daed_reloads_total ([9]|[1-9][0-9])' "$T/body" && ok "reloads counted" || fail "reloads: $(grep reloads_total "$T/body")"
body_has 'daed_models_loaded 5' "five models after the reloads"
rm "$T/models/extra.safetensors"
req POST /v1/admin/reload; body_has '"removed":1' "a removed file unloads its model"
req GET /v1/models/extra; expect 404 "removed model is gone"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"
finish
