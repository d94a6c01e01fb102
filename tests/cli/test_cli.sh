#!/usr/bin/env bash
# test_cli.sh — the imgsim command end to end (run by scripts/run_tests.sh with the ASan build):
# model install/list/info, classify known answers, embed to .npy and JSON lines, prep, and
# bad input: every bad file or model gives a one-line error and a non-zero exit, and in a
# batch the bad files are reported while the good ones are still done.
set -uo pipefail
BIN=${IMGSIM_BIN:?}; SHARED=${IMGSIM_SHARED:?}; OUT=${IMGSIM_TEST_OUT:?}/cli; DATA=${IMGSIM_DATA:?}
rm -rf "$OUT"; mkdir -p "$OUT"
export IMGSIM_MODEL_DIR=$OUT/models
export IMGSIM_MODEL=mobilenet_edgetpu   # the single-model checks; the default composite is checked last
fails=0
check() { # check NAME COND...
    local name=$1; shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
one_line_error() { # the command failed, and stderr has exactly one line naming the cause
    local err=$1 pattern=$2
    [ "$(wc -l < "$err")" -eq 1 ] && grep -q -- "$pattern" "$err"
}

# --- models
$BIN model install mobilenet_edgetpu mobilenet_v2 --from "$SHARED/models" > "$OUT/install.txt" 2>&1
check "install from dir" grep -q "installed mobilenet_v2" "$OUT/install.txt"
$BIN model list > "$OUT/list.txt"
check "list shows installed default" grep -Eq '^\s+\* mobilenet_edgetpu +installed' "$OUT/list.txt"
$BIN model info > "$OUT/info.txt"
check "info names the embedding layer" grep -q "embedding:   MobilenetEdgeTPU/Logits/AvgPool (1280-d" "$OUT/info.txt"
$BIN model install mobilenet_v2 --from /nonexistent 2> "$OUT/e.txt"; rc=$?
check "install from missing dir fails" [ $rc -ne 0 ]
check "  ...with one line" one_line_error "$OUT/e.txt" "nonexistent"
# a corrupted copy fails its SHA-256 check and leaves nothing installed
mkdir -p "$OUT/badmodels"; cp "$SHARED/models/imagenet_labels.txt" "$OUT/badmodels/"
head -c 100000 "$SHARED/models/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite" > "$OUT/badmodels/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite"
$BIN model install mobilenet_v1_embedder --from "$OUT/badmodels" 2> "$OUT/e.txt"; rc=$?
check "install of corrupt copy refused" [ $rc -ne 0 ]
check "  ...names the checksum" one_line_error "$OUT/e.txt" "SHA-256"
check "  ...installs nothing" [ ! -e "$IMGSIM_MODEL_DIR/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite" ]

# --- classify: known answers, raw and PNG
$BIN classify --raw 224x224 --top 1 "$SHARED/models/testdata/bird.rgb" "$SHARED/models/testdata/sunflower.rgb" > "$OUT/cls.txt"
check "edgetpu: bird is a chickadee" sh -c "grep -A1 bird.rgb '$OUT/cls.txt' | grep -q chickadee"
check "edgetpu: sunflower is a daisy" sh -c "grep -A1 sunflower.rgb '$OUT/cls.txt' | grep -q daisy"
$BIN classify --model mobilenet_v2 --raw 224x224 --json "$SHARED/models/testdata/bird.rgb" > "$OUT/cls.json"
check "v2 json: chickadee first" grep -q '"classes":\[{"class":[0-9]*,"label":"chickadee"' "$OUT/cls.json"

# --- embed: npy + paths, jsonl
ls "$DATA"/wang1k/images/{0,100,200,300}.jpg > "$OUT/list4"
$BIN embed --list "$OUT/list4" -o "$OUT/v.npy" 2> "$OUT/e.txt"; rc=$?
check "embed 4 images" [ $rc -eq 0 ]
check "  ...npy shape 4x1280, unit rows" /usr/bin/python3 -c "
import numpy as np; v=np.load('$OUT/v.npy'); assert v.shape==(4,1280), v.shape
assert abs(np.linalg.norm(v,axis=1)-1).max()<1e-4"
check "  ...paths file in order" diff -q "$OUT/list4" "$OUT/v.npy.paths"
$BIN embed --format jsonl "$DATA/wang1k/images/5.jpg" > "$OUT/v.jsonl"
check "jsonl line" /usr/bin/python3 -c "
import json; r=json.loads(open('$OUT/v.jsonl').readline()); assert len(r['vector'])==1280 and r['path'].endswith('5.jpg')"

# --- prep writes the exact network input
$BIN prep "$DATA/wang1k/images/7.jpg" -o "$OUT/in.png" --crop 10,10,200,150
check "prep writes 224x224 png" /usr/bin/python3 -c "
import struct; b=open('$OUT/in.png','rb').read(24); assert b[:8]==b'\x89PNG\r\n\x1a\n' and struct.unpack('>II',b[16:24])==(224,224)"

# --- bad input: each alone gives one line and a non-zero exit
: > "$OUT/empty.jpg"
head -c 3000 "$DATA/wang1k/images/9.jpg" > "$OUT/trunc.jpg"
echo "just some text, not an image" > "$OUT/text.jpg"
/usr/bin/python3 - "$OUT/huge.png" <<'PY'
import struct, sys, zlib
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 30000, 30000, 8, 2, 0, 0, 0))
png += chunk(b'IDAT', zlib.compress(b'\0' * 90001 * 4)) + chunk(b'IEND', b'')
open(sys.argv[1], 'wb').write(png)
PY
for f in empty trunc text huge; do
    $BIN embed --format jsonl "$OUT/$f.jpg" "$OUT/$f.png" > /dev/null 2> "$OUT/e_$f.txt"; rc=$?
    check "$f image: non-zero exit" [ $rc -ne 0 ]
