#!/usr/bin/env bash
# test_browser.sh — the web page in a real browser: Debian's chromium driven by Playwright
# (tests/web/browser.mjs) against `imgsim serve` on a free loopback port, on a collection of
# 20 Wang-1k photos of each class that does not hold photo 350.jpg (a bus). Uploads that bus,
# expects k results with "buses" first, clicks a result, exercises k / label / category / keys /
# errors, checks a 360 px wide phone viewport, and saves screenshots under $IMGSIM_TEST_OUT/web.
set -uo pipefail
BIN=${IMGSIM_BIN:?}; SHARED=${IMGSIM_SHARED:?}; OUT=${IMGSIM_TEST_OUT:?}/web; DATA=${IMGSIM_DATA:?}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
rm -rf "$OUT"; mkdir -p "$OUT"
export IMGSIM_MODEL_DIR=$OUT/models
unset IMGSIM_DB IMGSIM_MODEL IMGSIM_WRITE_TOKEN
W=$DATA/wang1k/images
fail() { echo "FAIL $*"; exit 1; }

# --- tools: chromium (apt), node + playwright-core (npm)
if [ ! -x /usr/bin/chromium ] || ! command -v node > /dev/null || ! command -v npm > /dev/null; then
    "$ROOT/scripts/deps.sh" test || fail "cannot install chromium/node (scripts/deps.sh test)"
fi
# node_modules lives under build/, not tests/: scripts/run_tests.sh runs every tests/**/*.sh, and
# playwright-core ships shell scripts (bin/reinstall_chrome_*.sh) that must never run.
NODE_DIR=${IMGSIM_WEB_NODE_DIR:-$ROOT/build/web-node}
mkdir -p "$NODE_DIR"
for f in package.json package-lock.json; do
    cmp -s "$HERE/$f" "$NODE_DIR/$f" || { cp "$HERE/$f" "$NODE_DIR/$f"; rm -rf "$NODE_DIR/node_modules"; }
done
if [ ! -d "$NODE_DIR/node_modules/playwright-core" ]; then
    (cd "$NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund > "$OUT/npm.log" 2>&1) \
        || { cat "$OUT/npm.log"; fail "npm install playwright-core (in $NODE_DIR)"; }
fi

# --- a labelled collection: photos 0..19 of every class (so not 350.jpg), ids like images/300.jpg
$BIN model install edgetpu_v1 --from "$SHARED/models" > /dev/null || fail "model install"
classes=(africans beaches buildings buses dinosaurs elephants flowers horses mountains food)
S=$OUT/set; mkdir -p "$S/images"
{
    echo 'path,label'
    for c in 0 1 2 3 4 5 6 7 8 9; do for j in $(seq 0 19); do
        i=$((c * 100 + j)); cp "$W/$i.jpg" "$S/images/$i.jpg"; echo "images/$i.jpg,${classes[$c]}"
    done; done
} > "$S/labels.csv"
DB=$OUT/db
$BIN index --db "$DB" --model edgetpu_v1 --csv "$S/labels.csv" --path-column path --label-column label --quiet \
    > "$OUT/index.out" 2> "$OUT/index.err" || { cat "$OUT/index.err"; fail "index"; }
[ -f "$S/images/350.jpg" ] && fail "the query photo must not be in the collection"

# --- the server on a free loopback port (--port 0: the kernel picks; the start line tells)
LOG=$OUT/server.log
$BIN serve --db "$DB" --host 127.0.0.1 --port 0 > "$LOG" 2>&1 &
SPID=$!
stop_server() {
    if kill -0 "$SPID" 2> /dev/null; then
        kill -TERM "$SPID"
        for _ in $(seq 1 100); do kill -0 "$SPID" 2> /dev/null || break; sleep 0.1; done
        kill -0 "$SPID" 2> /dev/null && { echo "server ignored SIGTERM"; kill -KILL "$SPID"; }
    fi
    wait "$SPID" 2> /dev/null
}
trap stop_server EXIT
URL=""
for _ in $(seq 1 600); do
    URL=$(grep -Eo 'imgsim serve: http://[^ /]+:[0-9]+/' "$LOG" | head -1 | sed 's/^imgsim serve: //')
    [ -n "$URL" ] && break
    kill -0 "$SPID" 2> /dev/null || { cat "$LOG"; fail "server exited before listening"; }
    sleep 0.1
done
[ -n "$URL" ] || { cat "$LOG"; fail "no start line from imgsim serve within 60 s"; }
echo "server at $URL"

# --- the browser
CHROMIUM=/usr/bin/chromium IMGSIM_WEB_NODE_DIR=$NODE_DIR node "$HERE/browser.mjs" "$URL" "$OUT" "$W/350.jpg"
rc=$?
stop_server; trap - EXIT
echo "--- server log (tail)"; tail -5 "$LOG"
[ $rc -eq 0 ] || fail "browser checks (exit $rc)"
echo "ok   browser test"
