#!/usr/bin/env bash
# readme-examples.sh — the README examples that need daemons with special settings (the
# 503 of a full queue, start-up problems), each command printed with its real output, to
# paste into the README. The other blocks are checked and rewritten by
# tests/e2e/readme_check.py (make readme-check, make readme-update).
#
# Starts build/daed on a free loopback port with ./models (and a few short-lived daemons
# with bad settings) and runs each example in a scratch directory with examples/. Commands are printed with http://localhost:8080, the address `make run`
# serves; they run against the real port. Long number arrays are cut after 4 values
# ("..."), and long lines after 400 characters ("... (N more characters)").
# Usage: scripts/readme-examples.sh   (BUILD=build, MODELS=models)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD=${BUILD:-build}
MODELS=${MODELS:-models}
DAED=$ROOT/$BUILD/daed
for f in "$DAED"; do
    [ -x "$f" ] || { echo "readme-examples: $f not built (make readme-examples)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "readme-examples: needs jq (apt-get install jq)" >&2; exit 1; }
T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT

# start NAME ARGS...: a daed on a free loopback port, run in $CWD (default the repository);
# sets PORT (0 if it did not come up).
start() {
    local name=$1; shift
    rm -f "$T/$name.port"
    (cd "${CWD:-$ROOT}" && exec "$DAED" --bind 127.0.0.1 --port 0 --port-file "$T/$name.port" \
        --openapi "$ROOT/openapi.yaml" "$@" >"$T/$name.log" 2>&1) &
    PIDS+=($!)
    PORT=0
    for _ in $(seq 100); do
        [ -s "$T/$name.port" ] && { PORT=$(cat "$T/$name.port"); return; }
        kill -0 "${PIDS[-1]}" 2>/dev/null || return
        sleep 0.1
    done
}

# Cut long number arrays and long lines.
trim() {
    sed -E 's/((-?[0-9][0-9.e+-]*,){4})(-?[0-9][0-9.e+-]*,)+(-?[0-9][0-9.e+-]*)/\1.../g' |
        awk '{ if (length($0) > 400) printf "%s... (%d more characters)\n", substr($0, 1, 400),
               length($0) - 400; else print }'
}

# ex 'COMMAND': print it (as the README shows it), run it against the real port, print output.
ex() {
    echo "\$ $1"
    (cd "$T/work" && eval "${1//http:\/\/localhost:8080/http://127.0.0.1:$PORT}") 2>&1 | trim
    echo
}
section() { printf '\n#### %s\n\n' "$*"; }

# Inputs: the README's example images (examples/).
mkdir -p "$T/work"
W=$T/work
cp "$ROOT"/examples/*.png "$W/"
ln -s "$ROOT/examples" "$W/examples"

start main --models "$ROOT/$MODELS"
[ "$PORT" != 0 ] || { cat "$T/main.log" >&2; exit 1; }
echo "(daed $("$DAED" --version | cut -d' ' -f2) with $MODELS/, $(date -u +%Y-%m-%d))"

# The API blocks of the README are run and checked (and rewritten with --update) by
# tests/e2e/readme_check.py (make readme-check, make readme-update); this script prints the
# outputs that need daemons with special settings.

# 503: one worker, a queue of one, and several large photo requests at once.
start busy --models "$ROOT/$MODELS" --workers 1 --queue-size 1 --access-log 0
if [ "$PORT" != 0 ]; then
    section "503 when the queue is full (daed --workers 1 --queue-size 1, 8 requests at once)"
    ex "for i in 1 2 3 4 5 6 7 8; do curl -s -o /dev/null -D - --data-binary @examples/tile.png 'http://localhost:8080/v1/denoise?model=photo-denoise' | grep -E '^(HTTP|Retry-After)' & done; wait"
fi

section "start-up problems (daed's log)"
mkdir -p "$T/mymodels"
cp "$ROOT/$MODELS/fmnist-sr2.safetensors" "$T/mymodels/"
head -c 3000 "$ROOT/$MODELS/fmnist-ae.safetensors" >"$T/mymodels/broken.safetensors"
echo '$ build/daed --port 8080   # while another process listens on 8080'
"$DAED" --bind 127.0.0.1 --port "$(cat "$T/main.port")" --models "$ROOT/$MODELS" 2>&1 |
    grep -vE ' info (model|daed starting|openblas)' | sed -E 's/[0-9]{5}/8080/g'
echo "exit status ${PIPESTATUS[0]}"
echo
echo '$ build/daed --models ./no-such-dir'
CWD=$T start nodir --models ./no-such-dir
sleep 0.5
grep -vE ' info (daed starting|openblas)' "$T/nodir.log"
echo
echo '$ build/daed --models ./mymodels   # one truncated file'
CWD=$T start bad --models ./mymodels
sleep 0.5
grep -vE ' info (daed starting|openblas)' "$T/bad.log"
echo
echo '$ build/daed --workers 1000'
"$DAED" --workers 1000 2>&1; echo "exit status $?"
