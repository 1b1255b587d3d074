#!/usr/bin/env bash
# HTTP load with keepalive (wrk, 64 connections by default) against the running lab: through nginx with
# TLS and directly to one app host, for /health/ready and a tenant's house list. Prints requests/s,
# p50/p95/p99 and failed requests for each, and the proxy/direct throughput ratio. Asserts nothing.
#   benchmarks/stack_http.sh                 the lab (make lab)
#   BENCH_EDGE=stack-edge BENCH_APP=stack-app1 benchmarks/stack_http.sh     the molecule stack scenario
# wrk runs on the edge container for both targets, so both runs share the client and its CPU cost. The
# edge calls itself over loopback, which the lab exempts from nginx's request rates
# (nginx_limit_exempt_networks): the figures are the proxy's, not the limiter's.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGE=${BENCH_EDGE:-lab-edge}
APP=${BENCH_APP:-lab-app1}
CONNS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-30s}
TENANT=${BENCH_TENANT:-bench-tenant}

if ! docker inspect "$EDGE" >/dev/null 2>&1; then
  echo "stack_http: container $EDGE does not exist; run make lab first (skipped)"
  exit 0
fi
docker exec "$EDGE" sh -c 'command -v wrk >/dev/null || { apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y wrk >/dev/null 2>&1; }'
# /tmp is a tmpfs in the containers, which docker cp cannot see: stream the file in.
docker exec -i "$EDGE" sh -c 'cat >/tmp/wrk_report.lua' <benchmarks/wrk_report.lua

# The tenant's list holds 50 houses (created directly on the app the first time).
docker exec -i "$EDGE" python3 - "http://$APP:8000" "$TENANT" <<'PY'
import json, sys, urllib.request
base, tenant = sys.argv[1:]
hdr = {"X-Tenant-ID": tenant, "Content-Type": "application/json"}
def call(method, path, body=None):
    req = urllib.request.Request(base + path, data=body, headers=hdr, method=method)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())
have = len(call("GET", "/api/v1/houses?limit=50"))
for i in range(have, 50):
    call("POST", "/api/v1/houses", json.dumps({"name": f"bench {i}", "address": "bench"}).encode())
PY

run() {  # label, url, extra wrk args...
  local label=$1 url=$2
  shift 2
  # A short warm-up fills the keepalive pools and the app's connection pools.
  docker exec "$EDGE" wrk -t2 -c"$CONNS" -d5s --timeout 10s "$@" "$url" >/dev/null
  local line
  line=$(docker exec "$EDGE" wrk -t2 -c"$CONNS" -d"$DURATION" --timeout 10s -s /tmp/wrk_report.lua "$@" "$url" | tail -n 1)
  printf '%-28s %s\n' "$label" "$line"
  echo "$line" | sed -n 's/.* rps=\([0-9.]*\) .*/\1/p' >"/tmp/stack_http.$label.rps"
}

echo "wrk -t2 -c$CONNS -d$DURATION --timeout 10s from $EDGE; nginx: https://$EDGE (loopback), direct: http://$APP:8000"
echo "host: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
proxy=(-H "Host: $EDGE")
tenant=(-H "X-Tenant-ID: $TENANT")
run nginx-health-ready "https://127.0.0.1/health/ready" "${proxy[@]}"
run direct-health-ready "http://$APP:8000/health/ready"
run nginx-houses "https://127.0.0.1/api/v1/houses?limit=50" "${proxy[@]}" "${tenant[@]}"
run direct-houses "http://$APP:8000/api/v1/houses?limit=50" "${tenant[@]}"

# nginx spreads the load over every app host, the direct run uses one: the ratio is per app host.
apps=$(docker exec "$EDGE" grep -c '^ *server .*:8000 ' /etc/nginx/nginx.conf || echo 1)
for what in health-ready houses; do
  awk -v n="${apps:-1}" -v w="$what" 'NR==1 {p=$1} NR==2 {d=$1} END {
    if (d > 0) printf "ratio %-14s nginx/direct = %.2f (nginx over %d app hosts: %.2f per host)\n", w, p/d, n, p/d/n }' \
    "/tmp/stack_http.nginx-$what.rps" "/tmp/stack_http.direct-$what.rps"
done
