#!/usr/bin/env bash
# test_api.sh — `imgsim serve` end to end over HTTP with curl: a 40-photo Wang-1k collection
# (4 classes, labels and a metadata column from a CSV), the server on a free loopback port
# (--port 0, URL parsed from its first line). Covers every endpoint and error status of
# docs/API.md: stats, labels, random, items, similar, search (raw, multipart, JSON id; same
# top hit as `imgsim query`), thumbnails (JPEG, ETag, 304), writes and the token rule
# (403 / 401 / 201 / searchable / DELETE), 400/404/405/413/415, path-traversal ids, 503 +
# Retry-After from a one-slot server with no queue, /metrics, the access log, and a clean
# SIGTERM shutdown with no AddressSanitizer or LeakSanitizer report.
set -uo pipefail
BIN=${IMGSIM_BIN:?}; SHARED=${IMGSIM_SHARED:?}; OUT=${IMGSIM_TEST_OUT:?}/server; DATA=${IMGSIM_DATA:?}
rm -rf "$OUT"; mkdir -p "$OUT"
export IMGSIM_MODEL_DIR=$OUT/models
unset IMGSIM_DB IMGSIM_MODEL IMGSIM_WRITE_TOKEN
fails=0
check() { local name=$1; shift; if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi; }
py() { /usr/bin/python3 -c "$@"; }
W=$DATA/wang1k/images
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; }
trap cleanup EXIT

$BIN model install edgetpu_v1 --from "$SHARED/models" > /dev/null || { echo "FAIL install"; exit 1; }

# --- the collection: buses 300-309, dinosaurs 400-409, elephants 500-509, flowers 600-609
C=$OUT/set; mkdir -p "$C/img"
{
  echo 'path,label,colour'
  for c in 3 4 5 6; do for j in 0 1 2 3 4 5 6 7 8 9; do
    i=$((c * 100 + j)); cp "$W/$i.jpg" "$C/img/$i.jpg"
    case $c in 3) l=buses;; 4) l=dinosaurs;; 5) l=elephants;; 6) l=flowers;; esac
    echo "img/$i.jpg,$l,c$((j % 2))"
  done; done
} > "$C/labels.csv"
DB=$OUT/db
$BIN index --db "$DB" --csv "$C/labels.csv" --path-column path --label-column label > /dev/null 2> "$OUT/index.err" \
  || { echo "FAIL index"; cat "$OUT/index.err"; exit 1; }

# start_server NAME ARGS...: start, wait for the URL line and /healthz; sets URL and PID
start_server() {
  local name=$1; shift
  "$BIN" serve --db "$DB" --host 127.0.0.1 --port 0 "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" &
  PID=$!; pids+=("$PID"); URL=
  for _ in $(seq 1 600); do
    URL=$(grep -o 'http://127\.0\.0\.1:[0-9]*/' "$OUT/$name.out" 2>/dev/null | head -1)
    [ -n "$URL" ] && curl -sf "${URL}healthz" > /dev/null && return 0
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.1
  done
  echo "FAIL server $name did not start"; cat "$OUT/$name.err"; exit 1
}
# req ARGS...: curl, body to $OUT/body, headers to $OUT/hdr, prints the status
req() { curl -s -o "$OUT/body" -D "$OUT/hdr" -w '%{http_code}' "$@"; }
is_json_error() { py "import json; d = json.load(open('$OUT/body')); assert isinstance(d['error'], str) and d['error']"; }
status_is() { local want=$1; shift; local got; got=$(req "$@"); [ "$got" = "$want" ] || { echo "  got $got, body: $(head -c 200 "$OUT/body")"; return 1; }; }
err_is() { status_is "$@" && is_json_error; }

start_server main --write-token s3cret --threads 4 --slots 2
U=$URL; MAIN=$PID
check "start line names items and model" grep -Eq "^imgsim serve: http://127.0.0.1:[0-9]+/ \(40 items, model edgetpu_v1\)$" "$OUT/main.out"

