#!/bin/sh
# train-speed.sh — daed (build/bench/train-speed) and PyTorch (bench/ref/torch_speed.py)
# side by side: A B A B (ROUNDS rounds, default 2) so both see the same machine load, then
# the table of ratios daed / PyTorch at 2 threads (s/epoch and s/Mpx: lower is better for
# daed; patches/s: higher). Each value is the median over rounds (the better one of 2).
#
#   bench/train-speed.sh [--quick] [--only mlp|conv|photo]     (ROUNDS=n, BUILD=dir)
# Raw lines and `uptime` per run go to $OUT (default build/bench/train-speed.log).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-2}
OUT=${OUT:-$BUILD/bench/train-speed.log}
PY=${PY:-/usr/bin/python3}
make --no-print-directory -s "$BUILD/bench/train-speed" BUILD="$BUILD" >/dev/null
: > "$OUT"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    echo "== round $r daed   $(uptime)" | tee -a "$OUT"
    "$BUILD/bench/train-speed" --threads 1,2 "$@" | sed -u "s/^RESULT /daed /" | tee -a "$OUT"
    echo "== round $r torch  $(uptime)" | tee -a "$OUT"
    OMP_WAIT_POLICY=PASSIVE "$PY" bench/ref/torch_speed.py --threads 2 "$@" |
        sed -u "s/^RESULT /torch /" | tee -a "$OUT"
    r=$((r + 1))
done
# table: per key the median over rounds (with 2 rounds the better one), then the ratios
awk '
function better(key, a, b) { return key ~ /patches_per/ ? (a > b ? a : b) : (a < b ? a : b) }
$1 == "daed" || $1 == "torch" {
    k = $1 " " $2; v = $3 + 0
    n[k]++; val[k, n[k]] = v
}
function med(k,   i, j, t, m, a) {
    m = n[k]; for (i = 1; i <= m; i++) a[i] = val[k, i]
    if (m == 2) return better(k, a[1], a[2])
    for (i = 2; i <= m; i++) for (j = i; j > 1 && a[j] < a[j-1]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return a[int((m + 1) / 2)]
}
END {
    printf "\n%-22s %-7s %12s %12s %12s %12s %12s  %s\n", "network", "metric", "daed t1", "daed t2", "daed t2blas", "torch t2", "best/torch", "(target)"
    split("mlp.train.s_per_epoch conv.train.s_per_epoch photo_gray.train.patches_per_s photo_gray.infer.s_per_mpx photo_rgb.train.patches_per_s photo_rgb.infer.s_per_mpx", rows, " ")
    for (r = 1; r in rows; r++) {
        split(rows[r], p, ".")
        base = p[1] "." p[2]; met = p[3]
        t1 = "daed " base ".t1." met; t2 = "daed " base ".t2." met; tb = "daed " base ".t2blas." met
        tt = "torch " base ".t2." met
        if (!(tt in n) || !(t1 in n)) continue
        a = med(t1); b = (t2 in n) ? med(t2) : a; c = (tb in n) ? med(tb) : b; ref = med(tt)
        best = better(met, better(met, a, b), c)
        ratio = best / ref
        tgt = met == "patches_per_s" ? ">= 1.0" : (p[1] == "conv" ? "<= 0.8" : (met == "s_per_mpx" ? "<= 0.6" : ""))
        printf "%-22s %-7s %12.3f %12.3f %12.3f %12.3f %12.2f  %s\n", base, met == "patches_per_s" ? "patch/s" : (met == "s_per_mpx" ? "s/Mpx" : "s/epoch"), a, b, c, ref, ratio, tgt
    }
    printf "\nCPU seconds (all threads of the process; a loaded machine inflates wall time far more):\n"
    printf "%-22s %-12s %12s %12s %12s %12s\n", "network", "metric", "daed t1", "daed t2", "torch t2", "t2/torch"
    split("mlp.train.cpu_s_per_epoch conv.train.cpu_s_per_epoch photo_gray.train.patches_per_cpu_s photo_gray.infer.cpu_s_per_mpx photo_rgb.train.patches_per_cpu_s photo_rgb.infer.cpu_s_per_mpx", crows, " ")
    for (r = 1; r in crows; r++) {
        split(crows[r], p, ".")
        base = p[1] "." p[2]; met = p[3]
        t1 = "daed " base ".t1." met; t2 = "daed " base ".t2." met; tt = "torch " base ".t2." met
        if (!(tt in n) || !(t1 in n) || !(t2 in n)) continue
        printf "%-22s %-12s %12.3f %12.3f %12.3f %12.2f\n", base, met, med(t1), med(t2), med(tt), med(t2) / med(tt)
    }
    if (("daed mlp.train.t1.gflops" in n) && ("daed sgemm.peak.t1.gflops" in n))
        printf "\nMLP training sgemm rate (t1): %.1f GFLOP/s = %.0f%% of the measured single-thread peak %.1f\n", med("daed mlp.train.t1.gflops"), 100 * med("daed mlp.train.t1.gflops") / med("daed sgemm.peak.t1.gflops"), med("daed sgemm.peak.t1.gflops")
}' "$OUT"
