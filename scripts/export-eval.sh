#!/bin/sh
# export-eval.sh — write the PROTOCOL §3.6 evaluation sets to data/eval (once) and check
# their SHA-256 prefixes against PROTOCOL.md. Made by the project's own scripts/export_eval.py
# from data/ (make data) with Debian's python3-numpy (installed when missing).
#
# EVAL_DIR overrides the destination; PY overrides the interpreter.
set -e

here=$(cd "$(dirname "$0")/.." && pwd)
eval_dir=${EVAL_DIR:-$here/data/eval}
py=${PY:-/usr/bin/python3}
data=${DATA_DIR:-$here/data}

# The expected prefixes, copied from PROTOCOL.md §3.6.
expected="fmnist_clean.f32 4afa31c2e1933be9
fmnist_denoise-g20_input.f32 918473fedc1fccaf
fmnist_denoise-g50_input.f32 717ac445e764a354
fmnist_denoise-mask50_input.f32 881700ad31927b53
fmnist_inpaint-10_input.f32 5e3e0617d5ba0d42
fmnist_inpaint-10_mask.f32 097d6544ad1c208f
fmnist_inpaint-14_input.f32 f41167891c89b036
fmnist_inpaint-14_mask.f32 a25e52aa30ec8e23
fmnist_sr2_input.f32 2286105e6d845364
mnist_clean.f32 36a178650c38200e
mnist_denoise-g20_input.f32 9321142e221e2736
mnist_denoise-g50_input.f32 900608d36ea0353a
mnist_denoise-mask50_input.f32 0702b56fecd5083e
mnist_inpaint-10_input.f32 175db55362171c39
mnist_inpaint-10_mask.f32 097d6544ad1c208f
mnist_inpaint-14_input.f32 429776a4ad44ec9b
mnist_inpaint-14_mask.f32 a25e52aa30ec8e23
mnist_sr2_input.f32 3354fd0458b9e10f"

complete=1
echo "$expected" | while read -r f h; do [ -s "$eval_dir/$f" ] || exit 1; done || complete=0

if [ "$complete" = 0 ]; then
    if ! "$py" -c 'import numpy' 2>/dev/null; then
        echo "export-eval: installing python3-numpy" >&2
        SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-numpy
    fi
    "$py" "$here/scripts/export_eval.py" "$data" "$eval_dir"
fi

bad=0
echo "$expected" | {
    while read -r f h; do
        got=$(sha256sum "$eval_dir/$f" | cut -c1-16)
        if [ "$got" = "$h" ]; then echo "ok       $f $got"
        else echo "MISMATCH $f $got (expected $h)"; bad=1; fi
    done
    exit $bad
} || { echo "export-eval: sha256 mismatch in $eval_dir" >&2; exit 1; }
echo "export-eval: $eval_dir verified"
