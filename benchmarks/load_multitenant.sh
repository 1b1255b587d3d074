#!/usr/bin/env bash
# Multi-tenant load, stress and scale on the running lab (issue 25): Locust, headless, from a container that joins
# a lab host's network namespace (never from this machine's own network), bounded in time and requests.
#   1. Bench tenants: each one's first owner through the app's bootstrap command (app.manage create-owner on
#      lab-app1, as app_bootstrap_owners does), then seed.py through the API: the owner logs in and adds the
#      other accounts (/api/v1/members), houses, documents and BIM models.
#   2. The day-of-use mix (locustfile.py DayUser) in rising steps through the edge with every app host, then with
#      one app host behind the edge (nginx play with nginx_upstream_hosts=[first app host], restored at the end):
#      the knee of each (highest offered rate with p95 <= 2 s and errors <= 1 %) and the throughput ratio.
#   3. On lab-app1 itself: the house list straight from the app, and a bare uvicorn app returning a constant
#      (ceiling_app.py, the app's own virtualenv and worker count) as the ceiling.
#   4. report.py: PNG plots and a summary under build/bench/load/<time>/ (git-ignored), printed.
# Every JSON answer and downloaded document is checked against the caller's tenant: a leak fails the run (exit 3).
# The load enters the edge on its loopback, which the lab exempts from the per-address and per-tenant request rates
# (nginx_limit_exempt_networks), so the figures are the platform's, not the limiter's; logins stay limited per
# address by design, so the mix caps them (BENCH_LOGIN_RATE). Sizes and steps: the BENCH_* variables of
# locustfile.py and seed.py (defaults fit the 2-core lab machine). BENCH_SCALING=0 skips the one-host run,
# BENCH_CEILING=0 the runs on lab-app1. BENCH_APP_CPUS=0.5 caps each app host's container at that many CPUs (CFS
# quota over a 100 ms period, docker update) for the run and restores its earlier quota at the end: on a machine
# whose cores every container shares, that gives each app host CPU time of its own, so the one-host and two-host
# runs compare app tiers, not the same two cores. Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"  # run alone as well as from make, which sets it
EDGE=${BENCH_EDGE:-lab-edge}
APP=${BENCH_APP:-lab-app1}
# Another inventory with the lab's group_vars (the stack scenario's: BENCH_EDGE=stack-edge BENCH_APP=stack-app1
# BENCH_INVENTORY=<its inventory>) for the one-app-host run's nginx play.
inventory=(${BENCH_INVENTORY:+-i "$BENCH_INVENTORY"})
TENANTS=${BENCH_TENANTS:-4}
STEP_SECONDS=${BENCH_STEP_SECONDS:-20}
export BENCH_TENANTS=$TENANTS BENCH_STEP_SECONDS=$STEP_SECONDS

if ! docker inspect "$EDGE" "$APP" >/dev/null 2>&1; then
  echo "load_multitenant: the lab does not run (make lab first; skipped)"
  exit 0
fi
[ -x .venv/bin/locust ] || { echo "load_multitenant: locust missing from .venv (make venv)" >&2; exit 1; }