# --- read endpoints
check "GET /healthz" bash -c "[ \"\$(curl -s '${U}healthz')\" = '{\"status\":\"ok\",\"items\":40}' ]"
check "GET /api/stats" bash -c "[ $(req "${U}api/stats") = 200 ] && /usr/bin/python3 -c \"
import json; d = json.load(open('$OUT/body'))
assert d['items'] == 40 and d['vectors'] == 40 and d['model'] == 'edgetpu_v1' and d['dim'] == 2304, d
assert d['labels'] == 4 and d['neighbours'] is None, d\""
check "GET /api/labels sorted with counts" bash -c "[ $(req "${U}api/labels") = 200 ] && /usr/bin/python3 -c \"
import json; d = json.load(open('$OUT/body'))
assert d == {'labels': [{'label': l, 'count': 10} for l in ['buses', 'dinosaurs', 'elephants', 'flowers']]}, d\""
check "GET /api/random?n=5&label=flowers" bash -c "[ $(req "${U}api/random?n=5&label=flowers") = 200 ] && /usr/bin/python3 -c \"
import json; r = json.load(open('$OUT/body'))['results']
assert len(r) == 5 and len({x['id'] for x in r}) == 5 and all(x['label'] == 'flowers' for x in r), r\""
check "GET /api/random default n = 24" bash -c "[ $(req "${U}api/random") = 200 ] && /usr/bin/python3 -c \"
import json; r = json.load(open('$OUT/body'))['results']; assert len(r) == 24, len(r)\""
check "GET /api/random?n=0 -> 400" err_is 400 "${U}api/random?n=0"
check "GET /api/random?n=201 -> 400" err_is 400 "${U}api/random?n=201"
check "GET /api/items/{id} (id with '/', percent-encoded)" bash -c "[ $(req "${U}api/items/img%2F302.jpg") = 200 ] && /usr/bin/python3 -c \"
import json; d = json.load(open('$OUT/body'))
assert d == {'id': 'img/302.jpg', 'label': 'buses', 'metadata': {'colour': 'c0'}, 'width': 384, 'height': 256,
             'image_url': '/api/items/img%2F302.jpg/image'}, d\""
check "GET /api/items/{id}/similar?k=5" bash -c "[ $(req "${U}api/items/img%2F302.jpg/similar?k=5") = 200 ] && /usr/bin/python3 -c \"
import json; d = json.load(open('$OUT/body'))
assert d['query']['id'] == 'img/302.jpg' and d['query']['k'] == 5 and d['query']['metric'] == 'cosine', d
r = d['results']; assert len(r) == 5 and all(x['id'] != 'img/302.jpg' for x in r), r
assert sum(x['label'] == 'buses' for x in r) >= 3, r
assert all(set(x) == {'id', 'score', 'label', 'metadata', 'image_url'} for x in r)
assert all(r[i]['score'] >= r[i + 1]['score'] for i in range(4)) and d['took_ms'] >= 0\""
check "similar with where + metric l2" bash -c "[ $(req "${U}api/items/img%2F302.jpg/similar?k=3&metric=l2&where=colour%3Dc1") = 200 ] && /usr/bin/python3 -c \"
import json; d = json.load(open('$OUT/body')); assert d['query']['metric'] == 'l2'
r = d['results']; assert len(r) == 3 and all(x['metadata']['colour'] == 'c1' for x in r), r
assert all(r[i]['score'] <= r[i + 1]['score'] for i in range(2))\""
check "similar of an unknown id -> 404" err_is 404 "${U}api/items/nope.jpg/similar"

