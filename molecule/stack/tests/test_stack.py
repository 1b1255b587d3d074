"""The whole site, end to end: through the TLS proxy to the app and every service behind it.

Requests are sent with curl from the ops container (monitoring, backup), which trusts the internal
CA like every converged host; the edge is addressed by its inventory name.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from eterna_testinfra import (
    ROOT,
    ansible_env,
    changed_results,
    curl,
    leak_check_of_verbose_run,
    node,
    play_recap,
    secrets,
)

JOURNAL_UNITS = ["nginx", "eterna-api", "eterna-worker"]
JOURNAL_HOSTS = ["stack-edge", "stack-app1"]

EDGE = "stack-edge"
CLIENT = "stack-ops"
BASE = f"https://{EDGE}"
# The lab inventory's two demo tenants and their first owners (app_bootstrap_owners).
A, B = "demo", "demo-b"
OWNERS = {A: ("owner@demo.eterna.test", "lab/demo-owner"), B: ("owner@demo-b.eterna.test", "lab/demo-b-owner")}


@functools.cache
def token(tenant: str) -> str:
    """An access token of the tenant's first owner, from the app's login through the edge."""
    email, purpose = OWNERS[tenant]
    secret = secrets().derive_secret(node(EDGE).ansible.get_variables()["eterna_master_key"], purpose)
    out = node(CLIENT).check_output(
        f"curl -sf --data-urlencode username={email} --data-urlencode password={shlex.quote(secret)} "
        f"{BASE}/api/v1/auth/token"
    )
    return json.loads(out)["access_token"]


def http(method: str, path: str, tenant: str | None = None, body: dict | None = None, form: dict | None = None):
    """A request through the edge, as the tenant's owner when ``tenant`` is given."""
    return curl(CLIENT, f"{BASE}{path}", method, None, body, form, token(tenant) if tenant else None)


def test_ready_through_the_proxy_reports_every_dependency_healthy():
    status, text = http("GET", "/health/ready")
    assert status == 200, text
    checks = json.loads(text)["checks"]
    assert set(checks) == {"postgresql", "redis", "rabbitmq", "s3"}
    assert all(check["status"] == "ok" for check in checks.values()), checks


