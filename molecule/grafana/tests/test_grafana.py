"""Grafana from the pinned package, exercised from the client host: login, refusal, datasource, dashboards."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import pytest
from eterna_testinfra import node, secrets

JOURNAL_UNITS = ["grafana-server", "prometheus"]
JOURNAL_HOSTS = ["grafana-mon"]

SERVER = "grafana-mon"
CLIENT = "grafana-client"
URL = f"https://{SERVER}:3000"
ROOT = Path(__file__).resolve().parents[3]
DEADLINE = 180


def derived(purpose: str) -> str:
    return secrets().derive_secret(node(SERVER).ansible.get_variables()["eterna_master_key"], purpose)


def call(path: str, *, auth: tuple[str, str] | None = None, method: str = "GET", body: dict | None = None):
    """(HTTP status, parsed JSON or text) of a request from the client host."""
    args = ["curl", "-sS", "-o", "/root/grafana-body", "-w", "%{http_code}", "--max-time", "15", "-X", method]
    if auth:
        args += ["-u", f"{auth[0]}:{auth[1]}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
    args.append(URL + path)
    client = node(CLIENT)
    code = int(client.run(" ".join(shlex.quote(a) for a in args)).stdout.strip() or 0)
    text = client.run("cat /root/grafana-body").stdout
    try:
        return code, json.loads(text)
    except ValueError:
        return code, text


def admin() -> tuple[str, str]:
    return ("admin", derived("grafana/admin"))


def test_grafana_runs_and_starts_at_boot():
    svc = node(SERVER).service("grafana-server")
    assert svc.is_running
    assert svc.is_enabled


def test_admin_logs_in_with_the_derived_password():
    code, user = call("/api/user", auth=admin())
    assert code == 200, user
    assert user["login"] == "admin"
    assert user["isGrafanaAdmin"] is True


def test_wrong_password_and_anonymous_requests_are_refused():
    assert call("/api/user", auth=("admin", "wrong-password-0123456789"))[0] == 401
    assert call("/api/search")[0] == 401
    assert call("/api/datasources")[0] == 401


def test_anonymous_access_and_sign_up_are_off():
    code, settings = call("/api/admin/settings", auth=admin())
    assert code == 200
    assert settings["auth.anonymous"]["enabled"] == "false"
    assert settings["users"]["allow_sign_up"] == "false"
    assert settings["server"]["protocol"] == "https"


def test_provisioned_datasource_reaches_prometheus():
    end = time.monotonic() + DEADLINE
    while True:
        code, health = call("/api/datasources/uid/eterna-prometheus/health", auth=admin())
        if code == 200 and health.get("status") == "OK":
            break
        if time.monotonic() > end:
            pytest.fail(f"datasource health: {code} {health}")
        time.sleep(3)


def test_every_dashboard_is_provisioned():
    shipped = {json.loads(p.read_text())["uid"] for p in (ROOT / "roles/grafana/files/dashboards").glob("*.json")}
    end = time.monotonic() + DEADLINE
    while True:
        code, found = call("/api/search?type=dash-db", auth=admin())
        uids = {d["uid"] for d in found} if code == 200 else set()
        if shipped <= uids:
            break
        if time.monotonic() > end:
            pytest.fail(f"missing dashboards: {shipped - uids}")
        time.sleep(3)


def test_a_panel_query_through_grafana_returns_data():
    body = {
        "from": "now-5m",
        "to": "now",
        "queries": [{"refId": "A", "datasource": {"uid": "eterna-prometheus"}, "expr": "up", "instant": True}],
    }
    code, answer = call("/api/ds/query", auth=admin(), method="POST", body=body)
    assert code == 200, answer
    frames = answer["results"]["A"]["frames"]
    assert frames and frames[0]["data"]["values"], answer


def test_secret_files_belong_to_grafana():
    h = node(SERVER)
    for path in (
        "/etc/grafana/grafana.ini",
        "/etc/grafana/admin_password",
        "/etc/grafana/provisioning/datasources/eterna.yml",
        "/etc/grafana/tls/grafana.key",
    ):
        f = h.file(path)
        assert f.user == "grafana", path
        assert f.mode == 0o640, f"{path}: {oct(f.mode)}"
