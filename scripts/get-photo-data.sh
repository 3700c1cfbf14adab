#!/bin/sh
# get-photo-data.sh — the photo-denoising training set (PHOTOS.md), used by `make photo-data`.
#
# Fetches the Debian packages that hold the photos with `apt-get download` and unpacks them
# with `dpkg -x` (nothing is installed), then prepares every photo listed in
# scripts/photo-list.tsv with `dae-model prep`:
#   data/photos/train/gray/<name>_{640,384}.png   BT.709 luma, INTER_AREA-like downscale so
#                                                 the short side is 640 / 384 px (clean targets)
#   data/photos/train/rgb/<name>_{640,384}.png    the same in colour
# PHOTO_SET=clean (default) takes the CC-BY/CC-BY-SA/CC0 photos (lomiri + sklearn, 16);
# PHOTO_SET=all adds the GPL-2+ and unstated-licence ones (39, as the reference).
# PHOTO_SET=natural takes scripts/photo-list-natural.tsv instead: 269 real camera photographs
# (no renders or abstract wallpapers, none a test image: scripts/photo-overlap.py) from 37
# packages, prepared into data/photos/natural/{gray,rgb} the same way; a photo whose short side
# is under 640 is kept at its own size (prep never upscales), and its _384 copy is dropped when
# it would be the same image (short side <= 384).
# PHOTO_EXTRA_SHORT=256 adds a third copy of each photo with that short side (<name>_256.png;
# dropped when it would equal a larger one): the data the photo-dncnn-s* specialists were
# fine-tuned on (models/README.md).
# PHOTO_CHROMA=1 then makes <out>/yc: every gray image (a link, Y_<name>) and the two
# chroma channels of every colour one at half size (C1_, C2_; dae-model prep --chroma), the
# training set of the half-chroma colour models (photo-dncnn-yc-*, models/README.md).
# Idempotent; DATA_DIR overrides data/, DAE_MODEL the prep tool (default build/dae-model).
set -e

here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA_DIR:-$here/data}/photos
set_=${PHOTO_SET:-clean}
prep=${DAE_MODEL:-$here/build/dae-model}
list="$here/scripts/photo-list.tsv"
case "$set_" in clean|all) ;; natural) list="$here/scripts/photo-list-natural.tsv" ;;
    *) echo "get-photo-data: PHOTO_SET=$set_, expected clean, all or natural" >&2; exit 2;; esac
[ -x "$prep" ] || { echo "get-photo-data: $prep missing (make all first)" >&2; exit 1; }

pkgs="lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 python3-sklearn"
[ "$set_" = all ] && pkgs="$pkgs mate-backgrounds plasma-workspace-wallpapers"
out_dir="$data/train"
if [ "$set_" = natural ]; then
    pkgs=$(grep -v '^#' "$list" | cut -f1 | sort -u)
    out_dir="$data/natural"
fi
mkdir -p "$data/raw" "$out_dir/gray" "$out_dir/rgb"
for p in $pkgs; do
    [ -d "$data/raw/$p/usr" ] && continue
    tmp=$(mktemp -d "$data/raw/.fetch.XXXXXX")
    (cd "$tmp" && apt-get download "$p" >/dev/null 2>&1) ||
        { rm -rf "$tmp"; echo "get-photo-data: apt-get download $p failed (apt-get update?)" >&2; exit 1; }
    mkdir -p "$tmp/x"
    dpkg -x "$tmp"/*.deb "$tmp/x"
    rm -rf "$data/raw/$p"
    mv "$tmp/x" "$data/raw/$p"
    rm -rf "$tmp"
done

n=0
grep -v '^#' "$list" | while IFS='	' read -r pkg path lic author subset name; do
    [ "$set_" = clean ] && [ "$subset" != clean ] && continue
    case "$path" in /*) src=$path ;; *) src="$data/raw/$pkg/$path" ;; esac
    [ -s "$src" ] || { echo "get-photo-data: $src missing (is $pkg installed/downloaded?)" >&2; exit 1; }
    # a stable name: the file's stem, prefixed by the wallpaper folder for plasma's sizes
    stem=$(basename "$path" | sed 's/\.[A-Za-z]*$//')
    case "$pkg" in plasma-*) stem=$(echo "$path" | cut -d/ -f4) ;; esac
    [ -n "$name" ] && stem=$name   # the natural list names every photo (6th column)
    for c in gray rgb; do
        flag=; [ $c = gray ] && flag=--gray
        for s in 640 384 ${PHOTO_EXTRA_SHORT:-}; do
            out="$out_dir/$c/${stem}_$s.png"
            [ -s "$out" ] || "$prep" prep "$src" "$out" $flag --short $s
        done
        # a photo with a short side <= 384 comes out the same at both sizes: keep one
        if cmp -s "$out_dir/$c/${stem}_640.png" "$out_dir/$c/${stem}_384.png"; then
            rm -f "$out_dir/$c/${stem}_384.png"
        fi
        for s in ${PHOTO_EXTRA_SHORT:-}; do
            for big in 640 384; do
                if cmp -s "$out_dir/$c/${stem}_$big.png" "$out_dir/$c/${stem}_$s.png"; then
                    rm -f "$out_dir/$c/${stem}_$s.png"
                fi
            done
        done
    done
done
if [ -n "${PHOTO_CHROMA:-}" ]; then
    mkdir -p "$out_dir/yc"
    for f in "$out_dir"/rgb/*.png; do
        b=$(basename "$f")
        [ -e "$out_dir/yc/Y_$b" ] || ln -s "../gray/$b" "$out_dir/yc/Y_$b"
        for k in 1 2; do
            [ -s "$out_dir/yc/C${k}_$b" ] || "$prep" prep "$f" "$out_dir/yc/C${k}_$b" --chroma $k
        done
    done
    echo "get-photo-data: $(ls "$out_dir/yc" | wc -l) luma and half-size chroma images in $out_dir/yc"
fi
echo "get-photo-data: $(ls "$out_dir/gray" | wc -l) gray and $(ls "$out_dir/rgb" | wc -l) colour training images in $out_dir ($set_ set)"
