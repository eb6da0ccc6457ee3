#!/usr/bin/env bash
# Side-by-side speed of tailor and PyTorch on this CPU (see bench/compare_pytorch.py).
#   bench/compare_pytorch.sh [EPOCHS]     (default 3; `make bench` runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
exec /usr/bin/python3 bench/compare_pytorch.py --epochs "${1:-3}"
