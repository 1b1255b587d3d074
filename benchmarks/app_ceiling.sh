#!/usr/bin/env bash
# The reference app's house list against the ceiling of this host (issue #25): GET /api/v1/houses?limit=50 (50 rows,
# a Bearer token from the app's login) served by uvicorn with WORKERS workers, and a bare uvicorn app returning a
# constant (benchmarks/load/ceiling_app.py) with the same workers and virtualenv. Both run on this machine next to a
# throwaway PostgreSQL cluster (Debian's binaries, an unprivileged user, 127.0.0.1 on a free port, removed at the
# end) with the app's alembic migrations and one tenant (create-owner, then 50 houses through the API).
# wrk (benchmarks/wrk_report.lua) loads each target in turn, house list then ceiling, BENCH_ROUNDS times, so both
# see the same background load. Prints requests/s, p50/p95/p99, failed requests, the CPU time per request of the
# server's processes and of PostgreSQL's (which the background load does not inflate) and the load average of
# every run, then the medians and the ratio house list / ceiling. Asserts nothing; stops by itself (about 2 minutes with the
# defaults) and stops its processes and cluster on exit, also on failure or Ctrl-C.
#   benchmarks/app_ceiling.sh [WORKERS]      WORKERS defaults to 2
# Environment: BENCH_DURATION (wrk run length, default 15s), BENCH_CONNECTIONS (64), BENCH_ROUNDS (3),
# BENCH_WRK_THREADS (1: wrk shares the cores with the servers), BENCH_APP_DIR (the app to measure, default
# examples/eterna_home_app: point it at another checkout's app to compare), BENCH_VENV (its virtualenv, default
# build/app-venv, made by scripts/app-tests.sh when missing), ETERNA_PG_BIN (PostgreSQL's bin directory, default
# the newest /usr/lib/postgresql/*/bin), BENCH_KEEP=1 keeps the temporary directory (logs) for a look afterwards,
# BENCH_PROFILE=FILE adds one house list run under py-spy (PyPI; the thread holding the GIL in each worker, 100 samples/s) after the
# rounds and writes its collapsed stacks to FILE (one line per stack and its sample count; benchmarks/profile_top.py
# sums them by function).
# The app runs as in production (app role): PROMETHEUS_MULTIPROC_DIR set, JSON request logs at INFO (to a file here).
# BENCH_TENANT_HOUSES=N adds N houses to the measured tenant (SQL on its database, created after its first 50, so the
# first page stays the same; removed on exit): the list's cost with a large tenant, which the tenant's index bounds.
# BENCH_APP_HOST=lab-app1 measures the way issue #25 does instead: on that running lab container, its deployed app
# (the eterna-api unit, its workers, PostgreSQL through the lab's router over TLS) and the ceiling with the app's
# virtualenv and worker count, wrk inside the container, logged in as the lab's demo owner (password derived from
# the lab's public key). It reports itself skipped when the container does not run; WORKERS, BENCH_APP_DIR,
# BENCH_VENV, ETERNA_PG_BIN and BENCH_PROFILE do not apply there. Instead of PostgreSQL's CPU it prints the CPU time per
# request of the other lab containers (peers: PostgreSQL, the router, etcd... named like HOST up to its first '-'),
# read from their cgroups: on this machine they share the cores with the measured host, unlike production's hosts.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORKERS=${1:-2}
DURATION=${BENCH_DURATION:-15s}
CONNS=${BENCH_CONNECTIONS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_WRK_THREADS:-1}
HOST=${BENCH_APP_HOST:-}
EXTRA_HOUSES=${BENCH_TENANT_HOUSES:-0}
[[ $EXTRA_HOUSES =~ ^[0-9]+$ ]] || { echo "app_ceiling: BENCH_TENANT_HOUSES must be a whole number of houses, got '$EXTRA_HOUSES'" >&2; exit 2; }

if [ -n "$HOST" ]; then
  on() { docker exec -i "$HOST" "$@"; }  # a command in the lab container, stdin passed through
  docker inspect "$HOST" >/dev/null 2>&1 || { echo "app_ceiling: container $HOST does not run (make lab first; skipped)"; exit 0; }
  PY=.venv/bin/python
