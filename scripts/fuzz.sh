#!/usr/bin/env bash
# Fuzzes every parser a user feeds yolo2 (tests/fuzz/targets.cpp) with libFuzzer under clang's
# address and undefined-behaviour sanitizers, SECONDS per target (default 60), one target after the
# other on one core each (JOBS in parallel, default 1):
#   scripts/fuzz.sh [SECONDS]          all targets
#   TARGETS="image config" scripts/fuzz.sh 600
#   scripts/fuzz.sh --grow             refresh the grown corpus (below) from this machine's runs
# Each target starts from the committed seed corpus (tests/fuzz/corpus/<target>) and keeps what it
# finds in build-fuzz/corpus/<target> (kept between runs); an input over 1 s, over 1 GB of memory or
# that crashes is written to build-fuzz/crashes/<target>/ and the script exits 1. Keep such an
# input, once fixed, in tests/fuzz/regressions/<target>/: ctest replays the corpus and the
# regressions (Fuzz.ReplayCorpusAndRegressions). Prints execs/s and coverage per target.
# The grown corpus, tests/fuzz/grown/<target> (committed; ctest replays it and every run starts
# from it too): what the runs found, minimized by libFuzzer's merge to the inputs that add coverage
# beyond the seed corpus, each cut to 4 KiB. `--grow` rebuilds it from build-fuzz/corpus and itself.
# Every target's run is appended to tests/fuzz/ledger.tsv (date, commit fuzzed, seconds, execs,
# execs/s, coverage, corpus size, result, CPU; commit it): the fuzzing hours add up across sessions
# and machines, and the script ends with each target's total from the ledger.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER=${1:-60}
bash scripts/setup.sh --fuzz >/dev/null
cmake -S tests/fuzz -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build-fuzz -j"${BUILD_JOBS:-2}" >/dev/null
ALL=$(ls tests/fuzz/corpus)
TARGETS=${TARGETS:-$ALL}
JOBS=${JOBS:-1}
if [ "$SECONDS_PER" = --grow ]; then
  for t in $TARGETS; do
    new=build-fuzz/grown.$t
    rm -rf "$new" && mkdir -p "$new" "build-fuzz/corpus/$t" "tests/fuzz/grown/$t" build-fuzz/logs
    cp tests/fuzz/corpus/"$t"/* "$new"/  # merge keeps what adds to these; they are removed after
    YOLO2_FUZZ_TARGET=$t build-fuzz/yolo2_fuzz -merge=1 -timeout=1 -rss_limit_mb=1024 -max_len=4096 "$new" \
      "tests/fuzz/grown/$t" "build-fuzz/corpus/$t" >"build-fuzz/logs/grow-$t.log" 2>&1
    for f in tests/fuzz/corpus/"$t"/*; do rm -f -- "$new/$(basename "$f")"; done
    rm -rf "tests/fuzz/grown/$t" && mv "$new" "tests/fuzz/grown/$t"
    printf '%-16s %5d inputs %8d bytes\n' "$t" "$(ls "tests/fuzz/grown/$t" | wc -l)" \
      "$(cat "tests/fuzz/grown/$t"/* /dev/null | wc -c)"
  done
  exit 0
fi
status=0
printf '%-16s %10s %10s %8s %8s %s\n' target seconds execs execs/s cov result
run_target() {
  local t=$1 log=build-fuzz/logs/$1.log
  mkdir -p "build-fuzz/corpus/$t" "build-fuzz/crashes/$t" build-fuzz/logs
  local rc=0
  YOLO2_FUZZ_TARGET=$t build-fuzz/yolo2_fuzz -max_total_time="$SECONDS_PER" -timeout=1 -rss_limit_mb=1024 \
    -max_len=1048576 -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t/" \
    "build-fuzz/corpus/$t" "tests/fuzz/corpus/$t" $(ls -d "tests/fuzz/grown/$t" 2>/dev/null) >"$log" 2>&1 || rc=$?
  local execs cov rate
  execs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -1 || true)
  cov=$(grep -oP '\bcov: \K[0-9]+' "$log" | tail -1 || true)
  rate=$(( ${execs:-0} / (SECONDS_PER > 0 ? SECONDS_PER : 1) ))
  printf '%-16s %10s %10s %8s %8s %s\n' "$t" "$SECONDS_PER" "${execs:-?}" "$rate" "${cov:-?}" \
    "$([ $rc = 0 ] && echo ok || echo "FAILED (rc $rc, see $log and build-fuzz/crashes/$t/)")"
  local corpus cpu
  corpus=$(find "build-fuzz/corpus/$t" -type f | wc -l)
  cpu=$(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //; s/\t/ /g')
  (flock 9
   printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$BUILT" \
     "$t" "$SECONDS_PER" "${execs:-0}" "$rate" "${cov:-0}" "$corpus" "$([ $rc = 0 ] && echo ok || echo "failed rc $rc")" \
     "$cpu" >>"$LEDGER") 9>>"$LEDGER"
  return $rc
}
LEDGER=tests/fuzz/ledger.tsv
# The commit the fuzz build was made from, "-dirty" when a source it compiles differs from it (the
# ledger itself, which the runs append to, does not count).
BUILT=$(git describe --always)
git diff --quiet HEAD -- src include cmake tests/fuzz ':(exclude)tests/fuzz/ledger.tsv' || BUILT="$BUILT-dirty"
[ -s "$LEDGER" ] || printf 'date\tcommit\ttarget\tseconds\texecs\texecs_per_s\tcoverage\tcorpus_files\tresult\tcpu\n' >"$LEDGER"
export -f run_target
export SECONDS_PER LEDGER BUILT
if [ "$JOBS" -gt 1 ]; then
  printf '%s\n' $TARGETS | xargs -P "$JOBS" -I{} bash -c 'run_target {}' || status=1
else
  for t in $TARGETS; do run_target "$t" || status=1; done
fi
echo "fuzzed in total (tests/fuzz/ledger.tsv, runs that ended ok; target: 3600 s each):"
awk -F'\t' 'NR > 1 && $9 == "ok" { s[$3] += $4 } END { for (t in s) printf "  %-16s %7d s\n", t, s[t] }' "$LEDGER" | sort
exit $status
