#!/usr/bin/env bash
# serve_auth.sh — with an API key, every route of openapi.yaml except the health ones
# answers 401 without the key and with each of a set of wrong ones (near misses: a prefix,
# one byte more, another case, another scheme), and not 401 with the right one; health
# routes and the browser page's files (/, /docs, /web/...) never ask. The key (given by environment, so not in the process's argv) never
# appears in the log, in an answer, or in /metrics. (The comparison itself runs in time
# independent of where the keys differ: dae_http_bearer_ok, unit-tested in check_serve_http.)
source "$(dirname "$0")/lib.bash"

make_models
"$B/helpers/mkpng" "$T/g28.png" 28 28 1
KEY='Kx9-7f3e2d1c0b'
DAED_API_KEY="$KEY" start_daed auth --models "$T/models" --workers 1 --access-log 1 \
    --openapi "$ROOT/openapi.yaml"
if tr '\0' ' ' <"/proc/$PID/cmdline" | grep -qF "$KEY"; then fail "key in argv"; else
    ok "key not in the command line"; fi

# The routes and methods of the API description (a route added there is covered here).
mapfile -t ROUTES < <(awk '/^paths:/{p=1;next} p&&/^[a-z]/{p=0}
    p&&/^  \/[^ ]*:$/{path=$1; sub(/:$/,"",path)}
    p&&/^    (get|post|put|delete|patch):/{m=toupper($1); sub(/:$/,"",m); print m, path}' openapi.yaml)
[ "${#ROUTES[@]}" -ge 20 ] && ok "${#ROUTES[@]} routes in openapi.yaml" || fail "only ${#ROUTES[@]} routes read"

WRONG=("" "Bearer" "Bearer " "Bearer ${KEY%?}" "Bearer ${KEY}x" "Bearer ${KEY^^}"
    "Bearer  $KEY" "$KEY" "Basic $(printf '%s' ":$KEY" | base64)" "Token $KEY"
    "Bearer x${KEY:1}" "Bearer ${KEY:0:7}")
# code METHOD PATH [AUTH]: prints the status
code() {
    local m=$1 p=$2 a=${3-}
    local args=(-sS -o "$T/ans" -w '%{http_code}' --max-time 60 -X "$m" "$URL$p")
    [ "$m" = POST ] && args+=(--data-binary @"$T/g28.png" -H 'Content-Type: image/png')
    [ $# -ge 3 ] && args+=(-H "Authorization: $a")
    curl "${args[@]}" 2>/dev/null || echo 000
    cat "$T/ans" >>"$T/answers"
}
n_checked=0
for r in "${ROUTES[@]}"; do
    m=${r%% *} p=${r#* }
    p=${p//\{name\}/mlp}
    p=${p//\{path\}/app.js}
    # public: health, and the browser page's files (a browser cannot send the key with a
    # page load; the API requests the page makes carry it)
    case "$p" in /healthz | /readyz | /v2/health/* | / | /docs | /web/*)
        c=$(code "$m" "$p")
        [ "$c" != 401 ] && ok "$m $p is public ($c)" || fail "$m $p asks for a key"
        continue ;;
    esac
    c=$(code "$m" "$p")
    [ "$c" = 401 ] || fail "$m $p without a key: $c"
    for w in "${WRONG[@]}"; do
        c=$(code "$m" "$p" "$w")
        [ "$c" = 401 ] || fail "$m $p with Authorization '$w': $c"
        n_checked=$((n_checked + 1))
    done
    c=$(code "$m" "$p" "Bearer $KEY")
    case "$c" in 401 | 000 | 5??) fail "$m $p with the key: $c" ;; *) ok "$m $p: 401 without or with 12 wrong keys, $c with it" ;; esac
    c=$(code "$m" "$p" "bearer $KEY")
    [ "$c" != 401 ] || fail "$m $p: the scheme name is case-insensitive (RFC 7235)"
done
echo "wrong-key requests checked: $n_checked"
req GET /metrics -H "Authorization: Bearer $KEY"; expect 200 "metrics with the key"
grep -qF "$KEY" "$T/body" && fail "key in /metrics" || ok "key not in /metrics"
grep -qF "$KEY" "$T/answers" && fail "key echoed in an answer" || ok "key never echoed in an answer"
kill -HUP "$PID"; sleep 0.5
stop_daed
[ "$STOP_RC" = 0 ] && ok "clean exit" || fail "exit $STOP_RC"
grep -c ' 401 ' "$LOG" | xargs -I{} echo "401 lines in the access log: {}"
grep -qF "$KEY" "$LOG" && fail "the key appears in the log" || ok "key never in the log ($(wc -l <"$LOG") lines)"
finish
