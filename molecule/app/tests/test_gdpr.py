"""Issue #20: playbooks/tenant_export.yml and tenant_erase.yml against the scenario's real stores (PostgreSQL on
app-data, SeaweedFS S3 with versioning, Redis, RabbitMQ), with two tenants of their own: the one erased and one
that must stay whole (tenant-a and tenant-b of the other tests stay whole too)."""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest
from app_probe import CLIENT, WEB, login
from app_probe import http as probe_http
from eterna_testinfra import node, run_playbook, tenant_cache_keys
from eterna_testinfra import tenant_objects as shared_tenant_objects
from eterna_testinfra import tenant_rows as shared_tenant_rows

JOURNAL_UNITS = ["eterna-api", "eterna-worker"]
JOURNAL_HOSTS = [WEB]

# Fresh tenants on every run (verify may run again on the same containers).
RUN = uuid.uuid4().hex[:8]
GONE, KEPT = f"gdpr-gone-{RUN}", f"gdpr-kept-{RUN}"
PASSWORD = "a long test password for gdpr"  # noqa: S105 - test accounts of the scenario
MANAGE = "eterna-app-manage /opt/eterna-app/current python"
BUCKETS = ("documents", "bim-models")


def app_python(script: str) -> str:
    """Run ``script`` with the app's settings and clients on app-web; its stdout."""
    return node(WEB).check_output(f"{MANAGE} -c {shlex.quote(script)}")


def psql(sql: str) -> str:
    return node(CLIENT).check_output(f"su postgres -c {shlex.quote('psql -d eterna -Atc ' + shlex.quote(sql))}")


def tenant_rows(tenant: str) -> dict[str, int]:
    """Rows naming ``tenant`` per table with a tenant_id column (read straight from PostgreSQL), plus its tenant row."""
    return shared_tenant_rows(CLIENT, tenant)


def tenant_objects(tenant: str) -> list[list]:
    """Every version and delete marker under ``tenant``/ in both buckets: [bucket, key, version id, marker]."""
    return shared_tenant_objects(WEB, tenant, BUCKETS)


def cache_keys(tenant: str) -> list[str]:
    return tenant_cache_keys(WEB, tenant)


def worker(state: str) -> None:
    node(WEB).check_output(f"systemctl {state} eterna-worker")


@pytest.fixture(scope="module")
def seeded() -> dict:
    """Both tenants with an owner, two houses, a document overwritten once (two versions), a BIM model, three cache
    keys; the erased tenant also has a conversion queued while the worker is stopped. Returns ids per tenant."""
    app_python(
        "from app.storage import s3_client\n"
        f"for b in {list(BUCKETS)!r}:\n"
        "    s3_client().put_bucket_versioning(Bucket=b, VersioningConfiguration={'Status': 'Enabled'})"
    )
    seeded = {}
    for tenant in (GONE, KEPT):
        email = f"owner@{tenant}.test"
        create = f"{MANAGE} -m app.manage create-owner --tenant {tenant} --email {email}"
        node(WEB).check_output(f"printf '%s\\n' {shlex.quote(PASSWORD)} | {create}")
        status, body = login(email, PASSWORD)
        assert status == 200, body
        token = body["access_token"]
        houses = []
        for name in ("Main house", "Garage"):
            status, text = probe_http(
                "POST", "/api/v1/houses", token, {"name": f"{name} of {tenant}", "address": "1 Road"}
            )
            assert status == 201, text
            houses.append(json.loads(text)["id"])
        node(CLIENT).check_output(f"printf 'plan of {tenant}\\n' > /tmp/gdpr-plan.txt")  # noqa: S108 - container
        status, text = probe_http("POST", "/api/v1/documents", token, form={"file": "@/tmp/gdpr-plan.txt"})
        assert status == 201, text
        document = json.loads(text)
        document["object_key"] = f"{tenant}/{document['id']}"  # the app's key scheme (not in the API's answer)
        # A second version of the document's object (an older version the export and the erasure must include).
        app_python(
            "from app.storage import s3_client\n"
            f"s3_client().put_object(Bucket='documents', Key={document['object_key']!r}, Body=b'plan v2 of {tenant}')"
        )
        node(CLIENT).check_output(f"printf 'ISO-10303-21;\\n/* {tenant} */\\n' > /tmp/gdpr-model.ifc")  # noqa: S108
        status, text = probe_http("POST", "/api/v1/bim-models", token, form={"file": "@/tmp/gdpr-model.ifc"})
        assert status == 201, text
        bim = json.loads(text)
        app_python(
            "from app.cache import redis_client, tenant_key\nr = redis_client()\n"
            + "".join(f"r.set(tenant_key({tenant!r}, 'house', {h!r}), 'cached')\n" for h in houses)
            + f"r.set(tenant_key({tenant!r}, 'session', 'x'), 'cached')\n"
        )
        seeded[tenant] = {"token": token, "houses": houses, "document": document, "bim": bim, "email": email}
    # A conversion of the erased tenant waits in the broker: no worker takes it before the erasure.
    worker("stop")
    try:
        status, text = probe_http(
            "POST", f"/api/v1/bim-models/{seeded[GONE]['bim']['id']}/convert", seeded[GONE]["token"]
        )
        assert status == 202, text
    except BaseException:
        worker("start")
        raise
    yield seeded
    worker("start")


