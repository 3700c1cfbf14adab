#!/usr/bin/env bash
# readme.sh — README.md's console blocks run as written against a fresh daed serving a copy
# of ./models, outputs compared with the README's (tests/e2e/readme_check.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/e2e/readme_check.py --build "${DAED_BUILD:-build}"
