#!/usr/bin/env bash
# test_collection.sh — collections end to end with the real default model on Wang-1k photos:
# folder and CSV ingest with broken rows and files, dedupe, incremental re-runs, --sync and
# remove, --where and --category auto, the neighbour table against brute force (also after
# incremental adds and removes), eval, export, model mismatch, and a SIGKILL mid-ingest.
set -uo pipefail
BIN=${IMGSIM_BIN:?}; SHARED=${IMGSIM_SHARED:?}; OUT=${IMGSIM_TEST_OUT:?}/collection; DATA=${IMGSIM_DATA:?}
rm -rf "$OUT"; mkdir -p "$OUT"
export IMGSIM_MODEL_DIR=$OUT/models
unset IMGSIM_DB IMGSIM_MODEL
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }
py() { /usr/bin/python3 -c "$@"; }
W=$DATA/wang1k/images
$BIN model install edgetpu_v1 mobilenet_v2 --from "$SHARED/models" > /dev/null || { echo "FAIL install"; exit 1; }
# Wang-1k classes are blocks of 100: 0 africans, 100 beaches, ..., 300 buses, ..., 600 flowers
classes=(africans beaches buildings buses dinosaurs elephants flowers horses mountains food)

# --- a folder with subfolders, bad files, a duplicate and an extension-less JPEG
P=$OUT/photos; mkdir -p "$P/a" "$P/b/c"
for c in 0 1 2 3 4 5 6 7 8 9; do for j in 0 1 2; do cp "$W/$((c * 100 + j)).jpg" "$P/a/${classes[$c]}_$j.jpg"; done; done
cp "$W/750.jpg" "$P/b/c/IMG_0001"               # JPEG without extension: found by content
cp "$W/0.jpg" "$P/b/dup.JPG"                     # same bytes as a/africans_0.jpg
: > "$P/b/empty.jpg"                             # zero bytes
head -c 3000 "$W/101.jpg" > "$P/b/trunc.jpg"     # truncated JPEG
echo "not an image" > "$P/b/fake.jpg"            # text named .jpg
echo "notes" > "$P/b/notes.txt"                  # not an image: ignored
DB=$OUT/db1
$BIN index "$P" --db "$DB" > "$OUT/idx1.out" 2> "$OUT/idx1.err"; rc=$?
check "folder ingest finishes with 'some skipped' (3)" [ $rc -eq 3 ]
check "  ...names the empty file" grep -q "empty.jpg" "$OUT/idx1.err"
check "  ...names the truncated file" grep -q "trunc.jpg" "$OUT/idx1.err"
check "  ...names the fake file" grep -q "fake.jpg" "$OUT/idx1.err"
check "  ...never mentions notes.txt" bash -c "! grep -q notes.txt '$OUT/idx1.err'"
check "  ...summary: 31 added, 1 duplicate, 3 failed" grep -q "31 added, 1 duplicates, 0 unchanged, 0 updated, 3 failed" "$OUT/idx1.err"
$BIN info --db "$DB" > "$OUT/info1.txt"
check "32 items, 31 distinct vectors" bash -c "grep -q 'items: *32' '$OUT/info1.txt' && grep -q 'vectors: *31 distinct' '$OUT/info1.txt'"
$BIN index "$P" --db "$DB" > /dev/null 2> "$OUT/idx2.err"
check "re-run adds nothing" grep -q "0 added, 0 duplicates, 32 unchanged" "$OUT/idx2.err"
# the duplicate comes first with the query's own score
$BIN query --db "$DB" --id photos/a/africans_0.jpg -k 3 --json > "$OUT/q1.json"
check "duplicate content ranks first with cosine 1" py "
import json; r = json.load(open('$OUT/q1.json'))['results']
assert r[0]['id'] == 'photos/b/dup.JPG' and abs(r[0]['score'] - 1) < 1e-5, r[0]
assert all(x['id'] != 'photos/a/africans_0.jpg' for x in r)"
check "query of a new image by file" bash -c "$BIN query --db '$DB' '$W/302.jpg' -k 3 > '$OUT/q2.txt' && grep -q 'buses_' '$OUT/q2.txt'"

