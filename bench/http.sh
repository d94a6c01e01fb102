#!/usr/bin/env bash
# http.sh — load test of `imgsim serve` with wrk (Debian's): 2 threads, 32 connections,
# BENCH_SECONDS (default 60) against
#   1. GET  /api/items/{id}/similar?k=10         (vector search by a stored item)
#   2. POST /api/search?k=10 with a JPEG body     (decode + embed + search; bench/http_search.lua)
# Builds (or reuses) a Wang-1k collection, starts its own server on a free loopback port and
# stops it at the end. Prints requests/s, p50/p99 latency, non-2xx responses, socket errors
# and the server's RSS before and after each run, then one JSON line per run.
# Env: IMGSIM_BIN (default build/release/imgsim), IMGSIM_SHARED (default ../shared),
#      BENCH_SECONDS, BENCH_THREADS (2), BENCH_CONNECTIONS (32), BENCH_DIR (build/bench/http),
#      BENCH_SERVE_ARGS (extra options for imgsim serve, e.g. "--threads 4").
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${IMGSIM_BIN:-$ROOT/build/release/imgsim}
SHARED=${IMGSIM_SHARED:-$ROOT/../shared}
SECONDS_RUN=${BENCH_SECONDS:-60}
THREADS=${BENCH_THREADS:-2}
CONNS=${BENCH_CONNECTIONS:-32}
DIR=${BENCH_DIR:-$ROOT/build/bench/http}
DATA=$DIR/data
[ -x "$BIN" ] || { echo "http.sh: no imgsim binary at $BIN (make release)" >&2; exit 1; }
command -v wrk > /dev/null || "$ROOT/scripts/deps.sh" bench
command -v wrk > /dev/null || { echo "http.sh: wrk is missing" >&2; exit 1; }
mkdir -p "$DIR" "$DATA"

# --- the collection: all of Wang-1k with labels (re-runs find everything unchanged)
export IMGSIM_MODEL_DIR=$DIR/models
unset IMGSIM_DB IMGSIM_MODEL IMGSIM_WRITE_TOKEN
"$BIN" model install edgetpu_v1 --from "$SHARED/models" > /dev/null
[ -f "$DATA/wang1k/labels.csv" ] || tar -xzf "$SHARED/data/wang1k.tar.gz" -C "$DATA"
DB=$DIR/db
echo "http.sh: indexing Wang-1k into $DB ..." >&2
"$BIN" index --db "$DB" --model edgetpu_v1 --csv "$DATA/wang1k/labels.csv" --path-column path \
    --label-column label --quiet >&2
"$BIN" neighbours --db "$DB" > /dev/null 2>&1 || true    # lets /similar read the table when fresh
JPEG=$DATA/wang1k/images/350.jpg
ID=images/350.jpg
ID_ENC=images%2F350.jpg

# --- the server on a free loopback port
LOG=$DIR/server.log
# shellcheck disable=SC2086
"$BIN" serve --db "$DB" --host 127.0.0.1 --port 0 ${BENCH_SERVE_ARGS:-} > "$LOG" 2>&1 &
SPID=$!
cleanup() {
    if kill -0 "$SPID" 2> /dev/null; then
        kill -TERM "$SPID"
        for _ in $(seq 1 100); do kill -0 "$SPID" 2> /dev/null || break; sleep 0.1; done
        kill -0 "$SPID" 2> /dev/null && kill -KILL "$SPID"
    fi
    wait "$SPID" 2> /dev/null || true
}
trap cleanup EXIT
URL=""
for _ in $(seq 1 600); do
    URL=$(grep -Eo 'imgsim serve: http://[^ /]+:[0-9]+/' "$LOG" | head -1 | sed 's/^imgsim serve: //; s#/$##') || true
    [ -n "$URL" ] && break
    kill -0 "$SPID" 2> /dev/null || { cat "$LOG" >&2; echo "http.sh: server exited" >&2; exit 1; }
    sleep 0.1
done
[ -n "$URL" ] || { echo "http.sh: server did not start" >&2; exit 1; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$SPID/status"; }
# both requests must work before they are measured
curl -fsS -o /dev/null "$URL/api/items/$ID_ENC/similar?k=10" || { echo "http.sh: GET similar fails" >&2; exit 1; }
curl -fsS -o /dev/null -H 'Content-Type: image/jpeg' --data-binary "@$JPEG" "$URL/api/search?k=10" \
    || { echo "http.sh: POST search fails" >&2; exit 1; }

echo "server $URL (pid $SPID), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "wrk: $THREADS threads, $CONNS connections, ${SECONDS_RUN} s per run"
# to_ms "1.23ms" | "850.00us" | "2.01s" -> milliseconds
to_ms() { awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); n = v + 0;
    if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000; printf "%.3f", n }'; }
run() {
    local key=$1 name=$2; shift 2
    local out=$DIR/wrk_$key.txt before after
    before=$(rss_kb)
    wrk -t"$THREADS" -c"$CONNS" -d"${SECONDS_RUN}s" --timeout 10s --latency "$@" > "$out" 2>&1 \
        || { cat "$out" >&2; echo "http.sh: wrk failed" >&2; exit 1; }
    after=$(rss_kb)
    local rps p50 p99 non2xx sockerr total
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out"); non2xx=${non2xx:-0}
    sockerr=$(awk '/Socket errors:/ {s = 0; for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) s += $i; print s}' "$out"); sockerr=${sockerr:-0}
    total=$(awk '/requests in/ {print $1}' "$out")
    printf '%-31s %9s req/s  p50 %8s ms  p99 %8s ms  requests %7s  non-2xx %s  socket errors %s  RSS %s -> %s MB\n' \
        "$name" "$rps" "$p50" "$p99" "$total" "$non2xx" "$sockerr" \
        "$(awk -v k="$before" 'BEGIN{printf "%.1f", k/1024}')" "$(awk -v k="$after" 'BEGIN{printf "%.1f", k/1024}')"
    printf '{"bench":"http","endpoint":"%s","seconds":%s,"threads":%s,"connections":%s,"requests":%s,"rps":%s,"p50_ms":%s,"p99_ms":%s,"non2xx":%s,"socket_errors":%s,"rss_before_kb":%s,"rss_after_kb":%s}\n' \
        "$key" "$SECONDS_RUN" "$THREADS" "$CONNS" "${total:-0}" "${rps:-0}" "$p50" "$p99" "$non2xx" "$sockerr" "$before" "$after" >> "$DIR/results.jsonl"
}
: > "$DIR/results.jsonl"
run similar "GET /api/items/{id}/similar" "$URL/api/items/$ID_ENC/similar?k=10"
run search "POST /api/search (JPEG)" -s "$ROOT/bench/http_search.lua" "$URL" -- "$JPEG" "k=10"
echo "server RSS at the end: $(( $(rss_kb) / 1024 )) MB; 503s (deliberate overload answers) count as non-2xx"
cat "$DIR/results.jsonl"
echo "full wrk output: $DIR/wrk_*.txt; server log: $LOG" >&2
