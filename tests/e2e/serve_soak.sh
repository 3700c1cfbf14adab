#!/usr/bin/env bash
# serve_soak.sh — the short soak of CI: bench/soak.sh for 60 s at about 80% of the measured
# maximum throughput over a mix of valid and invalid requests on every endpoint: no 5xx, no
# connection error, RSS flat after the first 10 s (within 10%; sanitizer builds keep freed
# memory in quarantine, so their RSS is only reported, and they soak for 20 s: no RSS to
# watch, and the ASan run's other e2e tests load the same paths). The 10-minute run is
# `bash bench/soak.sh --minutes 10` (or `make soak SOAK_SECONDS=600`) on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${DAED_BUILD:-build}
# 77: a skip (scripts/run-e2e.sh counts it, with this reason), never a pass
command -v wrk >/dev/null || { echo "SKIP: serve_soak.sh needs wrk (apt-get install wrk)"; exit 77; }
tol=10 secs=60
case "$B" in *asan* | *tsan*) tol=100000 secs=20 ;; esac
bash bench/soak.sh --build "$B" --seconds "${SOAK_SECONDS:-$secs}" --probe-seconds 5 --rss-tol "$tol"
