#!/usr/bin/env bash
# What one task costs on the lab, apart from its module's work: a play of N read-only `stat` tasks on one lab host,
# then on every lab host, once with the inventory's named interpreter (/usr/bin/python3) and once with interpreter
# discovery (`ansible_python_interpreter=auto_silent`, which Mitogen's docker transport runs again before every
# task). Rounds alternate the two so both see the same load. Prints seconds per run and per task; asserts nothing.
#   benchmarks/task_overhead.sh                       40 tasks, 2 rounds
#   BENCH_TASKS=100 BENCH_ROUNDS=3 BENCH_HOST=lab-db1 benchmarks/task_overhead.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
tasks=${BENCH_TASKS:-40}
rounds=${BENCH_ROUNDS:-2}
host=${BENCH_HOST:-lab-data}
if ! docker inspect "$host" >/dev/null 2>&1; then
  echo "task_overhead: $host does not run; make lab first (skipped)"
  exit 0
fi
work=$(mktemp -d /tmp/task-overhead.XXXXXX)
trap 'rm -rf "$work"' EXIT
{
  printf -- '---\n- name: Task overhead\n  hosts: "{{ bench_hosts }}"\n  gather_facts: false\n  tasks:\n'
  for i in $(seq "$tasks"); do
    printf '    - name: Read a file %s\n      ansible.builtin.stat:\n        path: /etc/hostname\n' "$i"
  done
} >"$work/play.yml"

run() {  # label hosts [ansible-playbook options]
  local label=$1 hosts=$2 start end log=$work/run.log n
  shift 2
  start=$(date +%s.%N)
  ansible-playbook "$work/play.yml" -e "bench_hosts=$hosts" "$@" >"$log" 2>&1 || { tail -20 "$log"; exit 1; }
  end=$(date +%s.%N)
  n=$(grep -Eo ' ok=[0-9]+' "$log" | awk -F= '{s += $2} END {print s + 0}')
  awk -v l="$label" -v a="$start" -v b="$end" -v t="$tasks" -v n="$n" \
    'BEGIN {printf "  %-34s %7.1f s  %5.3f s per task  (%d task results)\n", l, b - a, (b - a) / t, n}'
}

echo "task overhead: $tasks stat tasks ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "strategy: ${ANSIBLE_STRATEGY:-$(awk -F' *= *' '$1 == "strategy" {print $2}' ansible.cfg)}"
for round in $(seq "$rounds"); do
  echo "round $round"
  run "$host, named interpreter" "$host"
  run "$host, discovery" "$host" -e ansible_python_interpreter=auto_silent
  run "lab_containers, named interpreter" lab_containers
  run "lab_containers, discovery" lab_containers -e ansible_python_interpreter=auto_silent
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
