#!/bin/sh
# check-layers.sh — fails on an #include that breaks the layering (make layers).
#
#   core   includes only core headers
#   io     core + io
#   train  core + io + train
#   serve  core + io + serve
#   tools  anything
#
# A public header include/daed/X.h belongs to the layer whose directory holds src/<layer>/X.c;
# the few headers without a same-named source are listed in EXTRA below. A header in neither
# place is an error (classify it here). A quoted include without daed/ is a private header of
# the same directory (src/serve/sbuf.h) and must exist there. System headers (<...>) are free.
set -eu
cd "$(dirname "$0")/.."

EXTRA="serve:serve train:train"

layer_of_header() {   # daed/X.h -> layer name, or nothing
    name=$(basename "$1" .h)
    for l in core io train serve; do
        [ -f "src/$l/$name.c" ] && { echo "$l"; return; }
    done
    for e in $EXTRA; do
        [ "${e%%:*}" = "$name" ] && { echo "${e#*:}"; return; }
    done
}

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

bad=0
check_file() {        # check_file <file> <its layer>
    f=$1; from=$2
    grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | while IFS= read -r hit; do
        line=${hit%%:*}
        inc=$(printf '%s\n' "$hit" | sed 's/^[^"]*"\([^"]*\)".*/\1/')
        case "$inc" in
            daed/*)
                to=$(layer_of_header "$inc")
                if [ -z "$to" ]; then
                    echo "$f:$line: include \"$inc\": header of no known layer" \
                         "(add src/<layer>/$(basename "$inc" .h).c or list it in $0)"
                elif ! allowed "$from" "$to"; then
                    echo "$f:$line: $from includes $to header \"$inc\""
                fi ;;
            *)
                if [ ! -f "$(dirname "$f")/$inc" ]; then
                    echo "$f:$line: include \"$inc\" is not a header of $(dirname "$f")/"
                fi ;;
        esac
    done
}

out=$(
    for l in core io train serve tools; do
        for f in src/$l/*.c src/$l/*.h; do [ -f "$f" ] && check_file "$f" "$l"; done
    done
    for h in include/daed/*.h; do
        l=$(layer_of_header "daed/$(basename "$h")")
        if [ -z "$l" ]; then echo "$h: header of no known layer (list it in $0)"; continue; fi
        check_file "$h" "$l"
    done
)
if [ -n "$out" ]; then
    printf '%s\n' "$out" >&2
    echo "layers: $(printf '%s\n' "$out" | wc -l) include(s) break the layering" >&2
    exit 1
fi
echo "layers: ok (core <- io <- train; core+io <- serve; tools free)"
