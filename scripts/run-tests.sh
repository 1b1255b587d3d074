#!/usr/bin/env bash
# The project's test command (`make test`): lint, unit tests, then every Molecule scenario, with a
# per-scenario summary and durations. Exit status is non-zero when anything failed.
#   scripts/run-tests.sh                 everything
#   SCENARIOS="base postgres" scripts/run-tests.sh
#   SKIP_LINT=1 / SKIP_UNIT=1 / SKIP_MOLECULE=1 to leave a stage out
# A scenario may hold a `skip-if` script: when it prints a reason and exits 0, the scenario is
# reported as skipped with that reason (never as passed).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0

results=()
failed=0
stage() {  # name, command...
  local name=$1 start rc
  shift
  start=$(date +%s)
  echo "=== $name"
  "$@"
  rc=$?
  local secs=$(($(date +%s) - start))
  if [ $rc -eq 0 ]; then results+=("passed  ${secs}s  $name"); else results+=("FAILED  ${secs}s  $name"); failed=1; fi
  return 0
}

[ -n "${SKIP_LINT:-}" ] || stage lint scripts/lint.sh
[ -n "${SKIP_UNIT:-}" ] || stage unit pytest -q tests/unit

if [ -z "${SKIP_MOLECULE:-}" ]; then
  scripts/docker-engine.sh || { echo "no Docker engine"; exit 1; }
  scripts/base-image.sh >/dev/null || { echo "base image build failed"; exit 1; }
  all=$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
  for s in ${SCENARIOS:-$all}; do
    if [ -x "molecule/$s/skip-if" ] && reason=$("molecule/$s/skip-if") && [ -n "$reason" ]; then
      results+=("skipped      molecule $s: $reason")
      continue
    fi
    stage "molecule $s" molecule test -s "$s"
  done
fi

echo
echo "=== summary"
printf '%s\n' "${results[@]}"
total_passed=$(printf '%s\n' "${results[@]}" | grep -c '^passed' || true)
total_failed=$(printf '%s\n' "${results[@]}" | grep -c '^FAILED' || true)
total_skipped=$(printf '%s\n' "${results[@]}" | grep -c '^skipped' || true)
echo "stages: $total_passed passed, $total_failed failed, $total_skipped skipped"
exit $failed
