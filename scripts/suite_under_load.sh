#!/usr/bin/env bash
# The full test suite N times in a row on a fresh clone while a busy loop keeps one core busy
# (issue 10's robustness check; a command of its own, not a test):
#   bash scripts/suite_under_load.sh [RUNS=3] [CLONE_DIR]
# Clones this repository's HEAD beside it (so ../shared/vendor is found as in CI), runs the README's
# set-up there, then RUNS times `python -m pytest -q` with `python -c 'while 1: pass'` pinned to the
# last CPU at normal priority. Prints one line per run (exit code, counts, wall time) and a summary;
# exits non-zero when any run failed. Each run's output is kept in CLONE_DIR/suite_run_K.log.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
runs=${1:-3}
clone=${2:-"$(dirname "$repo")/suite_under_load_clone"}
commit=$(git -C "$repo" rev-parse --short HEAD)
# One at a time: a second one would delete the clone under the first and its graphs would cross-talk.
exec 9>"${TMPDIR:-/tmp}/gmt_ros_suite_under_load.lock"
flock -n 9 || { echo "[load] another suite_under_load.sh is running (lock ${TMPDIR:-/tmp}/gmt_ros_suite_under_load.lock)"; exit 1; }
rm -rf "$clone"
git clone -q "$repo" "$clone"
cd "$clone"
echo "[load] commit $commit, clone $clone, $(nproc) CPUs, busy loop pinned to CPU $(( $(nproc) - 1 ))"
bash scripts/setup.sh >setup.log 2>&1 || { echo "[load] set-up failed: see $clone/setup.log"; exit 1; }

taskset -c "$(( $(nproc) - 1 ))" python3 -c 'while 1: pass' &
busy=$!
trap 'kill $busy 2>/dev/null || true' EXIT

failed=0
for k in $(seq 1 "$runs"); do
  start=$(date +%s)
  set +e
  .venv/bin/python -m pytest -q -p no:cacheprovider >"suite_run_$k.log" 2>&1
  rc=$?
  set -e
  summary=$(grep -E "^(=+ )?[0-9]+ (passed|failed)" "suite_run_$k.log" | tail -1 | tr -d '=')
  echo "[load] run $k: exit $rc | ${summary:-no summary} | $(( $(date +%s) - start )) s wall"
  grep -E "^(FAILED|ERROR|SKIPPED) " "suite_run_$k.log" || true
  [ "$rc" -eq 0 ] || failed=$((failed + 1))
done
echo "[load] $((runs - failed)) of $runs runs passed (commit $commit, one core busy)"
[ "$failed" -eq 0 ]
