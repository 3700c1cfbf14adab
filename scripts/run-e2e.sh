#!/usr/bin/env bash
# run-e2e.sh — runs end-to-end test scripts one after the other and counts them: a script
# passes with exit status 0, is skipped with 77 (tests/e2e/lib.bash: skip REASON; its last
# "SKIP: ..." line is the reason) and fails with anything else. Prints every skip with its
# reason and a summary line; exits 1 when any script failed (after running them all).
#   DAED_BUILD=build bash scripts/run-e2e.sh tests/e2e/a.sh tests/e2e/b.sh ...
set -uo pipefail
pass=0 skipped=0 failed=()
skips=() tails=()
log=$(mktemp /tmp/daed-run-e2e.XXXXXX)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
    echo "== $t"
    start=$(date +%s)
    bash "$t" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    secs=$(($(date +%s) - start))
    if [ "$rc" -eq 0 ]; then
        pass=$((pass + 1))
        echo "-- $t: passed (${secs} s)"
    elif [ "$rc" -eq 77 ]; then
        skipped=$((skipped + 1))
        reason=$(sed -n 's/^.*SKIP: //p' "$log" | tail -n 1)
        skips+=("$t: ${reason:-no reason given}")
        echo "-- $t: SKIPPED: ${reason:-no reason given}"
    else
        failed+=("$t (exit $rc)")
        tails+=("$(grep -E 'FAIL|[Ee]rror|die' "$log" | tail -n 10; echo '...'; tail -n 15 "$log")")
        echo "-- $t: FAILED (exit $rc, ${secs} s)"
    fi
done
for s in "${skips[@]}"; do echo "SKIP $s"; done
for i in "${!failed[@]}"; do
    echo "== why ${failed[$i]} failed (its FAIL/error lines, then its last lines):"
    echo "${tails[$i]}"
done
for f in "${failed[@]}"; do echo "FAILED $f"; done
echo "e2e: $pass passed, $skipped skipped, ${#failed[@]} failed (of $#)"
[ "${#failed[@]}" -eq 0 ]