# --- search: raw bytes, multipart and JSON id agree with `imgsim query`
Q=$W/312.jpg   # a bus not in the collection
cli_top=$($BIN query --db "$DB" "$Q" -k 3 --json | py "import json,sys; print(json.load(sys.stdin)['results'][0]['id'])")
check "imgsim query gives a top hit" [ -n "$cli_top" ]
st=$(req -H 'Content-Type: image/jpeg' --data-binary @"$Q" "${U}api/search?k=3"); cp "$OUT/body" "$OUT/raw.json"
check "POST /api/search raw image/jpeg -> 200" [ "$st" = 200 ]
check "  ...top hit is imgsim query's ($cli_top), 3 results, buses" py "
import json; d = json.load(open('$OUT/raw.json')); r = d['results']
assert len(r) == 3 and r[0]['id'] == '$cli_top' and r[0]['label'] == 'buses', r
assert r[0]['image_url'] == '/api/items/' + r[0]['id'].replace('/', '%2F') + '/image'"
st=$(req -F "image=@$Q" "${U}api/search?k=3"); cp "$OUT/body" "$OUT/mp.json"
check "POST /api/search multipart -> same results as raw" bash -c "[ $st = 200 ] && /usr/bin/python3 -c \"
import json; a = json.load(open('$OUT/raw.json'))['results']; b = json.load(open('$OUT/mp.json'))['results']
assert [x['id'] for x in a] == [x['id'] for x in b], (a, b)\""
check "POST /api/search ?category=auto predicts buses" bash -c "[ $(req -F "image=@$Q" "${U}api/search?k=4&category=auto") = 200 ] && /usr/bin/python3 -c \"
import json; d = json.load(open('$OUT/body')); assert d['query']['predicted_label'] == 'buses', d
assert all(x['label'] == 'buses' for x in d['results'])\""
st=$(req -H 'Content-Type: application/json' -d '{"id": "img/405.jpg"}' "${U}api/search?k=2")
check "POST /api/search JSON {id}" bash -c "[ $st = 200 ] && /usr/bin/python3 -c \"
import json; d = json.load(open('$OUT/body')); assert d['query']['id'] == 'img/405.jpg' and len(d['results']) == 2, d\""
check "POST /api/search JSON unknown id -> 404" err_is 404 -H 'Content-Type: application/json' -d '{"id": "nope"}' "${U}api/search"
check "POST /api/search JSON without id -> 400" err_is 400 -H 'Content-Type: application/json' -d '[1,2]' "${U}api/search"
check "400 bad image bytes (image/jpeg)" err_is 400 -H 'Content-Type: image/jpeg' --data-binary 'definitely not a jpeg' "${U}api/search"
head -c 2000 "$Q" > "$OUT/trunc.jpg"
check "400 truncated JPEG in multipart" err_is 400 -F "image=@$OUT/trunc.jpg;type=image/jpeg" "${U}api/search"
check "400 k=0" err_is 400 -H 'Content-Type: image/jpeg' --data-binary @"$Q" "${U}api/search?k=0"
check "400 k=abc" err_is 400 "${U}api/items/img%2F302.jpg/similar?k=abc"
check "400 metric=foo" err_is 400 -H 'Content-Type: image/jpeg' --data-binary @"$Q" "${U}api/search?metric=foo"
check "400 category=foo" err_is 400 "${U}api/items/img%2F302.jpg/similar?category=foo"
check "400 where without =" err_is 400 "${U}api/items/img%2F302.jpg/similar?where=colour"
check "400 multipart without image field" err_is 400 -F "other=@$Q" "${U}api/search"
check "415 text/plain body" err_is 415 -H 'Content-Type: text/plain' --data-binary 'hello' "${U}api/search"
echo "just text" > "$OUT/notes.txt"
check "415 .txt file in multipart" err_is 415 -F "image=@$OUT/notes.txt" "${U}api/search"
check "415 no content type" err_is 415 -H 'Content-Type:' --data-binary @"$Q" "${U}api/search"

# --- errors by route and method; ids never reach the file system
check "404 unknown id" err_is 404 "${U}api/items/nope.jpg"
check "404 unknown route" err_is 404 "${U}api/nothing"
check "404 unknown route (root level)" err_is 404 "${U}etc/passwd"
check "405 GET /api/search (+ Allow: POST)" bash -c "[ $(req "${U}api/search") = 405 ] && grep -qi '^Allow: POST' '$OUT/hdr'"
check "405 DELETE /api/stats" err_is 405 -X DELETE "${U}api/stats"
check "405 PUT /api/items/{id}" err_is 405 -X PUT "${U}api/items/img%2F302.jpg"
check "405 POST /api/items/{id}/similar" err_is 405 -X POST "${U}api/items/img%2F302.jpg/similar"
for p in "api/items/../../etc/passwd" "api/items/..%2F..%2Fetc%2Fpasswd" "api/items/..%2F..%2Fetc%2Fpasswd/image" \
         "api/items/%2Fetc%2Fpasswd/image" "api/items/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd/similar" \
         "api/items/img%2F..%2F..%2F..%2Fetc%2Fpasswd/image" "static/..%2F..%2Fetc%2Fpasswd" "static/../../etc/passwd"; do
  check "traversal /$p -> 404 JSON, no file contents" bash -c "[ \$(curl -s --path-as-is -o '$OUT/body' -w '%{http_code}' '${U}$p') = 404 ] && ! grep -q 'root:' '$OUT/body'"
  check "  ...error is JSON" is_json_error
