#!/bin/sh
# check-layers.sh — fails on an #include that breaks the layering (make layers).
#
#   core   includes only daed/core/ headers
#   io     daed/core/ + daed/io/
#   train  daed/core/ + daed/io/ + daed/train/       (never serve)
#   serve  daed/core/ + daed/io/ + daed/serve/       (never train)
#   tools  any public header (src/tools/ are thin mains: no private header of a layer)
#   tests/, bench/, tests/fuzz/: free (they may reach a private header by its path,
#          "../src/serve/http.h"); not checked here, the compiler checks they resolve.
#
# A public header is include/daed/<layer>/X.h, included as "daed/<layer>/X.h"; it is named
# after its source src/<layer>/X.c (the few facades without one are listed in FACADES) and
# includes only public headers. A quoted include without daed/ in src/<layer>/ is a private
# header of that folder (src/serve/http.h) and must exist there. System headers (<...>) are
# free.
set -eu
cd "$(dirname "$0")/.."

# Public headers without a same-named source: serve.h is the daemon's face for its main
# (src/serve/server.c, log.c).
FACADES="include/daed/serve/serve.h"

allowed() {           # allowed <from-layer> <to-layer>
    case "$1" in
        core)  [ "$2" = core ] ;;
        io)    [ "$2" = core ] || [ "$2" = io ] ;;
        train) [ "$2" = core ] || [ "$2" = io ] || [ "$2" = train ] ;;
        serve) [ "$2" = core ] || [ "$2" = io ] || [ "$2" = serve ] ;;
        tools) true ;;
        *)     false ;;
    esac
}

check_file() {        # check_file <file> <its layer> <public: 1 or 0>
    f=$1; from=$2; public=$3
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r hit; do
        line=${hit%%:*}
        inc=$(printf '%s\n' "$hit" | sed 's/^[^"]*"\([^"]*\)".*/\1/')
        case "$inc" in
            daed/*/*.h)
                to=${inc#daed/}; to=${to%%/*}
                if [ ! -f "include/$inc" ]; then
                    echo "$f:$line: include \"$inc\": no such public header include/$inc"
                elif ! allowed "$from" "$to"; then
                    echo "$f:$line: $from includes $to header \"$inc\""
                fi ;;
            daed/*)
                echo "$f:$line: include \"$inc\": public headers are daed/<layer>/X.h" ;;
            *)
                if [ "$public" = 1 ] || [ "$from" = tools ]; then
                    echo "$f:$line: include \"$inc\": $f may include only public daed/ headers"
                elif [ ! -f "$(dirname "$f")/$inc" ]; then
                    echo "$f:$line: include \"$inc\" is not a header of $(dirname "$f")/"
                fi ;;
        esac
    done
}

check_public() {      # check_public <include/daed/...h>: its place, its name, its includes
    h=$1; rest=${h#include/daed/}
    case "$rest" in
        */*) ;;
        *) echo "$h: a public header belongs in include/daed/<layer>/"; return ;;
    esac
    l=${rest%%/*}
    case "$l" in
        core|io|train|serve) ;;
        *) echo "$h: include/daed/$l/ is not a layer (core, io, train, serve)"; return ;;
    esac
    name=$(basename "$h" .h)
    case " $FACADES " in *" $h "*) ;; *)
        [ -f "src/$l/$name.c" ] ||
            echo "$h: no src/$l/$name.c (name a public header after its source," \
                 "or list it in FACADES of $0)"
    esac
    check_file "$h" "$l" 1
}

out=$(
    for l in core io train serve tools; do
        for f in src/$l/*.c src/$l/*.h; do [ -f "$f" ] && check_file "$f" "$l" 0; done
    done
    find include -name '*.h' | sort | while IFS= read -r h; do check_public "$h"; done
)
if [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    echo "layers: $(printf '%s\n' "$out" | wc -l) problem(s) with the layering" >&2
    exit 1
fi
echo "layers: ok (core <- io <- train; core+io <- serve; tools free; public headers by layer)"
