#!/usr/bin/env bash
# failover.sh — three real daed processes behind nginx running docker/nginx.conf (its
# upstream and retry rules verbatim, on loopback ports). Under POST load through nginx:
#   1. SIGKILL replica 2 mid-load: no client request fails, replicas 1 and 3 keep serving,
#      nginx passes the requests that hit the dead replica on to a live one;
#   2. restart replica 2 on its port: it rejoins and serves again;
#   3. SIGTERM replica 3 mid-load: it drains and exits 0, no client request fails.
# Needs $DAED_BUILD/daed (skips only when that is not built); installs nginx and wrk if
# missing. Every process it starts is stopped on exit.
set -uo pipefail
DEPLOY_NAME=deploy/failover
. "$(dirname "$0")/lib.sh"

CONNS=6
require_daed
require_tools
prepare_inputs
for n in 1 2 3; do start_daed $n; done
start_nginx 1 2 3
say "daed on ${DAED_PORT[1]} ${DAED_PORT[2]} ${DAED_PORT[3]}, nginx on $NGINX_PORT ($DAED)"
A1=127.0.0.1:${DAED_PORT[1]} A2=127.0.0.1:${DAED_PORT[2]} A3=127.0.0.1:${DAED_PORT[3]}

# One request first: the whole path works.
code=$(curl -s -o "$T/out.png" -w '%{http_code}' --max-time 30 --data-binary @"$T/in.png" \
    -H 'Content-Type: image/png' "http://127.0.0.1:$NGINX_PORT/v1/denoise")
[ "$code" = 200 ] || die "POST /v1/denoise through nginx: HTTP $code"
[ "$(head -c 8 "$T/out.png" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] ||
    die "POST /v1/denoise through nginx: the answer is not a PNG"

fails=0
check() { # check CONDITION-STATUS MESSAGE
    if [ "$1" -eq 0 ]; then say "ok   $2"; else say "FAIL $2"; fails=$((fails + 1)); fi
}

# ---- 0. a job lives in one replica: its status and answer are found through nginx
# whichever replica round robin picks (nginx asks the others on 404)
loc=$(curl -s -D - -o /dev/null --max-time 30 -H 'Prefer: respond-async' --data-binary @"$T/in.png" \
    -H 'Content-Type: image/png' "http://127.0.0.1:$NGINX_PORT/v1/denoise" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
found=0
for _ in 1 2 3 4 5 6; do
    for _ in $(seq 100); do # until done (a small image: well under a second)
        st=$(curl -s --max-time 10 "http://127.0.0.1:$NGINX_PORT$loc")
        case "$st" in *'"status":"done"'*) break ;; esac
        sleep 0.1
    done
    code=$(curl -s -o "$T/job.png" -w '%{http_code}' --max-time 10 "http://127.0.0.1:$NGINX_PORT$loc/result")
    [ "$code" = 200 ] && cmp -s "$T/job.png" "$T/out.png" && found=$((found + 1))
done
check $((found != 6)) "a job's answer found through nginx $found of 6 times (job $loc)"
[ "$found" = 6 ] || say "last status of the job: ${st:-none}; result HTTP $code"

# ---- 1. kill a replica mid-load
l0=$(log_lines)
start_load kill 10 $CONNS
sleep 3
l1=$(log_lines)
kill -KILL "${DAED_PID[2]}"
{ wait "${DAED_PID[2]}"; } 2>/dev/null # (no "Killed" notice)
unset 'DAED_PID[2]'
wait_load kill
l2=$(log_lines)
before=$(log_stats "$l0" "$l1")
after=$(log_stats "$l1" "$l2")
all=$(log_stats "$l0" "$l2")
say "phase kill: $WRK_LINE"
check $((WRK_ERRORS != 0 || WRK_REQUESTS == 0)) \
    "SIGKILL mid-load: $WRK_ERRORS failed of $WRK_REQUESTS client requests"
bad=$(bad_answers "$all" $CONNS)
check $((bad != 0)) "SIGKILL mid-load: nginx answered $bad requests with other than 200"
for a in $A1 $A2 $A3; do
    c=$(stat_of "$before" served "$a")
    check $((c == 0)) "before the kill, replica $a served $c requests"
done
for a in $A1 $A3; do
    c=$(stat_of "$after" served "$a")
    check $((c == 0)) "after the kill, live replica $a served $c requests"
done
retried=$(awk '$1 == "retried" { print $2 }' <<<"$after")
missed2=$(stat_of "$after" missed "$A2")
check $((retried == 0 || missed2 == 0)) \
    "after the kill, $missed2 attempts on the dead replica failed; nginx passed $retried requests on"

# ---- 2. restart it: it rejoins
start_daed 2 "${DAED_PORT[2]}"
sleep 3 # nginx's fail_timeout (2 s) must pass before it probes the replica again
l3=$(log_lines)
start_load rejoin 6 $CONNS
wait_load rejoin
l4=$(log_lines)
rejoin=$(log_stats "$l3" "$l4")
say "phase rejoin: $WRK_LINE"
check $((WRK_ERRORS != 0 || WRK_REQUESTS == 0)) \
    "after the restart: $WRK_ERRORS failed of $WRK_REQUESTS client requests"
bad=$(bad_answers "$rejoin" $CONNS)
check $((bad != 0)) "after the restart: nginx answered $bad requests with other than 200"
for a in $A1 $A2 $A3; do
    c=$(stat_of "$rejoin" served "$a")
    check $((c == 0)) "after the restart, replica $a served $c requests"
done

# ---- 3. drain a replica mid-load (SIGTERM, as docker stop and Kubernetes do)
l5=$(log_lines)
start_load drain 10 $CONNS
sleep 3
l6=$(log_lines)
kill -TERM "${DAED_PID[3]}"
wait "${DAED_PID[3]}"
drain_rc=$?
unset 'DAED_PID[3]'
wait_load drain
l7=$(log_lines)
after=$(log_stats "$l6" "$l7")
all=$(log_stats "$l5" "$l7")
drain_retried=$(awk '$1 == "retried" { print $2 }' <<<"$after")
say "phase drain: $WRK_LINE"
check $drain_rc "SIGTERM mid-load: the replica drained and exited with status $drain_rc"
check $((WRK_ERRORS != 0 || WRK_REQUESTS == 0)) \
    "SIGTERM mid-load: $WRK_ERRORS failed of $WRK_REQUESTS client requests"
bad=$(bad_answers "$all" $CONNS)
check $((bad != 0)) "SIGTERM mid-load: nginx answered $bad requests with other than 200"
for a in $A1 $A2; do
    c=$(stat_of "$after" served "$a")
    check $((c == 0)) "after the drain, live replica $a served $c requests"
done

say "passed on to another replica by nginx: $retried after the kill, $drain_retried during" \
    "the drain"
if [ $fails -ne 0 ]; then
    die "$fails check(s) failed"
fi
DEPLOY_OK=1
say "all checks passed"
