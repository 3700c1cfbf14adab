#!/usr/bin/env bash
# serve_faults.sh — bad model files and many reloads. A truncated, a bit-flipped (header
# and data) and an oversized model file dropped into the models folder, then SIGHUP: the
# old version keeps serving, the failure is reported (log, reload answer, /metrics). Then
# 100 reloads (SIGHUP and POST /v1/admin/reload, new versions and broken files in between)
# under continuous load: no failed request, and RSS does not grow with the reloads.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
start_daed faults --models "$T/models" --workers 2 --access-log 0
rss() { awk '$1 == "VmRSS:" {print $2}' "/proc/$PID/status"; }

# drop NAME SRC: atomic replace of models/NAME.safetensors (a new inode, as deploys do)
drop() { cp "$2" "$T/drop.tmp" && mv "$T/drop.tmp" "$T/models/$1.safetensors"; }
# reload_report: POST /v1/admin/reload; the answer in $T/body
reload_report() { req POST /v1/admin/reload; [ "$CODE" = 200 ] || fail "admin reload: $CODE $(cat "$T/body")"; }

cp "$T/models/mlp.safetensors" "$T/mlp.good"
size=$(stat -c %s "$T/mlp.good")
head -c $((size / 2)) "$T/mlp.good" >"$T/mlp.trunc"
# Bit flips: in the 8-byte header length, inside the JSON header, and in the tensor data.
flip() { # flip SRC DST OFFSET
    cp "$1" "$2"
    local b
    b=$(od -An -tu1 -j "$3" -N1 "$1" | tr -d ' ')
    printf "\\x$(printf %02x $((b ^ 0x10)))" | dd of="$2" bs=1 seek="$3" conv=notrunc status=none
}
flip "$T/mlp.good" "$T/mlp.flip_len" 5
flip "$T/mlp.good" "$T/mlp.flip_hdr" 40
flip "$T/mlp.good" "$T/mlp.flip_data" $((size - 3))
cp "$T/mlp.good" "$T/mlp.big" && truncate -s 300M "$T/mlp.big" # sparse: 300 MB on paper

req GET /v1/models/mlp; cp "$T/body" "$T/mlp.desc0"
for bad in trunc flip_len flip_hdr big; do
    drop mlp "$T/mlp.$bad"
    n0=$(grep -c "mlp.safetensors failed to load" "$LOG" || true)
    kill -HUP "$PID"
    for _ in $(seq 100); do
        [ "$(grep -c "mlp.safetensors failed to load" "$LOG" || true)" -gt "$n0" ] && break
        sleep 0.1
    done
    [ "$(grep -c "mlp.safetensors failed to load" "$LOG" || true)" -gt "$n0" ] &&
        ok "$bad model file: failure logged" || fail "$bad model file: no failure logged"
    req POST "/v1/denoise?model=mlp" --data-binary @"$T/g28.png"; expect 200 "$bad: old mlp still serving"
    reload_report; body_has '"file":"mlp.safetensors"' "$bad: the reload answer names the file"
    echo "  $bad: $(grep -o '"failures":.*' "$T/body" | head -c 240)"
done
# A flip inside the weights leaves a well-formed file: it may load (new weights) or be
# refused (non-finite values); either way mlp answers.
drop mlp "$T/mlp.flip_data"
reload_report
req POST "/v1/denoise?model=mlp" --data-binary @"$T/g28.png"; expect 200 "data bit flip: mlp answers"
req GET /metrics
grep -Eq '^daed_reload_failures_total [4-9]' "$T/body" && ok "failures counted in /metrics" ||
    fail "reload failures: $(grep reload_failures "$T/body")"
drop mlp "$T/mlp.good"

# ---- 100 reloads under continuous load
touch "$T/loading"
( i=0; while [ -e "$T/loading" ]; do
    i=$((i + 1))
    "$B/helpers/loadgen" --port "$PORT" --path "/v1/denoise?model=mlp" --body "$T/g28.png" \
        --type image/png --conns 6 --requests 20 >"$T/lg.$i" 2>&1 || cp "$T/lg.$i" "$T/lg.failed.$i"
  done; echo "$i" >"$T/lg.rounds" ) &
LGP=$!
( while [ -e "$T/loading" ]; do
    "$B/helpers/loadgen" --port "$PORT" --path "/v1/score?model=conv" --body "$T/g28.png" \
        --type image/png --conns 2 --requests 20 >"$T/lg2" 2>&1 || cp "$T/lg2" "$T/lg.failed.score.$RANDOM"
  done ) &
LGP2=$!
rss10=""
for i in $(seq 1 100); do
    "$B/helpers/mkmodel" "$T/new.safetensors" mlp mlp "$((i + 100))" && mv "$T/new.safetensors" "$T/models/mlp.safetensors"
    "$B/helpers/mkmodel" "$T/new.safetensors" conv conv "$((i + 300))" && mv "$T/new.safetensors" "$T/models/conv.safetensors"
    case $((i % 10)) in
    3) drop rgb "$T/mlp.trunc" ;; # a broken file appears (rgb keeps its old version)
    4) "$B/helpers/mkmodel" "$T/new.safetensors" rgb rgb "$i" && mv "$T/new.safetensors" "$T/models/rgb.safetensors" ;;
    esac
    if [ $((i % 4)) = 0 ]; then
        kill -HUP "$PID"; sleep 0.05
    else
        reload_report
    fi
    [ "$i" = 10 ] && rss10=$(rss)
done
reload_report
rss100=$(rss)
rm "$T/loading"
wait "$LGP" "$LGP2"
rounds=$(cat "$T/lg.rounds")
if ls "$T"/lg.failed.* >/dev/null 2>&1; then
    fail "requests failed during the reloads: $(cat "$T"/lg.failed.* | head -5)"
else ok "100 reloads under load: $rounds+ load rounds of 120 denoise requests, none failed"; fi
req GET /metrics
echo "  $(grep -E '^daed_reloads_total|^daed_reload_failures_total' "$T/body" | tr '\n' ' ')"
grep -Eq '^daed_reloads_total (1[0-9][0-9])' "$T/body" && ok "every reload counted" ||
    fail "reloads: $(grep '^daed_reloads_total' "$T/body")"
echo "RSS after reload 10: $rss10 kB, after reload 100: $rss100 kB"
# Each leaked mlp would be about 100 kB: 90 of them 9 MB. Sanitizer builds hold freed
# memory in quarantine, so the RSS check is for plain builds (ASan's leak check at exit
# covers those).
case "$B" in *asan* | *tsan*) ok "RSS check skipped under a sanitizer" ;;
*) [ $((rss100 - rss10)) -lt 8192 ] && ok "RSS grew $((rss100 - rss10)) kB over 90 reloads" ||
    fail "RSS grew $((rss100 - rss10)) kB over 90 reloads" ;;
esac
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit (no leak report under ASan)" || fail "exit $STOP_RC"
finish
