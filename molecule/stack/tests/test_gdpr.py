"""GDPR erasure across the whole stack, backups included (issue #20): a tenant erased with playbooks/tenant_erase.yml
leaves no row, S3 object version or Redis key, and a restore drill of a backup taken after the erasure (the backup
role's own job and playbooks/restore_drill.yml) holds no row of it while another tenant's rows are all there.

The tenants are made by this module (fresh ids on every run): one erased, one that must stay whole."""

from __future__ import annotations

import functools
import json
import shlex
import uuid

import pytest
from eterna_testinfra import (
    APP_MANAGE,
    app_python,
    curl,
    node,
    run_playbook,
    tenant_cache_keys,
    tenant_objects,
    tenant_rows,
)

JOURNAL_UNITS = ["eterna-api", "eterna-worker", "eterna-backup-incr", "eterna-backup-drill"]
JOURNAL_HOSTS = ["stack-app1", "stack-ops"]

EDGE, CLIENT, APP, DB, BACKUP = "stack-edge", "stack-ops", "stack-app1", "stack-db1", "stack-ops"
RUN = uuid.uuid4().hex[:8]
GONE, KEPT = f"gdpr-gone-{RUN}", f"gdpr-kept-{RUN}"
PASSWORD = "a long stack password for gdpr"  # noqa: S105 - test accounts of this module
# The backup repository's owner and the backup role's tool (roles/backup/vars/main.yml).
REPO_USER, BACKUP_TOOL = "pgbackrest", "/usr/local/sbin/eterna-backup"


def api(method: str, path: str, token: str, body: dict | None = None, form: dict | None = None) -> tuple[int, str]:
    return curl(CLIENT, f"https://{EDGE}{path}", method, body=body, form=form, token=token)


@functools.cache
def backup_config() -> dict:
    """The backup role's settings of eterna-backup on the backup host (state directory, drill instance)."""
    return json.loads(node(BACKUP).check_output("cat /etc/eterna-backup/eterna-backup.json"))


def drill_psql() -> str:
    """psql into the restore drill's scratch instance on the backup host (its socket directory and port), as the
    repository user, database eterna."""
    drill = backup_config()["drill"]
    socket_dir = shlex.quote(drill["dir"] + "/run")
    return f"runuser -u {REPO_USER} -- psql -h {socket_dir} -p {int(drill['port'])} -U postgres -d eterna"


@pytest.fixture(scope="module")
def seeded() -> dict:
    """Both tenants with an owner, two houses, a document in S3 and two cache keys; their state per store."""
    for tenant in (GONE, KEPT):
        email = f"owner@{tenant}.test"
        node(APP).check_output(
            f"printf '%s\\n' {shlex.quote(PASSWORD)} | "
            f"{APP_MANAGE} python -m app.manage create-owner --tenant {tenant} --email {email}"
        )
        out = node(CLIENT).check_output(
            f"curl -sf --data-urlencode username={email} --data-urlencode password={shlex.quote(PASSWORD)} "
            f"https://{EDGE}/api/v1/auth/token"
        )
        token = json.loads(out)["access_token"]
        for name in ("Main house", "Garage"):
            status, text = api("POST", "/api/v1/houses", token, {"name": f"{name} of {tenant}", "address": "1 Road"})
            assert status == 201, text
        node(CLIENT).check_output(f"printf 'plan of {tenant}\\n' > /tmp/gdpr-plan.txt")  # noqa: S108 - container
        status, text = api("POST", "/api/v1/documents", token, form={"file": "@/tmp/gdpr-plan.txt"})
        assert status == 201, text
        app_python(
            APP,
            "from app.cache import redis_client, tenant_key\nr = redis_client()\n"
            f"r.set(tenant_key({tenant!r}, 'house', 'x'), 'cached')\n"
            f"r.set(tenant_key({tenant!r}, 'session', 'y'), 'cached')\n",
        )
    state = {t: (tenant_rows(DB, t), tenant_objects(APP, t), tenant_cache_keys(APP, t)) for t in (GONE, KEPT)}
    for tenant, (rows, objects, keys) in state.items():
        assert rows["houses"] == 2 and rows["tenants"] == 1 and len(objects) == 1 and len(keys) == 2, (tenant, state)
    return state


@pytest.fixture(scope="module")
def erased(seeded, tmp_path_factory) -> dict:
    """The erasure run once by the playbook; its record (kept on the controller)."""
    records = tmp_path_factory.mktemp("erasures")
    extra = {"tenant_erase_tenant": GONE, "tenant_erase_confirm": GONE, "tenant_erase_record_dir": str(records)}
    result = run_playbook("tenant_erase.yml", "-e", json.dumps(extra))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (path,) = records.glob(f"{GONE}-erasure-*.json")
    record = json.loads(path.read_text())
    assert record["complete"] is True and record["errors"] == [], record
    return record


def test_erasure_leaves_no_row_object_version_or_cache_key(seeded, erased):
    assert all(count == 0 for count in tenant_rows(DB, GONE).values()), tenant_rows(DB, GONE)
    assert tenant_objects(APP, GONE) == []
    assert tenant_cache_keys(APP, GONE) == []
    # The other tenant is whole in every store.
    assert (tenant_rows(DB, KEPT), tenant_objects(APP, KEPT), tenant_cache_keys(APP, KEPT)) == seeded[KEPT]


def test_restore_drill_of_a_backup_after_the_erasure_has_no_row_of_the_tenant(seeded, erased):
    ops = node(BACKUP)
    # The backup role's incremental job, as its timer runs it (a oneshot: start returns when it has finished).
    ops.check_output("systemctl start eterna-backup-incr.service")
    assert ops.check_output("systemctl show -p Result --value eterna-backup-incr.service").strip() == "success"
    drill = run_playbook("restore_drill.yml", "-e", json.dumps({"backup_drill_keep": True}))
    try:
        assert drill.returncode == 0, drill.stdout[-4000:]
        report = json.loads(ops.check_output(f"cat {backup_config()['state_dir']}/drill-report.json"))
        assert report["result"] == "ok", report
        restored_gone, restored_kept = tenant_rows(BACKUP, GONE, drill_psql()), tenant_rows(BACKUP, KEPT, drill_psql())
        event = (
            f"SELECT count(*) FROM audit_events WHERE action = 'tenant_erased' AND target_id = '{erased['record_id']}'"  # noqa: S608
        )
        erasure_events = ops.check_output(f"cd /tmp && {drill_psql()} -Atc {shlex.quote(event)}").strip()
    finally:
        ops.run(f"cd /tmp && runuser -u {REPO_USER} -- {BACKUP_TOOL} pg-drill-stop")
    # The restored copy is of after the erasure (its audit event is there) and holds nothing of the tenant...
    assert erasure_events == "1", erasure_events
    assert all(count == 0 for count in restored_gone.values()), restored_gone
    # ...while the other tenant's rows are all there.
    assert restored_kept == seeded[KEPT][0], (restored_kept, seeded[KEPT][0])
