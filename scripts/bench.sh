#!/usr/bin/env bash
# bench.sh — speed of the embedding engine against ONNX Runtime, measured in the same run.
#   model only: imgsim running mobilenet_v2_1.0_224_quant.tflite vs onnxruntime-node running
#   mobilenetv2-12-int8.onnx (same architecture, same precision), 2 threads, batch 1 and 16;
#   whole pipeline (decode + resize + infer) on Myntra and Wang-1k images, with a breakdown;
#   then bench/onnx.sh (ONNX models against ONNX Runtime).
# Only same-run ratios mean anything on this machine (its speed varies up to 3x between runs).
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${IMGSIM_SHARED:-$(pwd)/../shared}
secs=${BENCH_SECONDS:-10}
data=build/data; mkdir -p "$data" build/bench
[ -f "$data/wang1k/labels.csv" ] || tar -xzf "$shared/data/wang1k.tar.gz" -C "$data"
[ -f "$data/myntra/styles.csv" ] || tar -xzf "$shared/data/myntra.tar.gz" -C "$data"
find "$data/wang1k/images" -name '*.jpg' | sort > build/bench/wang1k.list
find "$data/myntra/images" -name '*.jpg' | sort | awk 'NR <= 3000' > build/bench/myntra3k.list
if [ ! -d bench/ort/node_modules/onnxruntime-node ]; then
    (cd bench/ort && npm ci --ignore-scripts --no-audit --no-fund >/dev/null 2>&1) || echo "bench: onnxruntime-node unavailable"
fi
b=build/release/bench/embed
export IMGSIM_MODEL_DIR=${IMGSIM_MODEL_DIR:-$(pwd)/build/models}
build/release/imgsim model install edgetpu_v1 --from "$shared/models" > /dev/null
v2=$shared/models/mobilenet_v2_1.0_224_quant.tflite
onnx=$shared/models/mobilenetv2-12-int8.onnx
out=build/bench/embed.jsonl; : > "$out"
for batch in 1 16; do
    node bench/ort/ort_embed.js --model "$onnx" --threads 2 --batch $batch --seconds "$secs" | tee -a "$out" || true
done
$b --model "$v2" --threads 2 --seconds "$secs" | tee -a "$out"
$b --model "$v2" --threads 2 --seconds "$secs" --precision fp32 | tee -a "$out"
for m in mobilenet_edgetpu_224_1.0_uint8 mobilenet_v1_1.0_224_quant_embedding_extractor mobilenet_v3_small_075_224_embedder; do
    $b --model "$shared/models/$m.tflite" --threads 2 --seconds "$secs" | tee -a "$out"
    case $m in *uint8|*quant*) $b --model "$shared/models/$m.tflite" --threads 2 --seconds "$secs" --precision fp32 | tee -a "$out";; esac
done
$b --model edgetpu_v1 --threads 2 --seconds "$secs" | tee -a "$out"
for set in myntra3k wang1k; do
    $b --model edgetpu_v1 --threads 2 --list build/bench/$set.list --set $set | tee -a "$out"
    $b --model "$v2" --threads 2 --list build/bench/$set.list --set $set | tee -a "$out"
    $b --model "$shared/models/mobilenet_edgetpu_224_1.0_uint8.tflite" --threads 2 --list build/bench/$set.list --set $set | tee -a "$out"
done
/usr/bin/python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
ort = {r['batch']: r['images_per_s'] for r in rows if r.get('peer') == 'onnxruntime-node'}
print('\nmodel-only, 2 threads (images/s; ratio = imgsim / ONNX Runtime, same run)')
for r in rows:
    if r.get('mode') == 'model':
        peer = ort.get(r['batch'])
        ratio = ' %.2fx ORT MobileNetV2-int8' % (r['images_per_s'] / peer) if peer and r['model'] == 'mobilenet_v2' else ''
        print('  %-28s %-6s batch %2d: %7.1f%s' % (r['model'], r['precision'], r['batch'], r['images_per_s'], ratio))
for b, v in sorted(ort.items()):
    print('  %-28s %-6s batch %2d: %7.1f' % ('onnxruntime mobilenetv2-int8', 'int8', b, v))
print('\nwhole pipeline (decode + resize + infer, overlapped), 2 threads')
for r in rows:
    if r.get('mode') == 'pipeline':
        print('  %-9s %-18s %7.1f images/s  (decode+resize %.2f ms/img on 1 thread, infer %.2f ms/img)'
              % (r['set'], r['model'], r['images_per_s'], r['decode_resize_ms_per_image_1thread'], r['infer_ms_per_image']))
PY

# ONNX models (random-weight ResNet-50/VGG16/MobileNetV2/EfficientNet-B0, the int8 zoo
# MobileNetV2) against ONNX Runtime, same run: docs/ONNX.md.
bench/onnx.sh || echo "bench: the ONNX comparison (bench/onnx.sh) did not complete"
