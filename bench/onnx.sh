#!/usr/bin/env bash
# bench/onnx.sh — imgsim against ONNX Runtime on ONNX models, measured in the same run.
#   Models: random-weight ResNet-50, VGG16, MobileNetV2, EfficientNet-B0 (the real
#   architectures, float32, from scripts/onnx_models.py) and the real int8 zoo model
#   ../shared/models/mobilenetv2-12-int8.onnx. For each: build/release/bench/embed (model only,
#   batch 1 and 16) and bench/ort/ort_embed.js (onnxruntime-node, batch 1 and 16), 2 threads,
#   back to back; prints images/s and the ratio imgsim / ORT.
# Usage: bench/onnx.sh [MODEL...]   (default: all; names as above or "int8")
#   BENCH_SECONDS (default 10) per measurement; BENCH_THREADS (default "2"; e.g. "1 2" for
#   both — one thread is the figure to trust when other jobs share the cores).
# Only same-run ratios mean anything on this machine (its speed varies up to 3x between runs).
# Output: one JSON line per measurement in build/bench/onnx.jsonl, then a table.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${IMGSIM_SHARED:-$(pwd)/../shared}
secs=${BENCH_SECONDS:-10}
threads_list=${BENCH_THREADS:-2}
PY=/usr/bin/python3
GEN=scripts/onnx_models.py
B=build/release/bench/embed
[ -x $B ] && [ -x build/release/imgsim ] || { echo "bench/onnx.sh: build first (make release $B)"; exit 1; }
data=build/data; mkdir -p "$data" build/bench
[ -f "$data/wang1k/labels.csv" ] || tar -xzf "$shared/data/wang1k.tar.gz" -C "$data"
if ! (cd bench/ort && node -e "require('onnxruntime-node')") > /dev/null 2>&1; then
    (cd bench/ort && npm ci --ignore-scripts --no-audit --no-fund > /dev/null 2>&1) \
        || { echo "bench/onnx.sh: onnxruntime-node unavailable (cd bench/ort && npm install --ignore-scripts)"; exit 1; }
fi

# The random-weight models, calibrated on 4 Wang-1k photos; regenerated only when the
# generator changes.
M=build/bench/onnx_models
mkdir -p "$M"
W=$data/wang1k/images
$PY $GEN inputs "$M/in" --imgsim build/release/imgsim "$W/5.jpg" "$W/305.jpg" "$W/705.jpg" "$W/905.jpg" > /dev/null
stamp=$( (sha256sum $GEN; cat "$M"/in/*.rgb | sha256sum) | sha256sum | cut -c1-16)
if [ "$(cat "$M/stamp" 2> /dev/null)" != "$stamp" ]; then
    $PY $GEN models "$M" --calib "$(paste -sd, "$M/in/inputs.txt")"
    echo "$stamp" > "$M/stamp"
fi

models=("$@")
[ ${#models[@]} -eq 0 ] && models=(resnet50 vgg16 mobilenetv2 efficientnet_b0 int8)
out=build/bench/onnx.jsonl; : > "$out"
failed=0
for threads in $threads_list; do
for name in "${models[@]}"; do
    if [ "$name" = int8 ]; then
        im=$shared/models/mobilenetv2-12-int8.onnx; om=$im
    else
        im=$M/$name.json; om=$M/$name.onnx
    fi
    [ -f "$om" ] || { echo "bench/onnx.sh: no model $name"; failed=1; continue; }
    echo "== $name, $threads thread(s)" >&2
    # imgsim: batch 1 then 16 (one process); ORT: batch 1, then 16
    if ! $B --model "$im" --threads "$threads" --seconds "$secs" \
            | sed "s/^{/{\"label\":\"$name\",/" | tee -a "$out"; then
        echo "bench/onnx.sh: imgsim could not run $name" >&2; failed=1
    fi
    for batch in 1 16; do
        node bench/ort/ort_embed.js --model "$om" --threads "$threads" --batch $batch --seconds "$secs" \
            | sed "s/^{/{\"label\":\"$name\",/" | tee -a "$out" || { echo "bench/onnx.sh: ORT failed on $name" >&2; failed=1; }
    done
done
done

$PY - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
res = {}
for r in rows:
    who = 'ort' if r.get('peer') == 'onnxruntime-node' else 'imgsim'
    res.setdefault((r['threads'], r['label']), {})[(who, r['batch'])] = r
print('\nONNX models, model only (images/s; ratio = imgsim / ONNX Runtime, same run)')
print('  %-16s %7s %5s %10s %10s %7s' % ('model', 'threads', 'batch', 'imgsim', 'ORT', 'ratio'))
for (threads, label), d in res.items():
    for b in (1, 16):
        i, o = d.get(('imgsim', b)), d.get(('ort', b))
        iv = i['images_per_s'] if i else None
        ov = o['images_per_s'] if o else None
        print('  %-16s %7d %5d %10s %10s %7s%s' % (label, threads, b, '%.1f' % iv if iv else '-', '%.1f' % ov if ov else '-',
              '%.2fx' % (iv / ov) if iv and ov else '-',
              '  (ORT: %s)' % o['batch_mode'] if o and o.get('batch_mode') == 'sequential' else ''))
PY
exit $failed
