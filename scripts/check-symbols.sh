#!/bin/sh
# check-symbols.sh — every symbol libdaed.a exports starts with dae_ (make symbols; make
# layers prints the offenders without failing).
#
# Reads the library given as $1 (default build/libdaed.a; build it first) with nm: every
# defined global symbol (functions, data) must be dae_* or DAE_*; a function private to its
# folder is dae_<tag>_ (dae_mf_json_text), one used in a single file is static. Prints each
# offender as "object: symbol" and exits 1 when there is one (2 without nm or the library).
set -eu
cd "$(dirname "$0")/.."
LIB=${1:-build/libdaed.a}
command -v nm >/dev/null 2>&1 || { echo "symbols: needs nm (binutils)" >&2; exit 2; }
[ -f "$LIB" ] || { echo "symbols: no $LIB (run make first)" >&2; exit 2; }

bad=$(nm -g --defined-only "$LIB" |
      awk '/:$/ { obj = substr($0, 1, length($0) - 1); next }
           NF == 3 && $3 !~ /^(dae_|DAE_)/ { printf "  %s: %s\n", obj, $3 }')
if [ -n "$bad" ]; then
    printf 'symbols: exported by %s without dae_:\n%s\n' "$LIB" "$bad"
    echo "symbols: $(printf '%s\n' "$bad" | wc -l) symbol(s) without the dae_ prefix"
    exit 1
fi
echo "symbols: ok (every symbol $LIB exports starts with dae_)"