else
  on() { "$@"; }
  APP_DIR=$(cd "${BENCH_APP_DIR:-examples/eterna_home_app}" && pwd)
  VENV=${BENCH_VENV:-$ROOT/build/app-venv}
  PG_BIN=${ETERNA_PG_BIN:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k4 -n | tail -1)}
  command -v wrk >/dev/null || { echo "app_ceiling: wrk is missing (apt-get install wrk)" >&2; exit 2; }
  [ -x "$PG_BIN/initdb" ] || { echo "app_ceiling: no PostgreSQL in '$PG_BIN' (apt-get install postgresql)" >&2; exit 2; }
  if [ ! -x "$VENV/bin/uvicorn" ]; then
    # app-tests.sh builds the venv from the pinned requirements; collecting the tests is enough to get it made.
    echo "building $VENV (scripts/app-tests.sh)..." >&2
    scripts/app-tests.sh --collect-only -q >/dev/null
  fi
  PY=$VENV/bin/python
fi

tmp=$(mktemp -d /tmp/eterna-app-ceiling.XXXXXX)
chmod 0755 "$tmp"
pg_user=()
if [ -z "$HOST" ] && [ "$(id -u)" = 0 ]; then
  # initdb refuses root: run the cluster as postgres (or nobody) with trust on 127.0.0.1 only.
  owner=$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)
  pg_user=(runuser -u "$owner" --)
  chown "$owner" "$tmp"
fi
pids=()  # this machine's servers; in the container only the ceiling is ours
lab_ceiling=""
lab_leader=""  # the lab's PostgreSQL primary, for BENCH_TENANT_HOUSES
filler=""
sql() {  # SQL on the measured app's database, as the superuser; prints unaligned rows
  if [ -n "$HOST" ]; then
    docker exec -i "$lab_leader" runuser -u postgres -- psql -qAtX -v ON_ERROR_STOP=1 -d "${BENCH_DB_NAME:-eterna}" -c "$1"
  else
    "${pg_user[@]}" "$PG_BIN/psql" -qAtX -v ON_ERROR_STOP=1 -h "$tmp" -p "$pg_port" -U postgres -d eterna -c "$1"
  fi
}
cleanup() {
  if [ -n "$filler" ]; then sql "DELETE FROM houses WHERE $filler" >/dev/null 2>&1 || echo "app_ceiling: could not remove the filler houses ($filler)" >&2; fi
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ -n "$lab_ceiling" ]; then on kill "$lab_ceiling" 2>/dev/null || true; fi
  if [ -f "$tmp/data/postmaster.pid" ]; then
    "${pg_user[@]}" "$PG_BIN/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
wait_http() {
  for _ in $(seq 60); do on curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.5; done
  echo "app_ceiling: $1 did not answer; logs in ${HOST:+$HOST:/tmp/eterna_bench_ceiling.log and }$tmp" >&2
  BENCH_KEEP=1
  return 1
}

