#!/usr/bin/env bash
# Deploy one environment, the same way for a person and for the deploy workflow (README: Deployments).
#
#   scripts/deploy.sh check ENV     site.yml --check --diff; the output is kept in build/deploy/ENV-check.log
#   scripts/deploy.sh release ENV   playbooks/migrate.yml (backup first, restore on failure), then
#                                   playbooks/services/app.yml (one host at a time, health-gated); when
#                                   the app release fails, playbooks/rollback.yml, and the exit status
#                                   stays non-zero
#
# Environment:
#   ETERNA_VAULT_PASSWORD_FILE  vault password file (default ~/.eterna/vault-pass-ENV)
#   ETERNA_VAULT_PASSWORD       the vault password itself (the workflow's secret); written to a 0600
#                               file that is removed on exit, never printed
#   ETERNA_SSH_PRIVATE_KEY      the deploy key (the workflow's secret), loaded into an ssh-agent of
#                               this run only
#   ETERNA_SSH_KNOWN_HOSTS      known_hosts lines of the environment's hosts; required with the key
#   RELEASE                     version label of the app release (-e app_version=...), default the
#                               inventory's app_version
#   ANSIBLE_PLAYBOOK            the ansible-playbook command (default ansible-playbook; the unit tests stub it)
set -euo pipefail
set +x  # secrets pass through this script's environment: never trace it
umask 077
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
playbook=${ANSIBLE_PLAYBOOK:-ansible-playbook}

die() { echo "deploy: $*" >&2; exit 2; }
[ $# -eq 2 ] || die "usage: $0 check|release ENV"
action=$1 env_name=$2
[[ $action == check || $action == release ]] || die "unknown action '$action' (check or release)"
[[ $env_name =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "environment name '$env_name' must match [a-z0-9][a-z0-9_-]*"
inventory=inventories/$env_name/hosts.yml
[ -f "$inventory" ] || die "no inventory $inventory"

scratch=$(mktemp -d)
agent_pid=
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  rm -rf "$scratch"
  [ -z "$agent_pid" ] || kill "$agent_pid" 2>/dev/null || true
}
trap cleanup EXIT

args=(-i "$inventory")
if [ -n "${ETERNA_VAULT_PASSWORD:-}" ]; then
  printf '%s\n' "$ETERNA_VAULT_PASSWORD" >"$scratch/vault-pass"
  unset ETERNA_VAULT_PASSWORD
  args+=(--vault-password-file "$scratch/vault-pass")
elif [ "$env_name" != lab ]; then
  pass_file=${ETERNA_VAULT_PASSWORD_FILE:-$HOME/.eterna/vault-pass-$env_name}
  [ -f "$pass_file" ] || die "no vault password file $pass_file (set ETERNA_VAULT_PASSWORD_FILE)"
  args+=(--vault-password-file "$pass_file")
fi
if [ -n "${ETERNA_SSH_PRIVATE_KEY:-}" ]; then
  [ -n "${ETERNA_SSH_KNOWN_HOSTS:-}" ] || die "ETERNA_SSH_KNOWN_HOSTS is required with ETERNA_SSH_PRIVATE_KEY"
  eval "$(ssh-agent -s -a "$scratch/agent.sock")" >/dev/null
  agent_pid=$SSH_AGENT_PID
  printf '%s\n' "$ETERNA_SSH_PRIVATE_KEY" | ssh-add -q - 2>/dev/null || die "the SSH key could not be loaded"
  unset ETERNA_SSH_PRIVATE_KEY
  printf '%s\n' "$ETERNA_SSH_KNOWN_HOSTS" >"$scratch/known_hosts"
  export ANSIBLE_SSH_COMMON_ARGS="-o UserKnownHostsFile=$scratch/known_hosts -o StrictHostKeyChecking=yes"
fi
if [ -n "${RELEASE:-}" ]; then
  [[ $RELEASE =~ ^[A-Za-z0-9._+-]+$ ]] || die "RELEASE '$RELEASE' is not a plain version label"
  args+=(-e "app_version=$RELEASE")
fi

if [ "$action" = check ]; then
  mkdir -p build/deploy
  log=build/deploy/$env_name-check.log
  echo "deploy: ansible-playbook playbooks/site.yml --check --diff on $env_name (kept in $log)"
  "$playbook" "${args[@]}" playbooks/site.yml --check --diff 2>&1 | tee "$log"
  exit "${PIPESTATUS[0]}"
fi

echo "deploy: migrations on $env_name (backup first, restored on failure)"
"$playbook" "${args[@]}" playbooks/migrate.yml
echo "deploy: app release on $env_name, one host at a time behind /health/ready"
if "$playbook" "${args[@]}" playbooks/services/app.yml; then
  echo "deploy: $env_name released"
  exit 0
fi
echo "deploy: the release failed its health gate on $env_name: rolling back (playbooks/rollback.yml)" >&2
if "$playbook" "${args[@]}" playbooks/rollback.yml; then
  echo "deploy: $env_name rolled back to the previous release; the release FAILED" >&2
else
  echo "deploy: the rollback FAILED too on $env_name: see the output above" >&2
fi
exit 1
