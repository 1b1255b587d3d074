"""The app role, exercised from the data container against the API on app-web:8000."""

from __future__ import annotations

import json
import shlex
import time
import uuid

import pytest
from app_probe import BASE, CLIENT, WEB, A, B, owner_token
from app_probe import http as probe_http
from eterna_testinfra import node

JOURNAL_UNITS = ["eterna-api", "eterna-worker", "eterna-beat"]
JOURNAL_HOSTS = ["app-web"]


def http(method: str, path: str, tenant: str | None = None, body: dict | None = None, form: dict | None = None):
    """(status, body text) of a request from the client container straight to the app, authenticated as the
    first owner of ``tenant`` when given (the tenant is the token's; no tenant header is sent)."""
    return probe_http(method, path, owner_token(tenant) if tenant else None, body, form)


def create_house(tenant: str, name: str) -> dict:
    status, text = http("POST", "/api/v1/houses", tenant, {"name": name, "address": "1 Test Street"})
    assert status == 201, text
    return json.loads(text)


def test_ready_reports_every_dependency():
    status, text = http("GET", "/health/ready")
    assert status == 200, text
    body = json.loads(text)
    assert set(body["checks"]) == {"postgresql", "redis", "rabbitmq", "s3"}
    for name, check in body["checks"].items():
        assert check["status"] == "ok", name
        assert check["latency_ms"] >= 0


def ready_until(expected: int, seconds: float = 30) -> tuple[int, str]:
    """/health/ready until it answers ``expected`` (its result is cached for app_ready_cache_seconds)."""
    deadline = time.time() + seconds
    while True:
        status, text = http("GET", "/health/ready")
        if status == expected or time.time() > deadline:
            return status, text
        time.sleep(1)


def test_ready_names_a_failed_dependency():
    data = node(CLIENT)
    data.check_output("systemctl stop redis-server")
    try:
        status, text = ready_until(503)
    finally:
        data.check_output("systemctl start redis-server")
    assert status == 503, text
    assert json.loads(text)["failed"] == ["redis"]
    assert ready_until(200)[0] == 200, "readiness must recover once Redis is back"


def test_readiness_is_cached_for_a_short_time():
    # Each API worker keeps its own result for app_ready_cache_seconds (5): of ten quick calls, some are
    # answered from a cache and none from one older than that.
    ages = [json.loads(http("GET", "/health/ready")[1])["cached_seconds"] for _ in range(10)]
    assert any(age > 0 for age in ages), ages
    assert all(0 <= age < 5 for age in ages), ages


def test_tenant_isolation():
    house = create_house(A, "Villa of A")
    hid = house["id"]
    assert uuid.UUID(hid).version == 4
    status, text = http("GET", "/api/v1/houses", B)
    assert status == 200
    assert hid not in text
    assert http("GET", f"/api/v1/houses/{hid}", B)[0] == 404
    assert http("PATCH", f"/api/v1/houses/{hid}", B, {"name": "taken by B"})[0] == 404
    assert http("DELETE", f"/api/v1/houses/{hid}", B)[0] == 404
    status, text = http("GET", f"/api/v1/houses/{hid}", A)
    assert status == 200
    assert json.loads(text)["name"] == "Villa of A"
    assert hid in http("GET", "/api/v1/houses", A)[1]
    assert http("GET", f"/api/v1/houses/{uuid.uuid4()}", A)[0] == 404
    # B's token with a header claiming A: the header is ignored, B still sees only B's houses.
    status, text = probe_http("GET", "/api/v1/houses", owner_token(B), tenant_header=A)
    assert status == 200
    assert hid not in text
    assert probe_http("GET", f"/api/v1/houses/{hid}", owner_token(B), tenant_header=A)[0] == 404
    assert http("GET", "/api/v1/houses")[0] == 401, "no token, no data"