if [ -n "$HOST" ]; then
  # 1-2 on the lab host: wrk, the report script and the ceiling streamed in (/tmp is a tmpfs docker cp cannot see),
  # the ceiling started with the deployed app's virtualenv and worker count.
  on sh -c 'command -v wrk >/dev/null || { apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y wrk >/dev/null 2>&1; }'
  on sh -c 'cat >/tmp/eterna_wrk_report.lua' <benchmarks/wrk_report.lua
  on sh -c 'cat >/tmp/eterna_bench_ceiling.py && chmod 0644 /tmp/eterna_bench_ceiling.py' <benchmarks/load/ceiling_app.py
  report_lua=/tmp/eterna_wrk_report.lua
  WORKERS=$(on sh -c "grep -o -- '--workers [0-9]*' /etc/systemd/system/eterna-api.service | awk '{print \$2}'")
  app_pid=$(on systemctl show -p MainPID --value eterna-api)
  [ "${app_pid:-0}" -gt 0 ] || { echo "app_ceiling: eterna-api does not run on $HOST" >&2; exit 1; }
  ceiling_port=18000
  lab_ceiling=$(on sh -c "cd /tmp && nohup /opt/eterna-app/current/venv/bin/uvicorn eterna_bench_ceiling:app \
    --host 127.0.0.1 --port $ceiling_port --workers $WORKERS --no-server-header --no-access-log \
    >/tmp/eterna_bench_ceiling.log 2>&1 & echo \$!")
  pg_pid=""
  mapfile -t peers < <(docker ps --format '{{.Names}}' | grep "^${HOST%%-*}-" | grep -vx "$HOST")
  app=http://127.0.0.1:8000
  email=${BENCH_EMAIL:-owner@demo.eterna.test}
  password=$("$PY" -c 'import sys; sys.path.insert(0, "benchmarks/load"); import labenv
print(labenv._secrets_module().derive_secret(labenv.lab_master_key(), sys.argv[1]))' "${BENCH_PASSWORD_PURPOSE:-lab/demo-owner}")
  what="$HOST's deployed app ($(on readlink /opt/eterna-app/current | xargs basename)), PostgreSQL through the lab's router"
else
  # 1. PostgreSQL, migrations and the tenant.
  pg_port=$(free_port)
  "${pg_user[@]}" "$PG_BIN/initdb" -D "$tmp/data" -U postgres --auth=trust -E UTF8 >"$tmp/initdb.log"
  "${pg_user[@]}" "$PG_BIN/pg_ctl" -D "$tmp/data" -l "$tmp/pg.log" -w start \
    -o "-k $tmp -p $pg_port -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" >/dev/null
  "${pg_user[@]}" "$PG_BIN/psql" -qX -h "$tmp" -p "$pg_port" -U postgres -c 'CREATE DATABASE eterna' >/dev/null

  secret() { "$PY" -c 'import secrets; print(secrets.token_hex(32))'; }
  export DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$pg_port/eterna"
  JWT_KEYS="bench:$(secret)"
  SECRET_KEY=$(secret)
  export JWT_KEYS SECRET_KEY JWT_ACTIVE_KID=bench
  export ALLOWED_HOSTS="127.0.0.1,localhost" LOG_LEVEL=INFO
  export PROMETHEUS_MULTIPROC_DIR=$tmp/metrics
  mkdir "$tmp/metrics"
  email=owner@bench.test
  password=$(secret)
  (cd "$APP_DIR" && "$PY" -m alembic upgrade head >"$tmp/alembic.log" 2>&1)
  (cd "$APP_DIR" && "$PY" -m app.manage create-owner --tenant bench --email "$email" <<<"$password" >/dev/null)

  # 2. The app and the ceiling, each with WORKERS workers (the idle one waits on its socket while the other is loaded).
  app_port=$(free_port)
  (cd "$APP_DIR" && exec "$VENV/bin/uvicorn" app.main:app --host 127.0.0.1 --port "$app_port" --workers "$WORKERS" \
    --no-server-header) >"$tmp/app.log" 2>&1 &
  pids+=($!)
  app_pid=$!
  ceiling_port=$(free_port)
  (cd benchmarks/load && exec "$VENV/bin/uvicorn" ceiling_app:app --host 127.0.0.1 --port "$ceiling_port" \
    --workers "$WORKERS" --no-server-header --no-access-log) >"$tmp/ceiling.log" 2>&1 &
  pids+=($!)
  pg_pid=$(head -1 "$tmp/data/postmaster.pid")
  report_lua=benchmarks/wrk_report.lua
  app=http://127.0.0.1:$app_port
  what="app $APP_DIR ($(git -C "$APP_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')), PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}') on this machine"
fi
ceiling_url="http://127.0.0.1:$ceiling_port/"
wait_http "$app/health"
wait_http "$ceiling_url"
ceiling_pid=${lab_ceiling:-${pids[1]:-}}

