#!/usr/bin/env bash
# test_ann.sh — the HNSW index through the CLI and the server, with the real default model on
# 150 Wang-1k photos: `index --ann` builds it, queries through it (--ann, --ef) agree with
# --exact (recall@10), a selective --where returns k correct results, remove and index keep
# it in step (ann info: nodes == live vectors; removed items never returned, added ones found
# by their image), a fresh process uses the saved file, overwritten / truncated / missing
# index files give exact answers with a note and are rebuilt by the next writer, settings
# persist (index --ann keeps them, changing one rebuilds), ann drop, and the server's
# exact / ann / ef parameters.
set -uo pipefail
BIN=${IMGSIM_BIN:?}; SHARED=${IMGSIM_SHARED:?}; OUT=${IMGSIM_TEST_OUT:?}/ann; DATA=${IMGSIM_DATA:?}
rm -rf "$OUT"; mkdir -p "$OUT"
export IMGSIM_MODEL_DIR=$OUT/models
unset IMGSIM_DB IMGSIM_MODEL IMGSIM_WRITE_TOKEN
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }
py() { /usr/bin/python3 -c "$@"; }
W=$DATA/wang1k/images
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; }
trap cleanup EXIT
$BIN model install edgetpu_v1 --from "$SHARED/models" > /dev/null || { echo "FAIL install"; exit 1; }
classes=(africans beaches buildings buses dinosaurs elephants flowers horses mountains food)