# --- CSV catalogue: labels, metadata, broken rows
C=$OUT/csvset; mkdir -p "$C/img"
{
  echo 'path,id,label,colour,title'
  n=0
  for c in 0 1 2 3 4 5 6 7 8 9; do for j in 10 11 12 13 14 15; do
    i=$((c * 100 + j)); cp "$W/$i.jpg" "$C/img/$i.jpg"
    echo "img/$i.jpg,w$i,${classes[$c]},c$((n % 3)),\"photo $i, of ${classes[$c]}\""; n=$((n + 1))
  done; done
  echo 'img/missing.jpg,wmissing,buses,c0,gone'         # file does not exist
  echo 'img/310.jpg,w310,buses'                          # too few fields
  echo 'img/311.jpg,w310,buses,c1,duplicate id'          # duplicate id
  echo ',wempty,buses,c1,no path'                        # empty path
} > "$C/cat.csv"
DB2=$OUT/db2
$BIN index --db "$DB2" --csv "$C/cat.csv" --path-column path --id-column id --label-column label > /dev/null 2> "$OUT/csv.err"; rc=$?
check "CSV ingest exit 3" [ $rc -eq 3 ]
check "  ...missing file with its CSV line" grep -q "cat.csv:62: .*missing.jpg" "$OUT/csv.err"
check "  ...short row with its line" grep -q "cat.csv:63: 3 fields" "$OUT/csv.err"
check "  ...duplicate id with its line" grep -q "cat.csv:64: duplicate id 'w310'" "$OUT/csv.err"
check "  ...empty path" grep -q "cat.csv:65: empty image path" "$OUT/csv.err"
check "  ...60 valid rows added" grep -q "60 added" "$OUT/csv.err"
$BIN query --db "$DB2" --id w310 -k 5 --where label=buses --json > "$OUT/w.json"
check "--where label=buses returns only buses" py "
import json; r = json.load(open('$OUT/w.json'))['results']
assert len(r) == 5 and all(x['label'] == 'buses' for x in r), r"
$BIN query --db "$DB2" --id w310 -k 4 --where colour=c1 --where label=buses --json > "$OUT/w2.json"
check "--where on a metadata column" py "
import json; r = json.load(open('$OUT/w2.json'))['results']
assert len(r) >= 1 and all(x['metadata']['colour'] == 'c1' and x['label'] == 'buses' for x in r), r
assert r[0]['metadata']['title'].startswith('photo 3'), r"
$BIN query --db "$DB2" "$W/650.jpg" --category auto -k 5 --json > "$OUT/cat.json"
check "--category auto predicts flowers and stays inside it" py "
import json; d = json.load(open('$OUT/cat.json'))
assert d['query']['predicted_label'] == 'flowers', d['query']
assert len(d['results']) == 5 and all(x['label'] == 'flowers' for x in d['results'])"
$BIN query --db "$DB2" --model mobilenet_v2 "$W/650.jpg" 2> "$OUT/mm.err"; rc=$?
check "querying with another model is refused" bash -c "[ $rc -ne 0 ] && grep -q 'built with model edgetpu_v1' '$OUT/mm.err'"

# --- neighbour table == brute force, before and after incremental changes
same_as_exact() { # every item: table answer == exact answer (ids and scores)
    local db=$1 ids
    ids=$(/usr/bin/python3 -c "import sqlite3; print(' '.join(r[0] for r in sqlite3.connect('$db/catalog.sqlite').execute('select id from items order by id')))")
    for id in $ids; do
        $BIN query --db "$db" --id "$id" -k 5 --json > "$OUT/t.json" || return 1
        $BIN query --db "$db" --id "$id" -k 5 --exact --json > "$OUT/e.json" || return 1
        py "
import json; t = json.load(open('$OUT/t.json')); e = json.load(open('$OUT/e.json'))
assert t['query']['from_table'] and not e['query']['from_table']
a = [x['id'] for x in t['results']]; b = [x['id'] for x in e['results']]
assert a == b and all(abs(x['score'] - y['score']) < 1e-3 for x, y in zip(t['results'], e['results'])), ('$id', t, e)" || return 1
    done
}
$BIN neighbours --db "$DB2" -k 5 2> "$OUT/nb.err"
check "neighbour table built" grep -q "top-5 cosine for 60 vectors" "$OUT/nb.err"
check "table answers equal brute force" same_as_exact "$DB2"
$BIN remove --db "$DB2" w311 w611 2> "$OUT/rm.err"
check "remove two items" grep -q "removed 2 of 2 items; 58 items left" "$OUT/rm.err"
check "removed items are never returned" bash -c "! $BIN query --db '$DB2' --id w312 -k 57 | grep -qw 'w311'"
for j in 20 21 22; do cp "$W/$((300 + j)).jpg" "$C/img/"; echo "img/$((300 + j)).jpg,w$((300 + j)),buses,c0,new" >> "$C/cat.csv"; done
$BIN index --db "$DB2" --csv "$C/cat.csv" --path-column path --id-column id --label-column label > /dev/null 2>&1
$BIN info --db "$DB2" > "$OUT/info2.txt"
check "table stays fresh after adds/removes" grep -q "top-5 cosine, fresh" "$OUT/info2.txt"
check "incrementally updated table equals brute force" same_as_exact "$DB2"
$BIN export neighbours --db "$DB2" -k 5 --format csv -o "$OUT/nb.csv"
check "export neighbours csv: 63 items x 5 (removed rows come back from the CSV)" bash -c "[ \$(tail -n +2 '$OUT/nb.csv' | wc -l) -eq 315 ]"
$BIN export neighbours --db "$DB2" -k 5 --format json -o "$OUT/nb.json"
check "export neighbours json" py "
import json; d = json.load(open('$OUT/nb.json')); assert len(d) == 63 and all(len(v) == 5 for v in d.values())"
$BIN export vectors --db "$DB2" -o "$OUT/v.npy" 2> /dev/null
check "export vectors npy + ids" py "
import numpy as np; v = np.load('$OUT/v.npy'); ids = open('$OUT/v.npy.ids').read().split()
assert v.shape == (63, 2304) and len(ids) == 63 and np.isfinite(v).all()"