# The tenant's token, and 50 houses in its list (created the first time).
token=$(on python3 - "$app" "$email" "$password" <benchmarks/load/house_token.py)
auth="Authorization: Bearer $token"
houses_url="$app/api/v1/houses?limit=50"
rows=$(on curl -fsS -H "$auth" "$houses_url" | "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))')
tenant_rows=""
if [ "$EXTRA_HOUSES" -gt 0 ]; then
  # The tenant of the token (its tid claim), then N houses made after every house it has.
  tenant=$("$PY" -c 'import base64, json, sys; p = sys.argv[1].split(".")[1]; print(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))["tid"])' "$token")
  [[ $tenant =~ ^[a-z0-9][a-z0-9-]*$ ]] || { echo "app_ceiling: unexpected tenant id in the token" >&2; exit 1; }
  if [ -n "$HOST" ]; then
    for db in "${peers[@]}"; do
      if [ "$(docker exec "$db" sh -c 'command -v psql >/dev/null && runuser -u postgres -- psql -qAtX -c "SELECT pg_is_in_recovery()"' 2>/dev/null)" = f ]; then
        lab_leader=$db
      fi
    done
    [ -n "$lab_leader" ] || { echo "app_ceiling: no PostgreSQL primary among ${peers[*]}" >&2; exit 1; }
  fi
  filler="tenant_id = '$tenant' AND name LIKE 'bench filler %'"
  sql "INSERT INTO houses (id, tenant_id, name, address, created_at) SELECT gen_random_uuid(), '$tenant',
         'bench filler ' || i, '', (SELECT max(created_at) FROM houses WHERE tenant_id = '$tenant') + i * interval '1 ms'
       FROM generate_series(1, $EXTRA_HOUSES) i; ANALYZE houses" >/dev/null
  tenant_rows=", tenant $tenant holds $(sql "SELECT count(*) FROM houses WHERE tenant_id = '$tenant'") houses"
fi

echo "app_ceiling: $(nproc) CPUs, $what, $WORKERS workers each, wrk -t$THREADS -c$CONNS -d$DURATION${HOST:+ on $HOST},"\
  "house list answers $rows rows$tenant_rows"
# Warm-up: connection pools, imports and caches, not counted.
on wrk -t"$THREADS" -c"$CONNS" -d3s -H "$auth" "$houses_url" >/dev/null
on wrk -t"$THREADS" -c"$CONNS" -d3s "$ceiling_url" >/dev/null

# 3. Alternating runs; one line each: name, wrk_report.lua's figures, the CPU time per request of the server's
# processes and of PostgreSQL's when it runs here (user + system, reaped children included; the background load does
# not count in it), the load average just after.
tick=$(getconf CLK_TCK)
tree_ticks() {  # pids: CPU ticks of these processes and their children, where they run
  # shellcheck disable=SC2016  # expanded by the inner shell
  on sh -c 'total=0
    for pid in "$@" $(pgrep -P "$(echo "$@" | tr " " ,)"); do
      total=$((total + $(awk "{print \$14 + \$15 + \$16 + \$17}" "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"' ticks "$@"
}
container_ns() {  # containers: CPU time they used so far in ns (cgroup v1 cpuacct, or v2 cpu.stat), summed
  local total=0 name id f
  for name in "$@"; do
    id=$(docker inspect -f '{{.Id}}' "$name")
    for f in "/sys/fs/cgroup/cpuacct/docker/$id/cpuacct.usage" "/sys/fs/cgroup/docker/$id/cpu.stat" \
      "/sys/fs/cgroup/system.slice/docker-$id.scope/cpu.stat"; do
      [ -r "$f" ] || continue
      case $f in
        *.usage) total=$((total + $(cat "$f"))) ;;
        *) total=$((total + $(awk '$1 == "usage_usec" {print $2 * 1000}' "$f"))) ;;
      esac
      break
    done
  done
  echo "$total"
}
run() {
  local name=$1 pid=$2 url=$3
  shift 3
  local line server0 pg0=0 server1 pg1=0 requests pg_figure=""
  server0=$(tree_ticks "$pid")
  if [ -n "$pg_pid" ]; then pg0=$(tree_ticks "$pg_pid"); elif [ -n "$HOST" ]; then pg0=$(container_ns "${peers[@]}"); fi
  line=$(on wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s "$report_lua" "$@" "$url" | grep '^requests=')
  server1=$(tree_ticks "$pid")
  if [ -n "$pg_pid" ]; then pg1=$(tree_ticks "$pg_pid"); elif [ -n "$HOST" ]; then pg1=$(container_ns "${peers[@]}"); fi
  requests=${line#requests=}
  requests=${requests%% *}
  if [ -n "$pg_pid" ]; then
    pg_figure=" postgres=$(awk -v p=$((pg1 - pg0)) -v n="$requests" -v t="$tick" \
      'BEGIN { n = n > 0 ? n : 1; printf "%.2f", p * 1000 / t / n }')"
  elif [ -n "$HOST" ]; then
    pg_figure=" peers=$(awk -v p=$((pg1 - pg0)) -v n="$requests" 'BEGIN { n = n > 0 ? n : 1; printf "%.2f", p / 1e6 / n }')"
  fi
  echo "$name $line $(awk -v s=$((server1 - server0)) -v n="$requests" -v t="$tick" \
    'BEGIN { n = n > 0 ? n : 1; printf "cpu_ms_per_request: server=%.2f", s * 1000 / t / n }')$pg_figure"\
    "load=$(load | tr ' ' ,)"
}
: >"$tmp/runs"
for round in $(seq "$ROUNDS"); do
  run "round$round houses " "$app_pid" "$houses_url" -H "$auth" | tee -a "$tmp/runs"
  run "round$round ceiling" "$ceiling_pid" "$ceiling_url" | tee -a "$tmp/runs"
done

if [ -n "${BENCH_PROFILE:-}" ] && [ -z "$HOST" ]; then
  spy=$(command -v py-spy || echo "$ROOT/.venv/bin/py-spy")
  [ -x "$spy" ] || { echo "app_ceiling: BENCH_PROFILE needs py-spy (pip install py-spy)" >&2; exit 2; }
  secs=${DURATION%s}
  [[ "$secs" =~ ^[0-9]+$ ]] || { echo "app_ceiling: BENCH_PROFILE needs BENCH_DURATION in seconds (15s), got $DURATION" >&2; exit 2; }
  "$spy" record --subprocesses --nonblocking --gil --rate 100 --duration "$secs" --format raw -o "$BENCH_PROFILE" \
    --pid "$app_pid" >"$tmp/py-spy.log" 2>&1 &
  spy_pid=$!
  sleep 1
  wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -H "$auth" "$houses_url" >/dev/null
  wait "$spy_pid" || { cat "$tmp/py-spy.log" >&2; exit 1; }
  echo "profile of one house list run: $BENCH_PROFILE ($(wc -l <"$BENCH_PROFILE") stacks)"
fi

# 4. Medians and the ratio (per round too: each pair ran back to back).
"$PY" - "$tmp/runs" <<'PY'
import re
import statistics
import sys

runs = {"houses": [], "ceiling": []}
for line in open(sys.argv[1]):
    name = line.split()[1]
    figures = dict(re.findall(r"(\w+)=([0-9.]+)", line.replace("cpu_ms_per_request:", "")))
    runs[name].append({k: float(v) for k, v in figures.items()})
for name, items in runs.items():
    keys = [k for k in ("rps", "p50_ms", "p95_ms", "p99_ms", "server", "postgres", "peers") if all(k in r for r in items)]
    med = {k: statistics.median(r[k] for r in items) for k in keys}
    failed = sum(int(r["failed"]) for r in items)
    cpu = " ".join(f"{k}={med[k]:.2f}" for k in ("server", "postgres", "peers") if k in med)
    print(
        f"median {name:8} rps={med['rps']:.1f} p50_ms={med['p50_ms']:.1f} p95_ms={med['p95_ms']:.1f} "
        f"p99_ms={med['p99_ms']:.1f} failed={failed} cpu_ms_per_request: {cpu}"
    )
pairs = [h["rps"] / c["rps"] for h, c in zip(runs["houses"], runs["ceiling"]) if c["rps"]]
medians = statistics.median(r["rps"] for r in runs["houses"]) / statistics.median(r["rps"] for r in runs["ceiling"])
print(f"ratio house list / ceiling: {medians:.2f} (per round: {', '.join(f'{p:.2f}' for p in pairs)})")
PY
echo "load average at the end: $(load)"
