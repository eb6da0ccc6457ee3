#!/usr/bin/env bash
# Side-by-side: trains the same FCN-100k and CNN-100k (as `tailor train --weights 100k` builds
# them; batch 64, Adam 1e-3) in tailor and in PyTorch (Debian python3-torch) in one run, and prints
# median seconds per epoch and the ratio. Each program gets its best thread count of 1 and 2.
#   bench/compare_pytorch.sh [EPOCHS]     (default 3; `make bench` runs it)
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-3}
tailor=build/tailor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

printf "%-8s %8s %14s %14s %8s\n" model weights "tailor s/ep" "pytorch s/ep" ratio
for model in fcn cnn; do
  "$tailor" summary --model "$model" --weights 100k --json > "$work/$model.json"
  weights=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['weights'])" "$work/$model.json")
  best_t=""
  for th in 1 2; do
    "$tailor" train --model "$model" --weights 100k --epochs "$epochs" --batch-size 64 --optimizer adam --lr 1e-3 \
      --threads "$th" --progress none --out "$work/run_$model$th" > /dev/null
    t=$(tail -n +2 "$work/run_$model$th/metrics.csv" | cut -d, -f8 | median)
    best_t=$(/usr/bin/python3 -c "import sys; a=sys.argv[1]; b=float(sys.argv[2]); print(b if not a else min(float(a), b))" "$best_t" "$t")
  done
  best_p=""
  for th in 1 2; do
    p=$(/usr/bin/python3 bench/torch_train.py "$work/$model.json" --epochs "$epochs" --threads "$th" \
        | /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['median_epoch_seconds'])")
    best_p=$(/usr/bin/python3 -c "import sys; a=sys.argv[1]; b=float(sys.argv[2]); print(b if not a else min(float(a), b))" "$best_p" "$p")
  done
  ratio=$(/usr/bin/python3 -c "import sys; print(f'{float(sys.argv[2])/float(sys.argv[1]):.2f}x')" "$best_t" "$best_p")
  printf "%-8s %8s %14.3f %14.3f %8s\n" "$model-100k" "$weights" "$best_t" "$best_p" "$ratio"
done
echo "(median seconds per training epoch of 55,000 images, batch 64, Adam; best of 1 and 2 threads; ratio = pytorch / tailor)"