done
check "bad percent-encoding in an id -> 404" err_is 404 "${U}api/items/%zz"
check "NUL in an id -> 404" err_is 404 "${U}api/items/a%00b"

# --- thumbnails
st=$(req "${U}api/items/img%2F302.jpg/image?size=128")
cp "$OUT/body" "$OUT/thumb.jpg"
etag=$(grep -i '^ETag:' "$OUT/hdr" | sed 's/^[^:]*: *//; s/\r$//')
check "thumbnail 200 image/jpeg" bash -c "[ $st = 200 ] && grep -qi '^Content-Type: image/jpeg' '$OUT/hdr'"
check "  ...ETag and Cache-Control" bash -c "[ -n '$etag' ] && grep -qi '^Cache-Control:' '$OUT/hdr'"
check "  ...a JPEG, longest side 128" py "
d = open('$OUT/thumb.jpg', 'rb').read(); assert d[:3] == b'\xff\xd8\xff'
import struct; i = 2
while True:
    m, l = d[i + 1], struct.unpack('>H', d[i + 2:i + 4])[0]
    if m in (0xC0, 0xC1, 0xC2):
        h, w = struct.unpack('>HH', d[i + 5:i + 9]); assert max(w, h) == 128, (w, h); break
    i += 2 + l"
check "  ...304 with If-None-Match" status_is 304 -H "If-None-Match: $etag" "${U}api/items/img%2F302.jpg/image?size=128"
check "  ...cached copy identical" bash -c "[ $(req "${U}api/items/img%2F302.jpg/image?size=128") = 200 ] && cmp -s '$OUT/body' '$OUT/thumb.jpg'"
check "  ...default size 256" bash -c "[ $(req "${U}api/items/img%2F302.jpg/image") = 200 ] && ! grep -qi '^ETag: $etag' '$OUT/hdr'"
check "thumbnail size=8 -> 400" err_is 400 "${U}api/items/img%2F302.jpg/image?size=8"
check "thumbnail size=2000 -> 400" err_is 400 "${U}api/items/img%2F302.jpg/image?size=2000"
check "thumbnail of an unknown id -> 404" err_is 404 "${U}api/items/nope.jpg/image"

# --- the web page
check "GET / is the embedded page" bash -c "[ $(req "${U}") = 200 ] && grep -qi '^Content-Type: text/html' '$OUT/hdr' && grep -qi '<html' '$OUT/body'"
for f in $(cd "$(dirname "$0")/../../web" 2>/dev/null && find . -type f ! -name 'index.html' ! -name '.*' | sed 's|^\./||'); do
  check "GET /static/$f matches web/$f" bash -c "[ \$(curl -s -o '$OUT/body' -w '%{http_code}' '${U}static/$f') = 200 ] && cmp -s '$OUT/body' '$(dirname "$0")/../../web/$f'"
done
check "GET /static/missing.js -> 404" err_is 404 "${U}static/missing.js"

# --- writes and the token rule
check "POST /api/items without token -> 401" err_is 401 -F "image=@$W/707.jpg" "${U}api/items"
check "POST /api/items wrong token -> 401" err_is 401 -H 'Authorization: Bearer nope' -F "image=@$W/707.jpg" "${U}api/items"
st=$(req -H 'Authorization: Bearer s3cret' -F "image=@$W/707.jpg" -F id=user/horse-707 -F label=horses -F 'metadata={"colour": "brown"}' "${U}api/items")
check "POST /api/items right token -> 201 ITEM" bash -c "[ $st = 201 ] && /usr/bin/python3 -c \"
import json; d = json.load(open('$OUT/body'))
assert d == {'id': 'user/horse-707', 'label': 'horses', 'metadata': {'colour': 'brown'}, 'width': 384, 'height': 256,
             'image_url': '/api/items/user%2Fhorse-707/image'}, d\""
