#!/usr/bin/env bash
# The project's test command (`make test`): lint, unit tests, then every Molecule scenario, with a per-stage summary
# and durations. Exit status is non-zero when anything failed.
#   scripts/run-tests.sh                       everything
#   SCENARIOS="base postgres" scripts/run-tests.sh
#   SCENARIOS="postgres postgres@bookworm"     a scenario on the default Debian release, then on Debian 12
#   JOBS=1 scripts/run-tests.sh                scenarios one at a time (default 2 in parallel)
# A scenario runs on ETERNA_DEBIAN_SUITE (default trixie, Debian 13); `name@suite` runs it on that suite.
# Runs on a second suite wait for the first batch: one scenario's containers have fixed names.
#   SKIP_LINT=1 / SKIP_UNIT=1 / SKIP_SCAN=1 / SKIP_MOLECULE=1 leave a stage out (scan: scripts/scan.sh)
# Each scenario's full log is kept in build/test-logs/<scenario>.log and printed when it fails.
# A scenario may hold a `skip-if` script: when it prints a reason and exits 0, the scenario is
# reported as skipped with that reason (never as passed).
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 ANSIBLE_NOCOLOR=1
# Python writes each line as it comes, so the seconds run_stage prefixes are when it happened.
export PYTHONUNBUFFERED=1
logs=build/test-logs
mkdir -p "$logs"
rm -f "$logs"/*.result

run_stage() {  # name, command... ; writes build/test-logs/<name>.result
  local name=$1 start rc secs awk_line_options=
  shift
  # mawk (Debian's awk) reads a pipe in blocks: a line printed before a quiet stretch was stamped when the next block
  # filled, minutes late (the hardening scenario's second check looked 150 s longer than it was). -W interactive makes
  # it read line by line; gawk does so already.
  case $(awk -W version 2>&1) in *mawk*) awk_line_options="-W interactive" ;; esac
  start=$(date +%s)
  # Each line of the log starts with the seconds since the stage began: where a slow stage spends its time.
  # shellcheck disable=SC2086  # awk_line_options is two words or none
  "$@" 2>&1 | awk $awk_line_options -v t0="$start" '{ printf "%5d %s\n", systime() - t0, $0; fflush() }' >"$logs/$name.log"
  rc=${PIPESTATUS[0]}
  secs=$(($(date +%s) - start))
  if [ $rc -eq 0 ]; then
    echo "passed  ${secs}s  $name" | tee "$logs/$name.result"
    # A passing stage with skipped tests says so, with pytest's reason for each (-ra prints "SKIPPED [n] where: why").
    sed -E 's/^ *[0-9]+ //' "$logs/$name.log" | grep -E '^SKIPPED \[[0-9]+\]' | sed "s/^SKIPPED/skipped-test  $name:/" | tee -a "$logs/$name.result"
    # Expected failures too (pytest -ra: "XFAIL test - reason"): a known gap, listed, never counted as passed work.
    sed -E 's/^ *[0-9]+ //' "$logs/$name.log" | grep -E '^XFAIL ' | sed "s/^XFAIL/xfailed-test  $name:/" | tee -a "$logs/$name.result"
  else
    echo "FAILED  ${secs}s  $name (log: $logs/$name.log)" | tee "$logs/$name.result"
    echo "----- last 150 lines of $name -----"
    tail -n 150 "$logs/$name.log"
    echo "----- end of $name -----"
  fi
}

molecule_scenario() {  # scenario[@suite]
  local s=${1%@*} suite=${ETERNA_DEBIAN_SUITE} reason name
  [[ $1 == *@* ]] && suite=${1#*@}
  name="molecule-$s@$suite"
  if [ -x "molecule/$s/skip-if" ] && reason=$("molecule/$s/skip-if") && [ -n "$reason" ]; then
    echo "skipped      $name: $reason" | tee "$logs/$name.result"
    return 0
  fi
  ETERNA_DEBIAN_SUITE=$suite run_stage "$name" molecule test -s "$s"
}
export -f run_stage molecule_scenario
export logs
export ETERNA_DEBIAN_SUITE=${ETERNA_DEBIAN_SUITE:-trixie}

# What the tests need from the system (the release's PostgreSQL, nft...), installed when missing and when root.
scripts/test-deps.sh

# The base images build in the background while the static stages run (debootstrap, about 130 s on a fresh machine,
# mostly download and unpacking). The scenarios start after the static stages: run beside them (tried on 2 Dec), they
# gained little on two cores, since all of it is CPU-bound, and a backup test timed out under the extra load.
images_pid=
if [ -z "${SKIP_MOLECULE:-}" ]; then
  {
    scripts/docker-engine.sh >"$logs/images.log" 2>&1 || { echo "FAILED  0s  images: no Docker engine answers" | tee "$logs/images.result"; exit 1; }
    for suite in $({ echo "$ETERNA_DEBIAN_SUITE"; printf '%s\n' ${SCENARIOS:-} | sed -n 's/.*@//p'; } | sort -u); do
      scripts/base-image.sh "$suite" >>"$logs/images.log" 2>&1 \
        || { echo "FAILED  0s  images: the $suite base image could not be built (log: $logs/images.log)" | tee "$logs/images.result"; exit 1; }
    done
  } &
  images_pid=$!
fi

# lint (ansible-lint: mostly one core) runs beside unit-app then scan (one core each); then the unit tests, which use
# every core. The stages share no files but their logs.
[ -n "${SKIP_LINT:-}" ] || run_stage lint scripts/lint.sh &
lint_pid=$!
# The reference app's own tests, in build/app-venv (FastAPI and the app's pins are not in .venv).
{
  [ -n "${SKIP_UNIT:-}" ] || run_stage unit-app scripts/app-tests.sh
  [ -n "${SKIP_SCAN:-}" ] || run_stage scan scripts/scan.sh
} &
wait "$lint_pid" $!
# --dist worksteal: an idle worker takes queued tests from a busy one (the slow site runs otherwise end on one worker).
[ -n "${SKIP_UNIT:-}" ] || run_stage unit pytest -q -n auto --dist worksteal tests/unit tests/migrations

if [ -n "$images_pid" ] && wait "$images_pid"; then
  all=$(find molecule -mindepth 2 -maxdepth 2 -name molecule.yml -printf '%h\n' | xargs -n1 basename | sort)
  # The order given is kept (`.ci/run` lists the longest first, so the two lanes end together); a name once.
  wanted=$(printf '%s\n' ${SCENARIOS:-$all} | awk '!seen[$0]++')
  # First batch: the default release (plain names and name@<default release>); the whole-stack scenario is the
  # longest, so it starts first.
  printf '%s\n' $wanted | sed "s/@$ETERNA_DEBIAN_SUITE\$//" | grep -v @ | awk '!seen[$0]++' \
    | awk '$0 == "stack" {print; next} {rest = rest $0 "\n"} END {printf "%s", rest}' \
    | xargs -r -P "${JOBS:-2}" -I{} bash -c 'molecule_scenario "$@"' _ {}
  # Then the scenarios named with a release, one release at a time (a name once per release; a run on the default
  # release the first batch made already is not repeated).
  for suite in $(printf '%s\n' $wanted | sed -n 's/.*@//p' | sort -u); do
    [ "$suite" != "$ETERNA_DEBIAN_SUITE" ] || continue
    printf '%s\n' $wanted | grep "@$suite\$" | awk '!seen[$0]++' \
      | xargs -r -P "${JOBS:-2}" -I{} bash -c 'molecule_scenario "$@"' _ {}
  done
fi

echo
echo "=== summary"
cat "$logs"/*.result
passed=$(cat "$logs"/*.result | grep -c '^passed' || true)
failed=$(cat "$logs"/*.result | grep -c '^FAILED' || true)
skipped=$(cat "$logs"/*.result | grep -c '^skipped ' || true)
skipped_tests=$(cat "$logs"/*.result | grep '^skipped-test' | grep -oE '\[[0-9]+\]' | tr -d '[]' | awk '{n += $1} END {print n + 0}')
xfailed_tests=$(cat "$logs"/*.result | grep -c '^xfailed-test' || true)
echo "stages: $passed passed, $failed failed, $skipped skipped; inside passing stages, tests skipped: ${skipped_tests:-0}, expected to fail (xfail): ${xfailed_tests:-0}"
[ "$failed" -eq 0 ]
