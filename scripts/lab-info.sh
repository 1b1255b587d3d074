#!/usr/bin/env bash
# Where the lab's services answer and how to log in (end of `make lab`). The lab's master key is public
# (inventories/lab/group_vars/all/main.yml), so printing its derived passwords here discloses nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ca=.pki/lab/ca.crt
read -r password demo_password < <(python3 - <<'PY'
import importlib.util, pathlib, re
text = pathlib.Path("inventories/lab/group_vars/all/main.yml").read_text()
env = re.search(r"^eterna_env: *(\S+)", text, re.M).group(1)
key = re.search(r"^eterna_master_key: *([0-9a-f]{64})", text, re.M).group(1)
assert env == "lab", "lab-info prints passwords of the lab only"
spec = importlib.util.spec_from_file_location("secrets", "filter_plugins/secrets.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(mod.derive_secret(key, "prometheus/admin"), mod.derive_secret(key, "lab/demo-owner"))
PY
)
cat <<INFO

The lab runs (containers: $(docker ps --filter name=lab- --format '{{.Names}}' | sort | paste -sd' ')).
Certificates come from the lab's internal CA: $ca

  Eterna Home API (nginx, TLS)   https://lab-edge:8443  (published on this machine's port 8443)
    curl --cacert $ca --resolve lab-edge:8443:127.0.0.1 https://lab-edge:8443/health/ready
    Log in as the demo tenant's owner (OAuth2 password flow), then call the API with the access token:
    edge="--cacert $ca --resolve lab-edge:8443:127.0.0.1"
    token=\$(curl -s \$edge -d username=owner@demo.eterna.test -d password=$demo_password \\
      https://lab-edge:8443/api/v1/auth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl \$edge -H "Authorization: Bearer \$token" https://lab-edge:8443/api/v1/houses
    API docs in a browser: https://lab-edge:8443/docs ("Authorize" with the same e-mail and password)
  Prometheus                     https://lab-ops:9090   user admin, password $password
    curl --cacert $ca --resolve lab-ops:9090:127.0.0.1 -u admin:$password https://lab-ops:9090/api/v1/targets
  Alertmanager                   https://lab-ops:9093   same login

  A shell on a host:   docker exec -it lab-app1 bash      (journalctl -u eterna-api -f)
  Converge again:      make lab          (changes nothing on a converged lab)
  Remove everything:   make lab-destroy
INFO
