#!/usr/bin/env bash
# quality.sh — `make quality`: Wang-1k leave-one-out retrieval quality of every model.
#
# For each model: install it into $IMGSIM_MODEL_DIR (default build/models) from
# $SHARED/models, embed all 1000 Wang-1k photos with build/release/imgsim embed, then
# scripts/eval_knn.py (exact cosine, k=10) -> P@10 and mAP@10 (definitions in eval_knn.py).
# Adds the "seed-style" reference row, ONNX Runtime + MobileNetV2-int8 (bench/ort/ort_embed.js
# --embed-images) when node and onnxruntime-node are available (skipped otherwise).
# Outputs in build/quality/: NAME.npy (+ .paths), NAME.json (eval_knn --json), NAME.log.
#
# Exit status non-zero if the default model (edgetpu_v1) fails or has
# P@10 < $IMGSIM_QUALITY_MIN_P10 (default 0.95). Other models failing are reported only.
#
# Environment: IMGSIM_SHARED (default ../shared beside the repo), IMGSIM_MODEL_DIR,
#   IMGSIM_QUALITY_MODELS (space-separated list, default: all four), IMGSIM_QUALITY_NO_ORT=1.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
shared=${IMGSIM_SHARED:-$root/../shared}
bin=$root/build/release/imgsim
export IMGSIM_MODEL_DIR=${IMGSIM_MODEL_DIR:-$root/build/models}
unset IMGSIM_MODEL
default_model=edgetpu_v1
models=${IMGSIM_QUALITY_MODELS:-"edgetpu_v1 mobilenet_edgetpu mobilenet_v2 mobilenet_v1_embedder mobilenet_v3_small_embedder"}
min_p10=${IMGSIM_QUALITY_MIN_P10:-0.95}
py=/usr/bin/python3; [ -x "$py" ] || py=python3
data=$root/build/data
out=$root/build/quality
list=$data/wang1k.list
labels=$data/wang1k/labels.csv

die() { echo "quality: $*" >&2; exit 2; }
[ -x "$bin" ] || die "$bin missing (make release)"
"$py" -c 'import numpy' 2>/dev/null || die "$py has no numpy (apt-get install python3-numpy)"

# --- data ---------------------------------------------------------------------------------
if [ ! -f "$labels" ]; then
    [ -f "$shared/data/wang1k.tar.gz" ] || die "$shared/data/wang1k.tar.gz missing"
    mkdir -p "$data"
    tmp=$(mktemp -d "$data/.wang1k.XXXXXX")
    tar -xzf "$shared/data/wang1k.tar.gz" -C "$tmp" || die "cannot extract wang1k"
    rm -rf "$data/wang1k"
    mv "$tmp/wang1k" "$data/wang1k" && rmdir "$tmp"
fi
# build/data/wang1k.list: every image, numeric order, paths relative to the repo root
tmp=$(mktemp "$list.XXXXXX")
(cd "$root" && ls build/data/wang1k/images/ | grep -i '\.jpe\?g$' | sort -V | sed 's|^|build/data/wang1k/images/|') > "$tmp"
mv "$tmp" "$list"
nimg=$(wc -l < "$list")
[ "$nimg" -gt 0 ] || die "no images in $data/wang1k/images"
mkdir -p "$out"
echo "== Wang-1k quality: $nimg images, leave-one-out exact cosine k=10, models in $IMGSIM_MODEL_DIR"