run_dir=build/bench/load/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$run_dir"
ln -sfn "$(basename "$run_dir")" build/bench/load/latest
(while sleep 10; do echo "$(date -u +%H:%M:%S) $(cut -d' ' -f1-3 /proc/loadavg)"; done) >"$run_dir/loadavg.log" &
sampler=$!
ceiling_pid=""
scaled_down=""
capped=()  # container=earlier CFS quota in microseconds (0 or -1: none)
cleanup() {
  kill "$sampler" 2>/dev/null || true
  for entry in "${capped[@]}"; do
    quota=${entry#*=}
    [ "$quota" -gt 0 ] || quota=-1
    docker update --cpu-quota "$quota" "${entry%%=*}" >/dev/null ||
      echo "load_multitenant: restore the CPU quota of ${entry%%=*} by hand (docker update --cpu-quota $quota)" >&2
  done
  if [ -n "$ceiling_pid" ]; then docker exec "$APP" kill "$ceiling_pid" 2>/dev/null || true; fi
  if [ -n "$scaled_down" ]; then
    echo "restoring the edge's upstream (every app host)"
    ansible-playbook "${inventory[@]}" playbooks/services/nginx.yml >"$run_dir/nginx-restore.log" 2>&1 ||
      echo "load_multitenant: restoring the edge failed; run: ansible-playbook ${BENCH_INVENTORY:+-i $BENCH_INVENTORY }playbooks/services/nginx.yml" >&2
  fi
}
trap cleanup EXIT
echo "host: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "results: $run_dir"
if [ -n "${BENCH_APP_CPUS:-}" ]; then
  for host in $(ansible "${inventory[@]}" app --list-hosts | tail -n +2); do
    capped+=("$host=$(docker inspect -f '{{.HostConfig.CpuQuota}}' "$host")")
    docker update --cpu-period 100000 --cpu-quota "$(awk -v c="$BENCH_APP_CPUS" 'BEGIN {printf "%d", c * 100000}')" "$host" >/dev/null
  done
  echo "app hosts capped at $BENCH_APP_CPUS CPUs each: ${capped[*]%%=*}" | tee "$run_dir/conditions.txt"
fi

# The load container runs this machine's virtualenv (Locust pinned in pyproject.toml): the repository and the
# virtualenv's base Python are mounted read-only at their own paths, the run directory read-write.
prefix=$(.venv/bin/python -c 'import sys; print(sys.base_prefix)')
mounts=(-v "$PWD:$PWD:ro" -v "$PWD/$run_dir:$PWD/$run_dir")
case $prefix in /usr | /usr/local) ;; *) mounts+=(-v "$prefix:$prefix:ro") ;; esac
venv=$(readlink -f .venv)
case $venv in "$PWD"/*) ;; *) mounts+=(-v "$venv:$venv:ro") ;; esac
# shellcheck disable=SC1091
image=$(docker images "eterna/debian$(. /etc/os-release && echo "$VERSION_ID")-systemd" --format '{{.Repository}}:{{.Tag}}' | head -n 1)
image=${image:-$(docker inspect -f '{{.Config.Image}}' "$EDGE")}

in_lab() {  # network namespace (a lab container), then the command
  local netns=$1
  shift
  docker run --rm --network "container:$netns" "${mounts[@]}" -w "$PWD" -e PYTHONDONTWRITEBYTECODE=1 \
    --env-file <(env | grep '^BENCH_' || true) -e BENCH_RESULTS="$PWD/$run_dir" "$image" "$@"
}

locust_run() {  # label, network namespace, user class, base URL, Host header
  local label=$1 netns=$2 class=$3 base=$4 host=$5 rc=0
  echo "--- $label: $class -> $base (Host $host) from $netns's network, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  BENCH_LABEL=$label BENCH_BASE_URL=$base BENCH_HOST_HEADER=$host BENCH_SEED=$PWD/$run_dir/seed.json \
    in_lab "$netns" .venv/bin/python -m locust -f benchmarks/load/locustfile.py --headless --only-summary \
    --csv "$run_dir/$label" --html "$run_dir/$label.html" --stop-timeout 15 \
    --loglevel WARNING "$class" >"$run_dir/$label.log" 2>&1 || rc=$?
  grep -E "^(step |logged in|$label: knee)" "$run_dir/$label.log" || true
  if [ "$rc" = 3 ]; then
    echo "load_multitenant: TENANT LEAK in $label (see $run_dir/$label.summary.json)" >&2
    exit 3
  elif [ "$rc" != 0 ]; then
    tail -n 20 "$run_dir/$label.log" >&2
    echo "load_multitenant: $label failed (exit $rc, log $run_dir/$label.log)" >&2
    exit 1
  fi
}

# 1. Tenants: first owners through the app's bootstrap command (password on stdin), then the API.
create_owner() {  # tenant; the command prints created or exists
  .venv/bin/python -c "import sys; sys.path.insert(0, 'benchmarks/load'); import labenv; print(labenv.password(labenv.Account('$1', 'owner')))" |
    docker exec -i "$APP" /usr/local/bin/eterna-app-manage /opt/eterna-app/current python -m app.manage create-owner \
      --tenant "$1" --email "owner@$1.bench.eterna.test" >/dev/null
}
# BENCH_SEED_FROM=<an earlier run's seed.json> reuses its tenants as they are (no owner or seed step).
if [ -n "${BENCH_SEED_FROM:-}" ]; then
  cp "$BENCH_SEED_FROM" "$run_dir/seed.json"
else
  for tenant in $(.venv/bin/python -c "import sys; sys.path.insert(0, 'benchmarks/load'); import labenv; print(*labenv.tenant_ids($TENANTS))"); do
    # A database connection can time out on a saturated machine: three attempts.
    create_owner "$tenant" || { sleep 10 && create_owner "$tenant"; } || { sleep 30 && create_owner "$tenant"; }
  done
  BENCH_BASE_URL=https://127.0.0.1 BENCH_HOST_HEADER=$EDGE in_lab "$EDGE" .venv/bin/python benchmarks/load/seed.py "$PWD/$run_dir/seed.json"
fi

# 2. The day-of-use mix through the edge, every app host, then one.
apps=$(docker exec "$EDGE" grep -c '^ *server .*:8000 ' /etc/nginx/nginx.conf || echo 0)
locust_run "edge-${apps}apps" "$EDGE" DayUser https://127.0.0.1 "$EDGE"
if [ "${BENCH_SCALING:-1}" != 0 ] && [ "$apps" -gt 1 ]; then
  echo "--- the edge with one app host ($APP): nginx play with nginx_upstream_hosts=[$APP]"
  scaled_down=1
  ansible-playbook "${inventory[@]}" playbooks/services/nginx.yml -e "{\"nginx_upstream_hosts\": [\"$APP\"]}" >"$run_dir/nginx-1app.log" 2>&1
  locust_run edge-1apps "$EDGE" DayUser https://127.0.0.1 "$EDGE"
  cleanup_start=$(date +%s)
  ansible-playbook "${inventory[@]}" playbooks/services/nginx.yml >"$run_dir/nginx-restore.log" 2>&1
  scaled_down=""
  echo "edge restored to $apps app hosts in $(($(date +%s) - cleanup_start)) s"
fi

# 3. On the app host: the house list straight from the app, then the ceiling (same workers as the app).
if [ "${BENCH_CEILING:-1}" != 0 ]; then
  locust_run app1-houses "$APP" HouseListUser http://127.0.0.1:8000 localhost
  workers=$(docker exec "$APP" sh -c "grep -o -- '--workers [0-9]*' /etc/systemd/system/eterna-api.service | awk '{print \$2}'" || true)
  docker exec -i "$APP" sh -c 'cat >/tmp/eterna_bench_ceiling.py && chmod 0644 /tmp/eterna_bench_ceiling.py' <benchmarks/load/ceiling_app.py
  ceiling_pid=$(docker exec "$APP" sh -c "cd /tmp && nohup /opt/eterna-app/current/venv/bin/uvicorn eterna_bench_ceiling:app \
    --host 127.0.0.1 --port 18000 --workers ${workers:-2} --no-access-log >/tmp/eterna_bench_ceiling.log 2>&1 & echo \$!")
  for _ in $(seq 30); do docker exec "$APP" curl -fsS -o /dev/null http://127.0.0.1:18000/ 2>/dev/null && break; sleep 1; done
  echo "ceiling: uvicorn (pid $ceiling_pid on $APP) with ${workers:-2} workers"
  locust_run app1-ceiling "$APP" CeilingUser http://127.0.0.1:18000 localhost
  docker exec "$APP" kill "$ceiling_pid"
  ceiling_pid=""
fi

# 4. Plots and the summary.
kill "$sampler" 2>/dev/null || true
.venv/bin/python benchmarks/load/report.py "$run_dir"