def test_http_redirects_to_https():
    out = node(CLIENT).check_output(f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' http://{EDGE}/health")
    code, location = out.split(" ", 1)
    assert code in {"301", "308"}
    assert location.startswith("https://")


def test_tenant_crud_and_isolation_across_the_edge():
    status, text = http("POST", "/api/v1/houses", A, {"name": "Stack villa", "address": "1 Edge Road"})
    assert status == 201, text
    hid = json.loads(text)["id"]
    assert hid in http("GET", "/api/v1/houses", A)[1]
    assert hid not in http("GET", "/api/v1/houses", B)[1]
    assert http("GET", f"/api/v1/houses/{hid}", B)[0] == 404
    assert http("PATCH", f"/api/v1/houses/{hid}", B, {"name": "stolen"})[0] == 404
    assert http("DELETE", f"/api/v1/houses/{hid}", B)[0] == 404
    assert http("PATCH", f"/api/v1/houses/{hid}", A, {"name": "Renamed"})[0] == 200
    assert http("DELETE", f"/api/v1/houses/{hid}", A)[0] == 204


def test_document_upload_lands_in_object_storage_and_downloads_intact():
    client = node(CLIENT)
    client.check_output("head -c 200000 /dev/urandom > /root/stack-doc.bin")
    digest = client.check_output("sha256sum /root/stack-doc.bin").split()[0]
    status, text = http("POST", "/api/v1/documents", A, form={"file": "@/root/stack-doc.bin"})
    assert status == 201, text
    doc = json.loads(text)
    client.check_output(
        f"curl -sf -H 'Authorization: Bearer {token(A)}' -o /root/stack-doc.out "
        f"{BASE}/api/v1/documents/{doc['id']}/download"
    )
    assert client.check_output("sha256sum /root/stack-doc.out").split()[0] == digest
    # The object is in the bucket: the data host's S3 gateway stores it (the filer lists it).
    listing = node("stack-data").check_output("find /var/lib/seaweedfs -type f | wc -l")
    assert int(listing) > 0


def test_bim_conversion_completes_through_celery():
    client = node(CLIENT)
    client.check_output("printf 'ISO-10303-21;\\nHEADER;\\nENDSEC;\\n' > /root/stack-model.ifc")
    status, text = http("POST", "/api/v1/bim-models", A, form={"file": "@/root/stack-model.ifc"})
    assert status == 201, text
    bim = json.loads(text)
    assert http("POST", f"/api/v1/bim-models/{bim['id']}/convert", A)[0] == 202
    state = {}
    for _ in range(60):
        state = json.loads(http("GET", f"/api/v1/bim-models/{bim['id']}", A)[1])
        if state["conversion_status"] in ("completed", "failed"):
            break
        time.sleep(2)
    assert state["conversion_status"] == "completed", state


@pytest.mark.parametrize(("target", "port"), [("stack-db1", 5432), ("stack-data", 6379), ("stack-data", 5671)])
def test_edge_cannot_reach_data_services_but_app_can(target, port):
    assert node(EDGE).run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{target}/{port}'").rc != 0
    assert node("stack-app1").run(f"timeout 5 bash -c 'exec 3<>/dev/tcp/{target}/{port}'").rc == 0


def test_prometheus_sees_every_target_up():
    ops = node(CLIENT)
    password = _secret("prometheus/admin")
    out = ops.check_output(
        f"curl -sf -u admin:{shlex.quote(password)} https://{CLIENT}:9090/api/v1/targets?state=active"
    )
    targets = json.loads(out)["data"]["activeTargets"]
    assert targets
    down = [t["scrapeUrl"] for t in targets if t["health"] != "up"]
    assert not down, down
    # PostgreSQL runs under Patroni here: both members' REST API and the three etcd members are scraped too.
    jobs = [t["labels"]["job"] for t in targets]
    assert (jobs.count("patroni"), jobs.count("etcd")) == (2, 3), sorted(jobs)


def test_a_fresh_backup_exists_and_the_restore_drill_passes():
    ops = node(CLIENT)
    info = ops.check_output("cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --output=json info")
    stanzas = json.loads(info)
    assert stanzas and stanzas[0]["backup"], "no backup in the repository"
    drill = _playbook("restore_drill.yml")
    assert drill.returncode == 0, drill.stdout[-4000:]


def test_a_pending_migration_is_backed_up_by_pgbackrest_first():
    """With the backup role deployed, migrate.yml takes a pgBackRest backup before upgrading."""
    app, ops = node("stack-app1"), node(CLIENT)

    def backups() -> int:
        info = json.loads(
            ops.check_output("cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --output=json info")
        )
        return len(info[0]["backup"])

    before = backups()
    heads = app.check_output("eterna-app-manage /opt/eterna-app/current alembic heads")
    app.check_output("eterna-app-manage /opt/eterna-app/current alembic downgrade -1")
    migrate = _playbook("migrate.yml")
    assert migrate.returncode == 0, migrate.stdout[-4000:]
    assert backups() == before + 1
    current = app.check_output("eterna-app-manage /opt/eterna-app/current alembic current")
    assert heads.split()[0] in current, (heads, current)


@pytest.mark.runs_first
def test_a_verbose_rerun_of_the_site_changes_nothing_and_prints_no_secret():
    """The scenario's idempotence step: a second run of the whole site, at -vvv, changes nothing on any host
    (Molecule's idempotence step is left out of this scenario's sequence: one no-op run of the site instead of two),
    and its output holds no derived secret, signing key, token or hash, nor the master key."""
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "site-vvv.log"
    res = leak_check_of_verbose_run(["site.yml"], _lab_key(), log)
    output = log.read_text(errors="replace")
    recap = play_recap(output)
    assert set(recap) == {"stack-edge", "stack-app1", "stack-app2", "stack-db1", "stack-db2", "stack-data", "stack-ops"}
    assert not changed_results(output), changed_results(output)
    assert all(counts["changed"] == 0 for counts in recap.values()), recap
    assert res.returncode == 0, res.stdout
    assert "secrets searched" in res.stdout


def _playbook(name: str) -> subprocess.CompletedProcess:
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, str(ROOT / "playbooks" / name)],
        capture_output=True,
        text=True,
        timeout=1800,
        env=ansible_env(),
    )


def _lab_key() -> str:
    import yaml

    return yaml.safe_load((ROOT / "inventories" / "lab" / "group_vars" / "all" / "main.yml").read_text())[
        "eterna_master_key"
    ]


def _secret(purpose: str, **kwargs) -> str:
    return secrets().derive_secret(_lab_key(), purpose, **kwargs)
