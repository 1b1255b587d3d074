#!/usr/bin/env bash
# Converge time of the whole site on the lab: cold (fresh containers), a no-op re-run and a
# `--check --diff` run, with the changed count of each, the task results executed (ok + changed +
# failed over all hosts), the time per role (ansible.posix.profile_roles), the task executions (task x host) per
# role and the no-op/cold ratio.
# Prints figures; asserts nothing.
#   benchmarks/lab_converge.sh        no-op re-run only when the lab already runs (it is never destroyed)
#   BENCH_COLD=1 benchmarks/lab_converge.sh    destroy the lab first, then cold converge + no-op re-run
#   BENCH_STRATEGIES="mitogen_linear linear" benchmarks/lab_converge.sh    no-op once per strategy
#                                     (mitogen_linear is ansible.cfg's; linear is Ansible's own)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # run alone as well as from make, which sets it
logs=build/bench
mkdir -p "$logs"

converge() {  # label [ansible-playbook options] ; prints seconds and the recap's changed/failed totals
  local label=$1 start rc=0
  shift
  start=$(date +%s)
  ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_roles \
    ansible-playbook "$@" playbooks/site.yml >"$logs/lab_converge.$label.log" 2>&1 || rc=$?
  local secs=$(($(date +%s) - start)) log=$logs/lab_converge.$label.log
  total() { grep -Eo " $1=[0-9]+" "$log" | awk -F= '{s+=$2} END {print s+0}'; }
  printf '%-14s %6ds  tasks=%s changed=%s failed=%s exit=%s  (log: %s)\n' "$label" "$secs" \
    "$(($(total ok) + $(total failed)))" "$(total changed)" "$(total failed)" "$rc" "$log"
  # profile_roles' summary: "role ---- 12.34s", slowest first.
  grep -E '^[a-z_]+ -+ +[0-9.]+s$' "$log" | head -n 14 | awk '{printf "    %-16s %8s\n", $1, $3}'
  # What a no-op's time follows: one worker per task and host, run or skipped (benchmarks/task_executions.py).
  python benchmarks/task_executions.py "$log" 8 | sed 's/^/  /'
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
echo "strategy: ${ANSIBLE_STRATEGY:-$(awk -F' *= *' '$1 == "strategy" {print $2}' ansible.cfg)}"
if [ -n "${BENCH_STRATEGIES:-}" ]; then
  for strategy in $BENCH_STRATEGIES; do ANSIBLE_STRATEGY=$strategy converge "noop-$strategy"; done
  exit 0
fi
converge noop
converge check --check --diff
if [ -f "$logs/lab_converge.cold.seconds" ] && [ -n "${BENCH_COLD:-}" ]; then
  awk 'NR==1 {c=$1} NR==2 {n=$1} END {printf "no-op / cold = %.2f\n", n/c}' \
    "$logs/lab_converge.cold.seconds" "$logs/lab_converge.noop.seconds"
fi
