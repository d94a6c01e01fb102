#!/usr/bin/env bash
# run_main.sh — the main job on the embedded default: install the default model from
# ../shared/models (or download it), classify the bundled test images, index the Wang-1k
# collection (1,000 labelled photos) into build/wang1k.db, build its neighbour table, answer
# a query by image and by item, and report the collection's retrieval quality.
# (Next: serve the web UI on it.)
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
db=build/wang1k.db
echo "== index Wang-1k into $db (a re-run adds only what is new)"
rc=0; $bin index --db "$db" --csv "$data/wang1k/labels.csv" --path-column path --label-column label || rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ]
$bin neighbours --db "$db" -k 10
echo "== the 5 photos most like images/305.jpg (a bus), by file"
$bin query --db "$db" "$data/wang1k/images/305.jpg" -k 5
echo "== ... and by item, from the neighbour table, only among 'buses'"
$bin query --db "$db" --id images/305.jpg -k 5 --where label=buses
echo "== leave-one-out quality of the collection"
$bin eval --db "$db" -k 10 --no-full-map
