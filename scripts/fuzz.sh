#!/usr/bin/env bash
# fuzz.sh [SECONDS] — build the libFuzzer targets in fuzz/ with clang (ASan + UBSan) and run
# each for SECONDS (default 60; the release check uses 600). Seeds: the real models for the
# TFLite reader, small ONNX models cut from the int8 zoo model (fuzz/onnx_seeds.py), generated images for the decoder. Findings land in build/fuzz/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-${FUZZ_SECONDS:-60}}
shared=${IMGSIM_SHARED:-$(pwd)/../shared}
out=build/fuzz; mkdir -p "$out"
pkgs=${IMGSIM_PKGS:?run through make fuzz (the Makefile names the pkg-config packages)}
flags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc $(pkg-config --cflags $pkgs)"
libsrc=$(find src -name '*.c' ! -path 'src/cli/*' ! -path 'src/server/*' | sort)
libs="$(pkg-config --libs $pkgs) -lXNNPACK -lpthreadpool -lm -lpthread"
for t in ${FUZZ_TARGETS:-fuzz/fuzz_*.c}; do
    name=$(basename "$t" .c)
    mkdir -p "$out/bin"
    clang $flags "$t" $libsrc -o "$out/bin/$name" $libs
    corpus="$out/$name/corpus"; mkdir -p "$corpus"
    case $name in
    fuzz_tflite) cp "$shared"/models/*.tflite "$corpus"/ 2>/dev/null || true ;;
    fuzz_hnsw_open) build/release/bench/ann seeds "$corpus" >/dev/null 2>&1 || true ;;
    fuzz_onnx) /usr/bin/python3 fuzz/onnx_seeds.py "$shared/models/mobilenetv2-12-int8.onnx" "$corpus" || true ;;
    fuzz_decode) # a few small real JPEGs, and PNG/GIF/WebP/TIFF versions of one of them
        data=${IMGSIM_DATA:-build/data}
        [ -f "$data/wang1k/labels.csv" ] || { mkdir -p "$data"; tar -xzf "$shared/data/wang1k.tar.gz" -C "$data"; }
        for i in 0 150 420 777; do cp "$data/wang1k/images/$i.jpg" "$corpus/"; done
        for ext in png gif webp tif; do
            vips thumbnail "$data/wang1k/images/150.jpg" "$corpus/seed.$ext" 48 >/dev/null 2>&1 || true
        done ;;
    esac
    echo "fuzz: $name for ${secs}s"
    (cd "$out/$name" && ASAN_OPTIONS=detect_leaks=1 ../bin/$name -max_total_time="$secs" -rss_limit_mb=4096 \
        -max_len=$((8 << 20)) -print_final_stats=1 corpus) 2>&1 | tail -n 12
done
