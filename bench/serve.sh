#!/usr/bin/env bash
# serve.sh — serving benchmark: daed against the PyTorch reference and the floor, with wrk.
#
#   bench/serve.sh [--quick] [--rounds 3] [--duration 10] [--warmup 2] [--conns "1 16 64 256"]
#                  [--servers "daed floor torch1 torch2"] [--endpoints "denoise score batch64"]
#                  [--variant NAME=ARGS]... [--models DIR] [--model NAME] [--wrk-threads 1]
#                  [--torch-threads 1] [--out DIR]
#
# Servers (each started fresh for its turn; the turns alternate A B C A B C over the rounds):
#   daed    build/daed --workers 0 (= CPUs) --per-ip-limit 0 --access-log 0 --model-mmap always
#           (mapped model files: what auto does in the container, whose models sit on a
#           read-only filesystem; --variant "daed-copy=--model-mmap never" measures copies)
#   daed*   any other name starting with "daed": daed plus the ARGS of --variant NAME=ARGS
#           (e.g. --variant "daed-poll=--epoll 0"); the first daed server is the one ratios use
#   floor   build/bench/floor: daed's HTTP, threads and codecs without a model
#   torch1  bench/ref/torch_server.py, FastAPI + uvicorn + PyTorch, 1 worker process
#   torch2  the same, 2 worker processes (both with --torch-threads intra-op threads, default 1)
# Endpoints: denoise (POST /v1/denoise, a 28x28 Fashion-MNIST test PNG -> PNG), score (POST
# /v1/score, the PNG -> JSON), batch64 (POST /v1/denoise, JSON of 64 base64 PNGs -> JSON).
# Per server turn: cold start (exec to the first 200 of a denoise request, bench/coldstart),
# then for each endpoint and concurrency a warm-up run and a measured wrk run, then the
# server's peak RSS (VmHWM, summed over its processes). Each run records the load average.
# Prints medians over the rounds: req/s (answers in 2xx/3xx only), p50 and p99 (of every
# answer), errors (non-2xx answers plus socket errors and timeouts; the breakdown is in
# runs.tsv), the server's CPU time per request (user + system over all its threads and
# processes: unlike req/s it hardly depends on the share of the cores the server got on a
# loaded machine), and daed/reference ratios. A run with no answer in its time shows 0 req/s.
# Models: models/*.safetensors if there are any, else (said in the output) a folder of
# test models: tests/fixtures/*.safetensors plus tests/helpers/mkmodel's calibrated 28x28 conv
# model "bench-conv", which is then the model measured.
# --quick: 1 round, 3 s runs, 1 s warm-up (a smoke test of the harness, not a measurement).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
B=${DAED_BUILD:-build}
PY=/usr/bin/python3

ROUNDS=3 DUR=10 WARM=2 CONNS="1 16 64 256" SERVERS="daed floor torch1 torch2"
ENDPOINTS="denoise score batch64" MODELS="" MODEL="" WRK_T=1 OUT="" TORCH_T=1
declare -A VARIANT=()
while [ $# -gt 0 ]; do
    case $1 in
    --quick) ROUNDS=1 DUR=3 WARM=1; shift ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --duration) DUR=$2; shift 2 ;;
    --warmup) WARM=$2; shift 2 ;;
    --conns) CONNS=$2; shift 2 ;;
    --servers) SERVERS=$2; shift 2 ;;
    --endpoints) ENDPOINTS=$2; shift 2 ;;
    --variant) VARIANT[${2%%=*}]=${2#*=}; shift 2 ;;
    --models) MODELS=$2; shift 2 ;;
    --model) MODEL=$2; shift 2 ;;
    --wrk-threads) WRK_T=$2; shift 2 ;;
    --torch-threads) TORCH_T=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "serve.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
    esac
done

# ---- tools
if ! command -v wrk >/dev/null; then
    echo "serve.sh: installing wrk (Debian package)" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get install -y -qq --no-install-recommends wrk >&2
fi
make -s BUILD="$B" "$B/daed" "$B/bench/floor" "$B/bench/coldstart" "$B/bench/serve_inputs" \
    "$B/helpers/mkmodel" >&2
have_torch=1
"$PY" -c 'import torch, fastapi, uvicorn, PIL, numpy' 2>/dev/null || have_torch=0

OUT=${OUT:-$(mktemp -d /tmp/daed-bench-serve.XXXXXX)}
mkdir -p "$OUT"
RAW="$OUT/runs.tsv"
printf 'round\tserver\tendpoint\tconns\tok_rps\tp50_ms\tp99_ms\terrors\tload1\tload5\tload15\tcpu_us\twrk\n' >"$RAW"
printf 'round\tserver\tcold_ms\thwm_kb\tscore\n' >"$OUT/server.tsv"
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -9 "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# ---- inputs and models
"$B/bench/serve_inputs" "$OUT" >"$OUT/source.txt"
MODEL_NOTE=""
if [ -z "$MODELS" ] && compgen -G "models/*.safetensors" >/dev/null; then
    MODELS=models
