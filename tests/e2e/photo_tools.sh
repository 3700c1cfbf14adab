#!/usr/bin/env bash
# photo_tools.sh — dae-model prep (luma + area downscale of a training photo), per-channel
# (a gray denoiser as a colour model), sigma-range (a new routing range), widen (a gray
# denoiser as the start of a colour one), run on colour photo models, and grid --crop
# (before/after pictures).
source "$(dirname "$0")/lib.bash"

"$B/helpers/mkpng" "$T/c.jpg" 200 100 3
"$B/dae-model" prep "$T/c.jpg" "$T/g50.png" --gray --short 50 && ok "prep runs" || fail "prep failed"
[ "$(png_size "$T/g50.png")" = "100 50" ] && ok "short side 50: 100x50" || fail "size $(png_size "$T/g50.png")"
[ "$(od -An -tu1 -j25 -N1 "$T/g50.png" | tr -d ' ')" = 0 ] && ok "gray PNG" || fail "not gray"
"$B/dae-model" prep "$T/c.jpg" "$T/c.png" --short 500 && [ "$(png_size "$T/c.png")" = "200 100" ] &&
    ok "never upscaled" || fail "prep upscaled or failed"
"$B/dae-model" prep "$T/c.jpg" "$T/c1.png" --chroma 1 && [ "$(png_size "$T/c1.png")" = "100 50" ] &&
    ok "prep --chroma: a colour channel at half size" || fail "prep --chroma failed or wrong size"
"$B/dae-model" prep "$T/c.jpg" "$T/x.png" --chroma 1 --gray 2>/dev/null &&
    fail "--chroma with --gray accepted" || ok "--chroma with --gray refused"
"$B/dae-model" prep "$T/c.jpg" "$T/x.png" --chroma 3 2>/dev/null && fail "--chroma 3 accepted" ||
    ok "--chroma 3 refused"
"$B/dae-model" prep "$T/c.jpg" "$T/x.png" --short 0 2>/dev/null && fail "--short 0 accepted" ||
    ok "--short 0 refused"

"$B/helpers/mkmodel" "$T/g.safetensors" dncnn photo-gray
"$B/helpers/mkmodel" "$T/c.safetensors" dncnn-rgb photo-rgb
"$B/dae-model" per-channel "$T/g.safetensors" "$T/pc.safetensors" photo-pc && ok "per-channel" ||
    fail "per-channel failed"
"$B/dae-model" info "$T/pc.safetensors" >"$T/info" 2>&1
grep -q '"per_channel": *true\|per_channel.*true' "$T/info" && ok "config says per_channel" ||
    fail "info lacks per_channel: $(head -c 300 "$T/info")"
# per-channel keeps the dtype: an F16 gray model gives an F16 colour one, an F32 one F32
"$B/dae-model" f16 "$T/g.safetensors" "$T/g16.safetensors" &&
    "$B/dae-model" per-channel "$T/g16.safetensors" "$T/pc16.safetensors" photo-pc16 &&
    grep -aq '"dtype":"F16"' "$T/pc16.safetensors" && ! grep -aq '"dtype":"F32"' "$T/pc16.safetensors" &&
    grep -aq '"dtype":"F32"' "$T/pc.safetensors" && ok "per-channel keeps F16 and F32" ||
    fail "per-channel of an F16 model is not F16 (or of an F32 not F32)"
if "$B/dae-model" per-channel "$T/c.safetensors" "$T/bad.safetensors" x 2>"$T/err"; then
    fail "a 3-channel model made per-channel"
else
    grep -q "1-channel" "$T/err" && ok "3-channel model refused with a reason" || fail "$(cat "$T/err")"
fi
"$B/dae-model" per-channel "$T/g.safetensors" "$T/pch.safetensors" photo-pch --chroma-half \
    --sigma-range 20,30 && ok "per-channel --chroma-half --sigma-range" || fail "chroma-half failed"
"$B/dae-model" info "$T/pch.safetensors" > "$T/info-h"
grep -q "chroma_half *true" "$T/info-h" && grep -q "sigma_range *\[20,30\]" "$T/info-h" &&
    ok "config says chroma_half and sigma_range" || fail "info: $(grep -E 'chroma|sigma_r' "$T/info-h")"
if "$B/dae-model" per-channel "$T/g.safetensors" "$T/bad.safetensors" x --chroma-half \
    --color-space rgb 2>"$T/err"; then
    fail "half chroma in the rgb space accepted"
