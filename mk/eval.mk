# eval.mk — quality evaluations (eval/).
#
# The C programs eval/<name>.c (and eval/experiments/experiments.c) are built by the
# Makefile's rule into build/eval/<name>; they measure on the PROTOCOL evaluation sets
# (make eval-data) and the held-out photos (make photo-eval-data):
#   build/eval/quality      restoration PSNR/SSIM of model files next to the reference rows
#   build/eval/anomaly      one-class AUROC per class (recipes in eval/recipes/)
#   build/eval/ood          a model's own anomaly score: training set vs another set
#   build/eval/photos       photo denoising PSNR on the held-out photos (--speed: also speed)
#   build/eval/data_check   the C readers and metrics against the exported sets
#   build/eval/experiments  the measurements of the classic AE experiments (mk/experiments.mk)
#   build/eval/f32png       one image of a raw evaluation set as a PNG (make docs)
#   eval/parity.sh          dae-train vs PyTorch on the PROTOCOL MLP (eval/recipes/protocol-mlp.json)
#   make eval-build    builds them all
#
# The standard tables (../shared/TABLES.md), in Python. Both read the shared test material (../shared, or
# DAED_SHARED=dir) and say so and exit 2 when it is missing; nothing in `make test` needs
# them. They run Debian's /usr/bin/python3 (numpy, OpenCV, scikit-image; torch for eval-kair).
#   make eval-tables   daed (started on a free loopback port with ./models) on CC15 real
#                      noise, Set12 / Kodak24 Gaussian 15/25/50 (float and 8-bit protocols)
#                      and noisy JPEGs vs scikit-image TV: a markdown table with the bars.
#                      ARGS="--sets set12 --sigmas 25 --json out.json", --url URL, --models DIR
#   make eval-kair     KAIR's DnCNN-25 converted by scripts/kair2daed.py: PyTorch vs daed
#                      parity (<= 1e-4) and its Set12 sigma 25 PSNR next to the published one

PY ?= /usr/bin/python3

.PHONY: eval-build eval-tables eval-kair

## eval-build: build the C evaluation programs into build/eval/ (quality, anomaly, photos...)
eval-build: all $(EVALS)

## eval-tables: daed on CC15, Set12, Kodak24 and noisy JPEGs (TABLES.md), ARGS for options
eval-tables: all
	nice $(PY) eval/tables.py $(ARGS)

## eval-kair: KAIR DnCNN-25 converted to daed: parity with PyTorch, Set12 sigma 25 PSNR
eval-kair: all
	nice $(PY) eval/kair_parity.py $(ARGS)