check "  ...saved as uploads/<sha256>.jpg" [ -f "$DB/uploads/$(sha256sum "$W/707.jpg" | cut -c1-64).jpg" ]
check "  ...searchable: top hit for the same photo" bash -c "[ $(req -F "image=@$W/707.jpg" "${U}api/search?k=1") = 200 ] && /usr/bin/python3 -c \"
import json; r = json.load(open('$OUT/body'))['results']; assert r[0]['id'] == 'user/horse-707' and r[0]['label'] == 'horses', r\""
check "  ...counted by /api/stats and /healthz" bash -c "[ \"\$(curl -s '${U}healthz')\" = '{\"status\":\"ok\",\"items\":41}' ]"
check "  ...thumbnail served" status_is 200 "${U}api/items/user%2Fhorse-707/image?size=64"
py "
import struct, zlib
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
raw = b''.join(b'\\0' + bytes(v for x in range(64) for v in (x * 4, y * 4, 128)) for y in range(64))
open('$OUT/grad.png', 'wb').write(b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 64, 64, 8, 2, 0, 0, 0))
                                  + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))"
check "POST /api/items X-Imgsim-Token, no id -> 201, id uploads/<sha256>.png" bash -c "[ \$(curl -s -o '$OUT/body' -w '%{http_code}' -H 'X-Imgsim-Token: s3cret' -F 'image=@$OUT/grad.png' '${U}api/items') = 201 ] && grep -q '\"id\":\"uploads/[0-9a-f]\{64\}\.png\"' '$OUT/body'"
check "POST /api/items bad metadata -> 400" err_is 400 -H 'X-Imgsim-Token: s3cret' -F "image=@$W/708.jpg" -F 'metadata=[1' "${U}api/items"
check "POST /api/items bad image -> 400" err_is 400 -H 'X-Imgsim-Token: s3cret' -F "image=@$OUT/trunc.jpg;type=image/jpeg" "${U}api/items"
check "POST /api/items .txt -> 415" err_is 415 -H 'X-Imgsim-Token: s3cret' -F "image=@$OUT/notes.txt" "${U}api/items"
check "POST /api/items raw body -> 415" err_is 415 -H 'X-Imgsim-Token: s3cret' -H 'Content-Type: image/jpeg' --data-binary @"$W/708.jpg" "${U}api/items"
check "DELETE without token -> 401" err_is 401 -X DELETE "${U}api/items/user%2Fhorse-707"
check "DELETE right token -> 200 {removed}" bash -c "[ $(req -X DELETE -H 'Authorization: Bearer s3cret' "${U}api/items/user%2Fhorse-707") = 200 ] && [ \"\$(cat '$OUT/body')\" = '{\"removed\":\"user/horse-707\"}' ]"
check "  ...then 404 on GET" err_is 404 "${U}api/items/user%2Fhorse-707"
check "  ...and no longer found by search" bash -c "[ $(req -F "image=@$W/707.jpg" "${U}api/search?k=3") = 200 ] && ! grep -q horse-707 '$OUT/body'"
check "DELETE an unknown id -> 404" err_is 404 -X DELETE -H 'Authorization: Bearer s3cret' "${U}api/items/nope.jpg"
check "DELETEs are counted under route=delete" bash -c "curl -s '${U}metrics' | grep -q '^imgsim_requests_total{route=\"delete\",status=\"404\"} [0-9]'"
check "metadata given twice -> 400" err_is 400 -H 'Authorization: Bearer s3cret' -F "image=@$W/708.jpg;type=image/jpeg" -F 'metadata={"a":1}' -F 'metadata={"b":2}' "${U}api/items"
check "a body on a route that takes none -> 413" err_is 413 -X GET -H 'Content-Type: text/plain' --data-binary 'xxxxxxxx' "${U}healthz"
check "where on the source column refused over HTTP -> 400" err_is 400 "${U}api/items/images%2F300.jpg/similar?where=source%3D%2Fetc%2Fpasswd"
check "an id that is not UTF-8 -> 404 JSON" err_is 404 "${U}api/items/bad%FFid"

