#!/usr/bin/env bash
# deploy.sh — the deployment tests `make test` runs: scripts/check-deploy (Dockerfile runtime
# stage vs the binaries' libraries, compose/nginx/k8s consistency), then tests/deploy/
# failover.sh (nginx in front of three daed, one killed and one drained under load).
# scripts/container-smoke runs too; it skips itself where no Docker engine answers.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/check-deploy --build "${DAED_BUILD:-build}"
bash tests/deploy/failover.sh
scripts/container-smoke
