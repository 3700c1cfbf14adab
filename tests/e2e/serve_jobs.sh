#!/usr/bin/env bash
# serve_jobs.sh — asynchronous requests (Prefer: respond-async, /v1/jobs/{id}): 202 with a
# Location, status with tile progress, the answer byte for byte as the synchronous request
# gives it (also an error answer), DELETE cancels a running job (its tiles stop), the API
# key, --max-jobs, --job-ttl, the daed_jobs_* metrics.
source "$(dirname "$0")/lib.bash"

mkdir -p "$T/models"
# JOBS_TINY_MODEL=1 (make tsan): a tiny stand-in under the same name, as the real model
# is too slow under ThreadSanitizer (a 300x200 photo: 142 s)
if [ "${JOBS_TINY_MODEL:-0}" = 1 ]; then
    "$B/helpers/mkmodel" "$T/models/photo-denoise-rgb.safetensors" dncnn-rgb photo-denoise-rgb >/dev/null
else
    cp models/photo-denoise-rgb.json models/photo-denoise-rgb.safetensors "$T/models/"
fi
"$B/helpers/mkpng" "$T/small.png" 300 200 3
"$B/helpers/mkpng" "$T/big.png" 1200 900 3
metric() { sed -n "s/^$1 //p" "$T/body"; }
K=(-H 'Authorization: Bearer s3cret')
A=(-H 'Prefer: respond-async')

# fp32: with bf16 on AMX tiles the 1200x900 job below would be done before its DELETE
start_daed jobs --models "$T/models" --workers 2 --api-key s3cret --max-jobs 3 --job-ttl 3 \
    --precision fp32
