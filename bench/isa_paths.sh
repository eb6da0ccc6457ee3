#!/usr/bin/env bash
# The paths of kernels/isa.hpp side by side: `tailor bench` epochs of CNN-100k (and FCN-100k) on
# every path this CPU runs, the paths alternating within each round so that the machine's drift
# falls on all of them alike; medians per path at the end. With OLD=path/to/another/tailor, that
# binary runs as one more column (e.g. a -march=native build of an earlier commit); PATHS picks
# the paths (default "avx512 avx2 baseline"; one this CPU cannot run says so and is left out).
#   bench/isa_paths.sh [ROUNDS] [MODELS]       (defaults: 5, cnn)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
models=${2:-cnn}
tailor=${TAILOR:-build/tailor}
read -r -a paths <<< "${PATHS:-avx512 avx2 baseline}"
[[ -n ${OLD:-} ]] && paths=(old "${paths[@]}")
declare -A times
grep -m1 "model name" /proc/cpuinfo
for ((r = 1; r <= rounds; r++)); do
  for p in "${paths[@]}"; do
    if [[ $p == old ]]; then cmd=("$OLD"); else cmd=(env TAILOR_ISA="$p" "$tailor"); fi
    out=$("${cmd[@]}" bench --models "$models" --batch-sizes 64 --epochs 3 2>&1) || {
      echo "$p: cannot run here (${out%%$'\n'*})"; continue; }
    while read -r model batch weights sec rest; do
      times[$p/$model]+="$sec "
      echo "round $r  $p  $model  $sec s/epoch"
    done < <(grep -E '^(cnn|fcn)-' <<< "$out")
  done
done
echo
for key in "${!times[@]}"; do
  median=$(tr ' ' '\n' <<< "${times[$key]}" | grep . | sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}')
  echo "$key: median $median s/epoch of ${times[$key]}"
done | sort