def test_document_upload_and_download_intact():
    client = node(CLIENT)
    client.check_output("head -c 300000 /dev/urandom > /tmp/doc.bin")
    digest = client.check_output("sha256sum /tmp/doc.bin").split()[0]
    status, text = http("POST", "/api/v1/documents", A, form={"file": "@/tmp/doc.bin"})
    assert status == 201, text
    doc = json.loads(text)
    assert doc["sha256"] == digest
    auth = f"Authorization: Bearer {owner_token(A)}"
    client.check_output(f"curl -sf -H '{auth}' -o /tmp/doc.out {BASE}/api/v1/documents/{doc['id']}/download")
    assert client.check_output("sha256sum /tmp/doc.out").split()[0] == digest
    assert http("GET", f"/api/v1/documents/{doc['id']}/download", B)[0] == 404


def test_bim_conversion_completes_through_celery():
    client = node(CLIENT)
    client.check_output("printf 'ISO-10303-21;\\nHEADER;\\nENDSEC;\\n' > /tmp/model.ifc")
    status, text = http("POST", "/api/v1/bim-models", A, form={"file": "@/tmp/model.ifc"})
    assert status == 201, text
    bim = json.loads(text)
    assert bim["conversion_status"] == "none"
    status, text = http("POST", f"/api/v1/bim-models/{bim['id']}/convert", A)
    assert status == 202, text
    state = {}
    for _ in range(60):
        state = json.loads(http("GET", f"/api/v1/bim-models/{bim['id']}", A)[1])
        if state["conversion_status"] in ("completed", "failed"):
            break
        time.sleep(2)
    assert state["conversion_status"] == "completed", state
    assert state["converted_object_key"].endswith(".converted.json")
    assert state["conversion_completed_at"]


def test_metrics_count_requests_per_tenant():
    http("GET", "/api/v1/houses", A)
    status, text = http("GET", "/metrics")
    assert status == 200
    assert 'tenant="tenant-a"' in text
    assert "eterna_http_requests_total" in text


def test_untrusted_host_header_refused():
    out = node(CLIENT).check_output(f"curl -s -o /dev/null -w '%{{http_code}}' -H 'Host: evil.example' {BASE}/health")
    assert out == "400"


def test_release_runs_on_the_host_python_with_consistent_requirements():
    """The virtualenv is the host's Python (3.11 on Debian 12, 3.13 on Debian 13), named in the release id, and
    every pinned requirement installed with its dependencies satisfied."""
    web = node(WEB)
    version = "import sys; print('%d.%d' % sys.version_info[:2])"
    host = web.check_output(f"/usr/bin/python3 -c {shlex.quote(version)}")
    venv = web.check_output(f"/opt/eterna-app/current/venv/bin/python -c {shlex.quote(version)}")
    assert venv == host
    assert web.file("/opt/eterna-app/current").linked_to.endswith("-py" + host.replace(".", ""))
    check = web.run("/opt/eterna-app/current/venv/bin/pip check --disable-pip-version-check")
    assert check.rc == 0, check.stdout + check.stderr


def test_release_built_under_a_strict_umask_is_readable_by_the_app():
    """prepare.yml gives app-web login.defs UMASK 077 (the hardening role's strictest): the release was built in a
    become session with that umask, and its directories still let the app's user in. Release 1.0.1 (previous after
    the rollback), built by side_effect.yml: the first release's modes were changed by hand there."""
    web = node(WEB)
    assert web.check_output("grep -E '^UMASK' /etc/login.defs").split()[1] == "077"
    release = web.file("/opt/eterna-app/previous").linked_to
    assert release.split("/")[-1].startswith("1.0.1-")
    closed = web.check_output(f"find {release} -type d ! -perm -0055 -printf '%m %p\\n'")
    assert not closed, closed
    web.check_output(f"runuser -u eterna-app -- {release}/venv/bin/python -c 'import fastapi, sqlalchemy'")


def test_completed_release_closed_to_the_app_is_opened_by_a_rerun():
    """side_effect.yml closed the first release's virtualenv to others (chmod -R o-rwx, what the role before 9b567ed
    left under the hardening umask) and ran the role again: every file is readable again, and after the rollback
    that release serves."""
    web = node(WEB)
    release = web.file("/opt/eterna-app/current").linked_to
    assert release.split("/")[-1].startswith("1.0.0-")
    closed = web.check_output(f"find {release}/venv ! -perm -0004 -printf '%m %p\\n'")
    assert not closed, closed
    status, _ = http("GET", "/health")
    assert status == 200