else
    grep -q "opponent" "$T/err" && ok "half chroma in rgb refused with a reason" || fail "$(cat "$T/err")"
fi
for bad in 30,20 -1,5 5 5,300 a,b; do
    "$B/dae-model" per-channel "$T/g.safetensors" "$T/bad.safetensors" x --sigma-range $bad \
        2>"$T/err" && fail "--sigma-range $bad accepted" ||
        { grep -q "sigma-range" "$T/err" && ok "--sigma-range $bad refused" || fail "$(cat "$T/err")"; }
done

# sigma-range: a new routing range, the rest of the file kept (weights, dtype, other config)
"$B/dae-model" sigma-range "$T/pch.safetensors" "$T/pch2.safetensors" 0,30 &&
    ok "sigma-range" || fail "sigma-range failed"
"$B/dae-model" info "$T/pch2.safetensors" > "$T/info-r"
grep -q "sigma_range *\[0,30\]" "$T/info-r" && grep -q "chroma_half *true" "$T/info-r" &&
    ok "sigma-range replaced, chroma_half kept" || fail "info: $(grep -E 'chroma|sigma_r' "$T/info-r")"
"$B/dae-model" sigma-range "$T/g16.safetensors" "$T/g16r.safetensors" 5,10 &&
    grep -aq '"dtype":"F16"' "$T/g16r.safetensors" && ! grep -aq '"dtype":"F32"' "$T/g16r.safetensors" &&
    ok "sigma-range keeps F16" || fail "sigma-range of an F16 model is not F16"
"$B/helpers/mkpng" "$T/n.png" 64 48 3 noise=20
"$B/dae-model" run "$T/pch.safetensors" "$T/n.png" "$T/r1.png" >/dev/null &&
    "$B/dae-model" run "$T/pch2.safetensors" "$T/n.png" "$T/r2.png" >/dev/null &&
    cmp -s "$T/r1.png" "$T/r2.png" && ok "sigma-range: the same answers" ||
    fail "sigma-range changed what the model computes"
for bad in 30,20 -1,5 5 5,300; do
    "$B/dae-model" sigma-range "$T/pch.safetensors" "$T/bad.safetensors" $bad 2>"$T/err" &&
        fail "sigma-range $bad accepted" ||
        { grep -q "sigma-range" "$T/err" && ok "sigma-range $bad refused" || fail "$(cat "$T/err")"; }
done

# widen: the gray model as the start of a 3-channel one. On a gray image (read as R=G=B:
# the opponent colour channels are flat) the widened model must give the gray model's
# output on every channel (dae-model run applies the model's colour space).
"$B/dae-model" widen "$T/g.safetensors" "$T/w.safetensors" photo-w && ok "widen" || fail "widen failed"
"$B/dae-model" info "$T/w.safetensors" | grep -q 'input .*(3,40,40)' && ok "widened input has 3 channels" ||
    fail "widened: $("$B/dae-model" info "$T/w.safetensors" 2>&1 | head -5)"
