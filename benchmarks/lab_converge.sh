#!/usr/bin/env bash
# Converge time of the whole site on the lab: cold (fresh containers), a no-op re-run and a
# `--check --diff` run, with the changed count of each and the no-op/cold ratio. Prints figures;
# asserts nothing.
#   benchmarks/lab_converge.sh        no-op re-run only when the lab already runs (it is never destroyed)
#   BENCH_COLD=1 benchmarks/lab_converge.sh    destroy the lab first, then cold converge + no-op re-run
set -euo pipefail
cd "$(dirname "$0")/.."
logs=build/bench
mkdir -p "$logs"

converge() {  # label [ansible-playbook options] ; prints seconds and the recap's changed/failed totals
  local label=$1 start rc=0
  shift
  start=$(date +%s)
  ansible-playbook "$@" playbooks/site.yml >"$logs/lab_converge.$label.log" 2>&1 || rc=$?
  local secs=$(($(date +%s) - start))
  local changed failed
  changed=$(grep -Eo ' changed=[0-9]+' "$logs/lab_converge.$label.log" | awk -F= '{s+=$2} END {print s+0}')
  failed=$(grep -Eo ' failed=[0-9]+' "$logs/lab_converge.$label.log" | awk -F= '{s+=$2} END {print s+0}')
  printf '%-8s %6ds  changed=%s failed=%s exit=%s  (log: %s)\n' "$label" "$secs" "$changed" "$failed" "$rc" \
    "$logs/lab_converge.$label.log"
  echo "$secs" >"$logs/lab_converge.$label.seconds"
  return "$rc"
}

echo "host: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -n "${BENCH_COLD:-}" ]; then
  ansible-playbook playbooks/lab.yml -e lab_container_state=absent >/dev/null
  rm -rf .cache/facts
  start=$(date +%s)
  ansible-playbook playbooks/lab.yml >"$logs/lab_converge.containers.log" 2>&1
  echo "containers $(($(date +%s) - start))s"
  converge cold
elif ! docker inspect lab-edge >/dev/null 2>&1; then
  echo "lab_converge: no lab runs; make lab first, or BENCH_COLD=1 for a cold run (skipped)"
  exit 0
fi
converge noop
converge check --check --diff
if [ -f "$logs/lab_converge.cold.seconds" ] && [ -n "${BENCH_COLD:-}" ]; then
  awk 'NR==1 {c=$1} NR==2 {n=$1} END {printf "no-op / cold = %.2f\n", n/c}' \
    "$logs/lab_converge.cold.seconds" "$logs/lab_converge.noop.seconds"
fi