# --- metrics and the access log
curl -s "${U}metrics" > "$OUT/metrics.txt"
check "/metrics has imgsim_requests_total by route and status" grep -q '^imgsim_requests_total{route="search",status="200"} [0-9]' "$OUT/metrics.txt"
check "/metrics has the latency histogram" grep -q '^imgsim_request_duration_seconds_bucket{route="similar",le="+Inf"} [0-9]' "$OUT/metrics.txt"
check "/metrics has imgsim_queue_depth and imgsim_items" bash -c "grep -q '^imgsim_queue_depth 0' '$OUT/metrics.txt' && grep -q '^imgsim_items 41' '$OUT/metrics.txt'"
check "access log: method, path, status, ms" grep -Eq '^POST /api/search 200 [0-9.]+ms$' "$OUT/main.err"
check "access log has the 405s and 404s" bash -c "grep -q '^GET /api/search 405 ' '$OUT/main.err' && grep -q '^GET /api/nothing 404 ' '$OUT/main.err'"

# --- a second server: no write token, a tiny body limit, one slot and no queue
start_server small --max-upload 100K --slots 1 --queue 1   # default threads: slots + queue + 2
U2=$URL
check "no token configured: POST /api/items -> 403" err_is 403 -H 'Authorization: Bearer s3cret' -F "image=@$W/707.jpg" "${U2}api/items"
check "no token configured: DELETE -> 403" err_is 403 -X DELETE "${U2}api/items/img%2F302.jpg"
head -c 150000 /dev/urandom > "$OUT/big.bin"
check "413 body over --max-upload (Content-Length)" err_is 413 -H 'Content-Type: image/jpeg' --data-binary @"$OUT/big.bin" "${U2}api/search"
check "413 body over --max-upload (chunked, while receiving)" err_is 413 -H 'Transfer-Encoding: chunked' -H 'Content-Type: image/jpeg' --data-binary @"$OUT/big.bin" "${U2}api/search"
check "413 multipart upload over the limit" err_is 413 -F "image=@$OUT/big.bin;type=image/jpeg" "${U2}api/search"
check "a body under the limit is fine" status_is 200 -H 'Content-Type: image/jpeg' --data-binary @"$Q" "${U2}api/search?k=1"
# 503: one slot, one queue place; 12 concurrent image searches (each embeds for a while under ASan)
for i in $(seq 1 12); do
  curl -s -o "$OUT/c$i.body" -D "$OUT/c$i.hdr" -w '%{http_code}' -H 'Content-Type: image/jpeg' \
    --data-binary @"$W/$((300 + i)).jpg" "${U2}api/search" > "$OUT/c$i.code" &
done
wait $(jobs -p | grep -v -x -F "$(printf '%s\n' "${pids[@]}")") 2>/dev/null
codes=$(cat "$OUT"/c*.code | tr '\n' ' ' | sed 's/\([0-9]\{3\}\)/\1 /g')
echo "  concurrent statuses: $codes"
n503=$(grep -l '^503$' "$OUT"/c*.code 2>/dev/null | wc -l); n200=$(grep -l '^200$' "$OUT"/c*.code 2>/dev/null | wc -l)
check "overload: some 503s" [ "$n503" -ge 1 ]
check "  ...and the rest 200 (every request answered)" [ $((n503 + n200)) -eq 12 ]
f503=$(grep -l '^503$' "$OUT"/c*.code | head -1); f503=${f503%.code}
check "  ...503 carries Retry-After and a JSON error" bash -c "grep -qi '^Retry-After: [0-9]' '$f503.hdr' && /usr/bin/python3 -c \"import json; assert json.load(open('$f503.body'))['error']\""
check "  ...counted in /metrics" bash -c "curl -s '${U2}metrics' | grep -q '^imgsim_requests_total{route=\"search\",status=\"503\"} [0-9]'"

# --- clean shutdown on SIGTERM, nothing reported by the sanitizers
for p in "$MAIN" "$PID"; do kill -TERM "$p"; done
wait "$MAIN"; rc1=$?; wait "$PID"; rc2=$?
pids=()
check "SIGTERM: both servers exit 0" [ $rc1 -eq 0 -a $rc2 -eq 0 ]
check "  ...logged the shutdown" grep -q "SIGTERM, shutting down" "$OUT/main.err"
for n in main small; do
  check "no AddressSanitizer/LeakSanitizer report ($n)" bash -c "! grep -Eq 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error' '$OUT/$n.err'"
done
check "the collection is intact after the writes" bash -c "$BIN info --db '$DB' | grep -q 'items: *41'"

echo "$fails failed"
[ "$fails" -eq 0 ]