# --- eval
$BIN eval --db "$DB2" -k 5 --json > "$OUT/eval.json"
check "eval reports P@5, mAP for 10 labels" py "
import json; d = json.load(open('$OUT/eval.json')); o = d['overall']
assert o['n'] == 63 and len(d['per_label']) == 10 and 0.6 <= o['p_at_k'] <= 1 and 0 < o['map'] <= 1, o"

# --- --sync drops vanished files
rm "$P/a/food_2.jpg"
$BIN index "$P" --db "$DB" --sync > /dev/null 2> "$OUT/sync.err"
check "--sync removes the vanished file's item" grep -q "removed 1 items" "$OUT/sync.err"
check "  ...and it is gone" bash -c "$BIN query --db '$DB' --id photos/a/food_2.jpg 2>&1 | grep -q 'no item'"

# --- one id from two sources in one run: the first is kept, the second reported; the
#     neighbour table stays equal to brute force
T=$OUT/two; mkdir -p "$T/a/imgs" "$T/b/imgs" "$T/base"
cp "$W/0.jpg" "$T/a/imgs/x.jpg"; cp "$W/500.jpg" "$T/b/imgs/x.jpg"
cp "$W/100.jpg" "$T/a/imgs/y.jpg"; cp "$W/600.jpg" "$T/b/imgs/y.jpg"
for i in 101 102 103 104 105 106; do cp "$W/$i.jpg" "$T/base/"; done
DB4=$OUT/db4
$BIN index "$T/base" --db "$DB4" > /dev/null 2>&1 && $BIN neighbours --db "$DB4" -k 5 2> /dev/null
$BIN index "$T/a/imgs" "$T/b/imgs" --db "$DB4" > /dev/null 2> "$OUT/dupid.err"; rc=$?
check "same id twice in one run: reported, exit 3" bash -c "[ $rc -eq 3 ] && grep -q \"duplicate id 'imgs/x.jpg'\" '$OUT/dupid.err'"
$BIN info --db "$DB4" > "$OUT/info4.txt"
check "  ...the first source is kept: 8 items, 8 vectors" bash -c "grep -q 'items: *8' '$OUT/info4.txt' && grep -q 'vectors: *8 distinct' '$OUT/info4.txt'"
check "  ...table still equals brute force" same_as_exact "$DB4"

# --- SIGKILL mid-ingest, then resume
K=$OUT/kill; mkdir -p "$K"
for i in $(seq 400 559); do cp "$W/$i.jpg" "$K/"; done
DB3=$OUT/db3
$BIN index "$K" --db "$DB3" --commit-every 8 --quiet > /dev/null 2>&1 &
pid=$!
for _ in $(seq 1 600); do
    n=$(/usr/bin/python3 -c "import sqlite3
try: print(sqlite3.connect('file:$DB3/catalog.sqlite?mode=ro', uri=True).execute('select count(*) from items').fetchone()[0])
except Exception: print(0)" 2>/dev/null)
    [ "${n:-0}" -ge 16 ] && break
    sleep 0.1
done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
check "killed while part-way" bash -c "[ ${n:-0} -ge 16 ] && [ ${n:-0} -lt 160 ]"
$BIN index "$K" --db "$DB3" --quiet > /dev/null 2> "$OUT/resume.err"
check "resume completes" grep -q "160 items, 160 vectors" "$OUT/resume.err"
check "resume re-embeds only what was lost" bash -c "grep -Eq '[0-9]+ added, 0 duplicates, [1-9][0-9]* unchanged' '$OUT/resume.err'"
check "collection consistent after SIGKILL" py "
import sqlite3, os
c = sqlite3.connect('$DB3/catalog.sqlite')
assert c.execute('pragma integrity_check').fetchone()[0] == 'ok'
assert c.execute('select count(*), count(distinct id), count(distinct row) from items').fetchone() == (160, 160, 160)
nrows = int(c.execute(\"select value from meta where key='nrows'\").fetchone()[0])
f = c.execute(\"select value from meta where key='vec_file'\").fetchone()[0]
dim = int(c.execute(\"select value from meta where key='dim'\").fetchone()[0])
assert dim == 2304 and nrows == 160 and os.path.getsize('$DB3/' + f) == 64 + nrows * dim * 4
assert c.execute('select count(*) from vectors').fetchone()[0] == 160"
check "every resumed item finds a same-class neighbour" bash -c "$BIN query --db '$DB3' --id kill/450.jpg -k 1 | grep -q 'kill/4[0-9][0-9].jpg'"

echo "$fails failed"
[ "$fails" -eq 0 ]
