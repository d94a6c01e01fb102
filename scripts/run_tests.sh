#!/usr/bin/env bash
# run_tests.sh BUILD_DIR [NAME...] — run every test binary under BUILD_DIR/tests (cmocka) and
# every tests/**/*.sh script (given the imgsim binary), then print one closing line
# "N passed, N failed". NAMEs (paths under tests/, e.g. index/test_hnsw or cli/test_ann.sh)
# run only those tests (make check T=...).
set -uo pipefail
bdir=${1:-build/asan}
shift || true
only=("$@")
for n in "${only[@]}"; do   # a name that matches nothing is a mistake, not a pass
    [ -x "$bdir/tests/$n" ] || [ -f "tests/$n" ] || { echo "run_tests.sh: no test '$n' (built in $bdir/tests or a tests/ script)"; exit 2; }
done
wanted() {  # wanted NAME: run this test?
    [ ${#only[@]} -eq 0 ] && return 0
    local n; for n in "${only[@]}"; do [ "$n" = "$1" ] && return 0; done
    return 1
}
export IMGSIM_SHARED=${IMGSIM_SHARED:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
export IMGSIM_BIN=$(pwd)/$bdir/imgsim
export IMGSIM_TEST_OUT=${IMGSIM_TEST_OUT:-$(pwd)/build/test-out}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=suppressions=$(pwd)/scripts/lsan.supp:print_suppressions=0
export IMGSIM_DATA=${IMGSIM_DATA:-$(pwd)/build/data}
mkdir -p "$IMGSIM_TEST_OUT" "$IMGSIM_DATA"
# The tests read small deterministic subsets of the real collections: extract once.
[ -f "$IMGSIM_DATA/wang1k/labels.csv" ] || tar -xzf "$IMGSIM_SHARED/data/wang1k.tar.gz" -C "$IMGSIM_DATA"
pass=0; fail=0; failed=()
while IFS= read -r t; do
    name=${t#$bdir/tests/}
    wanted "$name" || continue
    log=$IMGSIM_TEST_OUT/${name//\//_}.log
    if "$t" >"$log" 2>&1; then
        n=$(grep -Eo '\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END{print s+0}')
        pass=$((pass + n)); echo "ok    $name ($n)"
    else
        n=$(grep -Eo '\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$4} END{print s+0}')
        [ "$n" -eq 0 ] && n=1
        p=$(grep -Eo '\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END{print s+0}')
        pass=$((pass + p)); fail=$((fail + n)); failed+=("$name"); echo "FAIL  $name"; tail -30 "$log"
    fi
done < <(find "$bdir/tests" -type f -executable | sort)
while IFS= read -r s; do
    name=${s#tests/}
    wanted "$name" || continue
    log=$IMGSIM_TEST_OUT/${name//\//_}.log
    if bash "$s" >"$log" 2>&1; then pass=$((pass + 1)); echo "ok    $name"
    else fail=$((fail + 1)); failed+=("$name"); echo "FAIL  $name"; tail -30 "$log"; fi
done < <(find tests -name '*.sh' | sort)
echo
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
