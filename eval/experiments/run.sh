#!/bin/sh
# experiments.sh — trains and measures the classic autoencoder experiments (issue 9,
# docs/experiments.md): recipes in eval/experiments/NN-*/, numbers to eval/experiments/results/NN-*.json,
# pictures to docs/img/exp-NN-*.png.
#
#   eval/experiments/run.sh [--smoke] [--only 01,05,...] [--train-only] [--force]
#
# Every command runs under `nice -n 15`, one at a time. A model file newer than its recipe
# is reused (--force retrains). --smoke trains every recipe for one epoch on 512 images
# into build/experiments-smoke/ (pictures and numbers there too, docs/ untouched) and
# checks that every output was written. Wall and CPU seconds of each experiment go into
# its results file ("time"); the machine may be shared, so CPU seconds are the stable number.
set -eu

SMOKE=0 ONLY="" TRAIN_ONLY=0 FORCE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) SMOKE=1 ;;
    --only) ONLY="$2"; shift ;;
    --train-only) TRAIN_ONLY=1 ;;
    --force) FORCE=1 ;;
    *) echo "usage: $0 [--smoke] [--only 01,05,...] [--train-only] [--force]" >&2; exit 2 ;;
    esac
    shift
done

B=${BUILD:-build}
TRAIN="$B/dae-train" MODEL="$B/dae-model" EXP="$B/eval/experiments"
if [ $SMOKE = 1 ]; then
    OUT="$B/experiments-smoke" IMG="$B/experiments-smoke/img" RES="$B/experiments-smoke/results"
    SMOKE_ARGS="--epochs 1 --data.limit 512 --data.val_count 64"
    NEVAL=200
else
    OUT="$B/experiments" IMG=docs/img RES=eval/experiments/results
    SMOKE_ARGS=""
    NEVAL=2000
fi
mkdir -p "$OUT/logs" "$IMG" "$RES"
for t in "$TRAIN" "$MODEL" "$EXP"; do
    [ -x "$t" ] || [ $TRAIN_ONLY = 1 ] || { echo "experiments: $t missing (make all $EXP)" >&2; exit 1; }
done

TIMES="$OUT/logs/times" USED="$OUT/logs/used"
# run CMD...: one measured command, its wall/user/sys seconds appended to $TIMES
run() {
    /usr/bin/time -a -o "$TIMES" -f "%e %U %S" nice -n 15 "$@"
}

# train RECIPE [OVERRIDES...]: the recipe's model into $OUT/<dir>/<stem>.safetensors
# (the stem may be changed with STEM=...), log in $OUT/logs; prints the model path.
train() {
    recipe="$1"; shift
    dir=$(basename "$(dirname "$recipe")")
    stem=${STEM:-$(basename "$recipe" .json)}
    model="$OUT/$dir/$stem.safetensors"
    mkdir -p "$OUT/$dir"
    if [ $FORCE = 1 ] || [ ! -f "$model" ] || [ "$recipe" -nt "$model" ]; then
        # shellcheck disable=SC2086
        if ! /usr/bin/time -o "$OUT/logs/$dir-$stem.time" -f "%e %U %S" nice -n 15 \
            "$TRAIN" "$recipe" --output "$model" --progress off $SMOKE_ARGS "$@" \
            > "$OUT/logs/$dir-$stem.log" 2>&1; then
            echo "experiments: training $recipe failed:" >&2
            tail -5 "$OUT/logs/$dir-$stem.log" >&2
            exit 1
        fi
        rm -f "$model.ckpt"
    fi
    # the experiment's time includes the training of every model it uses, reused or not
    [ -f "$OUT/logs/$dir-$stem.time" ] && echo "$OUT/logs/$dir-$stem.time" >> "$USED"
    echo "$model"
}

# Median seconds per epoch in a training log ("epoch i/n ... 0.11 s (...)").
epoch_seconds() {
    awk '/^epoch [0-9]+\//{for (i = 2; i < NF; i++) if ($(i+1) == "s" && $(i+2) ~ /^\(/) print $i}' \
        "$OUT/logs/$1.log" | sort -g | awk '{v[NR] = $1} END {if (NR) print v[int((NR + 1) / 2)]; else print "null"}'
}