done
check "empty: one-line cause" grep -q "empty.jpg: .*empty" "$OUT/e_empty.txt"
check "truncated: one-line cause" grep -q "trunc.jpg: .*\(Premature\|truncat\)" "$OUT/e_trunc.txt"
check "text: one-line cause" grep -q "text.jpg: .*not a recognised image" "$OUT/e_text.txt"
check "huge: refused before decoding" grep -q "huge.png: .*30000x30000.*limit" "$OUT/e_huge.txt"

# --- a batch with bad files in it: the bad are reported, the good all embedded
printf '%s\n' "$DATA/wang1k/images/1.jpg" "$OUT/empty.jpg" "$DATA/wang1k/images/2.jpg" "$OUT/text.jpg" \
    "$OUT/huge.png" "$DATA/wang1k/images/3.jpg" "$OUT/trunc.jpg" "$OUT/missing.jpg" > "$OUT/mixed"
$BIN embed --list "$OUT/mixed" -o "$OUT/m.npy" 2> "$OUT/e.txt"; rc=$?
check "mixed batch exits non-zero" [ $rc -ne 0 ]
check "  ...good rows written" [ "$(wc -l < "$OUT/m.npy.paths")" -eq 3 ]
check "  ...each bad file one line" [ "$(grep -c '^imgsim embed: /' "$OUT/e.txt")" -eq 5 ]
check "  ...summary counts them" grep -q "3 images embedded.*5 failed" "$OUT/e.txt"

# --- bad models
head -c 200000 "$SHARED/models/mobilenet_edgetpu_224_1.0_uint8.tflite" > "$OUT/trunc.tflite"
echo "not a model" > "$OUT/text.tflite"
: > "$OUT/empty.tflite"
for f in trunc text empty; do
    $BIN embed --model "$OUT/$f.tflite" "$DATA/wang1k/images/1.jpg" > /dev/null 2> "$OUT/e.txt"; rc=$?
    check "$f.tflite: non-zero exit" [ $rc -ne 0 ]
    check "  ...one line naming the file" one_line_error "$OUT/e.txt" "$f.tflite"
done
$BIN embed --model no_such_model "$DATA/wang1k/images/1.jpg" 2> "$OUT/e.txt"; rc=$?
check "unknown model name" one_line_error "$OUT/e.txt" "unknown model 'no_such_model'"
$BIN embed --model mobilenet_v2 --layer nope "$DATA/wang1k/images/1.jpg" 2> "$OUT/e.txt"; rc=$?
check "unknown layer" one_line_error "$OUT/e.txt" "no tensor named 'nope'"

# --- the default: the composite edgetpu_v1 (EdgeTPU + MobileNetV1 embedder, concatenated)
unset IMGSIM_MODEL
$BIN model install edgetpu_v1 --from "$SHARED/models" > "$OUT/install2.txt" 2>&1
check "composite install brings its parts" bash -c "grep -q 'installed edgetpu_v1' '$OUT/install2.txt' && [ -e '$IMGSIM_MODEL_DIR/mobilenet_v1_1.0_224_quant_embedding_extractor.tflite' ]"
$BIN model list > "$OUT/list2.txt"
check "list shows the composite as installed default" grep -Eq '^\s+\* edgetpu_v1 +installed' "$OUT/list2.txt"
$BIN classify --raw 224x224 --top 1 "$SHARED/models/testdata/bird.rgb" > "$OUT/cls2.txt"
check "composite classifies with its EdgeTPU part" grep -q chickadee "$OUT/cls2.txt"
$BIN embed --list "$OUT/list4" -o "$OUT/v2.npy" 2> /dev/null
check "composite embeds 2304-d unit rows whose halves are EdgeTPU and V1" /usr/bin/python3 -c "
import numpy as np; v=np.load('$OUT/v2.npy'); e=np.load('$OUT/v.npy'); assert v.shape==(4,2304), v.shape
assert abs(np.linalg.norm(v,axis=1)-1).max()<1e-4
assert (np.abs(v[:, :1280] * np.sqrt(2) - e).max()) < 1e-4"
$BIN embed --layer Conv_1/Relu "$DATA/wang1k/images/1.jpg" 2> "$OUT/e.txt"; rc=$?
check "--layer on a composite refused" one_line_error "$OUT/e.txt" "composite model"

echo "cli: $fails failed"
[ "$fails" -eq 0 ]
