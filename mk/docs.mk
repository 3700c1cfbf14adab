# docs.mk — the README's generated parts.
#
#   make docs      docs/img/before-after.png: noisy/denoised/clean, masked/inpainted/clean,
#                  low-res/super-resolved/clean, made by dae-model from the shipped models on
#                  the PROTOCOL evaluation sets (scripts/make-docs.sh; needs make eval-data)
#   make readme-examples   the README outputs that need daemons with special settings (a full
#                  queue, start-up problems), printed (scripts/readme-examples.sh)

#   make readme-check      run README.md's console blocks against a fresh daed, compare the
#                          outputs (tests/e2e/readme_check.py; also in make test)
#   make readme-update     the same, rewriting the blocks' outputs in README.md

.PHONY: docs readme-examples readme-check readme-update

## docs: regenerate docs/img/before-after.png with dae-model and the shipped models
# build/eval/f32png (eval/f32png.c) cuts single images out of the evaluation sets.
docs: all $(BUILD)/eval/f32png
	BUILD=$(BUILD) sh scripts/make-docs.sh

## readme-examples: the README's troubleshooting examples against special daemons, printed
readme-examples: all
	BUILD=$(BUILD) bash scripts/readme-examples.sh

## readme-check: README.md's console blocks against a fresh daed; fails on a changed output
readme-check: all
	DAED_BUILD=$(BUILD) /usr/bin/python3 tests/e2e/readme_check.py

## readme-update: rewrite the outputs of README.md's console blocks from a fresh daed
readme-update: all
	DAED_BUILD=$(BUILD) /usr/bin/python3 tests/e2e/readme_check.py --update
