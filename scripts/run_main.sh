#!/usr/bin/env bash
# run_main.sh — the main job on the embedded default: install the default model from
# ../shared/models (or download it), then classify the bundled test images and embed a
# sample of Wang-1k photos. (Later: index a sample collection and serve the web UI.)
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${IMGSIM_SHARED:-$(pwd)/../shared}
bin=build/release/imgsim
export IMGSIM_MODEL_DIR=${IMGSIM_MODEL_DIR:-$(pwd)/build/models}
model=$($bin model list | awk '$1=="*" && $2!="="{print $2}')
if [ -d "$shared/models" ]; then $bin model install "$model" --from "$shared/models"
else $bin model install "$model"; fi
echo "== classify the bundled test images"
$bin classify --top 3 --raw 224x224 "$shared"/models/testdata/*.rgb
data=build/data
[ -f "$data/wang1k/labels.csv" ] || { mkdir -p "$data"; tar -xzf "$shared/data/wang1k.tar.gz" -C "$data"; }
echo "== embed 100 Wang-1k photos -> build/sample.npy"
files=("$data"/wang1k/images/*.jpg)
printf '%s\n' "${files[@]:0:100}" > build/sample.list
$bin embed --list build/sample.list -o build/sample.npy