"$B/helpers/mkpng" "$T/in.png" 48 40 1
pixels() { sed 's/.*"pixels":\[//; s/\].*//' "$1" | tr ',' '\n'; }
"$B/dae-model" run "$T/g.safetensors" "$T/in.png" "$T/g.json" && pixels "$T/g.json" >"$T/g.txt"
for m in w; do
    "$B/dae-model" run "$T/$m.safetensors" "$T/in.png" "$T/$m.json" && pixels "$T/$m.json" >"$T/$m.txt"
    # max |difference| per output channel against the gray output
    d=$(awk 'NR==FNR{g[FNR-1]=$1; n=FNR; next} {i=FNR-1; x=$1-g[i%n]; if(x<0)x=-x; p=int(i/n); c[p]++; if(x>m[p])m[p]=x}
             END{for(p=0;p<3;p++) printf "%d:%g ", c[p], m[p]}' "$T/g.txt" "$T/$m.txt")
    awk -v d="$d" 'BEGIN{n=split(d,a," "); for(i=1;i<=n;i++){split(a[i],b,":"); if(b[1]!=1920||b[2]>1e-5) exit 1}; exit n!=3}' &&
        ok "$m on a gray image = the gray model on each channel ($d)" || fail "$m differs: $d"
done
# a noise-map model widens too: the map's weights follow it (input 2 -> 4 channels), and the
# widened model with --sigma gives the gray model's output with --sigma on every channel
"$B/helpers/mkmodel" "$T/gm.safetensors" dncnn-map photo-gm 3
"$B/dae-model" widen "$T/gm.safetensors" "$T/wm.safetensors" photo-wm && ok "widen a noise-map model" ||
    fail "widen of a noise-map model failed"
"$B/dae-model" info "$T/wm.safetensors" >"$T/wm.info" 2>&1
grep -q 'input .*(4,40,40)' "$T/wm.info" && grep -q 'channel 3 of the input' "$T/wm.info" &&
    ok "widened noise-map model: 3 image channels + the map (channel 3)" ||
    fail "widened noise-map model: $(head -8 "$T/wm.info")"
"$B/dae-model" run --sigma 30 "$T/gm.safetensors" "$T/in.png" "$T/gm.json" && pixels "$T/gm.json" >"$T/gm.txt"
"$B/dae-model" run --sigma 30 "$T/wm.safetensors" "$T/in.png" "$T/wm.json" && pixels "$T/wm.json" >"$T/wm.txt"
d=$(awk 'NR==FNR{g[FNR-1]=$1; n=FNR; next} {i=FNR-1; x=$1-g[i%n]; if(x<0)x=-x; p=int(i/n); c[p]++; if(x>m[p])m[p]=x}
         END{for(p=0;p<3;p++) printf "%d:%g ", c[p], m[p]}' "$T/gm.txt" "$T/wm.txt")
awk -v d="$d" 'BEGIN{n=split(d,a," "); for(i=1;i<=n;i++){split(a[i],b,":"); if(b[1]!=1920||b[2]>1e-5) exit 1}; exit n!=3}' &&
    ok "widened noise-map model, sigma 30, on a gray image = the gray one on each channel ($d)" ||
    fail "widened noise-map model differs: $d"
"$B/dae-model" run "$T/gm.safetensors" "$T/in.png" "$T/gb.json" && pixels "$T/gb.json" >"$T/gb.txt"
cmp -s "$T/gb.txt" "$T/gm.txt" && fail "the noise map changes nothing (blind = sigma 30)" ||
    ok "the map matters: blind and sigma 30 differ"
# --init-scale: small random colour weights instead of zeros (the luma slice stays the gray one)
"$B/dae-model" widen "$T/g.safetensors" "$T/w2.safetensors" photo-w --init-scale 0.1 &&
    "$B/dae-model" run "$T/w2.safetensors" "$T/in.png" "$T/w2.json" && pixels "$T/w2.json" >"$T/w2.txt"
d=$(awk 'NR==FNR{g[FNR-1]=$1; n=FNR; next} {x=$1-g[(FNR-1)%n]; if(x<0)x=-x; if(x>m)m=x} END{printf "%g", m}' "$T/g.txt" "$T/w2.txt")
awk -v d="$d" 'BEGIN{exit !(d > 0 && d < 0.2)}' && ok "--init-scale 0.1: close to the gray model, not equal (max diff $d)" ||
    fail "--init-scale 0.1: max diff $d"
"$B/dae-model" widen "$T/g.safetensors" "$T/w3.safetensors" x --init-scale 2 2>/dev/null &&
    fail "--init-scale 2 accepted" || ok "--init-scale out of range refused"

# a per-channel model on a colour image: colour back (one pass per opponent channel)
"$B/dae-model" run "$T/pc.safetensors" "$T/c.png" "$T/pc.png" &&
    [ "$(od -An -tu1 -j25 -N1 "$T/pc.png" | tr -d ' ')" = 2 ] && [ "$(png_size "$T/pc.png")" = "200 100" ] &&
    ok "per-channel model: 200x100 colour in, colour out" || fail "per-channel run on colour"
if "$B/dae-model" widen "$T/c.safetensors" "$T/bad.safetensors" x 2>"$T/err"; then
    fail "a 3-channel model widened"
else
    grep -q "1-channel" "$T/err" && ok "widen refuses a 3-channel model with a reason" || fail "$(cat "$T/err")"
fi

"$B/dae-model" grid "$T/grid.png" "$T/c.png" "$T/c.png" --crop 10,20,30,40 --pad 0 &&
    [ "$(png_size "$T/grid.png")" = "60 40" ] && ok "grid --crop" || fail "grid --crop: $(png_size "$T/grid.png")"
finish
