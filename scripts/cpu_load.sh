#!/usr/bin/env bash
# Keep every core busy, to run the tests as on a busy machine (issue #17: a training job on the
# same two cores made timing-based tests fail).
#
#   bash scripts/cpu_load.sh [-n N] [-t SECONDS] [-- COMMAND ...]
#
# Starts N CPU-burning processes (default: one per core, `nproc`) and prints their pids. They
# stop by themselves after SECONDS (default 3600), when this script is interrupted or killed
# (Ctrl-C, `kill PID`), or, when a COMMAND is given, as soon as the command ends; then the
# command's wall time is printed and its exit code returned. Each burner is wrapped in
# `timeout`, so even a `kill -9` of this script leaves nothing running past SECONDS.
#
#   bash scripts/cpu_load.sh -- bash scripts/test.sh        # the whole suite under full load
#   bash scripts/cpu_load.sh -n 1 -- bash scripts/test.sh tests/inference
#   bash scripts/cpu_load.sh -t 600 &                       # 10 minutes of load in the background
set -euo pipefail

n=$(nproc 2>/dev/null || echo 2)
duration=3600
usage="usage: bash scripts/cpu_load.sh [-n PROCESSES] [-t SECONDS] [-- COMMAND ...]"
while [ $# -gt 0 ]; do
  case "$1" in
    -n) n=${2:?$usage}; shift 2 ;;
    -t) duration=${2:?$usage}; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    --) shift; break ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
case "$n$duration" in *[!0-9]*) echo "error: -n and -t take whole numbers; $usage" >&2; exit 2 ;; esac
if [ "$n" -lt 1 ] || [ "$duration" -lt 1 ]; then
  echo "error: -n and -t must be at least 1" >&2
  exit 2
fi

pids=()
stop_load() {
  if [ ${#pids[@]} -gt 0 ]; then
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    echo "[cpu_load] stopped ${#pids[@]} burner(s)" >&2
    pids=()
  fi
}
trap stop_load EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq "$n"); do
  timeout "$duration" bash -c 'while :; do :; done' &
  pids+=("$!")
done
echo "[cpu_load] $n CPU burner(s) for at most $duration s, pids: ${pids[*]} (this script: $$)" >&2

if [ $# -eq 0 ]; then
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
  echo "[cpu_load] $duration s elapsed" >&2
  exit 0
fi

start=$(date +%s.%N)
set +e
"$@"
status=$?
set -e
end=$(date +%s.%N)
awk -v s="$start" -v e="$end" -v n="$n" -v c="$*" -v st="$status" 'BEGIN {
  printf "[cpu_load] wall time %.1f s (%d:%02d) under %d burner(s), exit code %d: %s\n", e - s, int((e - s) / 60),
         int(e - s) % 60, n, st, c > "/dev/stderr" }'
exit "$status"
