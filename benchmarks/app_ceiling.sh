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
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORKERS=${1:-2}
DURATION=${BENCH_DURATION:-15s}
CONNS=${BENCH_CONNECTIONS:-64}
ROUNDS=${BENCH_ROUNDS:-3}
THREADS=${BENCH_WRK_THREADS:-1}
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

tmp=$(mktemp -d /tmp/eterna-app-ceiling.XXXXXX)
chmod 0755 "$tmp"
pg_user=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses root: run the cluster as postgres (or nobody) with trust on 127.0.0.1 only.
  owner=$(id -u postgres >/dev/null 2>&1 && echo postgres || echo nobody)
  pg_user=(runuser -u "$owner" --)
  chown "$owner" "$tmp"
fi
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
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
  for _ in $(seq 60); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.5; done
  echo "app_ceiling: $1 did not answer; logs in $tmp" >&2
  BENCH_KEEP=1
  return 1
}

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
ceiling_port=$(free_port)
(cd benchmarks/load && exec "$VENV/bin/uvicorn" ceiling_app:app --host 127.0.0.1 --port "$ceiling_port" \
  --workers "$WORKERS" --no-server-header --no-access-log) >"$tmp/ceiling.log" 2>&1 &
pids+=($!)
app=http://127.0.0.1:$app_port
wait_http "$app/health"
wait_http "http://127.0.0.1:$ceiling_port/"

token=$(curl -fsS -d "username=$email" --data-urlencode "password=$password" "$app/api/v1/auth/token" |
  "$PY" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
auth="Authorization: Bearer $token"
for i in $(seq 50); do
  curl -fsS -o /dev/null -H "$auth" -H 'Content-Type: application/json' \
    -d "{\"name\": \"house $i\", \"address\": \"$i bench street\"}" "$app/api/v1/houses"
done
rows=$(curl -fsS -H "$auth" "$app/api/v1/houses?limit=50" | "$PY" -c 'import json, sys; print(len(json.load(sys.stdin)))')
houses_url="$app/api/v1/houses?limit=50"
ceiling_url="http://127.0.0.1:$ceiling_port/"

echo "app_ceiling: $(nproc) CPUs, app $APP_DIR ($(git -C "$APP_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')),"\
  "PostgreSQL $("$PG_BIN/postgres" -V | awk '{print $3}'), $WORKERS workers each, wrk -t$THREADS -c$CONNS -d$DURATION,"\
  "house list answers $rows rows"
# Warm-up: connection pools, imports and caches, not counted.
wrk -t"$THREADS" -c"$CONNS" -d3s -H "$auth" "$houses_url" >/dev/null
wrk -t"$THREADS" -c"$CONNS" -d3s "$ceiling_url" >/dev/null

# 3. Alternating runs; one line each: name, wrk_report.lua's figures, the CPU time per request of the server's
# processes and of PostgreSQL's (user + system, reaped children included; the background load does not count in
# it), the load average just after.
tick=$(getconf CLK_TCK)
tree_ticks() {
  local total=0 pid
  for pid in "$@" $(pgrep -P "$(echo "$@" | tr ' ' ,)"); do
    total=$((total + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
  done
  echo "$total"
}
pg_pid=$(head -1 "$tmp/data/postmaster.pid")
run() {
  local name=$1 pid=$2 url=$3
  shift 3
  local line server0 pg0 server1 pg1 requests
  server0=$(tree_ticks "$pid")
  pg0=$(tree_ticks "$pg_pid")
  line=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" -s benchmarks/wrk_report.lua "$@" "$url" | grep '^requests=')
  server1=$(tree_ticks "$pid")
  pg1=$(tree_ticks "$pg_pid")
  requests=${line#requests=}
  requests=${requests%% *}
  echo "$name $line $(awk -v s=$((server1 - server0)) -v p=$((pg1 - pg0)) -v n="$requests" -v t="$tick" \
    'BEGIN { n = n > 0 ? n : 1; printf "cpu_ms_per_request: server=%.2f postgres=%.2f", s * 1000 / t / n, p * 1000 / t / n }')"\
    "load=$(load | tr ' ' ,)"
}
: >"$tmp/runs"
for round in $(seq "$ROUNDS"); do
  run "round$round houses " "${pids[0]}" "$houses_url" -H "$auth" | tee -a "$tmp/runs"
  run "round$round ceiling" "${pids[1]}" "$ceiling_url" | tee -a "$tmp/runs"
done

if [ -n "${BENCH_PROFILE:-}" ]; then
  spy=$(command -v py-spy || echo "$ROOT/.venv/bin/py-spy")
  [ -x "$spy" ] || { echo "app_ceiling: BENCH_PROFILE needs py-spy (pip install py-spy)" >&2; exit 2; }
  secs=${DURATION%s}
  [[ "$secs" =~ ^[0-9]+$ ]] || { echo "app_ceiling: BENCH_PROFILE needs BENCH_DURATION in seconds (15s), got $DURATION" >&2; exit 2; }
  "$spy" record --subprocesses --nonblocking --gil --rate 100 --duration "$secs" --format raw -o "$BENCH_PROFILE" \
    --pid "${pids[0]}" >"$tmp/py-spy.log" 2>&1 &
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
    med = {k: statistics.median(r[k] for r in items) for k in ("rps", "p50_ms", "p95_ms", "p99_ms", "server", "postgres")}
    failed = sum(int(r["failed"]) for r in items)
    print(
        f"median {name:8} rps={med['rps']:.1f} p50_ms={med['p50_ms']:.1f} p95_ms={med['p95_ms']:.1f} "
        f"p99_ms={med['p99_ms']:.1f} failed={failed} cpu_ms_per_request: server={med['server']:.2f} "
        f"postgres={med['postgres']:.2f}"
    )
pairs = [h["rps"] / c["rps"] for h, c in zip(runs["houses"], runs["ceiling"]) if c["rps"]]
medians = statistics.median(r["rps"] for r in runs["houses"]) / statistics.median(r["rps"] for r in runs["ceiling"])
print(f"ratio house list / ceiling: {medians:.2f} (per round: {', '.join(f'{p:.2f}' for p in pairs)})")
PY
echo "load average at the end: $(load)"
