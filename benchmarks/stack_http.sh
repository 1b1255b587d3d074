#!/usr/bin/env bash
# HTTP load with keepalive (wrk, 64 connections by default) against the running lab: through nginx with
# TLS and directly to one app host, for /health/ready and a tenant's house list (authenticated with a token
# from the app's login), plus the cost of the edge's token check alone and the login itself. Prints
# requests/s, p50/p95/p99 and failed requests for each, and the ratios. Asserts nothing.
#   benchmarks/stack_http.sh                 the lab (make lab; logs in as its demo owner)
#   BENCH_EDGE=stack-edge BENCH_APP=stack-app1 benchmarks/stack_http.sh     the molecule stack scenario
#   BENCH_EDGE=app-edge BENCH_APP=app-web BENCH_EMAIL=owner@tenant-a.test BENCH_PASSWORD_PURPOSE=molecule/owner-a \
#     BENCH_KEY=<molecule key> benchmarks/stack_http.sh                    the app scenario's containers
# wrk runs on the edge container for both targets, so both runs share the client and its CPU cost. The
# edge calls itself over loopback, which the lab exempts from nginx's request rates
# (nginx_limit_exempt_networks): the figures are the proxy's, not the limiter's. The login rate at the edge
# stays limited per IP by design (nginx_limit_auth_rate), so the login is measured directly on the app.
set -euo pipefail
cd "$(dirname "$0")/.."
EDGE=${BENCH_EDGE:-lab-edge}
APP=${BENCH_APP:-lab-app1}
CONNS=${BENCH_CONNECTIONS:-64}
DURATION=${BENCH_DURATION:-30s}
EMAIL=${BENCH_EMAIL:-owner@demo.eterna.test}
PURPOSE=${BENCH_PASSWORD_PURPOSE:-lab/demo-owner}

if ! docker inspect "$EDGE" >/dev/null 2>&1; then
  echo "stack_http: container $EDGE does not exist; run make lab first (skipped)"
  exit 0
fi
# The login's password is derived from the inventory's master key (public in the lab and in molecule).
KEY=${BENCH_KEY:-$(sed -n 's/^eterna_master_key: *\([0-9a-f]\{64\}\).*/\1/p' inventories/lab/group_vars/all/main.yml)}
PASSWORD=$(python3 - "$KEY" "$PURPOSE" <<'PY'
import importlib.util, sys
spec = importlib.util.spec_from_file_location("secrets", "filter_plugins/secrets.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(mod.derive_secret(sys.argv[1], sys.argv[2]))
PY
)
docker exec "$EDGE" sh -c 'command -v wrk >/dev/null || { apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y wrk >/dev/null 2>&1; }'
# /tmp is a tmpfs in the containers, which docker cp cannot see: stream the files in.
docker exec -i "$EDGE" sh -c 'cat >/tmp/wrk_report.lua' <benchmarks/wrk_report.lua
printf 'wrk.method = "POST"\nwrk.body = "username=%s&password=%s"\nwrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n' \
  "$EMAIL" "$PASSWORD" | docker exec -i "$EDGE" sh -c 'cat /tmp/wrk_report.lua - >/tmp/wrk_login.lua'

# A token of the tenant (the app's own login), and 50 houses in its list (created the first time).
TOKEN=$(docker exec -i "$EDGE" python3 - "http://$APP:8000" "$EMAIL" "$PASSWORD" <benchmarks/load/house_token.py)

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
auth=(-H "Authorization: Bearer $TOKEN")
run nginx-health-ready "https://127.0.0.1:443/health/ready" "${proxy[@]}"
run direct-health-ready "http://$APP:8000/health/ready"
run nginx-houses "https://127.0.0.1:443/api/v1/houses?limit=50" "${proxy[@]}" "${auth[@]}"
run direct-houses "http://$APP:8000/api/v1/houses?limit=50" "${auth[@]}"
# The token check alone: /metrics is answered 404 by nginx itself (never proxied); the same request with a
# valid token runs the full verification (HMAC, claims), without one it stops at "missing".
run edge-no-token "https://127.0.0.1:443/metrics" "${proxy[@]}"
run edge-token-check "https://127.0.0.1:443/metrics" "${proxy[@]}" "${auth[@]}"
# The login (argon2 verify, token pair issued, audit row) straight on one app host, 8 connections.
CONNS=8 run direct-login "http://$APP:8000/api/v1/auth/token" -s /tmp/wrk_login.lua

# nginx spreads the load over every app host, the direct run uses one: the ratio is per app host.
apps=$(docker exec "$EDGE" grep -c '^ *server .*:8000 ' /etc/nginx/nginx.conf || echo 1)
for what in health-ready houses; do
  awk -v n="${apps:-1}" -v w="$what" 'NR==1 {p=$1} NR==2 {d=$1} END {
    if (d > 0) printf "ratio %-14s nginx/direct = %.2f (nginx over %d app hosts: %.2f per host)\n", w, p/d, n, p/d/n }' \
    "/tmp/stack_http.nginx-$what.rps" "/tmp/stack_http.direct-$what.rps"
done
awk 'NR==1 {a=$1} NR==2 {b=$1} END { if (a > 0) printf "token check: %.1f%% fewer requests/s on the cheapest request nginx answers (%.0f -> %.0f)\n", (a-b)/a*100, a, b }' \
  /tmp/stack_http.edge-no-token.rps /tmp/stack_http.edge-token-check.rps
