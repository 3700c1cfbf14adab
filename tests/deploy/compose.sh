#!/usr/bin/env bash
# compose.sh — docker/compose.yaml for real: podman-compose (or `docker compose` where
# Docker answers) brings up nginx and three daed replicas from the images of this checkout
# (daed:local, built by scripts/container-smoke; daed-nginx:local, built here from
# docker/nginx.Dockerfile), publishes nginx on 127.0.0.1:$DAED_COMPOSE_PORT (18602), and,
# while three clients POST examples/noisy.png through nginx without pause:
#   1. SIGKILLs replica daed2's process (a crash): no client request may fail (nginx
#      retries on the next one); compose's restart policy brings it back and it must serve
#      requests through nginx again;
#   2. stops replica daed3 with SIGTERM (`stop -t 30`: podman-compose 1.0.3 ignores
#      stop_grace_period): no request may fail, and daed3 must exit 0 (drained).
# Then `down -t 30`. Every request's status is counted; any non-200 fails the test.
set -uo pipefail
cd "$(dirname "$0")/../.."
PROG=compose
. scripts/container-lib.sh
engine_setup || exit 1
export DAED_COMPOSE_PORT=${DAED_COMPOSE_PORT:-18602}
P=${DAED_COMPOSE_PROJECT:-daedtest}
if [ "$ENGINE" = podman ]; then
    command -v podman-compose >/dev/null || engine_install_podman || exit 1
    COMPOSE=(podman-compose -p "$P" -f docker/compose.yaml)
else
    COMPOSE=(docker compose -p "$P" -f docker/compose.yaml)
fi
base=http://127.0.0.1:$DAED_COMPOSE_PORT
T=$(mktemp -d)
LOADERS=()
say() { echo "compose: $*"; }
cleanup() {
    for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null; done
    "${COMPOSE[@]}" down -t 30 >"$T/down.log" 2>&1
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "compose: FAIL: $*" >&2
    for s in daed1 daed2 daed3 nginx; do
        c=$(cname "$s"); [ -n "$c" ] && { echo "--- $c" >&2; $ENGINE logs --tail 10 "$c" >&2 2>&1; }
    done
    c=$(cname nginx); [ -n "$c" ] && { echo "--- $c: errors" >&2; $ENGINE logs "$c" 2>&1 | grep '\[error\]' | tail -5 >&2; }
    exit 1
}
cname() { $ENGINE ps -a --filter "label=com.docker.compose.project=$P" \
    --filter "label=com.docker.compose.service=$1" --format '{{.Names}}' | head -1; }

$ENGINE image inspect daed:local >/dev/null 2>&1 || fail "no image daed:local (run scripts/container-smoke first)"
$ENGINE build "${BUILD_ARGS[@]}" -t daed-nginx:local -f docker/nginx.Dockerfile docker >"$T/build.log" 2>&1 ||
    { tail -20 "$T/build.log" >&2; fail "building docker/nginx.Dockerfile"; }
say "built daed-nginx:local ($($ENGINE image inspect -f '{{.Size}}' daed-nginx:local | awk '{ printf "%.1f", $1 / 1048576 }') MB)"
"${COMPOSE[@]}" down -t 5 >/dev/null 2>&1
"${COMPOSE[@]}" up -d >"$T/up.log" 2>&1 || { tail -30 "$T/up.log" >&2; fail "compose up"; }
for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$base/readyz")" = 200 ] && break
    sleep 0.1
done
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200 ] || { tail -30 "$T/up.log" >&2; fail "nginx never answered /readyz 200"; }
for s in daed1 daed2 daed3; do
    c=$(cname "$s"); [ -n "$c" ] || fail "no container for $s"
    $ENGINE exec "$c" /usr/local/bin/daed-healthcheck || fail "$s: health check failed"
done
say "up: nginx on $base, daed1..3 healthy"

# Load: three clients, each POSTing one request after another, logging every status.
load() {
    while :; do
        curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 --data-binary @examples/noisy.png \
            -H 'Content-Type: image/png' "$base/v1/denoise" >>"$T/codes.$1" || echo "curl$?" >>"$T/codes.$1"
    done
}
phase() { # phase NAME SECONDS: count statuses logged during it
    for i in 1 2 3; do : >"$T/codes.$i"; done
    sleep "$2"
    cat "$T"/codes.* >"$T/$1.codes"
    local n bad
    n=$(wc -l <"$T/$1.codes"); bad=$(grep -vc '^200$' "$T/$1.codes")
    say "$1: $n requests, $bad not 200"
    [ "$n" -gt 0 ] || fail "$1: no request completed"
    [ "$bad" = 0 ] || fail "$1: $bad requests failed: $(sort "$T/$1.codes" | uniq -c | tr '\n' ' ')"
}
for i in 1 2 3; do load "$i" & LOADERS+=($!); done
phase steady 3

# daed2 dies: its process SIGKILLed from the host, as a crash would (`podman kill` counts as
# stopped by the user, which restart: unless-stopped leaves stopped).
c2=$(cname daed2)
ip2=$($ENGINE inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c2")
kill -9 "$($ENGINE inspect -f '{{.State.Pid}}' "$c2")" || fail "kill daed2's process"
phase "kill-daed2" 5
# restart: unless-stopped brings it back, and nginx sends it requests again.
for _ in $(seq 1 300); do
    $ENGINE exec "$c2" /usr/local/bin/daed-healthcheck 2>/dev/null && break
    sleep 0.1
done
$ENGINE exec "$c2" /usr/local/bin/daed-healthcheck || fail "daed2 did not come back"
say "daed2 restarted ($($ENGINE inspect -f '{{.RestartCount}}' "$c2") restart) and healthy"
ng=$(cname nginx)
served() { $ENGINE logs "$ng" 2>/dev/null | grep -c "upstream=$ip2:8080 upstream_status=200"; }
before=$(served)

c3=$(cname daed3)
ip3=$($ENGINE inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c3")
$ENGINE stop -t 30 "$c3" >/dev/null 2>&1 &
spid=$!
phase "sigterm-daed3" 8
wait "$spid" || fail "stop $c3"
rc=$($ENGINE inspect -f '{{.State.ExitCode}}' "$c3")
[ "$rc" = 0 ] || fail "daed3 exited with $rc after SIGTERM, expected 0 (drained)"
say "daed3 drained and exited 0"
# Once daed3 has exited its address answers nothing: nginx's probes of it (one live request
# each fail_timeout) time out connecting and must be passed on (proxy_next_upstream timeout).
probes=$($ENGINE logs "$ng" 2>/dev/null | grep -c "upstream=$ip3:8080, [^ ]* upstream_status=504, 200")
say "nginx passed on $probes requests after a connect timeout to the stopped daed3 ($ip3)"
after=$(served)
[ "$after" -gt "$before" ] || fail "the restarted daed2 ($ip2) got no request through nginx"
say "the restarted daed2 answered $((after - before)) requests through nginx"
for p in "${LOADERS[@]}"; do kill "$p" 2>/dev/null; done
wait 2>/dev/null
LOADERS=()
# Which replicas answered: nginx's access log names the upstream of every request.
$ENGINE logs "$ng" 2>/dev/null | grep -o 'upstream=[^ ]*' | sort | uniq -c | sed 's/^/compose:   /'
echo "compose: all checks passed"
