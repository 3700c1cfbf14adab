# experiments.mk — the classic autoencoder experiments of docs/experiments.md (issue 9).
#
# Included from the Makefile.
#   make experiments         train every recipe in eval/experiments/NN-*/ (reusing model files newer
#                            than their recipe in build/experiments/), measure them, and write
#                            eval/experiments/results/NN-*.json and docs/img/exp-NN-*.png (both
#                            committed). ARGS="--only 03,05" runs some; ARGS=--force retrains.
#   make experiments-smoke   every recipe for 1 epoch on 512 images, measured on 200 test
#                            images, into build/experiments-smoke/; fails unless every result
#                            and picture was written. ARGS=--train-only trains without the
#                            measurements, so it needs only make data (what CI runs: it keeps
#                            the recipes valid).
# Needs data/ (make data) and data/eval (make eval-data). Everything runs under nice -n 15.

.PHONY: experiments experiments-smoke

## experiments: the classic AE experiments (ARGS="--only 03,05", --force) -> docs/experiments.md
experiments: all $(BUILD)/eval/experiments
	BUILD=$(BUILD) sh eval/experiments/run.sh $(ARGS)

## experiments-smoke: every experiment recipe for a few steps (ARGS=--train-only: needs only data)
experiments-smoke: all $(BUILD)/eval/experiments
	rm -rf $(BUILD)/experiments-smoke
	BUILD=$(BUILD) sh eval/experiments/run.sh --smoke $(ARGS)
