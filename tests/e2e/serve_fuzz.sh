#!/usr/bin/env bash
# serve_fuzz.sh — hostile bodies on every POST route: cut, corrupted and random bytes of
# valid PNG, JSON and v2 requests. daed must answer each with a status below 500 (or 503)
# and keep serving; under ASan any memory error aborts it and fails the test.
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
"$B/helpers/mkpng" "$T/hole.png" 28 28 1 hole
B64=$(base64 -w0 "$T/g28.png")
PIX=$(for _ in $(seq 784); do echo 0.5; done | paste -sd, -)
printf '{"images":[{"png":"%s"},{"width":28,"height":28,"channels":1,"pixels":[%s],"mask":[%s]}],"steps":3}' \
    "$B64" "$PIX" "$PIX" >"$T/img.json"
printf '{"id":"x","inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":[%s]}],"outputs":[{"name":"latent"},{"name":"output"}]}' \
    "$PIX" >"$T/v2.json"
printf '{"latents":[[1,2,3,4,5,6,7,8],[0,0,0,0,0,0,0,0]]}' >"$T/lat.json"

start_daed fuzz --models "$T/models" --workers 2 --access-log 0 --max-body 1M
RANDOM=7 # reproducible cuts and flips
mutate() { # mutate SRC DST: a cut, a flipped byte, or random bytes
    local src=$1 dst=$2 n
    n=$(stat -c %s "$src")
    case $((RANDOM % 4)) in
    0) head -c $((RANDOM % n)) "$src" >"$dst" ;;
    1) cp "$src" "$dst"
       printf "\\x$(printf %02x $((RANDOM % 256)))" |
           dd of="$dst" bs=1 seek=$((RANDOM % n)) conv=notrunc status=none ;;
    2) head -c $((RANDOM % 3000)) /dev/urandom >"$dst" ;;
    3) { head -c $((RANDOM % n)) "$src"; head -c $((RANDOM % 200)) /dev/urandom; } >"$dst" ;;
    esac
}
total=0
bad=0
for route in "denoise:$T/g28.png" "inpaint:$T/hole.png" "superres:$T/g28.png" "score:$T/g28.png" \
    "encode:$T/img.json" "denoise:$T/img.json" "inpaint:$T/img.json" "interpolate:$T/img.json" \
    "decode:$T/lat.json" "score?heatmap=1:$T/img.json" "v2:$T/v2.json"; do
    r=${route%%:*}
    src=${route#*:}
    path="/v1/$r"
    [ "$r" = v2 ] && path="/v2/models/mlp/infer"
    [ "$r" = decode ] && path="/v1/decode?model=mlp"
    [ "$r" = superres ] || [ "$r" = decode ] || [ "$r" = v2 ] ||
        { [[ "$path" == *\?* ]] && path="$path&model=conv" || path="$path?model=conv"; }
    [ "$r" = superres ] && path="/v1/superres?resize=1"
    for _ in $(seq 25); do
        mutate "$src" "$T/m.bin"
        ct=application/json
        [ $((RANDOM % 2)) = 0 ] && ct=image/png
        req POST "$path" --data-binary @"$T/m.bin" -H "Content-Type: $ct"
        total=$((total + 1))
        case "$CODE" in 200 | 400 | 413 | 422 | 503) ;; *)
            bad=$((bad + 1)); cp "$T/m.bin" "$T/crash-$total.bin"
            fail "$path: status $CODE for a mutated body (kept as crash-$total.bin)" ;;
        esac
    done
done
[ "$bad" = 0 ] && ok "$total mutated bodies answered with a client error or success"
req GET /healthz; expect 200 "alive after the fuzzing"
req POST "/v1/denoise?model=conv" --data-binary @"$T/g28.png"; expect 200 "still serving"
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"
finish
