#!/usr/bin/env bash
# CTest's browser test of colour in `tailor serve`: a small RGB image folder (made here with
# OpenCV, Debian's python3-opencv), an RGB run trained on it, then Chromium uploads a colour
# picture and checks that the page shows it in colour (serve_colour_test.mjs).
#   tests/browser/run_serve_colour_test.sh TAILOR_BINARY WEB_DIR
set -euo pipefail
tailor=$1
web=$2
work=$(mktemp -d)
server=
cleanup() {
  if [[ -n $server ]]; then kill "$server" 2> /dev/null || true; wait "$server" 2> /dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export XDG_CACHE_HOME=$work/cache

# Three classes of 16x16 pictures: a red, a green and a blue disc on dark noise.
/usr/bin/python3 - "$work/set" <<'PY'
import os, sys
import cv2
import numpy as np
root = sys.argv[1]
rng = np.random.default_rng(1)
colours = {"red": (40, 40, 220), "green": (40, 200, 40), "blue": (220, 60, 40)}  # BGR
for split, count in (("train", 40), ("test", 10)):
    for name, bgr in colours.items():
        os.makedirs(f"{root}/{split}/{name}")
        for i in range(count):
            img = rng.integers(0, 50, (16, 16, 3), dtype=np.uint8)
            cv2.circle(img, (8 + int(rng.integers(-2, 3)), 8 + int(rng.integers(-2, 3))), 5, bgr, -1)
            cv2.imwrite(f"{root}/{split}/{name}/{i:02d}.png", img)
big = np.zeros((64, 64, 3), np.uint8)
cv2.circle(big, (32, 32), 22, (40, 40, 220), -1)
cv2.imwrite(f"{root}/upload-red.png", big)
PY

"$tailor" train --data "$work/set" --color rgb --model cnn --channels 8,16 --hidden 16 --epochs 3 --val 0 \
  --threads 1 --progress none --out "$work/rgb" > /dev/null
# shellcheck source=tests/browser/serve_lib.sh
source "$(dirname "$0")/serve_lib.sh"
start_serve "$work/serve.log" "$tailor" serve "$work/rgb" --port 0
line=$("$tailor" predict "$work/rgb" "$work/set/upload-red.png" --top 1)
expected=${line#"$work/set/upload-red.png: "}
expected=${expected% *}
echo "tailor serve is listening on $url; tailor predict says: $expected"
node "$(dirname "$0")/serve_colour_test.mjs" "$web" "$url" "$work/set/upload-red.png" "$expected"
