#!/usr/bin/env bash
# The offline security scanners (`make security`; a stage of `make test`). Exit status non-zero on
# any finding at or above the chosen severity. Nothing here reaches the network: semgrep reads only
# the rules in .semgrep/, zizmor runs --offline, and pip-audit (which needs the vulnerability
# service) is left to `make audit` in the security workflow.
#   bandit          Python: filter plugins, scripts, the reference app; medium severity and
#                   medium confidence or above fail (config: [tool.bandit] in pyproject.toml)
#   semgrep         the same Python, the workflows and the Ansible tree against .semgrep/*.yml
#   detect-secrets  every tracked or new (not ignored) file against the reviewed .secrets.baseline
#   actionlint, check-jsonschema (bundled workflow schema), zizmor --offline: .github/workflows/
# ruff's security rules (S) and ansible-lint's production profile run in scripts/lint.sh.
# SCAN_ROOT=dir scans another tree with this repository's rules (the unit tests plant faults so).
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$here/.venv/bin:$PATH"
cd "${SCAN_ROOT:-$here}" || exit 2
rc=0
step() {  # name, command...: runs the command, reports its result, remembers a failure
  local name=$1
  shift
  echo "=== $name"
  if "$@"; then
    echo "--- $name: no findings"
  else
    echo "--- $name: FAILED"
    rc=1
  fi
}
existing() { for p in "$@"; do [ -e "$p" ] && echo "$p"; done; }

mapfile -t python_paths < <(existing filter_plugins scripts examples/eterna_home_app/app examples/eterna_home_app/migrations)
mapfile -t semgrep_paths < <(existing "${python_paths[@]}" .github/workflows roles playbooks inventories)
mapfile -t workflows < <(find .github/workflows -maxdepth 1 -name '*.yml' -o -maxdepth 1 -name '*.yaml' 2>/dev/null | sort)

if [ ${#python_paths[@]} -gt 0 ]; then
  step bandit bandit -q -c "$here/pyproject.toml" -r "${python_paths[@]}" --severity-level medium --confidence-level medium
fi
step semgrep semgrep scan --metrics=off --disable-version-check --oss-only --config "$here/.semgrep" --error --quiet \
  "${semgrep_paths[@]}"
# Tracked files and new ones not yet committed (git's ignore rules apply), the baseline itself aside.
mapfile -t files < <(git ls-files -co --exclude-standard | grep -vxF .secrets.baseline | while read -r f; do [ -f "$f" ] && echo "$f"; done)
# shellcheck disable=SC2317  # called through step
secrets_check() {  # new secrets fail; moved lines of reviewed ones do not (the hook would rewrite the baseline)
  local copy status
  copy=$(mktemp)
  cp "${SECRETS_BASELINE:-$here/.secrets.baseline}" "$copy"
  detect-secrets-hook --baseline "$copy" "${files[@]}" | grep -v -e 'baseline file was updated' -e 'line numbers' \
    -e 'git add' -e '^$'
  status=${PIPESTATUS[0]}
  rm -f "$copy"
  [ "$status" -eq 3 ] && echo "detect-secrets: reviewed secrets moved; refresh: detect-secrets scan --baseline .secrets.baseline"
  [ "$status" -eq 0 ] || [ "$status" -eq 3 ]
}
step detect-secrets secrets_check
if [ ${#workflows[@]} -gt 0 ]; then
  # Without shellcheck actionlint silently skips the run: scripts; that would be a check that cannot fail.
  step shellcheck-present command -v shellcheck
  step actionlint actionlint "${workflows[@]}"
  step check-jsonschema check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}"
  step zizmor zizmor --offline --quiet --config "$here/.github/zizmor.yml" .github/workflows
else
  echo "=== workflows: none in .github/workflows"
fi
echo "=== pip-audit: not run here (no vulnerability service); \`make audit\` runs it with --strict online"
exit $rc
