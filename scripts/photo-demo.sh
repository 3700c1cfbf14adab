#!/bin/sh
# photo-demo.sh — the end-to-end numbers and the picture of docs/photos.md.
#
# 1. A 12-megapixel noisy colour JPEG, as a phone would send: Dragonfly_by_Bolly (lomiri,
#    CC-BY-SA-4.0) cropped to 4000x3000, Gaussian noise sigma 20 (0-255), JPEG quality 92.
# 2. daed with ./models answers it (Accept: image/jpeg); prints the wall time of the curl
#    and the daemon's peak resident memory (VmHWM). QUERY=... adds a query string
#    (QUERY=nonlocal=1: with the non-local stage, which this JPEG's white noise does not
#    call for by itself).
# 3. docs/img/photo-chelsea.png: noisy (sigma 25) / daed / clean crops of a held-out photo.
# Needs make photo-data, make photo-eval-data (data/photos/test) and /usr/bin/python3 (cv2).
set -e

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
build=${BUILD:-build}
out=${OUT:-data/photos/demo}
py=${PY:-/usr/bin/python3}
mkdir -p "$out" docs/img
src=data/photos/raw/lomiri-wallpapers-16.04/usr/share/backgrounds/Dragonfly_by_Bolly.jpg
[ -s "$out/dragonfly12_s20.jpg" ] || SRC="$src" OUT="$out" "$py" - <<'PY'
import os, numpy as np, cv2
im = cv2.imread(os.environ["SRC"])
h, w = im.shape[:2]
y0, x0 = (h - 3000) // 2, (w - 4000) // 2
im = im[y0:y0 + 3000, x0:x0 + 4000].astype(np.float64)
rng = np.random.default_rng(20)
noisy = np.clip(np.round(im + rng.standard_normal(im.shape) * 20), 0, 255).astype(np.uint8)
cv2.imwrite(os.environ["OUT"] + "/dragonfly12_s20.jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, 92])
PY

rm -f "$out/port"
"$build/daed" --bind 127.0.0.1 --port 0 --port-file "$out/port" --models "${MODELS:-models}" \
    >"$out/daed.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 300); do [ -s "$out/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$out/port")"
# CPU seconds of the daemon (utime + stime): on a shared machine, steadier than wall time
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$pid/stat"; }
echo "before: $(grep VmHWM /proc/$pid/status), load $(cut -d' ' -f1 /proc/loadavg)"
c0=$(cpu)
t0=$(date +%s.%N)
curl -sS -o "$out/dragonfly12_daed.jpg" -H 'Accept: image/jpeg' \
    --data-binary @"$out/dragonfly12_s20.jpg" "$url/v1/denoise${QUERY:+?$QUERY}"
t1=$(date +%s.%N)
echo "12 Mpx colour JPEG ($(stat -c %s "$out/dragonfly12_s20.jpg") bytes): $(echo "$t1 - $t0" | bc) s wall, $(echo "$(cpu) - $c0" | bc) CPU-s in daed, load $(cut -d' ' -f1 /proc/loadavg)"
echo "daed peak memory: $(grep VmHWM /proc/$pid/status)"
tail -1 "$out/daed.log"

curl -sS -o "$out/chelsea_daed.png" --data-binary @data/photos/test/color/chelsea_s25.png \
    "$url/v1/denoise"
"$build/dae-model" grid docs/img/photo-chelsea.png data/photos/test/color/chelsea_s25.png \
    "$out/chelsea_daed.png" data/photos/test/color/chelsea.png --crop 120,40,200,200 --scale 2
echo "wrote docs/img/photo-chelsea.png (noisy sigma 25 | daed | clean)"
