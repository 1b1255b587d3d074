#!/usr/bin/env bash
# How long each Molecule action of a scenario took (fresh check, converge, idempotence, check, verify...), read from
# the scenario's log in build/test-logs/ (scripts/run-tests.sh writes it; each line starts with the seconds since the
# scenario began). Prints seconds per action and the total; asserts nothing. Without a log it says how to make one.
#   benchmarks/scenario_stages.sh                         the whole-stack scenario's last run (stack@trixie)
#   BENCH_SCENARIOS="app base" benchmarks/scenario_stages.sh        other scenarios' last runs
#   BENCH_RUN=1 benchmarks/scenario_stages.sh             run them first, one at a time (stack: about 45 min here)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
scenarios=${BENCH_SCENARIOS:-stack}
logs=build/test-logs

if [ -n "${BENCH_RUN:-}" ]; then
  # The lint, unit and scan stages are not what is measured.
  SKIP_LINT=1 SKIP_UNIT=1 SKIP_SCAN=1 JOBS=1 SCENARIOS="$scenarios" scripts/run-tests.sh || true
fi

echo "scenario stages ($(nproc) CPUs, load now $(cut -d' ' -f1-3 /proc/loadavg); each run's load is not recorded)"
for scenario in $scenarios; do
  case $scenario in *@*) name=molecule-$scenario ;; *) name=molecule-$scenario@trixie ;; esac
  log=$logs/$name.log
  if [ ! -f "$log" ]; then
    echo "  $name: no log; BENCH_RUN=1 BENCH_SCENARIOS=$scenario benchmarks/scenario_stages.sh runs it (skipped)"
    continue
  fi
  result=$(head -n 1 "$logs/$name.result" 2>/dev/null || echo 'no result')
  echo "  $name ($result; log from $(date -r "$log" '+%F %H:%M'))"
  # "  38 INFO     [base > converge] Executing": an action starts; it ends where the next one starts or the log ends.
  # The first check is the fresh-host check before converge.
  awk '
    match($0, /^ *[0-9]+ INFO +\[[^]]+ > [a-z_]+\] Executing$/) {
      secs = $1; action = $0; sub(/.* > /, "", action); sub(/\].*/, "", action)
      if (action == "check" && !converged) action = "fresh check"
      if (action == "converge") converged = 1
      if (n && names[n] == action) next
      n++; names[n] = action; starts[n] = secs
    }
    /^ *[0-9]+ / { last = $1 }
    END {
      for (i = 1; i <= n; i++) {
        end = (i < n) ? starts[i + 1] : last
        printf "    %-14s %6d s\n", names[i], end - starts[i]
      }
      printf "    %-14s %6d s\n", "total", last
    }' "$log"
done
