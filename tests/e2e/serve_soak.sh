#!/usr/bin/env bash
# serve_soak.sh — the short soak of CI: bench/soak.sh for 60 s at about 80% of the measured
# maximum throughput over a mix of valid and invalid requests on every endpoint: no 5xx, no
# connection error, RSS flat after the first 10 s (within 10%; sanitizer builds keep freed
# memory in quarantine, so their RSS is only reported). The 10-minute run is
# `bash bench/soak.sh --minutes 10` (or `make soak SOAK_SECONDS=600`) on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${DAED_BUILD:-build}
command -v wrk >/dev/null || { echo "SKIP: serve_soak.sh needs wrk (apt-get install wrk)"; exit 0; }
tol=10
case "$B" in *asan* | *tsan*) tol=100000 ;; esac
bash bench/soak.sh --build "$B" --seconds "${SOAK_SECONDS:-60}" --probe-seconds 5 --rss-tol "$tol"
