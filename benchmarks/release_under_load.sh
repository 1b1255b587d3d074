#!/usr/bin/env bash
# An app release under load: clients on the edge keep GETting a tenant's house list through nginx
# while `playbooks/services/app.yml` deploys a new release to every app host (one at a time, health
# gated). Prints requests made, failed requests (goal: zero) and the release time. Asserts nothing.
#   benchmarks/release_under_load.sh                  the lab (make lab)
#   BENCH_EDGE=stack-edge BENCH_INVENTORY=... benchmarks/release_under_load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
EDGE=${BENCH_EDGE:-lab-edge}
CLIENTS=${BENCH_CLIENTS:-16}
TENANT=${BENCH_TENANT:-bench-tenant}
VERSION=${BENCH_VERSION:-bench-$(date +%Y%m%d%H%M%S)}
inventory=()
[ -z "${BENCH_INVENTORY:-}" ] || inventory=(-i "$BENCH_INVENTORY")

if ! docker inspect "$EDGE" >/dev/null 2>&1; then
  echo "release_under_load: container $EDGE does not exist; run make lab first (skipped)"
  exit 0
fi

# Keepalive clients over TLS to the edge (loopback, exempt from the lab's request rates) until
# /tmp/release-bench.stop appears; then one line of figures.
docker exec "$EDGE" rm -f /tmp/release-bench.stop /tmp/release-bench.out
docker exec -d "$EDGE" sh -c "python3 - $EDGE $TENANT $CLIENTS >/tmp/release-bench.out 2>&1 <<'PY'
import collections, http.client, os, ssl, sys, threading, time
edge, tenant, clients = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context()
ctx.check_hostname = False  # loopback address, the certificate names the edge
ctx.verify_mode = ssl.CERT_NONE
counts = collections.Counter()
lock = threading.Lock()
def client():
    conn = None
    while not os.path.exists('/tmp/release-bench.stop'):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection('127.0.0.1', 443, context=ctx, timeout=30)
            conn.request('GET', '/api/v1/houses?limit=50', headers={'Host': edge, 'X-Tenant-ID': tenant})
            resp = conn.getresponse()
            resp.read()
            key = str(resp.status)
            if resp.getheader('connection', '').lower() == 'close':
                conn.close()
                conn = None
        except Exception as exc:
            key = type(exc).__name__
            conn = None
        with lock:
            counts[key] += 1
start = time.monotonic()
threads = [threading.Thread(target=client) for _ in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
total = sum(counts.values())
failed = total - counts['200']
print(f'requests={total} seconds={time.monotonic() - start:.1f} failed={failed} outcomes={dict(counts)}')
PY"
sleep 5
echo "release $VERSION to every app host while $CLIENTS keepalive clients GET the house list through https://$EDGE"
start=$(date +%s)
rc=0
ansible-playbook "${inventory[@]}" playbooks/services/app.yml -e "app_version=$VERSION" >/tmp/release-bench.ansible.log 2>&1 || rc=$?
secs=$(($(date +%s) - start))
sleep 5
docker exec "$EDGE" touch /tmp/release-bench.stop
for _ in $(seq 60); do
  docker exec "$EDGE" test -s /tmp/release-bench.out && break
  sleep 1
done
echo "release: ansible-playbook exit $rc in ${secs}s ($(grep -Eo 'changed=[0-9]+' /tmp/release-bench.ansible.log | paste -sd' '))"
echo "load:    $(docker exec "$EDGE" cat /tmp/release-bench.out)"
[ "$rc" -eq 0 ] || { echo "the release failed; its log: /tmp/release-bench.ansible.log"; exit 1; }
