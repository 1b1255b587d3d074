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
EMAIL=${BENCH_EMAIL:-owner@demo.eterna.test}
# The lab's demo owner; its password is derived from the lab's public master key.
PASSWORD=${BENCH_PASSWORD:-$(python3 - <<'PY'
import importlib.util, re, pathlib
key = re.search(r"^eterna_master_key: *([0-9a-f]{64})", pathlib.Path("inventories/lab/group_vars/all/main.yml").read_text(), re.M).group(1)
spec = importlib.util.spec_from_file_location("secrets", "filter_plugins/secrets.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(mod.derive_secret(key, "lab/demo-owner"))
PY
)}
VERSION=${BENCH_VERSION:-bench-$(date +%Y%m%d%H%M%S)}
inventory=()
[ -z "${BENCH_INVENTORY:-}" ] || inventory=(-i "$BENCH_INVENTORY")

if ! docker inspect "$EDGE" >/dev/null 2>&1; then
  echo "release_under_load: container $EDGE does not exist; run make lab first (skipped)"
  exit 0
fi

# Keepalive clients over TLS to the edge (loopback, exempt from the lab's request rates) until
# /tmp/release-bench.stop appears; then one line of figures. They log in through the edge once and again
# every 10 minutes (access tokens live 15), so a long release never runs on an expired token.
docker exec "$EDGE" rm -f /tmp/release-bench.stop /tmp/release-bench.out
docker exec -d -e EMAIL="$EMAIL" -e PASSWORD="$PASSWORD" "$EDGE" sh -c "python3 - $EDGE $CLIENTS >/tmp/release-bench.out 2>&1 <<'PY'
import collections, http.client, json, os, ssl, sys, threading, time, urllib.parse
edge, clients = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context()
ctx.check_hostname = False  # loopback address, the certificate names the edge
ctx.verify_mode = ssl.CERT_NONE
counts = collections.Counter()
lock = threading.Lock()
auth = {'token': '', 'at': 0.0}
def token():
    with lock:
        if time.monotonic() - auth['at'] > 600:
            conn = http.client.HTTPSConnection('127.0.0.1', 443, context=ctx, timeout=30)
            body = urllib.parse.urlencode({'username': os.environ['EMAIL'], 'password': os.environ['PASSWORD']})
            conn.request('POST', '/api/v1/auth/token', body=body,
                         headers={'Host': edge, 'Content-Type': 'application/x-www-form-urlencoded'})
            auth['token'] = json.loads(conn.getresponse().read())['access_token']
            auth['at'] = time.monotonic()
            conn.close()
        return auth['token']
def client():
    conn = None
    while not os.path.exists('/tmp/release-bench.stop'):
        try:
            if conn is None:
                conn = http.client.HTTPSConnection('127.0.0.1', 443, context=ctx, timeout=30)
            conn.request('GET', '/api/v1/houses?limit=50', headers={'Host': edge, 'Authorization': 'Bearer ' + token()})
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
