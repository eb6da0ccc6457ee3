#!/usr/bin/env bash
# CTest's browser test of `tailor serve`: train two small runs on the real data, serve them, then
# Chromium draws, uploads and clicks through the page (serve_test.mjs).
#   tests/browser/run_serve_test.sh TAILOR_BINARY WEB_DIR [STATIC_DIR]
# STATIC_DIR (optional, e.g. web/app) serves the page's files from disk instead of the built-in ones.
set -euo pipefail
tailor=$1
web=$2
static=${3:-}
work=$(mktemp -d)
server=
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2> /dev/null || true; wait "$server" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

train=(--epochs 1 --threads 1 --progress none)
"$tailor" train --model fcn --weights 50k "${train[@]}" --out "$work/fcn" > /dev/null
"$tailor" train --model cnn --weights 20k --val 1000 "${train[@]}" --out "$work/cnn" > /dev/null

args=(serve "$work/fcn" "$work/cnn" --port 0)
[[ -n $static ]] && args+=(--static-dir "$static")
# shellcheck source=tests/browser/serve_lib.sh
source "$(dirname "$0")/serve_lib.sh"
start_serve "$work/serve.log" "$tailor" "${args[@]}"
echo "tailor serve is listening on $url"

# A test image, enlarged so the upload goes through the same conversion as `tailor predict`.
node -e 'fetch(process.argv[1]).then(async (r) => {
  if (!r.ok) throw new Error(r.status + " " + (await r.text()));
  require("fs").writeFileSync(process.argv[2], Buffer.from(await r.arrayBuffer()));
}).catch((e) => { console.error("FAIL: test image: " + e.message); process.exit(1); })' \
  "$url/api/testimage/0.png?scale=5" "$work/item.png"

# `tailor predict RUN FILE --top 1` prints "FILE: CLASS NN.N%".
line=$("$tailor" predict "$work/fcn" "$work/item.png" --top 1)
expected=${line#"$work/item.png: "}
expected=${expected% *}
echo "tailor predict says: $expected"

status=0
node "$(dirname "$0")/serve_test.mjs" "$web" "$url" "$work/item.png" "$expected" "$work/screenshot.png" || status=$?
if ! kill -0 "$server" 2> /dev/null; then
  echo "FAIL: tailor serve is no longer running; its log:"
  cat "$work/serve.log"
  status=1
fi
exit $status
