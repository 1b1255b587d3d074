#!/usr/bin/env bash
# Cold converge and no-op re-runs of service plays (playbooks/services/<service>.yml), each on one fresh
# systemd container of its own group ("<service>-bench"). The no-op runs alternate between strategies
# (Mitogen's mitogen_linear, ansible.cfg's default, and Ansible's own linear) so both see the same load.
# Prints seconds, the recap and the task results executed; asserts nothing. Needs Docker and the venv.
#   benchmarks/service_converge.sh                      postgres redis rabbitmq seaweedfs, two rounds
#   BENCH_SERVICES="postgres" BENCH_ROUNDS=3 benchmarks/service_converge.sh
#   ETERNA_DEBIAN_SUITE=bookworm benchmarks/service_converge.sh   on Debian 12 (default: base-image.sh's)
#   KEEP=1 ...                                          leave the containers running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
scripts/docker-engine.sh >/dev/null

services=${BENCH_SERVICES:-postgres redis rabbitmq objectstore}
rounds=${BENCH_ROUNDS:-2}
strategies=${BENCH_STRATEGIES:-mitogen_linear linear}
declare -A group=([postgres]=db [redis]=cache [rabbitmq]=mq [objectstore]=objectstore)
work=$(mktemp -d /tmp/service-bench.XXXXXX)
cleanup() {
  if [ -z "${KEEP:-}" ]; then
    ansible-playbook -i "$work/hosts.yml" "$work/containers.yml" -e lab_container_state=absent >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

{
  printf 'all:\n  vars:\n    eterna_env: lab\n'
  printf '    # The public molecule-only key: nothing real is derived from it.\n'
  printf '    eterna_master_key: 4fdfdb9da08744734653f0afb7572f18f00923fa88ba3e943ada45facf1877ec\n'
  printf '    eterna_pki_dir: %s/pki\n    ansible_connection: docker\n' "$work"
  printf '    # Named, as in the lab inventory: Mitogen rediscovers it before every task otherwise.\n'
  printf '    ansible_python_interpreter: /usr/bin/python3\n'
  printf '    # Containers cannot set the clock or write most sysctls.\n'
  printf '    base_chrony_control_clock: false\n    base_sysctl_apply: false\n    redis_sysctl_apply: false\n'
  printf '  children:\n'
  for s in $services; do
    [ -n "${group[$s]:-}" ] || { echo "service_converge: unknown service '$s' (${!group[*]})" >&2; exit 2; }
    printf '    %s:\n      hosts:\n        %s-bench:\n' "${group[$s]}" "$s"
  done
} >"$work/hosts.yml"
containers=$(for s in $services; do printf '{name: %s-bench}, ' "$s"; done)
cat >"$work/containers.yml" <<YAML
- name: Bench container
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Create or remove the container
      ansible.builtin.include_role:
        name: lab_container
      vars:
        lab_container_list: [${containers%, }]
        lab_container_network: eterna-service-bench
        lab_container_label: service-bench
YAML

export ANSIBLE_ROLES_PATH="$PWD/roles" ANSIBLE_FILTER_PLUGINS="$PWD/filter_plugins" ANSIBLE_PIPELINING=True
export ANSIBLE_INJECT_FACTS_AS_VARS=False ANSIBLE_GATHERING=implicit ANSIBLE_FACT_CACHING=memory
# lab_container's boot wait can run before the container's systemd answers on D-Bus: try again.
for attempt in 1 2 3; do
  ansible-playbook -i "$work/hosts.yml" "$work/containers.yml" >"$work/containers.log" 2>&1 && break
  [ "$attempt" -lt 3 ] || { tail -30 "$work/containers.log"; exit 1; }
  sleep 3
done

run() {  # service label [strategy]
  local start end log=$work/$1.$2.log
  start=$(date +%s.%N)
  ANSIBLE_STRATEGY=${3:-mitogen_linear} ansible-playbook -i "$work/hosts.yml" "playbooks/services/$1.yml" >"$log" 2>&1 || {
    tail -40 "$log"
    exit 1
  }
  end=$(date +%s.%N)
  printf '  %-12s %-26s %7.1f s   tasks=%s %s\n' "$1" "$2" "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')" \
    "$(grep -Eo ' ok=[0-9]+' "$log" | awk -F= '{s += $2} END {print s + 0}')" \
    "$(grep -Eo 'changed=[0-9]+ +unreachable=[0-9]+ +failed=[0-9]+' "$log" | tail -1 | tr -s ' ')"
}

echo "service plays, one host each ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(docker exec \
  "${services%% *}-bench" sh -c '. /etc/os-release; echo "$PRETTY_NAME"'))"
for s in $services; do run "$s" "cold (mitogen_linear)"; done
for r in $(seq "$rounds"); do
  for st in $strategies; do
    for s in $services; do run "$s" "no-op $r ($st)" "$st"; done
  done
done
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
