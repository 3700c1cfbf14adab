# docs.mk — the README's generated parts.
#
#   make docs      docs/img/before-after.png: noisy/denoised/clean, masked/inpainted/clean,
#                  low-res/super-resolved/clean, made by dae-model from the shipped models on
#                  the PROTOCOL evaluation sets (scripts/make-docs.sh; needs make eval-data)
#   make readme-examples   start daed on a free loopback port with ./models and print every
#                  curl example of the README with its real output (scripts/readme-examples.sh)

.PHONY: docs readme-examples

## docs: regenerate docs/img/before-after.png with dae-model and the shipped models
docs: all $(BUILD)/docs/f32png
	BUILD=$(BUILD) sh scripts/make-docs.sh

$(BUILD)/docs/f32png: scripts/f32png.c $(LIB) | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(LIB) $(LDLIBS_ALL)

## readme-examples: every README curl example against a fresh daed, with its output
readme-examples: all $(BUILD)/docs/f32png
	BUILD=$(BUILD) bash scripts/readme-examples.sh