# Experiment bookkeeping: start/finish write {"wall_s","cpu_s"} into the results file.
want() {
    [ -z "$ONLY" ] && return 0
    case ",$ONLY," in *",$1,"*) return 0 ;; esac
    return 1
}
start() {
    NAME="$1"
    RJ="$RES/$NAME.json"
    : > "$TIMES"
    : > "$USED"
    echo "== $NAME" >&2
}
finish() {
    [ $TRAIN_ONLY = 1 ] && return 0
    # training (each model once) + measurements; /usr/bin/time may add a "Command exited" line
    t=$(sort -u "$USED" | xargs cat "$TIMES" | awk 'NF == 3 && $1 ~ /^[0-9.]+$/ {w += $1; c += $2 + $3}
        END {printf "{\"wall_s\":%.1f,\"cpu_s\":%.1f}", w, c}')
    "$EXP" put "$RJ" time "$t"
    echo "   $NAME: $t" >&2
}
# measure CMD...: run a measurement unless --train-only
measure() {
    [ $TRAIN_ONLY = 1 ] && return 0
    run "$@"
}

# ---- 1. the small tanh autoencoder and its masking DAE ------------------------------------
if want 01; then
    start 01-tanh-ae
    for m in ae dae-mask; do
        f=$(train eval/experiments/01-tanh-ae/$m.json)
        for task in clean denoise-mask50; do
            measure "$EXP" eval "$f" --task $task --n $NEVAL --out "$RJ" --key "$m/$task"
        done
        measure "$EXP" eval "$f" --task denoise-mask50 --show 10 --rows out --png "$OUT/01-$m-mask.png"
        measure "$EXP" eval "$f" --task clean --show 10 --rows out --png "$OUT/01-$m-clean.png"
        measure "$MODEL" weights "$f" "$IMG/exp-01-weights-$m.png" --cols 10 --scale 2
        measure "$MODEL" weights "$f" "$IMG/exp-01-decoder-$m.png" --layer decoder --cols 10 --scale 2
    done
    # rows: masked input, AE output, DAE output, original; then clean-input outputs
    measure "$EXP" eval "$OUT/01-tanh-ae/ae.safetensors" --task denoise-mask50 --show 10 \
        --rows in --png "$OUT/01-in.png"
    measure "$EXP" eval "$OUT/01-tanh-ae/ae.safetensors" --task denoise-mask50 --show 10 \
        --rows clean --png "$OUT/01-clean.png"
    measure "$MODEL" grid "$IMG/exp-01-recon.png" --cols 1 --pad 0 \
        "$OUT/01-clean.png" "$OUT/01-ae-clean.png" "$OUT/01-dae-mask-clean.png"
    measure "$MODEL" grid "$IMG/exp-01-masked.png" --cols 1 --pad 0 \
        "$OUT/01-in.png" "$OUT/01-ae-mask.png" "$OUT/01-dae-mask-mask.png" "$OUT/01-clean.png"
    finish
fi

# ---- 2. code size, and the 64-code model under increasing noise ---------------------------
if want 02; then
    start 02-code-size
    for h in 8 16 32 64 256 784 1568; do
        f=$(train eval/experiments/02-code-size/code-$h.json)
        measure "$EXP" eval "$f" --task denoise-g50 --n $NEVAL --out "$RJ" --key "code/$h"
        measure "$EXP" eval "$f" --task clean --n $NEVAL --out "$RJ" --key "code-clean/$h"
        measure "$EXP" eval "$f" --task denoise-g50 --show 10 --rows out --png "$OUT/02-code-$h.png"
    done
    measure "$EXP" eval "$OUT/02-code-size/code-8.safetensors" --task denoise-g50 --show 10 \
        --rows in --png "$OUT/02-in.png"
    measure "$EXP" eval "$OUT/02-code-size/code-8.safetensors" --task denoise-g50 --show 10 \
        --rows clean --png "$OUT/02-clean.png"
    measure "$MODEL" grid "$IMG/exp-02-code-recon.png" --cols 1 --pad 0 "$OUT/02-in.png" \
        "$OUT/02-code-8.png" "$OUT/02-code-64.png" "$OUT/02-code-1568.png" "$OUT/02-clean.png"
    rows=""
    for s in 01 02 03 05 07 10; do
        if [ $s = 05 ]; then f="$OUT/02-code-size/code-64.safetensors"
        else f=$(train eval/experiments/02-code-size/noise-$s.json); fi
        sig=$(echo $s | sed 's/^0//; s/^\(.\)$/0.\1/; s/^10$/1.0/')
        corr="[{\"type\":\"gaussian\",\"sigma\":$sig}]"
        # trained at sigma, evaluated at sigma; and the sigma-0.5 model evaluated at sigma
        measure "$EXP" eval "$f" --corrupt "$corr" --n $NEVAL --out "$RJ" --key "noise/$sig"
        measure "$EXP" eval "$OUT/02-code-size/code-64.safetensors" --corrupt "$corr" --n $NEVAL \
            --out "$RJ" --key "noise-fixed/$sig"
        measure "$EXP" eval "$f" --corrupt "$corr" --show 8 --png "$OUT/02-noise-$s.png"
        rows="$rows $OUT/02-noise-$s.png"
    done
    # shellcheck disable=SC2086
    measure "$MODEL" grid "$IMG/exp-02-noise.png" --cols 2 --pad 4 $rows
    finish
fi

# ---- 3. denoising vs contractive --------------------------------------------------------
if want 03; then
    start 03-dae-vs-cae
    for m in ae dae cae cae-strong; do
        f=$(train eval/experiments/03-dae-vs-cae/$m.json)
        [ $TRAIN_ONLY = 1 ] || "$EXP" put "$RJ" "epoch_s/$m" "$(epoch_seconds 03-dae-vs-cae-$m)"
        # CPU seconds of the whole training run (data loading included): load-independent
        [ $TRAIN_ONLY = 1 ] || "$EXP" put "$RJ" "train_cpu_s/$m" \
            "$(awk 'NF == 3 && $1 ~ /^[0-9.]+$/ {print $2 + $3}' "$OUT/logs/03-dae-vs-cae-$m.time")"
        for task in clean denoise-g20 denoise-g50; do
            measure "$EXP" eval "$f" --task $task --n $NEVAL --out "$RJ" --key "$m/$task"
        done
        measure "$EXP" jacobian "$f" --n $((NEVAL / 4)) --out "$RJ" --key "$m/jacobian"
        measure "$EXP" eval "$f" --task denoise-g50 --show 10 --rows out --png "$OUT/03-$m.png"
    done
    measure "$EXP" eval "$OUT/03-dae-vs-cae/ae.safetensors" --task denoise-g50 --show 10 \
        --rows in --png "$OUT/03-in.png"
    measure "$EXP" eval "$OUT/03-dae-vs-cae/ae.safetensors" --task denoise-g50 --show 10 \
        --rows clean --png "$OUT/03-clean.png"
    measure "$MODEL" grid "$IMG/exp-03-recon.png" --cols 1 --pad 0 "$OUT/03-in.png" \
        "$OUT/03-ae.png" "$OUT/03-dae.png" "$OUT/03-cae.png" "$OUT/03-cae-strong.png" \
        "$OUT/03-clean.png"
    finish
fi

# ---- 4. sparse codes ---------------------------------------------------------------------
if want 04; then
    start 04-sparse
    for lam in 0 1e-5 3e-5 1e-4 3e-4 1e-3; do
        f=$(train eval/experiments/04-sparse/sparse-$lam.json)
        measure "$EXP" eval "$f" --task clean --n $NEVAL --out "$RJ" --key "psnr/$lam"
        measure "$EXP" codes "$f" --n $NEVAL --out "$RJ" --key "codes/$lam"
    done
    measure "$MODEL" weights "$OUT/04-sparse/sparse-1e-3.safetensors" "$IMG/exp-04-decoder-1e-3.png" \
        --layer decoder --cols 16 --scale 1 --count 64
    measure "$MODEL" weights "$OUT/04-sparse/sparse-0.safetensors" "$IMG/exp-04-decoder-0.png" \
        --layer decoder --cols 16 --scale 1 --count 64
    finish
fi

# ---- 5. the corruptions of the lecture slides -------------------------------------------
if want 05; then
    start 05-corruptions
    rows=""
    for c in mask50 mask90 blur block10 block16 g20 g50; do
        f=$(train eval/experiments/05-corruptions/$c.json)
        # the recipe's own corruption, on the 2000 test images (seed 1234)
        [ $TRAIN_ONLY = 1 ] && continue
        corr=$("$EXP" recipe-corruption eval/experiments/05-corruptions/$c.json)
        measure "$EXP" eval "$f" --corrupt "$corr" --n $NEVAL --out "$RJ" --key "$c"
        measure "$EXP" eval "$f" --corrupt "$corr" --show 8 --png "$OUT/05-$c.png"
        rows="$rows $OUT/05-$c.png"
    done
    # shellcheck disable=SC2086
    measure "$MODEL" grid "$IMG/exp-05-corruptions.png" --cols 2 --pad 4 $rows
    finish
fi

# ---- 6. super-resolution -----------------------------------------------------------------
if want 06; then
    start 06-superres
    up=$(train eval/experiments/06-superres/upscaler.json)
    sr=$(train eval/experiments/06-superres/sr2.json)
    measure "$EXP" eval --baseline bilinear --task sr2 --n $NEVAL --out "$RJ" --key mnist/bilinear
    measure "$EXP" eval --baseline lanczos4 --task sr2 --n $NEVAL --out "$RJ" --key mnist/lanczos4
    measure "$EXP" eval "$up" --task sr2 --n $NEVAL --out "$RJ" --key mnist/upscaler
    measure "$EXP" eval "$sr" --task sr2 --n $NEVAL --out "$RJ" --key mnist/sr2-conv
    measure "$EXP" eval --baseline bilinear --task sr2 --show 10 --rows in --png "$OUT/06-in.png"
    measure "$EXP" eval --baseline bilinear --task sr2 --show 10 --rows out --png "$OUT/06-bilinear.png"
    measure "$EXP" eval --baseline lanczos4 --task sr2 --show 10 --rows out --png "$OUT/06-lanczos4.png"
    measure "$EXP" eval "$up" --task sr2 --show 10 --rows out --png "$OUT/06-upscaler.png"
    measure "$EXP" eval "$sr" --task sr2 --show 10 --rows out --png "$OUT/06-sr2.png"
    measure "$EXP" eval "$sr" --task sr2 --show 10 --rows clean --png "$OUT/06-clean.png"
    measure "$MODEL" grid "$IMG/exp-06-superres.png" --cols 1 --pad 0 "$OUT/06-in.png" \
        "$OUT/06-bilinear.png" "$OUT/06-lanczos4.png" "$OUT/06-upscaler.png" "$OUT/06-sr2.png" \
        "$OUT/06-clean.png"
    # the shipped Fashion-MNIST model against the same baselines (no training)
    if [ -f models/fmnist-sr2.safetensors ]; then
        n=$NEVAL
        for b in bilinear lanczos4; do
            measure "$EXP" eval --baseline $b --data fmnist --task sr2 --n $n --out "$RJ" --key fmnist/$b
        done
        measure "$EXP" eval models/fmnist-sr2.safetensors --data fmnist --task sr2 --n $n \
            --out "$RJ" --key fmnist/fmnist-sr2
    fi
    finish
fi

# ---- 7. Noise2Noise ----------------------------------------------------------------------
if want 07; then
    start 07-noise2noise
    for m in clean-target noisy-target noisy-target-zeromean; do
        f=$(train eval/experiments/07-noise2noise/$m.json)
        measure "$EXP" eval "$f" --task denoise-g50 --n $NEVAL --out "$RJ" --key "$m"
        measure "$EXP" eval "$f" --task denoise-g50 --show 10 --rows out --png "$OUT/07-$m.png"
    done
    measure "$EXP" eval "$OUT/07-noise2noise/clean-target.safetensors" --task denoise-g50 \
        --show 10 --rows in --png "$OUT/07-in.png"
    measure "$EXP" eval "$OUT/07-noise2noise/clean-target.safetensors" --task denoise-g50 \
        --show 10 --rows clean --png "$OUT/07-clean.png"
    measure "$MODEL" grid "$IMG/exp-07-noise2noise.png" --cols 1 --pad 0 "$OUT/07-in.png" \
        "$OUT/07-clean-target.png" "$OUT/07-noisy-target.png" "$OUT/07-noisy-target-zeromean.png" \
        "$OUT/07-clean.png"
    finish
fi

# ---- 8. latent interpolation (the 64-code DAE of experiment 2) ---------------------------
if want 08; then
    start 08-interpolation
    f=$(train eval/experiments/02-code-size/code-64.json)
    # test images: digit d is 200*d .. 200*d+199 (PROTOCOL 2 order)
    for pair in 0,1400 200,1800 600,1000; do
        a=${pair%,*} b=${pair#*,}
        measure "$EXP" interp "$f" --a "$a" --b "$b" --steps 10 --out "$RJ" --key "$a-$b" \
            --png-latent "$OUT/08-latent-$a-$b.png" --png-pixel "$OUT/08-pixel-$a-$b.png"
    done
    measure "$MODEL" grid "$IMG/exp-08-interp-latent.png" --cols 1 --pad 0 \
        "$OUT/08-latent-0-1400.png" "$OUT/08-latent-200-1800.png" "$OUT/08-latent-600-1000.png"
    measure "$MODEL" grid "$IMG/exp-08-interp-pixel.png" --cols 1 --pad 0 \
        "$OUT/08-pixel-0-1400.png" "$OUT/08-pixel-200-1800.png" "$OUT/08-pixel-600-1000.png"
    finish
fi

# ---- 9. anomaly scoring ------------------------------------------------------------------
if want 09; then
    start 09-anomaly
    for k in 0 1 2 3 4 5 6 7 8 9; do
        STEM=class-$k train eval/experiments/09-anomaly/oneclass.json --data.class $k > /dev/null
    done
    measure "$EXP" anomaly "$OUT/09-anomaly/class-%d.safetensors" --out "$RJ" --key mnist \
        --heatmap "$IMG/exp-09-heatmap.png" --heatmap-class 1 --show 8
    finish
fi

# ---- plots (docs-only tool: Debian's python3-matplotlib) ---------------------------------
if [ $TRAIN_ONLY = 0 ]; then
    if /usr/bin/python3 -c "import matplotlib" 2> /dev/null; then
        nice -n 15 /usr/bin/python3 eval/experiments/plot.py "$RES" "$IMG"
    else
        echo "experiments: no python3-matplotlib, plots skipped" >&2
    fi
fi

# ---- smoke: every output written ---------------------------------------------------------
if [ $SMOKE = 1 ] && [ -z "$ONLY" ] && [ $TRAIN_ONLY = 0 ]; then
    missing=0
    for f in 01-tanh-ae 02-code-size 03-dae-vs-cae 04-sparse 05-corruptions 06-superres \
        07-noise2noise 08-interpolation 09-anomaly; do
        [ -s "$RES/$f.json" ] || { echo "experiments: missing $RES/$f.json" >&2; missing=1; }
    done
    for f in exp-01-recon exp-01-masked exp-01-weights-ae exp-01-weights-dae-mask \
        exp-02-code-recon exp-02-noise exp-03-recon exp-04-decoder-1e-3 exp-05-corruptions \
        exp-06-superres exp-07-noise2noise exp-08-interp-latent exp-08-interp-pixel \
        exp-09-heatmap; do
        [ -s "$IMG/$f.png" ] || { echo "experiments: missing $IMG/$f.png" >&2; missing=1; }
    done
    [ $missing = 0 ] || exit 1
    echo "experiments-smoke: all recipes trained and measured" >&2
fi
