# lib.sh — shared by failover.sh and throughput.sh: real daed processes on loopback, nginx
# running docker/nginx.conf rewritten to those ports, wrk posting PNGs through it, and the
# nginx access log read back per phase. Source it; it sets a cleanup trap.

DEPLOY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEPLOY_NAME=${DEPLOY_NAME:-deploy}
BUILD=${DAED_BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$DEPLOY_ROOT/$BUILD ;; esac
DAED=$BUILD/daed
NGINX=/usr/sbin/nginx
# Generous: a loaded 2-core machine, and ASan builds start and answer slower.
READY_TIMEOUT=${READY_TIMEOUT:-90}

say() { echo "$DEPLOY_NAME: $*"; }
die() { echo "$DEPLOY_NAME: FAIL: $*" >&2; exit 1; }

# Skip only when daed itself is not built yet.
require_daed() {
    if [ ! -x "$DAED" ]; then
        say "SKIP: $DAED is not built yet"
        DEPLOY_OK=1
        exit 0
    fi
}

# nginx, wrk, curl and python3 from Debian, installed when missing.
require_tools() {
    local missing=""
    [ -x "$NGINX" ] || missing="$missing nginx"
    command -v wrk >/dev/null 2>&1 || missing="$missing wrk"
    command -v curl >/dev/null 2>&1 || missing="$missing curl"
    command -v python3 >/dev/null 2>&1 || missing="$missing python3"
    [ -z "$missing" ] && return 0
    say "installing:$missing"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        $missing >/dev/null
    [ -x "$NGINX" ] && command -v wrk >/dev/null && command -v curl >/dev/null &&
        command -v python3 >/dev/null ||
        die "could not install:$missing"
}

# ---------------------------------------------------------------- work dir and cleanup

T=$(mktemp -d "${TMPDIR:-/tmp}/daed-deploy.XXXXXX")
chmod 755 "$T" # nginx workers run as nobody when we are root
declare -A DAED_PID=() DAED_PORT=()
NGINX_PID=""
WRK_PID=""
DEPLOY_OK=0

deploy_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    trap "" PIPE # a reader that went away must not stop the cleanup
    [ -n "$WRK_PID" ] && kill -TERM "$WRK_PID" 2>/dev/null
    if [ -n "$NGINX_PID" ]; then
        kill -QUIT "$NGINX_PID" 2>/dev/null
    fi
    for i in "${!DAED_PID[@]}"; do
        kill -TERM "${DAED_PID[$i]}" 2>/dev/null
    done
    # Give everything 10 s to leave on its own, then force it.
    local t=0
    while [ $t -lt 100 ]; do
        local alive=0
        for p in $NGINX_PID $WRK_PID "${DAED_PID[@]}"; do
            kill -0 "$p" 2>/dev/null && alive=1
        done
        [ $alive -eq 0 ] && break
        sleep 0.1
        t=$((t + 1))
    done
    for p in $NGINX_PID $WRK_PID "${DAED_PID[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
    wait 2>/dev/null
    if [ $rc -ne 0 ] || [ $DEPLOY_OK -ne 1 ]; then
        for f in "$T"/daed*.log "$T"/nginx-error.log "$T"/wrk*.out; do
            [ -s "$f" ] || continue
            echo "---- last lines of $(basename "$f")"
            tail -n 15 "$f"
        done
        [ $rc -eq 0 ] && rc=1
    fi
    rm -rf "$T"
    exit $rc
}
trap deploy_cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- daed

# Models: the PyTorch-written fixture (tasks denoise and score), a 28x28 grey PNG to post.
prepare_inputs() {
    mkdir -p "$T/models"
    cp "$DEPLOY_ROOT/tests/fixtures/modelfile/pytorch_conv.safetensors" "$T/models/"
    make_png "$T/in.png" 28 28
}

