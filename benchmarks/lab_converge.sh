#!/usr/bin/env bash
# Converge time of the whole site on the lab: cold (fresh containers), a no-op re-run and a
# `--check --diff` run, with the changed count of each, the task results executed (ok + changed +
# failed over all hosts), the time per role (ansible.posix.profile_roles), the task executions (task x host) per
# role and the no-op/cold ratio; and where the CPU went: Ansible's main process and its workers
# (plugins/callback/controller_cpu.py) and the lab's containers (their cgroups; a 10 s sample of them at rest is taken
# before the no-op run).
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

# CPU seconds the lab's containers have used so far, from their cgroups (v2 with the systemd or the cgroupfs driver,
# or v1); empty when none is readable.
containers_cpu() {
  local id file ns total=0
  for id in $(docker ps -q --no-trunc --filter name=lab-); do
    ns=
    for file in "/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat" "/sys/fs/cgroup/docker/$id/cpu.stat"; do
      [ -r "$file" ] && ns=$(awk '$1 == "usage_usec" {printf "%d", $2 * 1000}' "$file") && break
    done
    [ -n "$ns" ] || ns=$(cat "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage" 2>/dev/null) || return 0
    total=$((total + ns))
  done
  echo "$total" | awk '{printf "%.1f", $1 / 1e9}'
}

converge() {  # label [ansible-playbook options] ; prints seconds and the recap's changed/failed totals
  local label=$1 start rc=0 cpu0
  shift
  start=$(date +%s)
  cpu0=$(containers_cpu)
  ANSIBLE_CALLBACK_PLUGINS=plugins/callback ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_roles,controller_cpu \
    ansible-playbook "$@" playbooks/site.yml >"$logs/lab_converge.$label.log" 2>&1 || rc=$?
  local secs=$(($(date +%s) - start)) log=$logs/lab_converge.$label.log cpu1
  cpu1=$(containers_cpu)
  total() { grep -Eo " $1=[0-9]+" "$log" | awk -F= '{s+=$2} END {print s+0}'; }
  printf '%-14s %6ds  tasks=%s changed=%s failed=%s exit=%s  (log: %s)\n' "$label" "$secs" \
    "$(($(total ok) + $(total failed)))" "$(total changed)" "$(total failed)" "$rc" "$log"
  grep -m1 '^controller CPU:' "$log" | sed 's/^/    /' || true
  [ -z "$cpu0" ] || [ -z "$cpu1" ] || echo "$cpu0 $cpu1" | awk '{printf "    containers CPU: %.1f s\n", $2 - $1}'
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
# The containers' own background (databases, brokers, scrapes) runs during every converge too.
rest0=$(containers_cpu)
sleep 10
rest1=$(containers_cpu)
[ -z "$rest0" ] || echo "$rest0 $rest1" | awk '{printf "containers at rest: %.0f %% of one CPU (10 s sample)\n", ($2 - $1) * 10}'
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
