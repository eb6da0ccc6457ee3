#!/usr/bin/env bash
# Training beside other work: the same CNN-100k training alone, then two at once, with 2 threads
# each (data-parallel steps, the default, and --data-parallel off) and with 1 thread each, and
# PyTorch 1.13 measured the same way beside it. Every epoch of
# every run is reported against the solo run's median epoch (sharing 2 cores between 2 jobs
# should cost about 2x).
#   bench/contention.sh [EPOCHS] [MODEL]     (default 2 epochs, cnn; MODEL fcn or cnn)
# Needs build/tailor (make) and, for the PyTorch rows, Debian's python3-torch with OpenBLAS
# (scripts/setup.sh --torch); without it those rows are left out.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-2}
model=${2:-cnn}
tailor=build/tailor
[[ -x $tailor ]] || { echo "contention.sh: $tailor is missing: run make first" >&2; exit 1; }
work=$(mktemp -d /tmp/tailor_contention.XXXXXX)
trap 'rm -rf "$work"' EXIT

# One tailor training; prints its epoch seconds, space-separated. $extra: further train flags.
extra=""
tailor_run() {  # name threads
  # shellcheck disable=SC2086
  "$tailor" train --model "$model" --weights 100k --epochs "$epochs" --val 0 --threads "$2" --progress none \
    $extra --out "$work/$1" > "$work/$1.log" 2>&1
  awk -F, 'NR > 1 { printf "%s ", $8 }' "$work/$1/metrics.csv"
}

have_torch=0
if /usr/bin/python3 -c 'import torch' 2> /dev/null; then
  have_torch=1
  "$tailor" summary --model "$model" --weights 100k --json > "$work/model.json"
fi
torch_run() {  # name threads
  /usr/bin/python3 bench/torch_train.py "$work/model.json" --epochs "$epochs" --threads "$2" --val 0 > "$work/$1.json"
  /usr/bin/python3 -c 'import json, sys; print(" ".join("%.3f" % t for t in json.load(open(sys.argv[1]))["epoch_seconds"]))' \
    "$work/$1.json"
}

# Runs `fn` alone, then two at once; prints one line per run: label, epochs, worst ratio to solo.
measure() {  # label fn threads
  local label=$1 fn=$2 threads=$3
  local name=${label//[^a-z0-9]/_}$threads solo a b
  solo=$($fn "$name-solo" "$threads")
  $fn "$name-a" "$threads" > "$work/a.out" &
  local pa=$!
  $fn "$name-b" "$threads" > "$work/b.out" &
  local pb=$!
  wait $pa $pb
  a=$(cat "$work/a.out")
  b=$(cat "$work/b.out")
  /usr/bin/python3 - "$label" "$threads" "$solo" "$a" "$b" << 'EOF'
import statistics, sys
label, threads, solo, a, b = sys.argv[1:]
solo = [float(t) for t in solo.split()]
ref = statistics.median(solo)
def row(name, ts):
    ts = [float(t) for t in ts.split()]
    ratios = ", ".join("%.2f" % (t / ref) for t in ts)
    print("  %-24s %s   (x solo: %s; worst %.2f)" % (name, " ".join("%7.2f" % t for t in ts), ratios,
                                                    max(t / ref for t in ts)))
print("%s" % label)
print("  %-24s %s" % ("alone, %s thread(s)" % threads, " ".join("%7.2f" % t for t in solo)))
row("two at once, run 1", a)
row("two at once, run 2", b)
EOF
}

echo "contention: $model-100k, $epochs epochs of 60,000 images, batch 64; $(nproc) cores; seconds per epoch"
measure tailor tailor_run 2
extra="--data-parallel off"
measure "tailor, --data-parallel off" tailor_run 2
extra=""
measure tailor tailor_run 1
if [[ $have_torch == 1 ]]; then
  measure pytorch torch_run 2
  measure pytorch torch_run 1
else
  echo "(PyTorch rows left out: python3-torch is not installed; scripts/setup.sh --torch installs it)"
fi
