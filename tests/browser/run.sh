#!/usr/bin/env bash
# run.sh — `make browser-test`: daed's web page in Debian's headless Chromium, driven by
# playwright-core (npm, pinned in package-lock.json; it uses /usr/bin/chromium and
# downloads no browser). Installs the npm package on first use. Skips, saying why, only
# where no browser or Node.js is installed, and never under CI (.ci/run installs both).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

skip() {
    if [ "${CI:-}" = true ]; then echo "browser test: $1 (CI must have it: .ci/run)" >&2; exit 1; fi
    echo "SKIP: browser test: $1"
    exit 0
}
command -v node >/dev/null || skip "node not found (apt-get install nodejs npm)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || skip "node $(node --version) is older than 18"
[ -x "$CHROMIUM" ] || skip "no browser at $CHROMIUM (apt-get install chromium)"
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
    command -v npm >/dev/null || skip "npm not found (apt-get install npm)"
    (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
exec node "$here/page.test.mjs"
