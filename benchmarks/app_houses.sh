#!/usr/bin/env bash
# Requests/s and p50/p95/p99 latency of GET /api/v1/houses for one tenant, straight against the app
# (no nginx), with an access token from the app's login. Prints figures only; it asserts nothing.
#   benchmarks/app_houses.sh [BASE_URL] [REQUESTS] [CONCURRENCY]
# BASE_URL defaults to the app container of the molecule `app` scenario (reached through docker exec
# from the data container, logged in as its tenant-a owner) when it exists, else http://127.0.0.1:8000
# with BENCH_EMAIL and BENCH_PASSWORD.
set -euo pipefail
BASE=${1:-}
N=${2:-2000}
C=${3:-8}
EMAIL=${BENCH_EMAIL:-owner@tenant-a.test}
# The app scenario's owner password is derived from the public molecule key (.config/molecule/config.yml).
PASSWORD=${BENCH_PASSWORD:-$(cd "$(dirname "$0")/.." && python3 - <<'PY'
import importlib.util, re, pathlib
key = re.search(r"eterna_master_key: *([0-9a-f]{64})", pathlib.Path(".config/molecule/config.yml").read_text()).group(1)
spec = importlib.util.spec_from_file_location("secrets", "filter_plugins/secrets.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(mod.derive_secret(key, "molecule/owner-a"))
PY
)}

read -r -d '' PY <<'PYEOF' || true
import json, os, statistics, sys, time, urllib.parse, urllib.request
from concurrent.futures import ThreadPoolExecutor
base, n, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
form = urllib.parse.urlencode({"username": os.environ["EMAIL"], "password": os.environ["PASSWORD"]}).encode()
with urllib.request.urlopen(urllib.request.Request(base + "/api/v1/auth/token", data=form), timeout=30) as resp:
    login = json.loads(resp.read())
tenant = login["tenant"]
hdr = {"Authorization": "Bearer " + login["access_token"], "Content-Type": "application/json"}
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
  docker exec -i -e EMAIL="$EMAIL" -e PASSWORD="$PASSWORD" app-data python3 - "http://app-web:8000" "$N" "$C" <<<"$PY"
else
  EMAIL="$EMAIL" PASSWORD="$PASSWORD" python3 - "${BASE:-http://127.0.0.1:8000}" "$N" "$C" <<<"$PY"
fi
