#!/usr/bin/env bash
# train_kill.sh — SIGKILL of dae-train at random moments (many land inside a checkpoint
# write: the checkpoint and its fsync are most of each short epoch). After every kill the
# model and checkpoint paths hold either nothing or a complete file (`dae-model info`
# accepts the model; `--resume` accepts the checkpoint); `--resume` continues from the last
# complete checkpoint, never going back, and the final run finishes with a valid model.
source "$(dirname "$0")/lib.bash"

mkdir -p "$T/data"
for i in $(seq 0 47); do "$B/helpers/mkpng" "$T/data/$i.png" 28 28 1 >/dev/null; done
cat >"$T/recipe.json" <<EOF
{"name": "killed", "output": "$T/out/killed.safetensors", "checkpoint": "$T/out/killed.ckpt",
 "tasks": ["denoise"], "epochs": 100000, "batch_size": 16, "threads": 1, "progress": "off",
 "data": {"train": "$T/data", "val_count": 8},
 "model": {"input": [1, 28, 28],
   "encoder": [{"type": "flatten"}, {"type": "linear", "in_features": 784, "out_features": 256},
               {"type": "relu"}],
   "decoder": [{"type": "linear", "in_features": 256, "out_features": 784}, {"type": "sigmoid"},
               {"type": "unflatten", "unflattened_size": [1, 28, 28]}]},
 "corruption": "denoise-g20", "optimizer": {"kind": "adam", "lr": 0.001}}
EOF
mkdir -p "$T/out"
RANDOM=11
last_epoch=0
kills=0
for round in $(seq 1 10); do
    resume=()
    [ -e "$T/out/killed.ckpt" ] && resume=(--resume)
    "$B/dae-train" "$T/recipe.json" "${resume[@]}" >"$T/train.$round.log" 2>&1 &
    tp=$!
    # A random moment in the first 1.5 s (epochs of 10-50 ms, most of it the checkpoint).
    sleep "$((RANDOM % 2)).$((RANDOM % 10))$((RANDOM % 10))"
    if kill -9 "$tp" 2>/dev/null; then kills=$((kills + 1)); fi
    wait "$tp" 2>/dev/null || true
    if [ -e "$T/out/killed.safetensors" ]; then
        "$B/dae-model" info "$T/out/killed.safetensors" >/dev/null 2>"$T/info.err" ||
            fail "round $round: model file at the target path is invalid: $(cat "$T/info.err")"
    fi
    if [ -e "$T/out/killed.ckpt" ]; then
        # The epoch the checkpoint holds (its "state" metadata).
        ep=$(grep -ao 'epoch\\":[0-9]*' "$T/out/killed.ckpt" | head -1 | cut -d: -f2)
        [ -n "$ep" ] || fail "round $round: checkpoint without an epoch (corrupt?)"
        [ "${ep:-0}" -ge "$last_epoch" ] || fail "round $round: checkpoint went back from epoch $last_epoch to $ep"
        last_epoch=${ep:-0}
    fi
    if grep -q "checkpoint.*\(not\|bad\|missing\|inconsistent\|truncated\|exceeds\|beyond\)" "$T/train.$round.log"; then
        fail "round $round: the checkpoint was refused: $(grep -m1 checkpoint "$T/train.$round.log")"; fi
    { grep -h "resumed from" "$T/train.$round.log" || true; } | head -1 | sed "s/^/  round $round: /"
done
[ "$kills" -ge 8 ] && ok "$kills kills; checkpoint at epoch $last_epoch after them; no invalid file at the target paths" ||
    fail "only $kills kills landed (training ended early?)"
resume=()
[ -e "$T/out/killed.ckpt" ] && resume=(--resume)
if "$B/dae-train" "$T/recipe.json" "${resume[@]}" --epochs $((last_epoch + 3)) >"$T/train.final.log" 2>&1; then
    ok "final run finished: $(grep -h 'resumed from' "$T/train.final.log" | head -1)"
else fail "final run: $(tail -5 "$T/train.final.log")"; fi
if [ -e "$T/out/killed.ckpt" ] && [ "$last_epoch" -gt 0 ]; then
    grep -q "resumed from .* at epoch" "$T/train.final.log" && ok "resumed from the last checkpoint" ||
        fail "final run did not resume"
fi
"$B/dae-model" info "$T/out/killed.safetensors" >"$T/info.out" 2>&1 &&
    ok "final model valid: $(grep -m1 -i 'param' "$T/info.out")" || fail "final model: $(cat "$T/info.out")"
echo "kills that interrupted a file write (a *.tmp.PID left behind, never read): $(find "$T/out" -name '*.tmp.*' | wc -l)"
finish