# --- 150 photos, 15 per class, a metadata column grp with 10 items per value
C=$OUT/set; mkdir -p "$C/img"
{
  echo 'path,label,grp'
  n=0
  for c in 0 1 2 3 4 5 6 7 8 9; do for j in $(seq 0 14); do
    i=$((c * 100 + j * 6)); cp "$W/$i.jpg" "$C/img/$i.jpg"
    echo "img/$i.jpg,${classes[$c]},g$((n % 15))"; n=$((n + 1))
  done; done
} > "$C/cat.csv"
DB=$OUT/db
idx() { $BIN index --db "$DB" --csv "$C/cat.csv" --path-column path --label-column label --quiet "$@"; }
info() { $BIN ann info --db "$DB" --json > "$OUT/info.json" && py "
import json; d = json.load(open('$OUT/info.json')); $1"; }
idx --ann > /dev/null 2> "$OUT/idx.err"
check "index --ann builds the index" grep -q "HNSW index ann.1.hnsw: 150 vectors" "$OUT/idx.err"
check "ann info: current, 150 nodes, the defaults" info "
assert d['status'] == 'current' and d['nodes'] == 150 and d['live'] == 150, d
assert (d['metric'], d['M'], d['ef_construction'], d['ef_search'], d['storage']) == ('cosine', 16, 200, 64, 'sq8'), d
assert d['bytes_file'] > 150 * 2304 and d['bytes_per_vector'] > 2304 and d['gen'] == d['collection_gen'], d"
$BIN ann info --db "$DB" > "$OUT/info.txt"
check "ann info text names file, state and size" bash -c "grep -q 'index: *ann.1.hnsw, current' '$OUT/info.txt' && grep -q 'bytes per vector' '$OUT/info.txt'"
$BIN info --db "$DB" > "$OUT/dbinfo.txt"
check "imgsim info has an ann line" grep -q "ann index: *150 vectors, current" "$OUT/dbinfo.txt"

# --- HNSW against exact: recall@10 over 30 items; scores are exact (re-ranked)
ids=$(py "import csv; r = list(csv.DictReader(open('$C/cat.csv'))); print(' '.join(x['path'] for x in r[::5]))")
for id in $ids; do
    $BIN query --db "$DB" --id "$id" -k 10 --ann --json > "$OUT/a_${id//\//_}.json"
    $BIN query --db "$DB" --id "$id" -k 10 --exact --json > "$OUT/x_${id//\//_}.json"
done
check "recall@10 through the index >= 0.95, same scores" py "
import json, glob
found = wanted = 0
for a in glob.glob('$OUT/a_*.json'):
    A = json.load(open(a)); X = json.load(open(a.replace('/a_', '/x_')))
    assert A['query']['search'] == 'hnsw' and X['query']['search'] == 'exact', (A['query'], X['query'])
    xs = {r['id']: r['score'] for r in X['results']}
    for r in A['results']:
        if r['id'] in xs:
            found += 1; assert abs(xs[r['id']] - r['score']) < 1e-4
    wanted += len(X['results'])
print('recall@10', found / wanted); assert wanted == 300 and found / wanted >= 0.95"
$BIN query --db "$DB" --id img/300.jpg -k 10 --ef 200 --json > "$OUT/ef.json"
check "--ef implies the index and is reported" py "
import json; q = json.load(open('$OUT/ef.json'))['query']; assert q['search'] == 'hnsw' and q['ef'] == 200, q"
$BIN query --db "$DB" --id img/300.jpg -k 10 --json > "$OUT/def.json" 2> "$OUT/def.err"
check "a small collection is searched exactly by default, without a note" py "
import json; q = json.load(open('$OUT/def.json'))['query']; assert q['search'] == 'exact' and 'note' not in q, q
assert open('$OUT/def.err').read() == ''"
$BIN query --db "$DB" --id img/300.jpg --exact --ann 2> "$OUT/excl.err"; rc=$?
check "--exact with --ann is refused" bash -c "[ $rc -eq 2 ] && grep -q 'exclude each other' '$OUT/excl.err'"
$BIN query --db "$DB" --id img/300.jpg --metric l1 --ann --json > "$OUT/l1.json" 2> "$OUT/l1.err"
check "l1 through --ann: exact, with a note" bash -c "grep -q '\"search\": \"exact\"' '$OUT/l1.json' && grep -q 'note: the HNSW index serves cosine, not l1' '$OUT/l1.err'"

# --- a selective filter: k results, all matching, the exact ones
$BIN query --db "$DB" --id img/300.jpg -k 5 --ann --where grp=g3 --json > "$OUT/wa.json"
$BIN query --db "$DB" --id img/300.jpg -k 5 --exact --where grp=g3 --json > "$OUT/wx.json"
check "--where grp=g3 through the index: 5 matching results, as exact" py "
import json; a = json.load(open('$OUT/wa.json')); x = json.load(open('$OUT/wx.json'))
assert a['query']['search'] == 'hnsw' and len(a['results']) == 5, a
assert all(r['metadata']['grp'] == 'g3' for r in a['results'])
assert [r['id'] for r in a['results']] == [r['id'] for r in x['results']]"
$BIN query --db "$DB" "$W/650.jpg" -k 5 --ann --category auto --json > "$OUT/cat.json"
check "--category auto through the index" py "
import json; d = json.load(open('$OUT/cat.json'))
assert d['query']['search'] == 'hnsw' and d['query']['predicted_label'] == 'flowers', d['query']
assert len(d['results']) == 5 and all(r['label'] == 'flowers' for r in d['results'])"

# --- remove and add keep the index in step
$BIN remove --db "$DB" img/306.jpg img/312.jpg 2> /dev/null
check "remove: nodes == live vectors (148), current" info "
assert d['status'] == 'current' and d['nodes'] == d['live'] == 148, d"
$BIN query --db "$DB" --id img/300.jpg -k 100 --ann --json > "$OUT/rm.json"
check "removed items are never returned" py "
import json; d = json.load(open('$OUT/rm.json')); ids = [r['id'] for r in d['results']]
assert d['query']['search'] == 'hnsw' and len(ids) == 100 and not {'img/306.jpg', 'img/312.jpg'} & set(ids)"
# the CSV still names the removed two: the next run adds them back, with three new ones
for i in 301 455 777; do cp "$W/$i.jpg" "$C/img/"; echo "img/$i.jpg,new,g99" >> "$C/cat.csv"; done
idx > /dev/null 2>&1   # without --ann: an existing index is maintained anyway
check "index (no --ann): nodes == live vectors (150 + 3 new), current" info "
assert d['status'] == 'current' and d['nodes'] == d['live'] == 153, d"
ok_added=1
for i in 301 455 777; do
    $BIN query --db "$DB" "$W/$i.jpg" -k 3 --ann --json > "$OUT/add.json"
    py "
import json; d = json.load(open('$OUT/add.json')); r = d['results'][0]
assert d['query']['search'] == 'hnsw' and r['id'] == 'img/$i.jpg' and r['score'] > 0.9999, d" || ok_added=0
done
check "added items are found by their own image through the index" [ $ok_added -eq 1 ]

# --- damage: a reader answers exactly and says so; the next writer rebuilds
damaged_then_exact() { # $1: word expected in the note
    $BIN query --db "$DB" --id img/600.jpg -k 10 --ann --json > "$OUT/d.json" 2> "$OUT/d.err"
    $BIN query --db "$DB" --id img/600.jpg -k 10 --exact --json > "$OUT/dx.json"
    grep -q "note: .*$1.*: exact search" "$OUT/d.err" && py "
import json; a = json.load(open('$OUT/d.json')); x = json.load(open('$OUT/dx.json'))
assert a['query']['search'] == 'exact' and '$1' in a['query']['note'], a['query']
assert [(r['id'], r['score']) for r in a['results']] == [(r['id'], r['score']) for r in x['results']]"
}
file=$(py "import json; print(json.load(open('$OUT/info.json'))['file'])")
py "
f = open('$DB/$file', 'r+b'); f.seek(4096); b = f.read(64); f.seek(4096); f.write(bytes(x ^ 0x5a for x in b)); f.close()"
check "overwritten bytes: exact answer with a note" damaged_then_exact damaged
check "  ...ann info says damaged" info "assert d['status'] == 'damaged' and 'damaged' in d['problem'], d"
idx > /dev/null 2>&1
check "  ...the next index run rebuilds it" info "assert d['status'] == 'current' and d['nodes'] == 153 and d['file'] != '$file', d"
file=$(py "import json; print(json.load(open('$OUT/info.json'))['file'])")
truncate -s 5000 "$DB/$file"
check "truncated file: exact answer with a note" damaged_then_exact damaged
$BIN ann build --db "$DB" 2> "$OUT/build.err"
check "  ...ann build rebuilds it" info "assert d['status'] == 'current' and d['nodes'] == 153, d"
check "  ...and leaves one index file" bash -c "[ \$(ls '$DB' | grep -c '^ann\\.') -eq 1 ]"
file=$(py "import json; print(json.load(open('$OUT/info.json'))['file'])")
rm "$DB/$file"
check "missing file: exact answer with a note" damaged_then_exact missing
$BIN remove --db "$DB" img/318.jpg 2> /dev/null
check "  ...remove rebuilds it" info "assert d['status'] == 'current' and d['nodes'] == d['live'] == 152, d"
$BIN query --db "$DB" --id img/600.jpg -k 10 --ann --json > "$OUT/after.json"
check "  ...and queries use it again" grep -q '"search": "hnsw"' "$OUT/after.json"

# --- settings persist; changing one rebuilds
$BIN ann build --db "$DB" --ann-storage f32 --M 8 --ef-construction 100 --ann-ef 32 2> /dev/null
check "ann build with settings" info "
assert (d['storage'], d['M'], d['ef_construction'], d['ef_search']) == ('f32', 8, 100, 32) and d['status'] == 'current', d"
idx --ann > /dev/null 2> "$OUT/keep.err"   # adds img/318.jpg back
check "index --ann keeps them (updated, not rebuilt)" info "
assert (d['storage'], d['M'], d['ef_search'], d['nodes']) == ('f32', 8, 32, 153), d
assert 'updated' in open('$OUT/keep.err').read()"
idx --ann --M 12 --dims 64 > /dev/null 2> "$OUT/change.err"
check "index --ann --M 12 --dims 64 rebuilds with them" info "
assert (d['storage'], d['M'], d['pca_dims'], d['code_dim']) == ('f32', 12, 64, 64), d
assert 'rebuilt' in open('$OUT/change.err').read()"
$BIN index --db "$DB" --M 12 "$C/img" 2> "$OUT/noann.err"; rc=$?
check "index options without --ann are refused" bash -c "[ $rc -eq 2 ] && grep -q 'go with --ann' '$OUT/noann.err'"
$BIN ann build --db "$DB" --dims 4000 2> "$OUT/bad.err"; rc=$?
check "a PCA wider than the vectors is refused" bash -c "[ $rc -eq 1 ] && grep -q 'PCA dimensions must be between 1 and 2303' '$OUT/bad.err'"
$BIN ann build --db "$DB" --ann-storage sq8 --dims full --M 16 --ef-construction 200 --ann-ef 64 2> /dev/null

# --- the server: exact / ann / ef
"$BIN" serve --db "$DB" --host 127.0.0.1 --port 0 > "$OUT/srv.out" 2> "$OUT/srv.err" &
pid=$!; URL=
for _ in $(seq 1 600); do
    URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$OUT/srv.out" 2>/dev/null | head -1)
    [ -n "$URL" ] && curl -sf "${URL}healthz" > /dev/null && break
    sleep 0.1
done
S="${URL}api/items/img%2F300.jpg/similar?k=5"
check "server: ann=1 searches the index" bash -c "curl -sf '$S&ann=1' | grep -q '\"search\":\"hnsw\"'"
check "server: ef=100 too" bash -c "curl -sf '$S&ef=100' | grep -q '\"ef\":100'"
check "server: exact=1 and the default are exact" bash -c "curl -sf '$S&exact=1' | grep -q '\"search\":\"exact\"' && curl -sf '$S' | grep -q '\"search\":\"exact\"'"
check "server: same results either way" py "
import json, urllib.request
get = lambda q: json.load(urllib.request.urlopen('$S' + q))['results']
a, x = get('&ann=1'), get('&exact=1')
assert len(a) == 5 and len({r['id'] for r in a} & {r['id'] for r in x}) >= 4, (a, x)"
check "server: POST /api/search with ann=1" bash -c "curl -sf -H 'Content-Type: application/json' -d '{\"id\": \"img/300.jpg\"}' '${URL}api/search?k=3&ann=1' | grep -q '\"search\":\"hnsw\"'"
check "server: ef=0, exact=maybe, exact=1&ef=9 are 400" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' '$S&ef=0') = 400 ] && [ \$(curl -s -o /dev/null -w '%{http_code}' '$S&exact=maybe') = 400 ] && [ \$(curl -s -o /dev/null -w '%{http_code}' '$S&exact=1&ef=9') = 400 ]"
kill -TERM "$pid"; wait "$pid" 2>/dev/null; pid=
check "server: clean shutdown, no sanitizer report" bash -c "! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' '$OUT/srv.err'"

# --- drop
$BIN ann drop --db "$DB" 2> /dev/null
check "ann drop: no index file left" bash -c "[ \$(ls '$DB' | grep -c '^ann\\.') -eq 0 ]"
check "  ...info says none" info "assert d['status'] == 'none', d"
$BIN query --db "$DB" --id img/300.jpg -k 3 --ann 2> "$OUT/none.err" > /dev/null
check "  ...--ann notes there is no index" grep -q "note: the collection has no HNSW index" "$OUT/none.err"

# --- an empty collection: nothing to index yet, no error; the first rows build it
E=$OUT/empty; mkdir -p "$E/none" "$E/two"; cp "$W/1.jpg" "$W/2.jpg" "$E/two/"
check "index --ann of an empty folder succeeds" $BIN index "$E/none" --db "$E/db" --ann --quiet
check "ann build of an empty collection succeeds" $BIN ann build --db "$E/db"
$BIN index "$E/two" --db "$E/db" --ann --quiet 2> /dev/null
check "  ...adding rows builds the index" bash -c "$BIN ann info --db '$E/db' | grep -q 'nodes: *2'"
$BIN remove --db "$E/db" two/1.jpg two/2.jpg 2> /dev/null
check "  ...removing every item leaves an empty index" bash -c "$BIN ann info --db '$E/db' | grep -q 'nodes: *0'"

echo "$fails failed"
[ "$fails" -eq 0 ]