def test_database_migrated_to_head_with_backup():
    web = node(WEB)
    out = web.check_output("eterna-app-manage /opt/eterna-app/current alembic current")
    assert "0007_add_tenant_listing_indexes (head)" in out
    assert web.check_output("ls /var/backups/eterna-app").count(".dump") >= 1


def test_broken_release_refused_and_rollback_serves_first_release():
    web = node(WEB)
    refusal = web.file("/root/molecule-broken-release.txt").content_string
    assert "failed its readiness check" in refusal
    assert "selftest" in refusal
    assert "keeps serving" in refusal
    status, text = http("GET", "/health")
    assert status == 200
    assert json.loads(text)["version"] == "1.0.0", "the rollback must return to the first release"
    assert web.file("/opt/eterna-app/current").linked_to.split("/")[-1].startswith("1.0.0-")
    assert web.file("/opt/eterna-app/previous").linked_to.split("/")[-1].startswith("1.0.1-")
    running = web.check_output("systemctl list-units 'eterna-api-candidate@*' --state=running --no-legend --plain")
    assert running.strip() == "", "no candidate may keep running after a deployment"


def test_env_file_is_private():
    env = node(WEB).file("/etc/eterna-app/app.env")
    assert env.mode == 0o600
    assert env.user == "eterna-app"
    assert 'DEBUG="false"' in env.content_string


# molecule.yml's app_extra_env value, after molecule's '$$' unescaping.
PROBE = (
    "".join(chr(c) for c in range(0x20, 0x7F)) + " tok$HOME`touch /tmp/eterna-probe-ran`$(touch /tmp/eterna-probe-ran)x"
)


def test_env_file_values_reach_services_and_wrappers_verbatim():
    """systemd (the real EnvironmentFile parser) and the root wrappers read app.env to the same, unexpanded value."""
    web = node(WEB)
    pid = web.check_output("systemctl show -p MainPID --value eterna-api")
    environ = web.check_output(f"tr '\\0' '\\n' < /proc/{pid}/environ | grep ^ETERNA_QUOTING_PROBE=")
    assert environ == "ETERNA_QUOTING_PROBE=" + PROBE
    script = "import json, os; print(json.dumps(os.environ['ETERNA_QUOTING_PROBE']))"
    out = web.check_output(f"eterna-app-manage /opt/eterna-app/current python -c {shlex.quote(script)}")
    assert json.loads(out) == PROBE
    assert not web.file("/tmp/eterna-probe-ran").exists, "app.env was executed"  # noqa: S108 - container


def test_urls_carry_passwords_with_url_syntax():
    """Passwords with '/', '@', ':', '%', '?' and '#' (molecule.yml) reach PostgreSQL, Redis and RabbitMQ.

    The migration's backup (test_database_migrated_to_head_with_backup) covers eterna-app-dbcheck with them.
    """
    status, text = http("GET", "/health/ready")
    assert status == 200, text
    checks = json.loads(text)["checks"]
    assert {name: checks[name]["status"] for name in ("postgresql", "redis", "rabbitmq")} == dict.fromkeys(
        ("postgresql", "redis", "rabbitmq"), "ok"
    )


@pytest.mark.parametrize("unit", ["eterna-api", "eterna-worker", "eterna-beat"])
def test_units_run_hardened_as_service_user(unit):
    web = node(WEB)
    assert web.service(unit).is_running
    assert web.service(unit).is_enabled
    props = web.check_output(f"systemctl show {unit} -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp")
    assert "User=eterna-app" in props
    assert "NoNewPrivileges=yes" in props
    assert "ProtectSystem=strict" in props
    assert "PrivateTmp=yes" in props


def test_worker_stops_gracefully():
    props = node(WEB).check_output("systemctl show eterna-worker -p KillSignal -p KillMode -p TimeoutStopUSec")
    assert "KillSignal=15" in props
    assert "KillMode=mixed" in props
    assert "TimeoutStopUSec=1min" in props
