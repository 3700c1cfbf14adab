# eval.mk — quality evaluations on the field's standard tables (eval/, ../shared/TABLES.md).
#
# Included from the Makefile. Both read the shared test material (../shared, or
# DAED_SHARED=dir) and say so and exit 2 when it is missing; nothing in `make test` needs
# them. They run Debian's /usr/bin/python3 (numpy, OpenCV, scikit-image; torch for eval-kair).
#   make eval-tables   daed (started on a free loopback port with ./models) on CC15 real
#                      noise, Set12 / Kodak24 Gaussian 15/25/50 (float and 8-bit protocols)
#                      and noisy JPEGs vs scikit-image TV: a markdown table with the bars.
#                      ARGS="--sets set12 --sigmas 25 --json out.json", --url URL, --models DIR
#   make eval-kair     KAIR's DnCNN-25 converted by scripts/kair2daed.py: PyTorch vs daed
#                      parity (<= 1e-4) and its Set12 sigma 25 PSNR next to the published one

PY ?= /usr/bin/python3

.PHONY: eval-tables eval-kair

## eval-tables: daed on CC15, Set12, Kodak24 and noisy JPEGs (TABLES.md), ARGS for options
eval-tables: all
	nice $(PY) eval/tables.py $(ARGS)

## eval-kair: KAIR DnCNN-25 converted to daed: parity with PyTorch, Set12 sigma 25 PSNR
eval-kair: all
	nice $(PY) eval/kair_parity.py $(ARGS)
