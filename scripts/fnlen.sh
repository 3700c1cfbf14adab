#!/bin/sh
# fnlen.sh — functions and files over the house limits in src/ (make fnlen, make layers).
#
# Function lengths come from Universal Ctags (the line: and end: fields of each C function),
# counted from the line with the name to the closing brace. Limits: FNLEN_MAX lines per
# function (default 100), FILE_MAX lines per file (default 900). Prints every offender,
# longest first, and exits 1 when there is one. FNLEN_DIRS limits the directories checked
# (default: every directory under src/).
set -eu
cd "$(dirname "$0")/.."
FNLEN_MAX=${FNLEN_MAX:-100}
FILE_MAX=${FILE_MAX:-900}
FNLEN_DIRS=${FNLEN_DIRS:-$(echo src/*)}

command -v ctags >/dev/null 2>&1 && ctags --version 2>/dev/null | grep -q 'Universal Ctags' || {
    echo "fnlen: needs Universal Ctags (apt-get install universal-ctags)" >&2; exit 2; }

files=$(for d in $FNLEN_DIRS; do for f in "$d"/*.c "$d"/*.h; do [ -f "$f" ] && echo "$f"; done; done; true)
fns=$(ctags --fields=+ne --c-kinds=f -o - $files |
      awk -F'\t' -v max="$FNLEN_MAX" '{
          s = ""; e = "";
          for (i = 4; i <= NF; i++) {
              if ($i ~ /^line:/) s = substr($i, 6);
              if ($i ~ /^end:/)  e = substr($i, 5);
          }
          if (s != "" && e != "" && e - s + 1 > max)
              printf "%5d  %s:%s  %s()\n", e - s + 1, $2, s, $1;
      }' | sort -rn)
big=$(wc -l $files | awk -v max="$FILE_MAX" '$2 != "total" && $1 > max { printf "%5d  %s\n", $1, $2 }' |
      sort -rn)
status=0
if [ -n "$fns" ]; then
    echo "fnlen: functions over $FNLEN_MAX lines:"; printf '%s\n' "$fns"; status=1
fi
if [ -n "$big" ]; then
    echo "fnlen: files over $FILE_MAX lines:"; printf '%s\n' "$big"; status=1
fi
[ $status -eq 0 ] && echo "fnlen: ok (no function over $FNLEN_MAX lines, no file over $FILE_MAX)"
exit $status
