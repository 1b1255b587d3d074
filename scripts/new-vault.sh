#!/usr/bin/env bash
# Create the encrypted master-key vault for one Eterna Home environment.
#
#   scripts/new-vault.sh <env>
#
# Writes inventories/<env>/group_vars/all/vault.yml containing `vault_eterna_master_key`, a fresh 256-bit key
# (64 hex chars) from Python's `secrets` module, encrypted with ansible-vault.  All service secrets are derived
# from that key by the derive_secret filter, so losing this file (or its vault password) means rotating everything.
#
# Safety rules:
#   * never overwrites an existing vault.yml (exit 1);
#   * refuses the `lab` environment (lab uses a throwaway, unencrypted key);
#   * the master key is never printed and never written to disk in clear text.
#
# Environment:
#   ETERNA_VAULT_PASSWORD_FILE  vault password file (default ~/.eterna/vault-pass-<env>); created with 48 random
#                               bytes (base64), mode 0600, in a 0700 directory when missing.
#   ETERNA_REPO_ROOT            repository root holding inventories/ (default: the checkout containing this script).
set -euo pipefail
umask 077

die() {
    printf 'new-vault: %s\n' "$*" >&2
    exit 1
}

[[ $# -eq 1 ]] || die "usage: $0 <env>   (e.g. staging, production)"
env_name=$1
[[ $env_name =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "environment name '$env_name' must match [a-z0-9][a-z0-9_-]*"
[[ $env_name != lab ]] || die "the lab environment does not use a vault; refusing"

script_repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
repo_root=${ETERNA_REPO_ROOT:-$script_repo}
[[ -d $repo_root ]] || die "ETERNA_REPO_ROOT '$repo_root' is not a directory"

inventory_dir="$repo_root/inventories/$env_name"
[[ -d $inventory_dir ]] || die "inventory '$inventory_dir' does not exist; create the environment first"
vault_dir="$inventory_dir/group_vars/all"
vault_file="$vault_dir/vault.yml"
[[ ! -e $vault_file && ! -L $vault_file ]] || die "$vault_file already exists; refusing to overwrite it"

# Tools: prefer the project virtualenv, fall back to PATH.
find_tool() {
    local name=$1 dir
    for dir in "$repo_root/.venv/bin" "$script_repo/.venv/bin"; do
        if [[ -x "$dir/$name" ]]; then
            printf '%s\n' "$dir/$name"
            return 0
        fi
    done
    command -v "$name" || return 1
}
ansible_vault=$(find_tool ansible-vault) || die "ansible-vault not found (create .venv or put it on PATH)"
python=$(find_tool python3) || die "python3 not found"

password_file=${ETERNA_VAULT_PASSWORD_FILE:-"$HOME/.eterna/vault-pass-$env_name"}
if [[ ! -e $password_file ]]; then
    password_dir=$(dirname -- "$password_file")
    if [[ ! -d $password_dir ]]; then
        mkdir -p -- "$password_dir"
        chmod 0700 -- "$password_dir"
    fi
    "$python" -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(48)).decode())' \
        >"$password_file"
    chmod 0600 -- "$password_file"
    printf 'new-vault: created vault password file %s (mode 0600) - back it up in the team password manager\n' \
        "$password_file" >&2
fi
[[ -f $password_file && -s $password_file ]] || die "vault password file '$password_file' is empty or not a file"

(umask 022 && mkdir -p -- "$vault_dir") # ordinary repo directory; only the files are private
tmp_file=$(mktemp "$vault_dir/.vault.yml.XXXXXX")
trap 'rm -f -- "$tmp_file"' EXIT

# The key lives only in this shell variable and reaches ansible-vault through stdin (printf is a builtin,
# so it never appears in a process argument list).
master_key=$("$python" -c 'import secrets; print(secrets.token_hex(32))')
[[ $master_key =~ ^[0-9a-f]{64}$ ]] || die "key generation failed"
printf '# Eterna Home %s master key; every service secret is derived from it.\nvault_eterna_master_key: "%s"\n' \
    "$env_name" "$master_key" |
    "$ansible_vault" encrypt --vault-password-file "$password_file" --output "$tmp_file" - >/dev/null
master_key=
unset master_key

IFS= read -r first_line <"$tmp_file" || true
[[ $first_line == "\$ANSIBLE_VAULT;"* ]] || die "ansible-vault did not produce an encrypted file"
chmod 0600 -- "$tmp_file"
# ln fails if the target appeared meanwhile, so an existing vault is never clobbered.
ln -- "$tmp_file" "$vault_file" || die "$vault_file appeared while running; refusing to overwrite it"
printf 'new-vault: wrote %s (encrypted with %s)\n' "$vault_file" "$password_file"