# make_png FILE W H — an 8-bit greyscale PNG with a gradient (python3's standard library).
make_png() {
    python3 - "$1" "$2" "$3" <<'EOF'
import struct, sys, zlib
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
raw = b"".join(b"\0" + bytes((x * 9 + y * 5) % 256 for x in range(w)) for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
       + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
open(path, "wb").write(png)
EOF
}

# start_daed N [PORT] — replica N on PORT (0 or absent: daed picks a free one).
start_daed() {
    local n=$1 port=${2:-0}
    rm -f "$T/port$n"
    "$DAED" --bind 127.0.0.1 --port "$port" --port-file "$T/port$n" --models "$T/models" \
        --workers "${DEPLOY_WORKERS:-1}" --access-log 0 --shutdown-timeout 20 >>"$T/daed$n.log" 2>&1 &
    DAED_PID[$n]=$!
    local t=0
    while [ ! -s "$T/port$n" ]; do
        kill -0 "${DAED_PID[$n]}" 2>/dev/null || die "daed $n exited at start-up"
        [ $t -ge $((READY_TIMEOUT * 10)) ] && die "daed $n wrote no port file"
        sleep 0.1
        t=$((t + 1))
    done
    DAED_PORT[$n]=$(cat "$T/port$n")
    wait_http "http://127.0.0.1:${DAED_PORT[$n]}/readyz" "daed $n /readyz"
}

# wait_http URL WHAT — until URL answers 200.
wait_http() {
    local t=0
    until [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1")" = 200 ]; do
        [ $t -ge $((READY_TIMEOUT * 5)) ] && die "$2 never answered 200"
        sleep 0.2
        t=$((t + 1))
    done
}

# ---------------------------------------------------------------- nginx

# start_nginx N1 [N2 N3] — docker/nginx.conf with its upstream servers daed1..3 replaced by
# the loopback ports of replicas N1.. (server lines beyond the list are dropped), its listen
# line by a free loopback port, its access log by a file. Everything else is verbatim.
# NGINX_CONF_SRC=FILE: that file instead of docker/nginx.conf (a copy with other timeouts).
start_nginx() {
    local conf=${NGINX_CONF_SRC:-$DEPLOY_ROOT/docker/nginx.conf} sedargs=() i=1 n
    for n in "$@"; do
        sedargs+=(-e "s/^\([[:space:]]*server[[:space:]]\{1,\}\)daed$i:8080\([[:space:];]\)/\1127.0.0.1:${DAED_PORT[$n]}\2/")
        i=$((i + 1))
    done
    for ((; i <= 3; i++)); do
        sedargs+=(-e "/^[[:space:]]*server[[:space:]]\{1,\}daed$i:8080/d")
    done
    NGINX_PORT=$(free_port)
    sed "${sedargs[@]}" \
        -e "s/^\([[:space:]]*listen[[:space:]]\{1,\}\)8080;/\1127.0.0.1:$NGINX_PORT;/" \
        -e "s|access_log /dev/stdout |access_log $T/access.log |" \
        "$conf" >"$T/daed.conf"
    # The rewrite must have hit every line it aims at: a drifted nginx.conf fails here.
    [ "$(grep -c "server 127\.0\.0\.1:" "$T/daed.conf")" -eq $# ] ||
        die "docker/nginx.conf: expected upstream servers daed1..3:8080"
    ! grep -q "daed[0-9]:8080" "$T/daed.conf" || die "docker/nginx.conf: unexpected server lines"
    grep -q "listen 127.0.0.1:$NGINX_PORT;" "$T/daed.conf" ||
        die "docker/nginx.conf: expected 'listen 8080;'"
    grep -q "access_log $T/access.log" "$T/daed.conf" ||
        die "docker/nginx.conf: expected 'access_log /dev/stdout daed_upstream'"
    mkdir -p "$T/ngx/logs"
    for d in body proxy fastcgi uwsgi scgi; do mkdir -p "$T/ngx/$d"; chmod 777 "$T/ngx/$d"; done
    cat >"$T/nginx.conf" <<EOF
worker_processes 1;
pid $T/nginx.pid;
error_log $T/nginx-error.log warn;
events { worker_connections 1024; }
http {
    client_body_temp_path $T/ngx/body;
    proxy_temp_path $T/ngx/proxy;
    fastcgi_temp_path $T/ngx/fastcgi;
    uwsgi_temp_path $T/ngx/uwsgi;
    scgi_temp_path $T/ngx/scgi;
    include $T/daed.conf;
}
EOF
    : >"$T/access.log"
    local ng=("$NGINX" -p "$T/ngx/" -e "$T/nginx-error.log" -c "$T/nginx.conf")
    "${ng[@]}" -t -q || die "nginx -t refused the configuration"
    "${ng[@]}" -g 'daemon off;' &
    NGINX_PID=$!
    wait_http "http://127.0.0.1:$NGINX_PORT/nginx-health" "nginx"
}

stop_nginx() {
    [ -n "$NGINX_PID" ] || return 0
    kill -QUIT "$NGINX_PID" 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
    NGINX_PID=""
}

# A loopback port nothing listens on, below the kernel's ephemeral range: a port in that
# range can be the local end of an outgoing connection (nginx to a replica, a stand-in's
# held connects), which nothing listens on but bind() refuses (EADDRINUSE: CI saw nginx
# fail to start on one).
free_port() {
    local p tries=0 lo=32768
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    [ "$lo" -gt 12000 ] 2>/dev/null || lo=32768
    while :; do
        p=$((10000 + RANDOM % (lo - 10000)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo $p
            return
        fi
        tries=$((tries + 1))
        [ $tries -gt 50 ] && die "no free port found"
    done
}

# ---------------------------------------------------------------- load

# start_load NAME SECONDS CONNECTIONS [PATH] — wrk posting $T/in.png through nginx, in the
# background; wait_load NAME reads its summary into WRK_REQUESTS / WRK_ERRORS / WRK_RPS.
start_load() {
    local name=$1 secs=$2 conns=$3 path=${4:-/v1/denoise}
    cat >"$T/post.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "image/png"
local f = assert(io.open("$T/in.png", "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-summary requests=%d errors=%d connect=%d read=%d write=%d status=%d timeout=%d us=%d\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    e.connect, e.read, e.write, e.status, e.timeout, summary.duration))
end
EOF
    wrk -t1 -c"$conns" -d"${secs}s" --timeout 30s -s "$T/post.lua" \
        "http://127.0.0.1:$NGINX_PORT$path" >"$T/wrk-$name.out" 2>&1 &
    WRK_PID=$!
}

wait_load() {
    local name=$1 line
    wait "$WRK_PID" || die "wrk ($name) failed: $(tail -3 "$T/wrk-$name.out")"
    WRK_PID=""
    line=$(grep '^wrk-summary' "$T/wrk-$name.out") || die "wrk ($name) printed no summary"
    WRK_REQUESTS=$(sed 's/.* requests=\([0-9]*\).*/\1/' <<<"$line")
    WRK_ERRORS=$(sed 's/.* errors=\([0-9]*\).*/\1/' <<<"$line")
    local us
    us=$(sed 's/.* us=\([0-9]*\).*/\1/' <<<"$line")
    WRK_RPS=$((WRK_REQUESTS * 1000000 / (us > 0 ? us : 1)))
    WRK_LINE=$line
}

log_lines() { wc -l <"$T/access.log"; }

# log_stats FROM TO — nginx access-log lines FROM+1..TO, as:
#   status CODE COUNT          answers to clients
#   served ADDR COUNT          200s each replica gave
#   tried ADDR COUNT           attempts on each replica (any outcome)
#   missed ADDR COUNT          attempts on each replica that failed (nginx went on or gave up)
#   retried COUNT              requests nginx passed on to another replica
log_stats() {
    awk -v from="$1" -v to="$2" '
    NR > from && NR <= to {
        if (!match($0, /" [0-9][0-9][0-9] /)) next
        st = substr($0, RSTART + 2, 3); status[st]++
        if (!match($0, /upstream=.* upstream_status=/)) next
        ups = substr($0, RSTART + 9, RLENGTH - 9 - 17)
        match($0, /upstream_status=.* rt=/)
        sts = substr($0, RSTART + 16, RLENGTH - 16 - 4)
        n = split(ups, a, /, /); split(sts, b, /, /)
        if (n > 1) retried++
        for (i = 1; i <= n; i++) {
            tried[a[i]]++
            if (b[i] == "200") served[a[i]]++; else missed[a[i]]++
        }
    }
    END {
        for (s in status) print "status", s, status[s]
        for (u in served) print "served", u, served[u]
        for (u in tried) print "tried", u, tried[u]
        for (u in missed) print "missed", u, missed[u]
        print "retried", retried + 0
    }' "$T/access.log"
}

# stat_of STATS KIND KEY — the count, 0 when absent.
stat_of() {
    awk -v k="$2" -v key="$3" '$1 == k && $2 == key { print $3; f = 1 } END { if (!f) print 0 }' <<<"$1"
}

# Client-visible answers other than 200. 499 is nginx noting that wrk closed a connection
# with a request in flight when its time was up: at most one per connection, not a failure.
bad_answers() {
    awk -v conns="$2" '$1 == "status" && $2 != "200" && !($2 == "499" && $3 <= conns) { n += $3 }
        END { print n + 0 }' <<<"$1"
}
