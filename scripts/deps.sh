#!/usr/bin/env bash
# deps.sh TIER... — install the Debian bookworm packages a tier needs (only the missing ones),
# through apt-get, as root or with sudo. This is the one list of the project's system packages.
#   run    build the library and the imgsim binary, run the main job (make run)
#   test   run + what the test suite needs: cmocka, numpy/onnx (generated models), curl,
#          chromium + Node.js/npm (browser test, ONNX Runtime cross-check)   (make test)
#   bench  run + the named peers: hnswlib, Node.js/npm (ONNX Runtime), numpy/onnx (generated
#          models), wrk, curl                                                 (make bench*)
#   fuzz   run + clang with its sanitizer runtimes, vips CLI for seeds        (make fuzz)
#   all    every tier
# Node.js is Debian's own (bookworm: 18.x); the npm packages are pinned by the committed lock
# files (tests/web, bench/ort) to versions that run on it.
set -euo pipefail
run=(build-essential pkg-config python3 libvips-dev libxnnpack-dev libpthreadpool-dev
     libmicrohttpd-dev libjansson-dev libopenblas-dev liblapacke-dev libcurl4-openssl-dev
     libsqlite3-dev)
test=(libcmocka-dev python3-numpy python3-onnx curl chromium nodejs npm)
bench=(python3-numpy python3-onnx python3-hnswlib curl wrk nodejs npm)
fuzz=(clang libclang-rt-14-dev libvips-tools)
[ $# -gt 0 ] || set -- run
want=("${run[@]}")
for tier in "$@"; do
    case $tier in
    run) ;;
    test) want+=("${test[@]}") ;;
    bench) want+=("${bench[@]}") ;;
    fuzz) want+=("${fuzz[@]}") ;;
    all) want+=("${test[@]}" "${bench[@]}" "${fuzz[@]}") ;;
    *) echo "deps.sh: unknown tier '$tier' (run, test, bench, fuzz, all)" >&2; exit 2 ;;
    esac
done
missing=()
for p in $(printf '%s\n' "${want[@]}" | sort -u); do
    case $p in  # Node.js and npm: any install that provides the commands will do
    nodejs) command -v node > /dev/null && continue ;;
    npm) command -v npm > /dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}"
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
