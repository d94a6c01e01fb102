#!/usr/bin/env bash
# quality_collections.sh — `make quality`, second part: the three labelled collections of
# ../shared/data indexed with imgsim (default model) and evaluated leave-one-out with
# `imgsim eval` for cosine, L2 and L1: P@10, mAP@10, R@10 and full mAP.
#   Wang-1k     labels.csv (path,label), 1,000 photos, 10 classes
#   geological  labels.csv (path,label), 29,998 28x28 rock images, 6 classes
#   Myntra      styles.csv, 44,072 product photos, label = articleType
# Checks that no valid image is lost (items == image files that exist), and prints a table set
# against the seed-style reference (ONNX Runtime + MobileNetV2-int8, exact cosine) measured
# on this machine: Wang-1k 0.961/0.950, geological 0.964/0.953, Myntra 0.717/0.655.
# Results: build/quality/collections.json. Environment: IMGSIM_SHARED, IMGSIM_MODEL_DIR,
# IMGSIM_QUALITY_SETS (default "wang1k geological myntra").
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${IMGSIM_SHARED:-$(pwd)/../shared}
export IMGSIM_MODEL_DIR=${IMGSIM_MODEL_DIR:-$(pwd)/build/models}
bin=build/release/imgsim
data=build/data; out=build/quality; mkdir -p "$data" "$out"
sets=${IMGSIM_QUALITY_SETS:-"wang1k geological myntra"}
model=${IMGSIM_MODEL:-$($bin model list | awk '$1=="*" && $2!="="{print $2}')}
$bin model install "$model" --from "$shared/models" > /dev/null
echo "== model: $model"
: > "$out/collections.jsonl"
for s in $sets; do
    [ -d "$data/$s" ] || tar -xzf "$shared/data/$s.tar.gz" -C "$data"
    db=$out/$s.db
    rm -rf "$db"    # a collection keeps the model it was built with: start afresh
    case $s in
    myntra) args=(--csv "$data/myntra/styles.csv" --path-format 'images/{id}.jpg' --id-column id --label-column articleType)
            files=$(find "$data/myntra/images" -name '*.jpg' | wc -l) ;;
    *)      args=(--csv "$data/$s/labels.csv" --path-column path --label-column label)
            files=$(tail -n +2 "$data/$s/labels.csv" | wc -l) ;;
    esac
    echo "== $s: index ($files images)"
    rc=0; $bin index --db "$db" --model "$model" "${args[@]}" --quiet 2> "$out/$s.index.log" || rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 3 ] || { tail -3 "$out/$s.index.log"; exit 1; }
    tail -1 "$out/$s.index.log"
    items=$($bin info --db "$db" | awk '/^items:/{print $2}')
    failed=$(grep -v ' sources: ' "$out/$s.index.log" | grep -c '^imgsim index: ' || true)
    echo "   $items items from $files image files ($failed rows reported)"
    for m in cosine l2 l1; do
        $bin eval --db "$db" --metric $m -k 10 --json > "$out/$s.$m.json"
        /usr/bin/python3 -c "
import json,sys; d=json.load(open('$out/$s.$m.json')); o=d['overall']
print(json.dumps({'set':'$s','model':'$model','metric':'$m','items':$items,'files':$files,'n':o['n'],'p10':o['p_at_k'],'map10':o['map_at_k'],'r10':o['r_at_k'],'map':o.get('map',0),'seconds':d['seconds']}))" | tee -a "$out/collections.jsonl"
    done
done
/usr/bin/python3 - "$out/collections.jsonl" <<'PY'
import json, sys
ref = {"wang1k": (0.961, 0.950), "geological": (0.964, 0.953), "myntra": (0.717, 0.655)}
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n%-11s %-7s %7s %7s %8s %7s %7s   %s" % ("collection", "metric", "items", "P@10", "mAP@10", "R@10", "mAP", "vs seed-style ORT ref (P@10 / mAP@10)"))
for r in rows:
    p, m = ref.get(r["set"], (None, None))
    cmp = "%+.3f / %+.3f" % (r["p10"] - p, r["map10"] - m) if p else ""
    print("%-11s %-7s %7d %7.4f %8.4f %7.4f %7.4f   %s" % (r["set"], r["metric"], r["items"], r["p10"], r["map10"], r["r10"], r["map"], cmp))
PY