# --- imgsim models ----------------------------------------------------------------------------
status=0
rows=()          # "name|json-or-empty|seconds|note"
for m in $models; do
    log=$out/$m.log
    : > "$log"
    rm -f "$out/$m.json" "$out/$m.npy" "$out/$m.npy.paths"
    note=""
    if ! "$bin" model install "$m" --from "$shared/models" >> "$log" 2>&1; then
        note="install failed (see $log)"
    else
        t0=$(date +%s.%N)
        if ! "$bin" embed --model "$m" --list "$list" -o "$out/$m.npy" >> "$log" 2>&1; then
            note="embed failed (see $log)"
        fi
        t1=$(date +%s.%N)
    fi
    secs=""
    if [ -z "$note" ]; then
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
        nrow=$(wc -l < "$out/$m.npy.paths")
        [ "$nrow" -eq "$nimg" ] || note="$((nimg - nrow)) images skipped"
        if ! "$py" scripts/eval_knn.py "$out/$m.npy" "$out/$m.npy.paths" "$labels" \
                --k 10 --metric cosine --json > "$out/$m.json" 2>> "$log"; then
            note="eval failed (see $log)"
            rm -f "$out/$m.json"
        fi
    fi
    [ -n "$note" ] && echo "quality: $m: $note" >&2
    if [ -f "$out/$m.json" ]; then rows+=("$m|$out/$m.json|$secs|$note")
    else rows+=("$m||$secs|$note"); fi
done

# --- ONNX Runtime seed-style reference --------------------------------------------------------
ort_model=$shared/models/mobilenetv2-12-int8.onnx
if [ "${IMGSIM_QUALITY_NO_ORT:-0}" != 1 ] && command -v node > /dev/null && [ -f "$ort_model" ]; then
    if [ ! -d bench/ort/node_modules/onnxruntime-node ] && command -v npm > /dev/null; then
        echo "== npm install (bench/ort, --ignore-scripts)"
        (cd bench/ort && npm ci --ignore-scripts --no-audit --no-fund) > "$out/ort_npm.log" 2>&1 \
            || echo "quality: npm install failed (see $out/ort_npm.log)" >&2
    fi
    name="ort_mobilenetv2_int8"
    note=""
    rm -f "$out/$name.json" "$out/$name.npy" "$out/$name.npy.paths"
    t0=$(date +%s.%N)
    if node bench/ort/ort_embed.js --model "$ort_model" --threads 2 --embed-images "$list" \
            --out "$out/$name.npy" --cache-dir "$root/build/ort" > "$out/$name.log" 2>&1; then
        t1=$(date +%s.%N)
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')
        grep -q '"output":"global_average_pool"' "$out/$name.log" || note="logits, not pool features"
        "$py" scripts/eval_knn.py "$out/$name.npy" "$out/$name.npy.paths" "$labels" \
            --k 10 --metric cosine --json > "$out/$name.json" 2>> "$out/$name.log" || rm -f "$out/$name.json"
        if [ -f "$out/$name.json" ]; then rows+=("$name (ORT seed-style ref)|$out/$name.json|$secs|$note")
        else rows+=("$name (ORT seed-style ref)||$secs|eval failed (see $out/$name.log)"); fi
    else
        echo "quality: ORT reference skipped: ort_embed.js failed (see $out/$name.log)" >&2
    fi
else
    echo "quality: ORT reference skipped (no node, no $ort_model, or IMGSIM_QUALITY_NO_ORT=1)" >&2
fi

# --- table + verdict --------------------------------------------------------------------------
printf '%s\n' "${rows[@]}" | "$py" -c '
import json, sys
default, minp = sys.argv[1], float(sys.argv[2])
rows = [l.rstrip("\n").split("|", 3) for l in sys.stdin if l.strip()]
w = max([len("model")] + [len(r[0]) for r in rows])
print("%-*s %6s %6s %8s %8s  %s" % (w, "model", "n", "dim", "P@10", "mAP@10", "embed s / note"))
bad = 1
for name, js, secs, note in rows:
    if js:
        r = json.load(open(js))
        print("%-*s %6d %6d %8.4f %8.4f  %s" % (w, name, r["n"], r["dim"], r["p_at_k"], r["map_at_k"],
                                                 " ".join(x for x in (secs, note) if x)))
        if name == default:
            bad = 0 if r["p_at_k"] >= minp else 1
            if bad:
                print("FAIL: default model %s P@10 %.4f < %.2f" % (name, r["p_at_k"], minp))
    else:
        print("%-*s %6s %6s %8s %8s  %s" % (w, name, "-", "-", "-", "-", note or "failed"))
if default not in [r[0] for r in rows if r[1]]:
    print("FAIL: no result for the default model %s" % default)
sys.exit(bad)
' "$default_model" "$min_p10" || status=1
exit $status
