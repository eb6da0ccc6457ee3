#!/usr/bin/env bash
# CTest's browser test: a small sweep on the real data, its report.html, then Chromium checks it.
#   tests/browser/run_report_test.sh TAILOR_BINARY WEB_DIR
set -euo pipefail
tailor=$1
web=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/browser.toml" <<'TOML'
name = "browser"
seeds = [1, 2]
[base]
model = "fcn"
hidden = [16]
epochs = 3
val = 1000
[grid]
lr = [0.001, 0.01]
TOML
"$tailor" sweep "$work/browser.toml" --out "$work/out" --progress none --threads-per-job 1 > /dev/null
node "$(dirname "$0")/report_test.mjs" "$web" "$work/out/report.html" "$work/screenshot.png"
