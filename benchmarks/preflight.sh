#!/usr/bin/env bash
# The site preflight (`site.yml --check --tags preflight`, the plays every site run starts with) on a copy of an
# environment's inventory whose hosts are all this machine (local connection, as tests/unit/test_inventories.py does).
# Prints the wall time, the recap and the five slowest tasks (ansible.posix.profile_tasks); asserts nothing.
#   benchmarks/preflight.sh                                production, two rounds
#   BENCH_ENV=staging BENCH_ROUNDS=3 benchmarks/preflight.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"

env=${BENCH_ENV:-production}
rounds=${BENCH_ROUNDS:-2}
work=$(mktemp -d /tmp/preflight-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r "inventories/$env" "$work/inventory"
rm -f "$work/inventory/group_vars/all/vault.yml"
# A fresh random master key (the environment's vault is not here); the inventory's hosts all resolve to this machine.
key=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
hosts=$(ansible-inventory -i "$work/inventory" --list | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["_meta"]["hostvars"]))')
echo "inventory: $env, $hosts hosts (local connection); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  start=$(date +%s.%N)
  ANSIBLE_CACHE_PLUGIN_CONNECTION="$work/facts" ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks \
    PROFILE_TASKS_TASK_OUTPUT_LIMIT=5 ANSIBLE_STRATEGY=linear \
    ansible-playbook -i "$work/inventory" playbooks/site.yml --check --tags preflight \
    -e ansible_connection=local -e "ansible_python_interpreter=$PWD/.venv/bin/python3" \
    -e "vault_eterna_master_key=$key" >"$work/out" 2>&1 || { tail -40 "$work/out"; exit 1; }
  end=$(date +%s.%N)
  printf 'round %s: %.1f s (facts %s)\n' "$round" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
    "$([ "$round" = 1 ] && echo gathered || echo cached)"
  sed -n '/^PLAY RECAP/,/^$/p' "$work/out" | sed 1d | awk 'NF' | sed 's/^/  /'
  grep -A7 '^TASKS RECAP' "$work/out" | tail -5 | sed 's/^/  /'
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
