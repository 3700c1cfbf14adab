#!/usr/bin/env bash
# photo_tools.sh — dae-model prep (luma + area downscale of a training photo), per-channel
# (a gray denoiser as a colour model) and grid --crop (before/after pictures).
source "$(dirname "$0")/lib.bash"

"$B/bench/mkpng" "$T/c.jpg" 200 100 3
"$B/dae-model" prep "$T/c.jpg" "$T/g50.png" --gray --short 50 && ok "prep runs" || fail "prep failed"
[ "$(png_size "$T/g50.png")" = "100 50" ] && ok "short side 50: 100x50" || fail "size $(png_size "$T/g50.png")"
[ "$(od -An -tu1 -j25 -N1 "$T/g50.png" | tr -d ' ')" = 0 ] && ok "gray PNG" || fail "not gray"
"$B/dae-model" prep "$T/c.jpg" "$T/c.png" --short 500 && [ "$(png_size "$T/c.png")" = "200 100" ] &&
    ok "never upscaled" || fail "prep upscaled or failed"
"$B/dae-model" prep "$T/c.jpg" "$T/x.png" --short 0 2>/dev/null && fail "--short 0 accepted" ||
    ok "--short 0 refused"

"$B/bench/mkmodel" "$T/g.safetensors" dncnn photo-gray
"$B/bench/mkmodel" "$T/c.safetensors" dncnn-rgb photo-rgb
"$B/dae-model" per-channel "$T/g.safetensors" "$T/pc.safetensors" photo-pc && ok "per-channel" ||
    fail "per-channel failed"
"$B/dae-model" info "$T/pc.safetensors" >"$T/info" 2>&1
grep -q '"per_channel": *true\|per_channel.*true' "$T/info" && ok "config says per_channel" ||
    fail "info lacks per_channel: $(head -c 300 "$T/info")"
if "$B/dae-model" per-channel "$T/c.safetensors" "$T/bad.safetensors" x 2>"$T/err"; then
    fail "a 3-channel model made per-channel"
else
    grep -q "1-channel" "$T/err" && ok "3-channel model refused with a reason" || fail "$(cat "$T/err")"
fi

"$B/dae-model" grid "$T/grid.png" "$T/c.png" "$T/c.png" --crop 10,20,30,40 --pad 0 &&
    [ "$(png_size "$T/grid.png")" = "60 40" ] && ok "grid --crop" || fail "grid --crop: $(png_size "$T/grid.png")"
finish
