# harden.mk — ThreadSanitizer and valgrind runs (included from the Makefile, like fuzz.mk).
#
#   make tsan       daed and the test helpers built with -fsanitize=thread in build/tsan, then
#                   the concurrent end-to-end tests (TSAN_TESTS) against it; fails on any
#                   ThreadSanitizer report (reports in build/tsan/reports/, suppressions in
#                   tests/tsan.supp, each one justified there)
#   make valgrind   the unit tests (the plain build, all in one process) under
#                   valgrind --leak-check=full --error-exitcode=1; fails on any report
#                   (suppressions in tests/valgrind.supp)
#   make soak SOAK_SECONDS=600   bench/soak.sh for that long (default 60)
#   make slowclient  bench/slowclient.sh: 500 slowloris + 50 slow uploads next to normal
#                    clients, p99 against the unloaded value (SLOW_ARGS='--epoll "1 0"')

TSAN_CC    ?= $(CC)
TSAN_BUILD := build/tsan
TSAN_TESTS ?= tests/e2e/serve_load.sh tests/e2e/serve_reload.sh tests/e2e/serve_sigterm.sh \
              tests/e2e/serve_faults.sh tests/e2e/serve_slow.sh tests/e2e/serve_split.sh \
              tests/e2e/serve_budget.sh tests/e2e/serve_jobs.sh tests/e2e/serve_cancel.sh
TSAN_FLAGS := -O1 -g -fsanitize=thread -fno-omit-frame-pointer
# history_size=4: longer stacks of the earlier access (memory is not tight); halt_on_error=0
# and log_path: every report is written to a file and the check below fails the run, so a
# report inside daed is found even when the test's own checks pass.
# *_TINY_MODEL=1: serve_jobs and serve_cancel run a tiny stand-in for the photo model, which
# is too slow under ThreadSanitizer (a 300x200 photo: 142 s).
TSAN_ENV    = TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp history_size=4 \
              halt_on_error=0 log_path=$(CURDIR)/$(TSAN_BUILD)/reports/tsan" \
              JOBS_TINY_MODEL=1 CANCEL_TINY_MODEL=1

VG_BUILD   := $(BUILD)
VG_SUPP    := tests/valgrind.supp
# OpenBLAS picks its kernels by CPU at run time; on AVX-512 machines that is SkylakeX code
# that valgrind 3.19 cannot execute (SIGILL). Haswell kernels (AVX2) run under valgrind and
# compute the same results within the tests' tolerances.
VG_ENV     := OPENBLAS_CORETYPE=Haswell CK_FORK=no CK_DEFAULT_TIMEOUT=0 DAED_BUILD=$(VG_BUILD)
VG_FLAGS   := --leak-check=full --errors-for-leak-kinds=definite,possible --error-exitcode=1 \
              --suppressions=$(CURDIR)/$(VG_SUPP) --num-callers=30 --track-origins=no

SOAK_SECONDS ?= 60

.PHONY: tsan tsan-build valgrind soak slowclient

## tsan-build: daed, dae-train and the e2e helpers with ThreadSanitizer in build/tsan
tsan-build:
	$(MAKE) --no-print-directory BUILD=$(TSAN_BUILD) CC=$(TSAN_CC) CFLAGS="$(TSAN_FLAGS)" \
	    all $(TSAN_BUILD)/helpers/mkmodel $(TSAN_BUILD)/helpers/mkpng $(TSAN_BUILD)/helpers/loadgen \
	    $(TSAN_BUILD)/helpers/slowclient

## tsan: the concurrent e2e tests against the ThreadSanitizer daed; zero reports
tsan: tsan-build
	@rm -rf $(TSAN_BUILD)/reports; mkdir -p $(TSAN_BUILD)/reports
	@set -e; for t in $(TSAN_TESTS); do \
	    echo "== tsan $$t"; $(TSAN_ENV) DAED_BUILD=$(TSAN_BUILD) bash $$t; done
	@n=$$(cat $(TSAN_BUILD)/reports/tsan.* 2>/dev/null | grep -c '^WARNING: ThreadSanitizer' || true); \
	if [ "$$n" != 0 ]; then \
	    echo "tsan: $$n ThreadSanitizer report(s):" >&2; \
	    grep -h -A 12 '^WARNING: ThreadSanitizer' $(TSAN_BUILD)/reports/tsan.* | head -n 80 >&2; \
	    exit 1; \
	fi; echo "tsan: no reports"

## valgrind: the unit tests under valgrind --leak-check=full; zero reports
valgrind:
	$(MAKE) --no-print-directory $(VG_BUILD)/check_all all
	$(VG_ENV) valgrind $(VG_FLAGS) $(VG_BUILD)/check_all

## soak: bench/soak.sh for SOAK_SECONDS (default 60) at 80% of the measured maximum
soak: all $(HELPERS)
	bash bench/soak.sh --seconds $(SOAK_SECONDS)

## slowclient: bench/slowclient.sh (slow clients vs --request-timeout; SLOW_ARGS for options)
slowclient: all $(HELPERS)
	bash bench/slowclient.sh $(SLOW_ARGS)