elif [ -z "$MODELS" ]; then
    MODELS="$OUT/models"
    mkdir -p "$MODELS"
    for f in tests/fixtures/*.safetensors; do case $f in *.io.safetensors) ;; *) cp "$f" "$MODELS/" ;; esac; done
    "$B/helpers/mkmodel" "$MODELS/bench-conv.safetensors" conv bench-conv
    MODEL=${MODEL:-bench-conv}
    MODEL_NOTE="NO SHIPPED MODELS (models/*.safetensors): measured with test models (tests/fixtures + tests/helpers/mkmodel conv 'bench-conv', 1321 parameters, random weights)"
fi
Q=${MODEL:+?model=$MODEL}

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 20000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

# server_cmd NAME PORT -> the command line, one word per line
server_cmd() {
    local name=$1 port=$2
    case $name in
    daed*)
        printf '%s\n' "$B/daed" --bind 127.0.0.1 --port "$port" --models "$MODELS" \
            --per-ip-limit 0 --access-log 0 --openapi "$ROOT/openapi.yaml" --model-mmap always
        # shellcheck disable=SC2086
        [ -n "${VARIANT[$name]:-}" ] && printf '%s\n' ${VARIANT[$name]}
        ;;
    # daed's defaults for what the floor shares with it (I/O thread epoll, connection memory)
    floor) printf '%s\n' "$B/bench/floor" --bind 127.0.0.1 --port "$port" --epoll 0 \
        --conn-memory 32768 ;;
    torch1) printf '%s\n' "$PY" bench/ref/torch_server.py --models "$MODELS" --port "$port" --workers 1 --threads "$TORCH_T" ;;
    torch2) printf '%s\n' "$PY" bench/ref/torch_server.py --models "$MODELS" --port "$port" --workers 2 --threads "$TORCH_T" ;;
    *) echo "serve.sh: unknown server $name" >&2; return 1 ;;
    esac
}

# tree_cpu PID -> CPU time in ns of the process's threads and its descendants' (schedstat:
# nanoseconds, where /proc/PID/stat counts 10 ms ticks, too coarse for a starved server)
tree_cpu() {
    local pid=$1 sum kids c
    sum=$(cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}')
    kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
    for c in $kids; do sum=$((sum + $(tree_cpu "$c"))); done
    echo "${sum:-0}"
}

# tree_hwm PID -> VmHWM in kB summed over the process and its descendants
tree_hwm() {
    local pid=$1 sum kids c
    sum=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    kids=$(cat /proc/"$pid"/task/*/children 2>/dev/null || true)
    for c in $kids; do sum=$((sum + $(tree_hwm "$c"))); done
    echo "${sum:-0}"
}

endpoint_args() { # ENDPOINT -> path, body, type
    case $1 in
    denoise) echo "/v1/denoise$Q $OUT/one.png image/png" ;;
    score) echo "/v1/score$Q $OUT/one.png image/png" ;;
    batch64) echo "/v1/denoise$Q $OUT/batch64.json application/json" ;;
    esac
}

# TERM, up to 10 s to exit, then KILL; forked workers (torch2) are killed either way: on TERM
# uvicorn finishes the requests it has queued (after a 256-connection batch run, minutes of
# CPU), which would otherwise run on into the next server's turn.
stop_server() {
    local pid=$1 kids
    kids=$(pgrep -P "$pid" | tr '\n' ' ' || true)
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    # shellcheck disable=SC2086
    kill -9 "$pid" $kids 2>/dev/null || true
}

# ---- header
{
    echo "daed serving benchmark — $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.1f GB", $2 / 1048576}' /proc/meminfo), $(uname -r)"
    echo "load at start: $(uptime)"
    echo "rounds $ROUNDS, $DUR s per run after $WARM s warm-up, wrk -t$WRK_T, concurrency: $CONNS"
    echo "input: Fashion-MNIST test image 0 (28x28 PNG, $(stat -c %s "$OUT/one.png") bytes) and images 0-63 (batch64) from $(cat "$OUT/source.txt")"
    echo "models: $MODELS${MODEL:+, measured model $MODEL}"
    [ -n "$MODEL_NOTE" ] && echo "$MODEL_NOTE"
    [ "$have_torch" = 1 ] || echo "torch servers skipped: $PY lacks torch/fastapi/uvicorn (apt-get install python3-torch python3-fastapi python3-uvicorn)"
} | tee "$OUT/header.txt"

