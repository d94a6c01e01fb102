#!/usr/bin/env bash
# test_onnx_equiv.sh — imgsim runs ONNX models as ONNX Runtime does (run by scripts/run_tests.sh).
#
# 1. Random-weight ResNet-50, VGG16, MobileNetV2 and EfficientNet-B0 with the real
#    architectures, exported the way PyTorch exports them (scripts/onnx_models.py), on 4 real
#    Wang-1k photos (shorter side 256 + centre crop 224 by `imgsim prep`): imgsim and ONNX
#    Runtime get the same raw 224x224 RGB bytes and each applies the ImageNet mean/std; the
#    pooled embedding (the input of the final Gemm) must agree to a max relative error
#    max|a-b| / max|b| <= 1e-3 per image. MobileNetV2 is also written with external data
#    (initializers in a side file) and must give the same vectors, and with an NHWC input
#    followed by a Transpose (tf2onnx's way), checked against ORT fed NHWC.
# 2. The real int8 zoo model ../shared/models/mobilenetv2-12-int8.onnx on 20 Wang-1k photos
#    (2 per class): cosine between imgsim's 1280-d pooled embedding and ORT's >= 0.995 for
#    every photo; `imgsim classify` says chickadee for testdata/bird.rgb and daisy for
#    testdata/sunflower.rgb.
# ONNX Runtime is onnxruntime-node in bench/ort (installed here with npm if missing); without
# it, or without python3-onnx, the test FAILS — it never skips.
set -uo pipefail
BIN=${IMGSIM_BIN:?}; SHARED=${IMGSIM_SHARED:?}; OUT=${IMGSIM_TEST_OUT:?}/onnx_equiv; DATA=${IMGSIM_DATA:?}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
GEN=$ROOT/scripts/onnx_models.py
ORT="node $ROOT/bench/ort/ort_onnx.js"
CACHE=${IMGSIM_TEST_OUT}/onnx_models     # generated models, reused while the generator is unchanged
rm -rf "$OUT"; mkdir -p "$OUT" "$CACHE"
export IMGSIM_MODEL_DIR=$OUT/models
unset IMGSIM_MODEL
fails=0
t_start=$(date +%s)
check() { # check NAME COND...
    local name=$1; shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
die() { echo "FAIL $*"; exit 1; }

# --- prerequisites: python3-onnx, node + onnxruntime-node
[ -x "$PY" ] && "$PY" -c 'import onnx, numpy' 2> /dev/null \
    || die "python3-onnx / python3-numpy missing (scripts/deps.sh installs them)"
command -v node > /dev/null && command -v npm > /dev/null || die "node/npm missing (scripts/deps.sh installs them)"
if ! (cd "$ROOT/bench/ort" && node -e "require('onnxruntime-node')") > /dev/null 2>&1; then
    (cd "$ROOT/bench/ort" && npm ci --ignore-scripts --no-audit --no-fund > "$OUT/npm.log" 2>&1) \
        || { tail -20 "$OUT/npm.log"; die "npm install onnxruntime-node (in bench/ort)"; }
    (cd "$ROOT/bench/ort" && node -e "require('onnxruntime-node')") || die "onnxruntime-node does not load"
fi
[ -f "$DATA/wang1k/labels.csv" ] || tar -xzf "$SHARED/data/wang1k.tar.gz" -C "$DATA" || die "extract wang1k"
W=$DATA/wang1k/images

# --- inputs: 4 photos (one each of africans, buses, horses, food) for the random-weight
#     models; 20 photos (2 per class) for the int8 model. Same bytes to imgsim and ORT.
$PY "$GEN" inputs "$OUT/in4" --imgsim "$BIN" "$W/5.jpg" "$W/305.jpg" "$W/705.jpg" "$W/905.jpg" || die "prep inputs"
in20=()
for c in 0 1 2 3 4 5 6 7 8 9; do in20+=("$W/$((c * 100 + 7)).jpg" "$W/$((c * 100 + 57)).jpg"); done
$PY "$GEN" inputs "$OUT/in20" --imgsim "$BIN" "${in20[@]}" || die "prep inputs (20)"

# --- the random-weight models (BatchNormalization statistics calibrated on the 4 photos)
stamp=$( (sha256sum "$GEN"; cat "$OUT"/in4/*.rgb | sha256sum) | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/stamp" 2> /dev/null)" != "$stamp" ]; then
    rm -rf "$CACHE"; mkdir -p "$CACHE"
    $PY "$GEN" models "$CACHE" --calib "$(paste -sd, "$OUT/in4/inputs.txt")" --external --nhwc \
        || die "generate models"
    echo "$stamp" > "$CACHE/stamp"
else
    echo "models: reusing $CACHE"
fi
M=$CACHE
field() { $PY -c "import json,sys; print(json.load(open('$M/models.json'))[sys.argv[1]][sys.argv[2]])" "$1" "$2"; }

relerr() { # relerr A.npy B.npy -> prints the max over rows of max|a-b|/max|b|
    $PY "$GEN" compare "$1" "$2" --metric relerr | $PY -c 'import json,sys; print("%.3g" % json.load(sys.stdin)["max"])'
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
le() { $PY -c "import sys; sys.exit(0 if float(sys.argv[1]) <= float(sys.argv[2]) else 1)" "$1" "$2"; }
ge() { le "$2" "$1"; }

summary=()
for name in resnet50 vgg16 mobilenetv2 efficientnet_b0; do
    emb=$(field $name embedding)
    t0=$(date +%s%N)
    $ORT --model "$M/$name.ort.onnx" --inputs "$OUT/in4/inputs.txt" --out "$OUT/ort_$name" --outputs "$emb" \
        --threads 2 --batch 4 > "$OUT/ort_$name.json" || die "ORT $name"
    t1=$(date +%s%N)
    ortnpy=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1]))["outputs"]; print(list(d.values())[0]["file"])' "$OUT/ort_$name.json")
    if $BIN embed --model "$M/$name.json" --raw 224x224 --resize squash --no-normalize --threads 2 \
            --list "$OUT/in4/inputs.txt" -o "$OUT/imgsim_$name.npy" 2> "$OUT/imgsim_$name.err"; then
        t2=$(date +%s%N)
        e=$(relerr "$OUT/imgsim_$name.npy" "$ortnpy")
        echo "$name: max relative error $e over 4 photos ($(field $name dim)-d, opset $(field $name opset);" \
             "ORT $(secs "$t0" "$t1") s, imgsim $(secs "$t1" "$t2") s, each incl. loading)"
        check "$name: imgsim == ORT (max rel. error $e <= 1e-3)" le "$e" 1e-3
        summary+=("$name $e")
    else
        cat "$OUT/imgsim_$name.err"
        check "$name: imgsim embed runs the model" false
        summary+=("$name failed")
    fi
done

# external data: the same MobileNetV2 with its initializers in mobilenetv2_ext.onnx.data
if $BIN embed --model "$M/mobilenetv2_ext.json" --raw 224x224 --resize squash --no-normalize --threads 2 \
        --list "$OUT/in4/inputs.txt" -o "$OUT/imgsim_ext.npy" 2> "$OUT/imgsim_ext.err"; then
    e=$(relerr "$OUT/imgsim_ext.npy" "$OUT/ort_mobilenetv2.$(field mobilenetv2 embedding | tr -c 'A-Za-z0-9_.\n-' _).npy")
    check "mobilenetv2 with external data: imgsim == ORT (max rel. error $e <= 1e-3)" le "$e" 1e-3
    [ -f "$OUT/imgsim_mobilenetv2.npy" ] && check "external data gives the same vectors as embedded data" \
        cmp -s "$OUT/imgsim_ext.npy" "$OUT/imgsim_mobilenetv2.npy"
else
    cat "$OUT/imgsim_ext.err"
    check "mobilenetv2 with external data: imgsim embed runs it" false
fi

# NHWC input: the same MobileNetV2 taking [N,224,224,3] "images:0" then a Transpose (tf2onnx's
# way, as the zoo's efficientnet-lite4); ORT is fed NHWC, imgsim the same raw bytes
emb=$(field mobilenetv2 embedding)
$ORT --model "$M/mobilenetv2_nhwc.ort.onnx" --inputs "$OUT/in4/inputs.txt" --out "$OUT/ort_nhwc" --outputs "$emb" \
    --threads 2 --batch 4 > "$OUT/ort_nhwc.json" || die "ORT mobilenetv2_nhwc"
grep -q '"layout":"nhwc"' "$OUT/ort_nhwc.json" || die "ORT was not fed NHWC"
if $BIN embed --model "$M/mobilenetv2_nhwc.json" --raw 224x224 --resize squash --no-normalize --threads 2 \
        --list "$OUT/in4/inputs.txt" -o "$OUT/imgsim_nhwc.npy" 2> "$OUT/imgsim_nhwc.err"; then
    e=$(relerr "$OUT/imgsim_nhwc.npy" "$OUT/ort_nhwc.$(echo "$emb" | tr -c 'A-Za-z0-9_.\n-' _).npy")
    echo "mobilenetv2_nhwc: max relative error $e"
    check "mobilenetv2 with an NHWC input + Transpose: imgsim == ORT (max rel. error $e <= 1e-3)" le "$e" 1e-3
    summary+=("mobilenetv2_nhwc $e")
else
    cat "$OUT/imgsim_nhwc.err"
    check "mobilenetv2 with an NHWC input: imgsim embed runs it" false
fi

# --- the real int8 model (ONNX zoo MobileNetV2-12-int8) on 20 photos
INT8=$SHARED/models/mobilenetv2-12-int8.onnx
$PY "$GEN" add-outputs "$INT8" "$OUT/int8.ort.onnx" pool_in_mean pool_out output > /dev/null || die "add-outputs int8"
$ORT --model "$OUT/int8.ort.onnx" --inputs "$OUT/in20/inputs.txt" --out "$OUT/ort_int8" \
    --outputs pool_in_mean,pool_out,output --threads 2 --batch 20 > /dev/null || die "ORT int8"
if $BIN embed --model "$INT8" --raw 224x224 --resize squash --no-normalize --threads 2 \
        --list "$OUT/in20/inputs.txt" -o "$OUT/imgsim_int8.npy" 2> "$OUT/imgsim_int8.err"; then
    cos=$($PY "$GEN" compare "$OUT/imgsim_int8.npy" "$OUT/ort_int8.pool_in_mean.npy" --metric cosine)
    cosq=$($PY "$GEN" compare "$OUT/imgsim_int8.npy" "$OUT/ort_int8.pool_out.npy" --metric cosine)
    cmin=$(echo "$cos" | $PY -c 'import json,sys; print("%.6f" % json.load(sys.stdin)["min"])')
    cmean=$(echo "$cos" | $PY -c 'import json,sys; print("%.6f" % json.load(sys.stdin)["mean"])')
    qmin=$(echo "$cosq" | $PY -c 'import json,sys; d=json.load(sys.stdin); print("%.6f / %.6f" % (d["min"], d["mean"]))')
    ie=$(relerr "$OUT/imgsim_int8.npy" "$OUT/ort_int8.pool_in_mean.npy")
    echo "mobilenetv2-12-int8: cosine imgsim vs ORT over 20 photos: min $cmin, mean $cmean," \
         "max relative error $ie (vs ORT's 8-bit pool output: cosine min/mean $qmin)"
    check "int8: cosine >= 0.995 for every photo (min $cmin)" ge "$cmin" 0.995
    summary+=("mobilenetv2-12-int8 cos_min=$cmin cos_mean=$cmean relerr=$ie")
else
    cat "$OUT/imgsim_int8.err"
    check "int8: imgsim embed runs mobilenetv2-12-int8.onnx" false
fi
for pair in bird:chickadee sunflower:daisy; do
    img=${pair%%:*}; want=${pair#*:}
    $BIN classify --model "$INT8" --raw 224x224 --resize squash --top 1 "$SHARED/models/testdata/$img.rgb" \
        > "$OUT/cls_$img.txt" 2>&1
    top=$(sed -n 2p "$OUT/cls_$img.txt" | sed -E 's/^ *[0-9.]+ +//')
    check "int8 classify $img.rgb -> $want (got: ${top:-$(head -1 "$OUT/cls_$img.txt")})" \
        grep -Eq "^ *[0-9.]+ +$want\b" "$OUT/cls_$img.txt"
done

echo
echo "summary: ${summary[*]}"
echo "elapsed $(( $(date +%s) - t_start )) s"
[ $fails -eq 0 ] && echo "all ONNX equivalence checks passed" || echo "$fails ONNX equivalence checks failed"
[ $fails -eq 0 ]
