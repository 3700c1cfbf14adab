#!/bin/sh
# lint-openapi.sh — lints openapi.yaml with Redocly's CLI (npm, fetched by npx on first use).
# Needs node >= 18 and npm (Debian 12: the nodejs and npm packages). Exit status is the linter's.
set -e
cd "$(dirname "$0")/.."
if ! command -v npx >/dev/null 2>&1; then
    echo "lint-openapi: npx not found (apt-get install nodejs npm)" >&2
    exit 2
fi
# Telemetry off; the version is pinned so new rules cannot break the build unannounced.
REDOCLY_TELEMETRY=off exec npx --yes @redocly/cli@1.34.20 lint --format=stylish openapi.yaml "$@"
