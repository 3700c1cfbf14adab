#!/usr/bin/env bash
# eval_tools.sh — the evaluation programs (eval/, scripts/kair2daed.py) without the shared
# test material (or the photos of make photo-data): they must say what is missing and exit
# 2, and the converter must keep the licence and stay out of models/. Runs without
# ../shared, PyTorch or OpenCV (skipped without a python3).
source "$(dirname "$0")/lib.bash"

PY=$(command -v /usr/bin/python3 python3 | head -1 || true)
if [ -z "$PY" ]; then
    echo "skip: no python3"
    exit 0
fi

for prog in eval/tables.py eval/kair_parity.py; do
    rc=0
    DAED_SHARED="$T/none" "$PY" "$prog" >"$T/out" 2>"$T/err" || rc=$?
    if [ "$rc" = 2 ] && grep -q "testsets not found\|missing Python packages" "$T/err"; then
        ok "$prog without ../shared: exit 2, $(head -c 90 "$T/err")"
    else
        fail "$prog without ../shared: exit $rc, $(head -c 300 "$T/err")"
    fi
done

rc=0
"$PY" eval/calib_correlated.py --photos "$T/none" >"$T/out" 2>"$T/err" || rc=$?
if [ "$rc" = 2 ] && grep -q "not found (make photo-data)\|missing Python packages" "$T/err"; then
    ok "eval/calib_correlated.py without the photos: exit 2, $(head -c 90 "$T/err")"
else
    fail "eval/calib_correlated.py without the photos: exit $rc, $(head -c 300 "$T/err")"
fi

mkdir -p "$T/w"
printf 'not a checkpoint' >"$T/w/dncnn_25.pth"
rc=0
"$PY" scripts/kair2daed.py "$T/w/dncnn_25.pth" --out "$T/o.safetensors" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "licen" "$T/err" && ok "no licence file next to the weights: refused" ||
    fail "no licence: exit $rc, $(cat "$T/err")"
echo "MIT License" >"$T/w/LICENSE-KAIR"
rc=0
"$PY" scripts/kair2daed.py "$T/w/dncnn_25.pth" --out models/dncnn-25.safetensors 2>"$T/err" || rc=$?
[ "$rc" = 1 ] && grep -q "models/" "$T/err" && [ ! -e models/dncnn-25.safetensors ] &&
    ok "output into models/ refused" || fail "models/ output: exit $rc, $(cat "$T/err")"
finish
