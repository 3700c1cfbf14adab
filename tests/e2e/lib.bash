# lib.bash — shared helpers of the daed end-to-end tests (sourced, not run by `make e2e`).
# DAED_BUILD (default build) holds daed and bench/{mkmodel,mkpng,loadgen}.
set -euo pipefail

B=${DAED_BUILD:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
# The test helpers (tests/helpers/, built into $B/helpers/); built if this build dir lacks them.
if [ ! -x "$B/helpers/mkmodel" ] || [ ! -x "$B/helpers/mkpng" ] || [ ! -x "$B/helpers/loadgen" ]; then
    san=""
    case "$B" in *asan*) san="SAN=1 OPT=-O1" ;; esac
    # shellcheck disable=SC2086
    make -s BUILD="$B" $san "$B/helpers/mkmodel" "$B/helpers/mkpng" "$B/helpers/loadgen" >&2
fi

T=$(mktemp -d /tmp/daed-e2e.XXXXXX)
DAED_PIDS=()
FAILS=0
cleanup() {
    for p in "${DAED_PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$T"
}
trap cleanup EXIT

fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
ok() { echo "ok: $*"; }
# skip REASON: this test cannot run here. Exit status 77 (the automake convention): the
# runner (scripts/run-e2e.sh) counts it as a skip with the reason, never as a pass.
E2E_SKIP=77
skip() { echo "SKIP: $*"; exit "$E2E_SKIP"; }

# models: the standard test folder
make_models() {
    mkdir -p "$T/models"
    "$B/helpers/mkmodel" "$T/models/conv.safetensors" conv conv
    "$B/helpers/mkmodel" "$T/models/mlp.safetensors" mlp mlp
    "$B/helpers/mkmodel" "$T/models/rgb.safetensors" rgb rgb
    "$B/helpers/mkmodel" "$T/models/sr.safetensors" sr sr
}

# start_daed NAME [options...]: starts daed on a free port; sets PORT, PID, LOG.
start_daed() {
    local name=$1
    shift
    LOG="$T/$name.log"
    rm -f "$T/$name.port"
    "$B/daed" --bind 127.0.0.1 --port 0 --port-file "$T/$name.port" "$@" >"$LOG" 2>&1 &
    PID=$!
    DAED_PIDS+=("$PID")
    for _ in $(seq 600); do
        [ -s "$T/$name.port" ] && break
        kill -0 "$PID" 2>/dev/null || { cat "$LOG" >&2; echo "daed exited at start-up" >&2; exit 1; }
        sleep 0.1
    done
    [ -s "$T/$name.port" ] || { cat "$LOG" >&2; echo "daed did not start" >&2; exit 1; }
    PORT=$(cat "$T/$name.port")
    URL="http://127.0.0.1:$PORT"
}

# stop_daed: SIGTERM, wait; sets STOP_RC.
stop_daed() {
    kill -TERM "$PID"
    STOP_RC=0
    wait "$PID" || STOP_RC=$?
}

# req METHOD PATH [curl args...]: sets CODE, BODY (file $T/body), HDRS (file $T/hdrs).
req() {
    local m=$1 p=$2
    shift 2
    CODE=$(curl -sS -X "$m" -o "$T/body" -D "$T/hdrs" -w '%{http_code}' --max-time 120 \
        "$URL$p" "$@") || CODE=000
}

# expect CODE WHAT: checks the last status.
expect() {
    if [ "$CODE" = "$1" ]; then ok "$2 -> $CODE"; else
        fail "$2: status $CODE, expected $1: $(head -c 400 "$T/body" | tr -d '\0')"; fi
}
# body_has TEXT WHAT / hdr_has TEXT WHAT
body_has() { if grep -qF -- "$1" "$T/body"; then ok "$2"; else fail "$2: body lacks '$1': $(head -c 400 "$T/body" | tr -d '\0')"; fi; }
hdr_has() { if grep -qiF -- "$1" "$T/hdrs"; then ok "$2"; else fail "$2: headers lack '$1'"; fi; }

# png_size FILE -> "W H" from the IHDR chunk
png_size() {
    local b
    read -r -a b <<<"$(od -An -tu1 -j16 -N8 "$1")"
    echo "$(((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3])) $(((b[4] << 24) | (b[5] << 16) | (b[6] << 8) | b[7]))"
}
is_png() { [ "$(od -An -tx1 -N8 "$1" | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

finish() {
    if [ "$FAILS" -ne 0 ]; then
        echo "$FAILS check(s) failed; daed logs in $T kept" >&2
        trap - EXIT
        for p in "${DAED_PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done
        exit 1
    fi
    echo "all checks passed"
}
