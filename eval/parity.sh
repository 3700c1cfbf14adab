#!/usr/bin/env bash
# parity.sh — the PROTOCOL.md MLP DAE trained by dae-train on every restoration task, next
# to PyTorch's PSNR for the same recipe (PROTOCOL.md reference rows). Needs `make all
# data eval-data` (the Makefile's `parity` target does that). About 25 minutes on 2 idle cores.
#   eval/parity.sh [fmnist|mnist ...] [--tasks "denoise-g20 sr2"]
set -euo pipefail
cd "$(dirname "$0")/.."
B=${DAED_BUILD:-build}
out=$B/parity
mkdir -p "$out"
datasets=()
tasks="denoise-g20 denoise-g50 denoise-mask50 inpaint-10 inpaint-14 sr2"
while [ $# -gt 0 ]; do
    case $1 in
    --tasks) tasks=$2; shift 2 ;;
    *) datasets+=("$1"); shift ;;
    esac
done
[ ${#datasets[@]} -gt 0 ] || datasets=(fmnist mnist)

# PyTorch MLP DAE, mean per-image PSNR (PROTOCOL.md; inpainting without paste-back here,
# because eval/quality pastes back: compare with the +paste row for inpaint).
declare -A torch=(
    [fmnist/denoise-g20]=20.80 [fmnist/denoise-g50]=18.80 [fmnist/denoise-mask50]=19.57
    [fmnist/inpaint-10]=28.14 [fmnist/inpaint-14]=23.77 [fmnist/sr2]=21.16
    [mnist/denoise-g20]=20.49 [mnist/denoise-g50]=17.77 [mnist/denoise-mask50]=18.63
    [mnist/inpaint-10]=23.86 [mnist/inpaint-14]=18.35 [mnist/sr2]=20.80)

printf '| dataset | task | epochs | dae-train PSNR | PyTorch PSNR | difference | s/epoch |\n'
printf '|---|---|---|---|---|---|---|\n'
for ds in "${datasets[@]}"; do
    if [ "$ds" = mnist ]; then
        data=(--data.train mnist:train --data.val mnist:test --epochs 30)
    else
        data=(--data.train fashion-mnist:train --data.val fashion-mnist:test --epochs 10)
    fi
    for t in $tasks; do
        model=()
        if [ "$t" = sr2 ]; then
            # PROTOCOL 3.5: the MLP sees the 14x14 input upsampled bilinearly to 28x28:
            # that is the model's first layer here, so the model file takes 14x14.
            model=(--model '{"input":[1,14,14],"encoder":[{"type":"upsample","scale_factor":2,"mode":"bilinear"},{"type":"flatten"},{"type":"linear","in_features":784,"out_features":512},{"type":"relu"},{"type":"linear","in_features":512,"out_features":128},{"type":"relu"}],"decoder":[{"type":"linear","in_features":128,"out_features":512},{"type":"relu"},{"type":"linear","in_features":512,"out_features":784},{"type":"sigmoid"},{"type":"unflatten","unflattened_size":[1,28,28]}]}')
        fi
        f=$out/$ds-$t.safetensors
        log=$out/$ds-$t.log
        "$B/dae-train" eval/recipes/protocol-mlp.json "${data[@]}" "${model[@]}" \
            --corruption "$t" --name "$ds-mlp-$t" --output "$f" --progress off >"$log" 2>&1
        psnr=$("$B/eval/quality" --dataset "$ds" --task "$t" "$f" |
               awk -F'|' '/^\| (denoise|inpaint|sr2)/ {gsub(/[ *]/,"",$3); print $3}')
        spe=$(awk '/^epoch/ {s+=$(NF-3); n++} END {if (n) printf "%.1f", s/n}' "$log")
        ref=${torch[$ds/$t]}
        diff=$(awk -v a="$psnr" -v b="$ref" 'BEGIN {printf "%+.2f", a-b}')
        ep=$(grep -c '^epoch' "$log")
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$ds" "$t" "$ep" "$psnr" "$ref" "$diff" "$spe"
    done
done