cpu() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
loc() { tr -d '\r' <"$T/hdrs" | sed -n 's/^[Ll]ocation: //p'; }
field() { sed -n "s/.*\"$1\":\"\\{0,1\\}\\([^\",}]*\\).*/\\1/p" "$T/body"; }
# wait_status LOC STATUS: poll the job until it has that status (up to 120 s)
wait_status() {
    for _ in $(seq 1200); do
        req GET "$1" "${K[@]}"
        [ "$(field status)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# the synchronous answer, for comparison
req POST /v1/denoise "${K[@]}" --data-binary @"$T/small.png"
expect 200 "synchronous denoise"
cp "$T/body" "$T/sync.png"

req POST /v1/denoise "${K[@]}" "${A[@]}" --data-binary @"$T/small.png"
expect 202 "Prefer: respond-async answers 202"
hdr_has "Preference-Applied: respond-async" "the preference is acknowledged"
L=$(loc)
[[ "$L" =~ ^/v1/jobs/[0-9a-f]{32}$ ]] && ok "Location $L: a 128-bit hex id" || fail "Location '$L'"
body_has '"model":"photo-denoise-rgb"' "the status names the model"
wait_status "$L" done && ok "the job is done" || fail "job not done: $(cat "$T/body")"
body_has '"http_status":200' "its answer is a 200"
[ "$(field tiles_done)" = "$(field tiles_total)" ] && ok "tiles done = total ($(field tiles_total))" ||
    fail "tiles $(field tiles_done)/$(field tiles_total)"
req GET "$L/result" "${K[@]}"
expect 200 "the result"
hdr_has "Content-Type: image/png" "result is a PNG"
hdr_has "X-Model: photo-denoise-rgb" "result names the model"
cmp -s "$T/body" "$T/sync.png" && ok "the result is byte for byte the synchronous answer" ||
    fail "the result differs from the synchronous answer"
req GET "$L"
expect 401 "the job routes need the API key"
req GET "$L/result"
expect 401 "the result needs the API key"
req POST /v1/denoise "${A[@]}" --data-binary @"$T/small.png"
expect 401 "an async request needs the API key"
req DELETE "$L" "${K[@]}"
expect 200 "DELETE a finished job"
req GET "$L" "${K[@]}"
expect 404 "a deleted job is gone"
req GET /v1/jobs/00000000000000000000000000000000 "${K[@]}"
expect 404 "an unknown id"

# an error answer comes back as the synchronous request gives it
printf 'not an image' >"$T/bad.bin"
req POST /v1/denoise "${K[@]}" --data-binary @"$T/bad.bin"
cp "$T/body" "$T/sync-err"
SYNC_CODE=$CODE
req POST /v1/denoise "${K[@]}" "${A[@]}" --data-binary @"$T/bad.bin"
expect 202 "a bad body is still accepted as a job"
L=$(loc)
wait_status "$L" failed && ok "the job failed" || fail "status: $(cat "$T/body")"
req GET "$L/result" "${K[@]}"
expect "$SYNC_CODE" "its result has the synchronous status"
cmp -s "$T/body" "$T/sync-err" && ok "and the same error body" || fail "error body differs"
req DELETE "$L" "${K[@]}"
expect 200 "DELETE the failed job (it would count against --max-jobs below)"

# a long job: progress, 409 for its result, DELETE stops its tiles; the ttl
c0=$(cpu)
req POST /v1/denoise "${K[@]}" "${A[@]}" --data-binary @"$T/big.png"
expect 202 "a 1200x900 photo as a job"
L=$(loc)
wait_status "$L" running && ok "it runs" || fail "not running: $(cat "$T/body")"
req GET "$L/result" "${K[@]}"
expect 409 "its result before it is done"
sleep 1
req GET "$L" "${K[@]}"
echo "progress after 1 s: $(field tiles_done)/$(field tiles_total) tiles"
[ "$(field tiles_total)" -gt 1 ] && ok "tiles_total counts its tiles" || fail "tiles_total $(field tiles_total)"
req DELETE "$L" "${K[@]}"
expect 200 "DELETE the running job"
body_has '"status":"cancelled"' "it is cancelled"
for _ in $(seq 600); do
    req GET /metrics "${K[@]}"
    [ "$(metric 'daed_jobs_finished_total{status="cancelled"}')" = 1 ] && break
    sleep 0.1
done
used=$(($(cpu) - c0))
echo "daed CPU for the deleted job: $used ticks (a full run of this photo: ~1400 in serve_cancel.sh)"
[ "$(metric 'daed_jobs_finished_total{status="cancelled"}')" = 1 ] && ok "its worker stopped" ||
    fail "the cancelled job never finished"
[ "$(metric 'daed_jobs{status="running"}')" = 0 ] && ok "nothing runs any more" || fail "still running"
req GET "$L" "${K[@]}"
expect 404 "a deleted job is gone"

# --max-jobs 3 and --job-ttl 3
for i in 1 2 3; do
    req POST /v1/denoise "${K[@]}" "${A[@]}" --data-binary @"$T/small.png"
    expect 202 "job $i of 3"
    eval "L$i=$(loc)"
done
req POST /v1/denoise "${K[@]}" "${A[@]}" --data-binary @"$T/small.png"
expect 503 "a fourth job while three are held (--max-jobs 3)"
body_has "--max-jobs" "the 503 names --max-jobs"
for l in "$L1" "$L2" "$L3"; do wait_status "$l" done || fail "job $l not done"; done
sleep 3.5
req GET "$L3" "${K[@]}"
expect 404 "a finished job is gone after --job-ttl"
req GET /metrics "${K[@]}"
[ "$(metric daed_jobs_created_total)" = 6 ] && ok "daed_jobs_created_total 6" || fail "created $(metric daed_jobs_created_total)"
[ "$(metric daed_jobs_refused_total)" = 1 ] && ok "daed_jobs_refused_total 1" || fail "refused $(metric daed_jobs_refused_total)"
[ "$(metric daed_jobs_memory_bytes)" = 0 ] && ok "no job memory held after expiry" || fail "memory $(metric daed_jobs_memory_bytes)"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean stop" || fail "stop rc $STOP_RC"
finish
