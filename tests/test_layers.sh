#!/usr/bin/env bash
# test_layers.sh — the layering check (scripts/check_layers.py, rules in docs/ARCHITECTURE.md):
# the tree passes it, and a copy of the tree with one forbidden include added fails it, naming
# the file and line — for an upward include, a system header kept to one folder, a folder with
# no rule, and rules that form a cycle.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${IMGSIM_TEST_OUT:-$ROOT/build/test-out}/layers
CHECK=$ROOT/scripts/check_layers.py
rm -rf "$OUT"; mkdir -p "$OUT"
fails=0
check() { if "${@:2}"; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi; }

check "the tree follows its layers" "$CHECK" "$ROOT"

copy() {  # a fresh copy of src/ and docs/ to break
    rm -rf "$OUT/t"; mkdir -p "$OUT/t"
    cp -r "$ROOT/src" "$ROOT/docs" "$OUT/t/"
}
refused() {  # refused PATTERN: the check on the copy exits 1 and prints PATTERN
    local rc=0
    "$CHECK" "$OUT/t" > "$OUT/check.log" 2>&1 || rc=$?
    [ $rc -eq "${2:-1}" ] && grep -q -- "$1" "$OUT/check.log" || { cat "$OUT/check.log"; return 1; }
}

copy; sed -i '0,/#include "core\/error.h"/s//&\n#include "server\/server.h"/' "$OUT/t/src/index/exact.c"
grep -q 'server/server.h' "$OUT/t/src/index/exact.c" || { echo "FAIL could not plant the include"; exit 1; }
check "index/ including server/ is refused, by file:line" refused 'src/index/exact.c:[0-9]*: src/index may not include "server/server.h"'

copy; echo '#include "catalog/catalog.h"' >> "$OUT/t/src/core/error.c"
check "core/ including catalog/ is refused" refused 'src/core/error.c:[0-9]*: src/core may not include "catalog/catalog.h"'

copy; echo '#include <sqlite3.h>' >> "$OUT/t/src/eval/metrics.c"
check "SQL outside catalog/ (<sqlite3.h> in eval/) is refused" refused 'src/eval/metrics.c:[0-9]*: src/eval may not include <sqlite3.h>'

copy; mkdir -p "$OUT/t/src/newstage"; echo '/* x */' > "$OUT/t/src/newstage/x.c"
check "a folder without a rule is refused" refused 'folder src/newstage has no rule'

copy; sed -i 's/^core:.*/core: cli/' "$OUT/t/docs/ARCHITECTURE.md"
check "rules with a cycle are refused" refused 'the rules have a cycle' 2

[ $fails -eq 0 ] && echo "all layer checks passed"
[ $fails -eq 0 ]
