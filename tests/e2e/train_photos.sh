#!/usr/bin/env bash
# train_photos.sh — dae-train in photo-patch mode: a tiny residual denoiser on random patches
# of a folder of colour photos, in the opponent space one channel at a time
# (data.per_channel), then served the way its config says (dae-model run on a colour PNG);
# the same on gray photos; a patches.noise set (camera, correlated, JPEG) from the command
# line; per_channel without colour photos refused with a reason.
source "$(dirname "$0")/lib.bash"

mkdir -p "$T/rgb" "$T/gray"
"$B/helpers/mkpng" "$T/rgb/a.png" 64 48 3
"$B/helpers/mkpng" "$T/rgb/b.jpg" 40 56 3
"$B/helpers/mkpng" "$T/gray/a.png" 64 48 1
recipe() { # recipe OUT DATA CHANNELS EXTRA-DATA-FIELDS
    cat >"$1" <<JSON
{"name": "tiny-photo", "output": "$T/out.safetensors", "tasks": ["denoise"], "seed": 1,
 "epochs": 2, "batch_size": 8, "threads": 1,
 "data": {"train": "$2", "channels": $3 $4},
 "patches": {"size": 16, "per_epoch": 64, "sigma_min": 0, "sigma_max": 55, "val_count": 9},
 "model": {"input": [1, 16, 16], "residual": true,
  "encoder": [{"type": "conv2d", "in_channels": 1, "out_channels": 8, "kernel_size": 3, "padding": 1},
              {"type": "relu"}],
  "decoder": [{"type": "conv2d", "in_channels": 8, "out_channels": 1, "kernel_size": 3, "padding": 1}]},
 "optimizer": {"kind": "adam", "lr": 0.001}, "collapse": {"check": "off"}}
JSON
}

recipe "$T/pc.json" "$T/rgb" 3 ', "color_space": "opponent", "per_channel": true'
if "$B/dae-train" "$T/pc.json" >"$T/pc.log" 2>&1; then
    ok "per-channel photo training runs"
else
    fail "per-channel training failed: $(tail -3 "$T/pc.log")"
fi
grep -q "one channel at a time" "$T/pc.log" && ok "log names the per-channel mode" ||
    fail "log: $(head -3 "$T/pc.log")"
"$B/dae-model" info "$T/out.safetensors" >"$T/info" 2>&1
grep -q 'per_channel *true' "$T/info" && grep -q 'color_space *opponent' "$T/info" &&
    ok "model file says per_channel, opponent" || fail "info: $(head -c 400 "$T/info")"
"$B/helpers/mkpng" "$T/in.png" 30 20 3
"$B/dae-model" run "$T/out.safetensors" "$T/in.png" "$T/out.png" &&
    [ "$(png_size "$T/out.png")" = "30 20" ] &&
    [ "$(od -An -tu1 -j25 -N1 "$T/out.png" | tr -d ' ')" = 2 ] &&
    ok "runs on a colour photo, colour out" || fail "dae-model run on the per-channel model"

recipe "$T/g.json" "$T/gray" 1 ''
"$B/dae-train" "$T/g.json" >"$T/g.log" 2>&1 && ok "gray photo training runs" ||
    fail "gray training failed: $(tail -3 "$T/g.log")"

# A noise-level-map model (FFDNet-style: pixel_unshuffle, convs, pixel_shuffle) into a
# folder that does not exist yet; it runs with and without a noise level.
cat >"$T/ffd.json" <<JSON
{"name": "tiny-ffd", "output": "$T/runs/x/ffd.safetensors", "tasks": ["denoise"], "seed": 1,
 "epochs": 1, "batch_size": 8, "threads": 1, "data": {"train": "$T/gray", "channels": 1},
 "patches": {"size": 16, "per_epoch": 16, "sigma_min": 0, "sigma_max": 75, "val_count": 4,
             "blind": 0.5},
 "model": {"input": [2, 16, 16], "residual": true, "noise_map": true,
  "encoder": [{"type": "pixel_unshuffle", "downscale_factor": 2},
              {"type": "conv2d", "in_channels": 8, "out_channels": 8, "kernel_size": 3, "padding": 1},
              {"type": "relu"}],
  "decoder": [{"type": "conv2d", "in_channels": 8, "out_channels": 4, "kernel_size": 3, "padding": 1},
              {"type": "pixel_shuffle", "upscale_factor": 2}]},
 "optimizer": {"kind": "adam", "lr": 0.001}, "collapse": {"check": "off"}}
JSON
"$B/dae-train" "$T/ffd.json" >"$T/ffd.log" 2>&1 && [ -f "$T/runs/x/ffd.safetensors" ] &&
    ok "noise-map model trains into a new folder" || fail "ffd training: $(tail -3 "$T/ffd.log")"
grep -q "noise-level map input" "$T/ffd.log" && ok "log names the noise-level map" ||
    fail "log: $(head -4 "$T/ffd.log")"
"$B/helpers/mkpng" "$T/in1.png" 30 20 1
"$B/dae-model" run --sigma 30 "$T/runs/x/ffd.safetensors" "$T/in1.png" "$T/s30.png" &&
    "$B/dae-model" run "$T/runs/x/ffd.safetensors" "$T/in1.png" "$T/blind.png" &&
    [ "$(png_size "$T/s30.png")" = "30 20" ] && ok "noise-map model runs with and without --sigma" ||
    fail "dae-model run on the noise-map model"
# a noise set from the command line: every kind, the JPEG step on every patch
noise='[{"type":"gaussian","sigma":[0,75]},{"type":"camera"},{"type":"correlated","sigma":[0,50]},{"type":"jpeg","p":1,"quality":[60,95]}]'
recipe "$T/n.json" "$T/rgb" 3 ', "color_space": "opponent", "per_channel": true'
if "$B/dae-train" "$T/n.json" --patches.noise "$noise" >"$T/n.log" 2>&1; then
    ok "training with a noise set runs"
else
    fail "noise-set training failed: $(tail -3 "$T/n.log")"
fi
grep -q 'patch noise.*"type":"camera","shot":\[0.0001,0.012\]' "$T/n.log" &&
    ok "log prints the noise set with its defaults" || fail "log: $(head -3 "$T/n.log")"
grep -aq '\\"noise\\":\[{\\"type\\":\\"gaussian\\"' "$T/out.safetensors" &&
    ok "model file records the noise set" || fail "no noise set in the model file"
if "$B/dae-train" "$T/n.json" --patches.noise '[{"type":"camera","iso":3}]' >"$T/nb.log" 2>&1
then
    fail "unknown camera key accepted"
else
    grep -q 'patches.noise\[0\] (camera).iso: unknown key' "$T/nb.log" &&
        ok "unknown noise key refused with its name" || fail "$(tail -2 "$T/nb.log")"
fi

recipe "$T/bad.json" "$T/gray" 1 ', "per_channel": true'
if "$B/dae-train" "$T/bad.json" >"$T/bad.log" 2>&1; then
    fail "per_channel on gray photos accepted"
else
    grep -q "per_channel.*channels 3" "$T/bad.log" && ok "per_channel without colour refused" ||
        fail "$(tail -2 "$T/bad.log")"
fi

finish
