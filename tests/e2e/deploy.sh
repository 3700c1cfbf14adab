#!/usr/bin/env bash
# deploy.sh — the deployment tests `make test` runs: scripts/check-deploy (Dockerfile runtime
# stage vs the binaries' libraries, compose/nginx/k8s consistency), tests/deploy/
# nginx_timeouts.sh (nginx.conf's timeout retries, with stand-in replicas), then tests/deploy/
# failover.sh (nginx in front of three daed, one killed and one drained under load).
# The image itself is built and run by `make container-test` (scripts/container-smoke,
# tests/deploy/compose.sh: minutes, a container engine), which CI runs after `make test`.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/check-deploy --build "${DAED_BUILD:-build}"
bash tests/deploy/nginx_timeouts.sh
bash tests/deploy/failover.sh
