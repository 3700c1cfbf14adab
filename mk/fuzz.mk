# fuzz.mk — libFuzzer targets for every parser, built with clang + ASan + UBSan.
#
# Included from the Makefile. A target is one file: tests/fuzz/fuzz_<t>.c defining
# LLVMFuzzerTestOneInput. Its seed corpus is tests/fuzz/corpus/<t>/ (committed), an optional
# libFuzzer dictionary tests/fuzz/dict/<t>.dict, and "FUZZ_OPTIONS: <flags>" in the source
# (letters, digits, - _ = only) adds libFuzzer flags, e.g. -max_len=65536. The library sources are compiled again with
# the same sanitizer flags into build/fuzz/.
#
#   make fuzz FUZZ_SECONDS=N       build, then run each target N seconds (default 60) over a
#                                  copy of its corpus in build/fuzz/corpus-<t>; fails on any
#                                  crash, leak, timeout or sanitizer report and prints the
#                                  executions per target (logs in build/fuzz/log-<t>.txt,
#                                  crashing inputs in build/fuzz/artifacts/<t>/)
#   make fuzz FUZZ_TARGETS="png idx"   only those targets
#   make fuzz-build                only build build/fuzz/fuzz_<t>
#   make fuzz-replay               run each target once over its committed corpus (quick)

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_RSS_MB  ?= 2048
# No legal input of these sizes needs one allocation this big (the largest is a 4 Mpx
# image's float planes, 64 MB): a bigger malloc is a finding, saved as an artifact.
FUZZ_MALLOC_MB ?= 512
FUZZ_TIMEOUT ?= 30
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# -Wno-unused-function: the fuzz targets share static helpers in headers (fuzz_daemon.h)
# that not every target calls; clang warns about those, and -Werror would break the build.
FUZZ_WARN    := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter -Wno-unused-function
FUZZ_PKGS    := libmicrohttpd libcjson libpng openblas zlib libturbojpeg
# Recursive (=): pkg-config runs when a recipe needs it, after the dependencies are in.
FUZZ_PKG_CFLAGS = $(shell pkg-config --cflags $(FUZZ_PKGS))
FUZZ_PKG_LIBS   = $(shell pkg-config --libs $(FUZZ_PKGS))
FUZZ_CFLAGS  = $(FUZZ_WARN) -O1 -g $(FUZZ_SAN) -Iinclude $(FUZZ_PKG_CFLAGS) -MMD -MP

FUZZ_SRC     := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_ALL     := $(patsubst tests/fuzz/fuzz_%.c,%,$(FUZZ_SRC))
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_BINS    := $(FUZZ_ALL:%=$(FUZZ_BUILD)/fuzz_%)
FUZZ_LIB_SRC := $(wildcard src/core/*.c src/io/*.c src/train/*.c src/serve/*.c)
FUZZ_LIB_OBJ := $(FUZZ_LIB_SRC:%.c=$(FUZZ_BUILD)/obj/%.o)
FUZZ_LIB     := $(FUZZ_BUILD)/libdaed.a

.PHONY: fuzz fuzz-build fuzz-deps fuzz-replay
# Keep the targets' objects (make would delete them as intermediates).
.SECONDARY: $(FUZZ_ALL:%=$(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o)

## fuzz-deps: clang and its libFuzzer runtime (Debian clang, libclang-rt-14-dev) if missing
fuzz-deps:
	@if ! command -v $(FUZZ_CC) >/dev/null 2>&1 || \
	    [ ! -f "$$($(FUZZ_CC) -print-file-name=libclang_rt.fuzzer-x86_64.a 2>/dev/null)" ]; then \
	    echo "fuzz: installing clang libclang-rt-14-dev" >&2; \
	    SUDO=""; [ "$$(id -u)" -ne 0 ] && SUDO=sudo; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $$SUDO apt-get update -qq && \
	    $$SUDO apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev; \
	fi

# Library objects: instrumented for coverage (fuzzer-no-link) and the sanitizers.
$(FUZZ_BUILD)/obj/%.o: %.c | deps fuzz-deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(FUZZ_PKG_LIBS) -lpthread -lm

## fuzz-build: build every fuzz target into build/fuzz/
fuzz-build: $(FUZZ_BINS)

# One target: corpus copy, run, one summary line; the exit status says if it failed.
# Executions come from -print_final_stats=1 (stat::number_of_executed_units).
define FUZZ_RUN
set -f; t=$(1); c=$(FUZZ_BUILD)/corpus-$$t; a=$(FUZZ_BUILD)/artifacts/$$t/; log=$(FUZZ_BUILD)/log-$$t.txt; \
mkdir -p $$c $$a; \
if [ -d tests/fuzz/corpus/$$t ]; then cp -Rn tests/fuzz/corpus/$$t/. $$c/ 2>/dev/null || true; fi; \
opts=$$(sed -n 's/.*FUZZ_OPTIONS:\([-=_a-z0-9 ]*\).*/\1/p' tests/fuzz/fuzz_$$t.c | head -n 1); \
dict=""; [ -f tests/fuzz/dict/$$t.dict ] && dict=-dict=tests/fuzz/dict/$$t.dict; \
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
$(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=$(FUZZ_RSS_MB) \
    -malloc_limit_mb=$(FUZZ_MALLOC_MB) -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 -artifact_prefix=$$a $$dict $$opts $$c \
    >$$log 2>&1; rc=$$?; \
execs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $$log | tail -n 1); \
corp=$$(ls $$c | wc -l); \
if [ $$rc -eq 0 ]; then \
    printf 'fuzz %-12s ok      %10s execs in %ss, corpus %s files\n' $$t "$${execs:-?}" $(FUZZ_SECONDS) $$corp; \
else \
    printf 'fuzz %-12s FAILED  %10s execs (exit %s): see %s and %s\n' $$t "$${execs:-?}" $$rc $$log $$a; \
    grep -m 5 -E 'ERROR|runtime error|invariant|SUMMARY' $$log; \
fi; \
[ $$rc -eq 0 ]
endef

## fuzz: run every fuzz target FUZZ_SECONDS (default 60) seconds with ASan+UBSan
fuzz: fuzz-build
	@fail=""; for t in $(FUZZ_TARGETS); do \
	    ( $(call FUZZ_RUN,$$t) ) || fail="$$fail $$t"; \
	done; \
	if [ -n "$$fail" ]; then echo "fuzz: FAILED:$$fail" >&2; exit 1; fi

## fuzz-replay: each target once over its committed corpus (no fuzzing; a quick regression)
fuzz-replay: fuzz-build
	@set -e; for t in $(FUZZ_TARGETS); do \
	    [ -d tests/fuzz/corpus/$$t ] || continue; \
	    echo "fuzz-replay $$t: $$(ls tests/fuzz/corpus/$$t | wc -l) inputs"; \
	    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	    $(FUZZ_BUILD)/fuzz_$$t -rss_limit_mb=$(FUZZ_RSS_MB) -malloc_limit_mb=$(FUZZ_MALLOC_MB) -timeout=$(FUZZ_TIMEOUT) \
	        tests/fuzz/corpus/$$t/* >$(FUZZ_BUILD)/replay-$$t.txt 2>&1 || \
	        { tail -n 30 $(FUZZ_BUILD)/replay-$$t.txt; exit 1; }; \
	done

-include $(FUZZ_LIB_OBJ:.o=.d) $(FUZZ_BINS:$(FUZZ_BUILD)/%=$(FUZZ_BUILD)/obj/tests/fuzz/%.d)