@pytest.fixture(scope="module")
def age_key(tmp_path_factory) -> tuple[Path, str]:
    """The operator's age identity (made on the controller) and its public recipient."""
    key = tmp_path_factory.mktemp("age") / "operator.key"
    subprocess.run(["age-keygen", "-o", str(key)], check=True, capture_output=True)
    return key, subprocess.run(
        ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
    ).stdout.strip()


@pytest.fixture(scope="module")
def export(seeded, age_key, tmp_path_factory) -> tuple[Path, dict]:
    """The export playbook's archive of the erased tenant, decrypted with the operator's key and unpacked."""
    key, recipient = age_key
    dest = tmp_path_factory.mktemp("exports")
    extra = json.dumps(
        {"tenant_export_tenant": GONE, "tenant_export_age_recipients": [recipient], "tenant_export_dest": str(dest)}
    )
    result = run_playbook("tenant_export.yml", "-e", extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (archive,) = dest.glob(f"{GONE}-export-*.tar.gz.age")
    assert archive.stat().st_mode & 0o777 == 0o600
    plain = dest / "export.tar.gz"
    subprocess.run(["age", "--decrypt", "-i", str(key), "-o", str(plain), str(archive)], check=True)
    with tarfile.open(plain) as tar:
        tar.extractall(dest / "x", filter="data")
    (root,) = (dest / "x").iterdir()
    return root, json.loads((root / "manifest.json").read_text())


def test_export_decrypts_and_its_checksums_match(export):
    root, manifest = export
    assert manifest["tenant"] == GONE
    for table, entry in manifest["tables"].items():
        assert hashlib.sha256((root / entry["file"]).read_bytes()).hexdigest() == entry["sha256"], table
        assert len((root / entry["file"]).read_text().splitlines()) == entry["rows"], table
    files = [o for o in manifest["objects"] if not o["delete_marker"]]
    assert files, manifest
    for obj in files:
        data = (root / obj["file"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (obj["size"], obj["sha256"]), obj


def test_export_holds_exactly_the_tenant(seeded, export):
    root, manifest = export
    rows = tenant_rows(GONE)
    for table, count in rows.items():
        # The audit trail also holds the export's own event, written after the export.
        if count and table != "audit_events":
            assert manifest["tables"][table]["rows"] == count, (table, manifest["tables"].get(table))
    # Every version of every object of the tenant, the document's older version included.
    versions = [[o["bucket"], o["key"], o["version_id"], o["delete_marker"]] for o in manifest["objects"]]
    assert sorted(versions) == tenant_objects(GONE)
    document_versions = [o for o in manifest["objects"] if o["key"] == seeded[GONE]["document"]["object_key"]]
    assert len(document_versions) == 2
    contents = {(root / o["file"]).read_bytes() for o in document_versions}
    assert contents == {f"plan of {GONE}\n".encode(), f"plan v2 of {GONE}".encode()}
    # Nothing of another tenant: no id, name or e-mail of gdpr-kept, tenant-a or tenant-b in any file.
    everything = b"".join(p.read_bytes() for p in root.rglob("*") if p.is_file())
    for other in (KEPT, "tenant-a", "tenant-b", seeded[KEPT]["email"], *seeded[KEPT]["houses"]):
        assert other.encode() not in everything, other
    for table, entry in manifest["tables"].items():
        for line in (root / entry["file"]).read_text().splitlines():
            row = json.loads(line)
            assert row.get("tenant_id", GONE) in (GONE, None) or table == "audit_events", (table, row)
    users = [json.loads(line) for line in (root / manifest["tables"]["users"]["file"]).read_text().splitlines()]
    assert [u["email"] for u in users] == [seeded[GONE]["email"]]
    assert all("hashed_password" not in u for u in users)


def test_erasure_refused_without_confirmation(seeded):
    before = tenant_rows(GONE)
    result = run_playbook("tenant_erase.yml", "-e", f"tenant_erase_tenant={GONE}", "-e", "tenant_erase_confirm=other")
    assert result.returncode != 0
    assert "Nothing erased" in result.stdout + result.stderr
    assert tenant_rows(GONE) == before


@pytest.fixture(scope="module")
def erasure(seeded, export, tmp_path_factory) -> dict:
    """Run the erasure once (after the export); the record kept on the controller, and the other tenant's state
    before it."""
    kept_before = (tenant_rows(KEPT), tenant_objects(KEPT), cache_keys(KEPT))
    gone_before = (tenant_rows(GONE), tenant_objects(GONE), cache_keys(GONE))
    records = tmp_path_factory.mktemp("erasures")
    extra = json.dumps(
        {"tenant_erase_tenant": GONE, "tenant_erase_confirm": GONE, "tenant_erase_record_dir": str(records)}
    )
    result = run_playbook("tenant_erase.yml", "-e", extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    (path,) = records.glob(f"{GONE}-erasure-*.json")
    assert path.stat().st_mode & 0o777 == 0o600
    return {"record": json.loads(path.read_text()), "kept_before": kept_before, "gone_before": gone_before}


def test_erasure_leaves_no_row_object_version_or_key(erasure):
    assert all(count == 0 for count in tenant_rows(GONE).values()), tenant_rows(GONE)
    assert tenant_objects(GONE) == []
    assert cache_keys(GONE) == []


def test_erasure_record_counts_before_and_after(erasure):
    record, (rows, objects, keys) = erasure["record"], erasure["gone_before"]
    assert record["complete"] is True and record["errors"] == []
    assert record["database"]["before"]["houses"] == rows["houses"] == 2
    assert all(count == 0 for count in record["database"]["after"].values())
    versions = sum(1 for o in objects if not o[3])
    assert sum(c["versions"] for c in record["objects"]["before"].values()) == versions == 3  # 2 document, 1 model
    assert all(c == {"versions": 0, "delete_markers": 0} for c in record["objects"]["after"].values())
    assert (record["cache"]["before"], record["cache"]["after"]) == (len(keys), 0) == (3, 0)
    assert record["tasks"]["queued_conversions"] == 1
    assert record["backups"]["gone_by"] and "pgbackrest" in record["backups"]["days_per_store"]


def test_other_tenant_untouched(erasure):
    rows, objects, keys = erasure["kept_before"]
    assert tenant_rows(KEPT) == rows
    assert tenant_objects(KEPT) == objects
    assert cache_keys(KEPT) == keys
    assert rows["houses"] == 2 and len(keys) == 3


def test_erasure_is_audited_without_the_tenant_name(erasure):
    record_id = erasure["record"]["record_id"]
    details = psql(
        f"SELECT details::text FROM audit_events WHERE action = 'tenant_erased' AND target_id = '{record_id}'"  # noqa: S608
    )
    assert hashlib.sha256(GONE.encode()).hexdigest() in details
    assert GONE not in details


def test_queued_conversion_of_the_erased_tenant_does_nothing(seeded, erasure):
    worker("start")
    bim_id = seeded[GONE]["bim"]["id"]
    deadline = time.time() + 120
    seen = False
    while time.time() < deadline and not seen:
        seen = (
            node(WEB)
            .run(f"journalctl -u eterna-worker --since -10min -o cat | grep -q 'BIM model {bim_id} not found'")
            .rc
            == 0
        )
        time.sleep(2)
    assert seen, "the queued conversion was not consumed"
    assert tenant_objects(GONE) == [], "the conversion wrote an object of the erased tenant"


def test_retention_job_erases_an_ended_contract_and_prunes_the_audit_trail():
    """eterna-retention.service (the daily timer's job): contract-ended (molecule.yml's app_contracts_ended) is erased
    with its record kept on the host; an audit event older than app_retention_audit_days (365) is deleted, a recent
    one kept."""
    web = node(WEB)
    assert web.service("eterna-retention.timer").is_enabled
    create = f"{MANAGE} -m app.manage create-owner --tenant contract-ended --email owner@contract-ended.test"
    web.check_output(f"printf '%s\\n' {shlex.quote(PASSWORD)} | {create}")
    psql(
        "INSERT INTO audit_events (id, created_at, tenant_id, action, outcome, details) VALUES "
        "(gen_random_uuid(), now() - interval '400 days', 'tenant-b', 'ancient', 'success', '{}'), "
        "(gen_random_uuid(), now() - interval '300 days', 'tenant-b', 'recent', 'success', '{}')"
    )
    assert tenant_rows("contract-ended")["tenants"] == 1
    web.check_output("systemctl start eterna-retention.service")
    assert all(count == 0 for count in tenant_rows("contract-ended").values())
    records = web.check_output("ls /var/lib/eterna-app/erasures").split()
    assert any(name.startswith("contract-ended-erasure-") for name in records), records
    record = web.file(f"/var/lib/eterna-app/erasures/{[n for n in records if n.startswith('contract-ended')][0]}")
    assert record.mode == 0o600 and record.user == "eterna-app"
    assert json.loads(record.content_string)["complete"] is True
    assert (
        psql("SELECT string_agg(action, ',' ORDER BY action) FROM audit_events WHERE action IN ('ancient', 'recent')")
        == "recent"
    )
