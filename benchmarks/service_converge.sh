#!/usr/bin/env bash
# Cold converge and no-op re-run of the postgres role on one fresh systemd container ("postgres-bench").
# Prints seconds; asserts nothing. Needs Docker (scripts/docker-engine.sh) and the venv (make venv).
#   KEEP=1 benchmarks/postgres_converge.sh   leave the container running afterwards
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
scripts/docker-engine.sh >/dev/null

work=$(mktemp -d /tmp/postgres-bench.XXXXXX)
name=postgres-bench
cleanup() {
  if [ -z "${KEEP:-}" ]; then
    ansible-playbook -i "$work/hosts.yml" "$work/containers.yml" -e lab_container_state=absent >/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cat >"$work/hosts.yml" <<YAML
all:
  vars:
    eterna_env: lab
    # The public molecule-only key: nothing real is derived from it.
    eterna_master_key: 4fdfdb9da08744734653f0afb7572f18f00923fa88ba3e943ada45facf1877ec
    eterna_pki_dir: $work/pki
  children:
    db:
      hosts:
        $name:
          ansible_connection: docker
YAML
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
        lab_container_list: [{name: $name}]
        lab_container_network: eterna-postgres-bench
        lab_container_label: postgres-bench
YAML

export ANSIBLE_ROLES_PATH="$PWD/roles" ANSIBLE_FILTER_PLUGINS="$PWD/filter_plugins" ANSIBLE_PIPELINING=True
export ANSIBLE_INJECT_FACTS_AS_VARS=False ANSIBLE_GATHERING=implicit ANSIBLE_FACT_CACHING=memory
# lab_container's boot wait can run before the container's systemd answers on D-Bus: try again.
for attempt in 1 2 3; do
  ansible-playbook -i "$work/hosts.yml" "$work/containers.yml" >"$work/containers.log" 2>&1 && break
  [ "$attempt" -lt 3 ] || { tail -30 "$work/containers.log"; exit 1; }
  sleep 3
done

run() {  # label
  local start end
  start=$(date +%s.%N)
  ansible-playbook -i "$work/hosts.yml" playbooks/services/postgres.yml >"$work/$1.log" 2>&1 || {
    tail -40 "$work/$1.log"
    exit 1
  }
  end=$(date +%s.%N)
  printf '%-28s %6.1f s   (%s)\n' "$1" "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')" \
    "$(grep -Eo 'ok=[0-9]+ +changed=[0-9]+' "$work/$1.log" | tail -1 | tr -s ' ')"
}

echo "postgres role on one host ($(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg)):"
run "cold converge"
run "no-op re-run"
