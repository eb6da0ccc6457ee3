#!/usr/bin/env bash
# `make fuzz`: the libFuzzer harnesses of tests/fuzz, built by clang with AddressSanitizer and
# UBSan in build-fuzz/, each run for FUZZ_SECONDS (default 60) from its seeds (tests/fuzz/corpus/)
# and the corpus earlier runs grew (build-fuzz/corpus/). Prints executions, coverage and corpus
# size per harness; a crash leaves its input in build-fuzz/crashes/<harness>/ and fails the run.
#   FUZZ_SECONDS=600 make fuzz           ten minutes each
#   FUZZ_JOBS=2 make fuzz                two harnesses at a time
#   FUZZ_TARGETS="idx http" make fuzz    only these
# Reproduce a crash: build-fuzz/tests/fuzz/fuzz_<harness> build-fuzz/crashes/<harness>/crash-*
{
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
jobs=${FUZZ_JOBS:-1}
read -r -a targets <<< "${FUZZ_TARGETS:-idx image checkpoint resume sweep http}"
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -ge 1 ]] || { echo "fuzz: FUZZ_SECONDS must be a whole number of seconds, not '$seconds'" >&2; exit 2; }
[[ "$jobs" =~ ^[0-9]+$ && "$jobs" -ge 1 ]] || { echo "fuzz: FUZZ_JOBS must be a count, not '$jobs'" >&2; exit 2; }
for t in "${targets[@]}"; do
  [[ -f tests/fuzz/fuzz_$t.cpp ]] || { echo "fuzz: no harness '$t' (tests/fuzz/fuzz_$t.cpp)" >&2; exit 2; }
done

scripts/setup.sh --fuzz
build=build-fuzz
start=$(date +%s)
cmake -S . -B $build -DTAILOR_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" > /dev/null
cmake --build $build -j "$(nproc)" --target "${targets[@]/#/fuzz_}" > $build/build.log 2>&1 ||
  { tail -30 $build/build.log; echo "fuzz: build failed (log: $build/build.log)" >&2; exit 1; }
mkdir -p $build/logs
echo "fuzz: harnesses built in $(( $(date +%s) - start )) s; ${seconds} s each, $jobs at a time"

run_one() {
  local t=$1 corpus=$build/corpus/$1 crashes=$build/crashes/$1 log=$build/logs/fuzz_$1.log
  mkdir -p "$corpus" "$crashes"
  # -timeout: one input running 30 s is a hang, reported as a crash; -rss_limit_mb: so is an
  # input that makes the process grow past 2 GiB (an allocation out of proportion to it).
  local rc=0
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
    $build/tests/fuzz/fuzz_"$t" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" tests/fuzz/corpus/"$t" > "$log" 2>&1 || rc=$?
  local runs cov ft corp
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  corp=$(find "$corpus" -type f | wc -l)
  if [[ $rc -eq 0 ]]; then
    echo "fuzz_$t: ${runs:-?} runs in $seconds s ($(( ${runs:-0} / seconds ))/s), coverage ${cov:-?} edges, ${ft:-?} features, corpus $corp; no crash"
  else
    echo "fuzz_$t: FAILED after ${runs:-?} runs (exit $rc): $(grep -m1 -E 'ERROR|runtime error|deadly signal|SUMMARY' "$log" || echo 'see the log'); input in $crashes/, log $log"
  fi
  return $rc
}

# Each harness writes its line and its exit code to files: `jobs` reaps finished jobs, after
# which `wait PID` can no longer report their status.
failed=0
rm -f $build/logs/*.result $build/logs/*.rc
for t in "${targets[@]}"; do
  ( rc=0; run_one "$t" > $build/logs/$t.result 2>&1 || rc=$?; echo $rc > $build/logs/$t.rc ) &
  while [[ $(jobs -rp | wc -l) -ge $jobs ]]; do sleep 1; done
done
wait
for t in "${targets[@]}"; do
  cat $build/logs/$t.result
  [[ "$(cat $build/logs/$t.rc 2>/dev/null)" == 0 ]] || failed=1
done
echo "fuzz: done in $(( $(date +%s) - start )) s"
exit $failed
}
