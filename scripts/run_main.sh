#!/usr/bin/env bash
# run_main.sh — the main job on the embedded default: install the default model from
# ../shared/models (or download it), classify the bundled test images, index the Wang-1k
# collection (1,000 labelled photos) into build/wang1k.db, build its neighbour table, answer
# a query by image and by item, report the collection's retrieval quality, then serve the
# web page and the HTTP API on it (http://127.0.0.1:8080/ unless IMGSIM_HOST / IMGSIM_PORT say
# otherwise; Ctrl-C stops). IMGSIM_COLLECTION=DIR indexes that folder instead of Wang-1k.
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
if [ -n "${IMGSIM_COLLECTION:-}" ]; then
    db=build/$(basename "$IMGSIM_COLLECTION").db
    echo "== index $IMGSIM_COLLECTION into $db (a re-run adds only what is new)"
    rc=0; $bin index --db "$db" "$IMGSIM_COLLECTION" || rc=$?
else
    db=build/wang1k.db
    echo "== index Wang-1k into $db (a re-run adds only what is new)"
    rc=0; $bin index --db "$db" --csv "$data/wang1k/labels.csv" --path-column path --label-column label || rc=$?
fi
[ $rc -eq 0 ] || [ $rc -eq 3 ]
$bin neighbours --db "$db" -k 10
if [ -z "${IMGSIM_COLLECTION:-}" ]; then
    echo "== the 5 photos most like images/305.jpg (a bus), by file"
    $bin query --db "$db" "$data/wang1k/images/305.jpg" -k 5
    echo "== ... and by item, from the neighbour table, only among 'buses'"
    $bin query --db "$db" --id images/305.jpg -k 5 --where label=buses
    echo "== leave-one-out quality of the collection"
    $bin eval --db "$db" -k 10 --no-full-map
fi
echo "== serving $db: open the address below in a browser (Ctrl-C stops)"
exec $bin serve --db "$db" --host "${IMGSIM_HOST:-127.0.0.1}" --port "${IMGSIM_PORT:-8080}"
