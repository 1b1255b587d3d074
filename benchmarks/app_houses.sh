#!/usr/bin/env bash
# Requests/s and p50/p95/p99 latency of GET /api/v1/houses for one tenant, straight against the app
# (no nginx). Prints figures only; it asserts nothing.
#   benchmarks/app_houses.sh [BASE_URL] [REQUESTS] [CONCURRENCY]
# BASE_URL defaults to the app container of the molecule `app` scenario (reached through docker exec
# from the data container) when it exists, else http://127.0.0.1:8000.
set -euo pipefail
BASE=${1:-}
N=${2:-2000}
C=${3:-8}
TENANT=${BENCH_TENANT:-bench-tenant}

read -r -d '' PY <<'PYEOF' || true
import json, statistics, sys, time, urllib.request
from concurrent.futures import ThreadPoolExecutor
base, n, c, tenant = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
hdr = {"X-Tenant-ID": tenant, "Content-Type": "application/json"}
def call(method, path, body=None):
    req = urllib.request.Request(base + path, data=body, headers=hdr, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, resp.read()
status, body = call("GET", "/api/v1/houses?limit=50")
if len(json.loads(body)) < 50:
    for i in range(50):
        call("POST", "/api/v1/houses", json.dumps({"name": f"bench {i}", "address": "x"}).encode())
for _ in range(50):
    call("GET", "/api/v1/houses?limit=50")
def one(_):
    t = time.perf_counter()
    status, _ = call("GET", "/api/v1/houses?limit=50")
    return time.perf_counter() - t, status
t0 = time.perf_counter()
with ThreadPoolExecutor(c) as pool:
    results = list(pool.map(one, range(n)))
wall = time.perf_counter() - t0
lat = sorted(r[0] * 1000 for r in results)
errors = sum(1 for r in results if r[1] != 200)
q = statistics.quantiles(lat, n=100)
print(f"GET {base}/api/v1/houses?limit=50 tenant={tenant} requests={n} concurrency={c} errors={errors}")
print(f"requests/s: {n / wall:.1f}")
print(f"latency ms: p50={q[49]:.1f} p95={q[94]:.1f} p99={q[98]:.1f} max={lat[-1]:.1f}")
PYEOF

if [ -z "$BASE" ] && docker inspect app-data >/dev/null 2>&1 && docker inspect app-web >/dev/null 2>&1; then
  # Client in the data container, server in the app container: the same path the molecule tests use.
  docker exec -i app-data python3 - "http://app-web:8000" "$N" "$C" "$TENANT" <<<"$PY"
else
  python3 - "${BASE:-http://127.0.0.1:8000}" "$N" "$C" "$TENANT" <<<"$PY"
fi
