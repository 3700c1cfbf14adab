#!/usr/bin/env bash
# serve_split.sh — a request of many samples that finds a worker idle runs in parts on
# several workers at once (infer.c): the answers are those of the images sent one by one,
# in order, for every model kind and op a batch can take (denoise, score, encode; JSON
# and KServe v2), and /metrics counts the split.
source "$(dirname "$0")/lib.bash"

make_models
# --max-batch 2: two samples per model call, so 8 images make 4 calls (2 parts of 2 calls)
start_daed split --models "$T/models" --workers 2 --max-batch 2 --access-log 0

# image k: pixel i = ((7 i + 13 k) mod 256) / 255
pixels() { awk -v k="$1" 'BEGIN { for (i = 0; i < 784; i++) printf "%s%.6f", i ? "," : "", ((7 * i + 13 * k) % 256) / 255 }'; }
N=8
{
    printf '{"images":['
    for k in $(seq 0 $((N - 1))); do
        [ "$k" = 0 ] || printf ','
        printf '{"width":28,"height":28,"channels":1,"pixels":[%s]}' "$(pixels "$k")"
    done
    printf ']}'
} >"$T/batch.json"
for k in $(seq 0 $((N - 1))); do
    printf '{"width":28,"height":28,"channels":1,"pixels":[%s]}' "$(pixels "$k")" >"$T/one$k.json"
done

# the numbers of every image ("pixels":[...]) or code ("latent":[...], "latents":[[...],..])
# of a JSON answer, one list per line
arrays() {
    case $1 in
    pixels) grep -o '"pixels":\[[^]]*\]' "$2" | sed 's/.*\[//; s/\]//' ;;
    *) sed 's/.*"latents\{0,1\}":\[//' "$2" | grep -o '[-0-9.eE+,]\{2,\}' ;;
    esac
}
# same_lines A B: equal line by line within 1e-5 (each line a list of numbers)
same_lines() {
    awk 'NR == FNR { a[FNR] = $0; n = FNR; next }
         { m = split(a[FNR], x, ","); k = split($0, y, ",");
           if (m != k || m == 0) bad = 1;
           for (i = 1; i <= m; i++) { d = x[i] - y[i]; if (d > 1e-5 || d < -1e-5) bad = 1 } }
         END { exit bad || FNR != n }' "$1" "$2"
}

splits() {
    req GET /metrics
    grep -E '^daed_split_requests_total ' "$T/body" | awk '{print $2}'
}

J=(-H 'Content-Type: application/json' -H 'Accept: application/json')
for route in "denoise?model=conv:pixels" "denoise?model=mlp:pixels" "encode?model=conv:latent"; do
    path=${route%%:*} key=${route#*:}
    before=$(splits)
    req POST "/v1/$path" "${J[@]}" --data-binary @"$T/batch.json"
    expect 200 "batch of $N on /v1/$path"
    arrays "$key" "$T/body" >"$T/batch.out"
    after=$(splits)
    [ "$after" -gt "$before" ] && ok "/v1/$path: split over the workers ($before -> $after)" ||
        fail "/v1/$path: not split (daed_split_requests_total $before -> $after)"
    : >"$T/ones.out"
    for k in $(seq 0 $((N - 1))); do
        req POST "/v1/$path" "${J[@]}" --data-binary @"$T/one$k.json"
        arrays "$key" "$T/body" >>"$T/ones.out"
    done
    [ "$(wc -l <"$T/batch.out")" = "$N" ] && same_lines "$T/batch.out" "$T/ones.out" &&
        ok "/v1/$path: the $N answers are those of the images one by one, in order" ||
        fail "/v1/$path: batch answers differ from the single ones"
done

# score: one score per image, the same as alone
req POST "/v1/score?model=conv" "${J[@]}" --data-binary @"$T/batch.json"
expect 200 "score a batch of $N"
grep -o '"score":[-0-9.eE+]*' "$T/body" | cut -d: -f2 >"$T/s.batch"
: >"$T/s.ones"
for k in $(seq 0 $((N - 1))); do
    req POST "/v1/score?model=conv" "${J[@]}" --data-binary @"$T/one$k.json"
    grep -o '"score":[-0-9.eE+]*' "$T/body" | cut -d: -f2 >>"$T/s.ones"
done
[ "$(wc -l <"$T/s.batch")" = "$N" ] && same_lines "$T/s.batch" "$T/s.ones" &&
    ok "batch scores are the single ones" || fail "scores differ: $(paste -d' ' "$T/s.batch" "$T/s.ones" | head -3)"

# under load (both workers busy) batches still answer right; nothing is lost
"$B/helpers/loadgen" --port "$PORT" --path "/v1/denoise?model=conv" --body "$T/batch.json" \
    --type application/json --conns 6 --requests 10 >"$T/load" &&
    ok "6 connections of batches: $(cat "$T/load")" || fail "batches under load: $(cat "$T/load")"
req GET /metrics
body_has 'daed_split_parts_total' "parts counted"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"
finish