RUN_SERVERS=""
for s in $SERVERS; do
    case $s in torch*) [ "$have_torch" = 1 ] || continue ;; esac
    RUN_SERVERS="$RUN_SERVERS $s"
done

# ---- rounds
for round in $(seq "$ROUNDS"); do
    for s in $RUN_SERVERS; do
        port=$(free_port)
        mapfile -t cmd < <(server_cmd "$s" "$port")
        echo "== round $round $s (port $port): $(uptime)" >&2
        if ! cold=$("$B/bench/coldstart" --port "$port" --path "/v1/denoise$Q" --body "$OUT/one.png" \
            --type image/png --pid-file "$OUT/pid" --timeout 300 -- "${cmd[@]}" 2>>"$OUT/$s.log" \
            >>"$OUT/$s.log"); then
            echo "serve.sh: $s did not start; see $OUT/$s.log" >&2
            tail -5 "$OUT/$s.log" >&2
            continue
        fi
        pid=$(cat "$OUT/pid")
        PIDS+=("$pid")
        cold=$(grep -o 'cold_start_ms=[0-9.]*' "$OUT/$s.log" | tail -1 | cut -d= -f2)
        # the same network: the score of the test image (not the floor, which has no model)
        sc=$(curl -s --max-time 60 --data-binary @"$OUT/one.png" "http://127.0.0.1:$port/v1/score$Q" |
            grep -o '"score":[-0-9.eE+]*' | head -1 | cut -d: -f2)
        for ep in $ENDPOINTS; do
            read -r path body type <<<"$(endpoint_args "$ep")"
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 -H "Content-Type: $type" \
                --data-binary @"$body" "http://127.0.0.1:$port$path")
            if [ "$code" != 200 ]; then
                echo "serve.sh: $s answers $ep with $code; not measured" >&2
                continue
            fi
            for c in $CONNS; do
                t=$((c < WRK_T ? c : WRK_T))
                url="http://127.0.0.1:$port$path"
                wrk -t"$t" -c"$c" -d"${WARM}s" --timeout 30s -s bench/wrk_post.lua "$url" -- "$body" "$type" >/dev/null
                # The warm-up's last requests are abandoned in the queues, not cancelled: one
                # request more waits behind them, so the measured run starts on an idle server.
                curl -s -o /dev/null --max-time 300 -H "Content-Type: $type" --data-binary @"$body" "$url" || true
                read -r l1 l5 l15 _ </proc/loadavg
                cpu0=$(tree_cpu "$pid")
                line=$(wrk -t"$t" -c"$c" -d"${DUR}s" --timeout 30s --latency -s bench/wrk_post.lua "$url" -- "$body" "$type" | grep '^WRK ')
                rps=$(sed 's/.*ok_rps=\([^ ]*\).*/\1/' <<<"$line")
                p50=$(sed 's/.*p50_ms=\([^ ]*\).*/\1/' <<<"$line")
                p99=$(sed 's/.*p99_ms=\([^ ]*\).*/\1/' <<<"$line")
                errs=$(sed 's/.* errors=\([^ ]*\).*/\1/' <<<"$line")
                nreq=$(sed 's/.* requests=\([^ ]*\).*/\1/' <<<"$line")
                # server CPU (all its threads and processes) per answered request: unlike
                # req/s, it does not depend on the share of the cores the server got
                cpu_us=$(awk -v a="$cpu0" -v b="$(tree_cpu "$pid")" -v n="$nreq" \
                    'BEGIN { printf "%.1f", (n > 0 ? (b - a) / 1e3 / n : 0) }')
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$s" "$ep" "$c" \
                    "$rps" "$p50" "$p99" "$errs" "$l1" "$l5" "$l15" "$cpu_us" "${line#WRK }" >>"$RAW"
                printf '  %-8s %-8s c=%-4s %9s req/s  p50 %8s ms  p99 %8s ms  errors %s  cpu %s us/req  load %s\n' \
                    "$s" "$ep" "$c" "$rps" "$p50" "$p99" "$errs" "$cpu_us" "$l1" >&2
            done
        done
        hwm=$(tree_hwm "$pid")
        stop_server "$pid"
        printf '%s\t%s\t%s\t%s\t%s\n' "$round" "$s" "$cold" "$hwm" "${sc:-}" >>"$OUT/server.tsv"
    done
done

# ---- summary: medians over the rounds
awk -F'\t' -v servers="$RUN_SERVERS" -v eps="$ENDPOINTS" -v conns="$CONNS" '
function median(key,    n, i, j, v, t) {
    n = split(vals[key], v, " ")
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
    if (n == 0) return ""
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function add(key, x) { vals[key] = (key in vals) ? vals[key] " " x : x }
FNR == 1 { file++; next }
file == 1 {
    k = $2 SUBSEP $3 SUBSEP $4
    add("rps" SUBSEP k, $5); add("p50" SUBSEP k, $6); add("p99" SUBSEP k, $7); add("err" SUBSEP k, $8); add("cpu" SUBSEP k, $12)
    if (!(("lmin" SUBSEP k) in vals) || $9 < vals["lmin" SUBSEP k]) vals["lmin" SUBSEP k] = $9
    if ($9 > vals["lmax" SUBSEP k]) vals["lmax" SUBSEP k] = $9
    seen[k] = 1
}
file == 2 { add("cold" SUBSEP $2, $3); add("hwm" SUBSEP $2, $4); if ($5 != "") score[$2] = $5 }
END {
    ns = split(servers, S, " "); ne = split(eps, E, " "); nc = split(conns, C, " ")
    ref = ""; for (i = 1; i <= ns; i++) if (S[i] ~ /^daed/ && ref == "") ref = S[i]
    printf "\n%-8s %-9s %5s %10s %9s %9s %7s %10s %11s\n", "endpoint", "server", "conns", "ok req/s", "p50 ms", "p99 ms", "errors", "cpu us/req", "load1 (min-max)"
    for (e = 1; e <= ne; e++) for (c = 1; c <= nc; c++) for (i = 1; i <= ns; i++) {
        k = S[i] SUBSEP E[e] SUBSEP C[c]; if (!(k in seen)) continue
        printf "%-8s %-9s %5s %10.1f %9.3f %9.3f %7s %10.1f %6s-%s\n", E[e], S[i], C[c], median("rps" SUBSEP k),
            median("p50" SUBSEP k), median("p99" SUBSEP k), median("err" SUBSEP k), median("cpu" SUBSEP k),
            vals["lmin" SUBSEP k], vals["lmax" SUBSEP k]
    }
    if (ref != "") {
        printf "\nratios %s / other (req/s; p50, p99 and server CPU per request as other / %s, so > 1 means %s is faster)\n", ref, ref, ref
        printf "%-8s %5s %-9s %8s %8s %8s %8s\n", "endpoint", "conns", "other", "req/s", "p50", "p99", "cpu/req"
        for (e = 1; e <= ne; e++) for (c = 1; c <= nc; c++) for (i = 1; i <= ns; i++) {
            if (S[i] == ref) continue
            a = ref SUBSEP E[e] SUBSEP C[c]; b = S[i] SUBSEP E[e] SUBSEP C[c]
            if (!(a in seen) || !(b in seen)) continue
            r = median("rps" SUBSEP b); p5 = median("p50" SUBSEP a); p9 = median("p99" SUBSEP a)
            x = (r > 0) ? median("rps" SUBSEP a) / r : 0
            y = (p5 > 0) ? median("p50" SUBSEP b) / p5 : 0
            z = (p9 > 0) ? median("p99" SUBSEP b) / p9 : 0
            u = median("cpu" SUBSEP a); u = (u > 0) ? median("cpu" SUBSEP b) / u : 0
            printf "%-8s %5s %-9s %8.2f %8.2f %8.2f %8.2f\n", E[e], C[c], S[i], x, y, z, u
        }
    }
    printf "\n%-9s %14s %14s %s\n", "server", "cold start ms", "peak RSS MB", "score of the test image (same network check); RSS: VmHWM summed over processes"
    for (i = 1; i <= ns; i++) {
        if (!(("cold" SUBSEP S[i]) in vals)) continue
        printf "%-9s %14.1f %14.1f %s\n", S[i], median("cold" SUBSEP S[i]), median("hwm" SUBSEP S[i]) / 1024,
            S[i] == "floor" ? "(no model: mean pixel)" : score[S[i]]
    }
}' "$RAW" "$OUT/server.tsv" | tee "$OUT/summary.txt"

# The servers must agree on the network: the same score (to 1e-5 relative) on every model server.
awk -F'\t' 'NR > 1 && $2 != "floor" && $5 != "" { if (ref == "") { ref = $5; who = $2 } else if ((($5 - ref) ^ 2) > (1e-5 * ref) ^ 2) { printf "MISMATCH: %s scores %s, %s scores %s\n", $2, $5, who, ref; bad = 1 } }
    END { if (!bad && ref != "") print "same network: every model server scores the test image " ref; exit bad }' \
    "$OUT/server.tsv" | tee -a "$OUT/summary.txt"
echo "load at end: $(uptime)" | tee -a "$OUT/summary.txt"
echo "raw runs: $RAW; logs: $OUT"
