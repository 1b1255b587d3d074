"""The monitoring stack, exercised from the target host as a client of Prometheus and Alertmanager."""

from __future__ import annotations

import json
import re
import shlex
import time
from pathlib import Path

import pytest
import yaml
from eterna_testinfra import node, secrets

JOURNAL_UNITS = ["prometheus", "prometheus-alertmanager", "prometheus-blackbox-exporter", "prometheus-node-exporter"]
JOURNAL_HOSTS = ["monitoring-prom"]

PROM = "monitoring-prom"
CLIENT = "monitoring-target"
# The target's node exporter port, set in its host_vars (molecule.yml): the scrape follows it, written once.
CLIENT_NODE_PORT = 9101
ROOT = Path(__file__).resolve().parents[3]
PROM_URL = f"https://{PROM}:9090"
AM_URL = f"https://{PROM}:9093"
# Polling deadline for conditions that need a few scrape/evaluation cycles (never a performance assertion).
DEADLINE = 240


def derived(purpose: str) -> str:
    key = node(PROM).ansible.get_variables()["eterna_master_key"]
    return secrets().derive_secret(key, purpose)


PASSWORD = None


def password() -> str:
    global PASSWORD
    if PASSWORD is None:
        PASSWORD = derived("prometheus/admin")
    return PASSWORD


def curl(
    url: str, *, user: str | None = "admin", secret: str | None = None, data: dict | None = None
) -> tuple[int, str]:
    """GET from the client host; returns (HTTP status, body). Status 0 means no HTTP answer."""
    args = ["curl", "-sS", "-o", "/tmp/curl-body", "-w", "%{http_code}", "--max-time", "10"]  # noqa: S108 - scratch file in the test container
    if user is not None:
        args += ["-u", f"{user}:{password() if secret is None else secret}"]
    if data:
        args.append("-G")
        for key, value in data.items():
            args += ["--data-urlencode", f"{key}={value}"]
    args.append(url)
    client = node(CLIENT)
    res = client.run(" ".join(shlex.quote(a) for a in args))
    code = int(res.stdout.strip() or 0)
    body = client.run("cat /tmp/curl-body 2>/dev/null").stdout
    return code, body


def api(path: str, **params: str) -> dict:
    code, body = curl(PROM_URL + path, data=params or None)
    assert code == 200, f"{path}: HTTP {code} {body[:300]}"
    doc = json.loads(body)
    assert doc["status"] == "success", doc
    return doc["data"]


def query(expr: str) -> dict:
    """Instant query; returns the API answer without asserting success (status, data or error)."""
    code, body = curl(PROM_URL + "/api/v1/query", data={"query": expr})
    doc = json.loads(body) if body.startswith("{") else {"status": "error", "error": f"HTTP {code}: {body[:200]}"}
    return doc


def wait_for(check, what: str, deadline: float = DEADLINE, every: float = 3):
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``deadline`` seconds."""
    end = time.monotonic() + deadline
    last = None
    while time.monotonic() < end:
        last = check()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"gave up waiting for {what}; last answer: {last!r}")


def firing(alertname: str, **labels: str) -> list[dict]:
    return [
        a
        for a in api("/api/v1/alerts")["alerts"]
        if a["labels"]["alertname"] == alertname
        and a["state"] == "firing"
        and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


# --------------------------------------------------------------------------------------------------------------
# Services, listeners, authentication and files


@pytest.mark.parametrize(
    ("host", "unit"),
    [
        (PROM, "prometheus"),
        (PROM, "prometheus-alertmanager"),
        (PROM, "prometheus-blackbox-exporter"),
        (PROM, "prometheus-node-exporter"),
        (CLIENT, "prometheus-node-exporter"),
    ],
)
def test_services_run_hardened_as_prometheus(host, unit):
    h = node(host)
    assert h.service(unit).is_running
    assert h.service(unit).is_enabled
    props = dict(
        line.split("=", 1)
        for line in h.check_output(
            f"systemctl show -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp {unit}"
        ).splitlines()
    )
    assert props == {"User": "prometheus", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}


def test_listeners_are_private_and_blackbox_is_loopback_only():
    h = node(PROM)
    address = h.ansible.get_variables().get("eterna_private_ip") or h.interface("eth0").addresses[0]
    assert h.socket(f"tcp://{address}:9090").is_listening
    assert h.socket(f"tcp://{address}:9093").is_listening
    assert not h.socket("tcp://0.0.0.0:9090").is_listening
    assert h.socket("tcp://127.0.0.1:9115").is_listening
    assert not h.socket("tcp://0.0.0.0:9115").is_listening
    code, _ = curl(f"http://{PROM}:9115/probe?target=http://example.test&module=http_ready", user=None)
    assert code == 0, "the blackbox exporter must not be reachable from another host"


def test_node_exporter_role_listens_privately_with_its_collectors_and_restart_policy():
    """The node_exporter role on the target: bound to the private address, textfile and systemd collectors on its
    command line, its sandbox (netlink for the collectors) and restart policy in effect, no mask left."""
    h = node(CLIENT)
    address = h.ansible.get_variables().get("eterna_private_ip") or h.interface("eth0").addresses[0]
    assert h.socket(f"tcp://{address}:{CLIENT_NODE_PORT}").is_listening
    assert not h.socket(f"tcp://0.0.0.0:{CLIENT_NODE_PORT}").is_listening
    assert not h.socket(f"tcp://{address}:9100").is_listening
    args = h.file("/etc/default/prometheus-node-exporter").content_string
    assert "--collector.textfile.directory=/var/lib/prometheus/node-exporter " in args
    assert "--collector.systemd " in args
    assert "--collector.systemd.unit-include=(eterna-.+|" in args
    props = dict(
        line.split("=", 1)
        for line in h.check_output(
            "systemctl show -p Restart -p RestrictAddressFamilies -p ProtectHome prometheus-node-exporter"
        ).splitlines()
    )
    assert props["Restart"] == "on-failure"
    assert props["ProtectHome"] == "read-only"
    assert "AF_NETLINK" in props["RestrictAddressFamilies"].split()
    assert not h.file("/etc/systemd/system/prometheus-node-exporter.service").is_symlink
    metrics = h.check_output(f"curl -sS --max-time 10 http://{address}:{CLIENT_NODE_PORT}/metrics")
    assert re.search(r'^node_systemd_unit_state\{name="redis-server\.service",state="active"', metrics, re.M)
    assert "eterna_backup_last_success_timestamp_seconds{" in metrics


@pytest.mark.parametrize("base", [PROM_URL, AM_URL])
def test_uis_refuse_anonymous_and_wrong_password(base):
    path = "/api/v1/status/buildinfo" if base == PROM_URL else "/api/v2/status"
    assert curl(base + path, user=None)[0] == 401
    assert curl(base + path, secret="wrong-password-123456")[0] == 401  # noqa: S106 - a wrong password on purpose
    assert curl(base + path, user="root")[0] == 401
    assert curl(base + path)[0] == 200
    plain = base.replace("https://", "http://")
    assert curl(plain + path)[0] != 200, "plain HTTP must not be served"


def test_secret_files_are_private_to_the_service_user():
    h = node(PROM)
    for path in (
        "/etc/prometheus/web-config.yml",
        "/etc/prometheus/secrets/admin_password",
        "/etc/prometheus/alertmanager.yml",
        "/etc/prometheus/tls/prometheus.key",
    ):
        f = h.file(path)
        assert f.user == "prometheus", path
        assert f.mode == 0o640, f"{path}: {oct(f.mode)}"
    assert h.file("/etc/prometheus/secrets").mode == 0o750
    assert h.file("/etc/prometheus/secrets/admin_password").content_string == password()
    web = h.file("/etc/prometheus/web-config.yml").content_string
    assert password() not in web
    assert re.search(r"admin: \"\$2b\$12\$", web), "the web config must hold a bcrypt hash"


def test_configs_pass_their_validators():
    h = node(PROM)
    h.check_output("promtool check config /etc/prometheus/prometheus.yml")
    h.check_output("promtool check rules /etc/prometheus/rules/*.yml")
    h.check_output("amtool check-config /etc/prometheus/alertmanager.yml")
    h.check_output("prometheus-blackbox-exporter --config.check --config.file=/etc/prometheus/blackbox.yml")


def test_retention_comes_from_the_inventory():
    flags = api("/api/v1/status/flags")
    assert flags["storage.tsdb.retention.time"] == "2d"
    assert flags["storage.tsdb.retention.size"] in {"1GB", "1GiB"}  # Prometheus prints sizes in binary units
    assert flags["web.config.file"] == "/etc/prometheus/web-config.yml"


# --------------------------------------------------------------------------------------------------------------
# Targets and probes


EXPECTED_TARGETS = {
    ("prometheus", f"{PROM}:9090"),
    ("alertmanager", f"{PROM}:9093"),
    ("blackbox_exporter", f"{PROM}:9115"),
    ("node", f"{PROM}:9100"),
    ("node", f"{CLIENT}:{CLIENT_NODE_PORT}"),  # the inventory moved it (molecule.yml)
    ("redis", f"{CLIENT}:9121"),
    ("app", f"{CLIENT}:8000"),
    ("blackbox_public", f"https://{CLIENT}:8443/"),
    ("blackbox_tls", f"{CLIENT}:8443"),
}


def test_every_expected_target_is_up_and_nothing_else():
    def all_up():
        targets = api("/api/v1/targets", state="active")["activeTargets"]
        seen = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in targets}
        ready = {k: v for k, v in seen.items() if k[0] == "blackbox_app_ready"}
        others = {k: v for k, v in seen.items() if k[0] != "blackbox_app_ready"}
        if set(others) != EXPECTED_TARGETS or len(ready) != 1:
            return None
        return seen if all(v == "up" for v in seen.values()) else None

    seen = wait_for(all_up, "every expected target to be up")
    jobs = {job for job, _ in seen}
    # Groups without hosts in this inventory get no job: the list comes from the inventory, not a hand-kept file.
    assert not jobs & {"postgres", "rabbitmq", "rabbitmq_queues", "objectstore", "nginx"}


def test_blackbox_probes_of_healthy_endpoints_succeed():
    def probes():
        res = api("/api/v1/query", query="probe_success")["result"]
        return res if len(res) == 3 and all(r["value"][1] == "1" for r in res) else None

    results = wait_for(probes, "the three probes to succeed")
    jobs = {r["metric"]["job"] for r in results}
    assert jobs == {"blackbox_public", "blackbox_app_ready", "blackbox_tls"}
    days = api("/api/v1/query", query='(probe_ssl_earliest_cert_expiry{job="blackbox_public"} - time()) / 86400')
    assert float(days["result"][0]["value"][1]) > 300, "the internal CA issues certificates for 397 days"


# --------------------------------------------------------------------------------------------------------------
# Rules, dashboards and alerts


def rule_exprs() -> list[str]:
    return [
        rule["expr"]
        for path in sorted((ROOT / "roles/prometheus/files/rules").glob("*.yml"))
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "30s", "$__range": "1h", "$host": ".*"}


def dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for path in sorted((ROOT / "roles/grafana/files/dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for var, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(var, value)
                out.append((f"{path.stem}/{panel['title']}", expr))
    return out


def test_rules_are_loaded_healthy_with_overrides_and_runbook_links():
    groups = api("/api/v1/rules")["groups"]
    # Every group the role ships (roles/prometheus/files/rules) is loaded; a new rules file needs no list here.
    shipped = {
        group["name"]
        for path in (ROOT / "roles/prometheus/files/rules").glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
    }
    assert {g["name"] for g in groups} == shipped
    rules = [r for g in groups for r in g["rules"]]
    assert len(rules) == len(rule_exprs())
    assert all(r["health"] != "err" for r in rules), [r for r in rules if r["health"] == "err"]
    target_down = next(r for r in rules if r["name"] == "TargetDown")
    assert target_down["duration"] == 10, "the scenario's override of `for:` must reach the running rules"
    # Recording rules (the app_baseline group) carry no annotations; every alert links its runbook.
    assert {r["type"] for r in rules} == {"alerting", "recording"}
    for rule in (r for r in rules if r["type"] == "alerting"):
        assert rule["annotations"]["runbook_url"].startswith(
            "https://git.example.test/eterna/infra/-/blob/main/monitoring/runbooks.md#"
        )


def test_every_rule_and_dashboard_expression_parses():
    failures = []
    for where, expr in [("rule", e) for e in rule_exprs()] + dashboard_exprs():
        answer = query(expr)
        if answer.get("status") != "success":
            failures.append(f"{where}: {expr} -> {answer.get('error')}")
    assert not failures, "\n".join(failures)


# Panels whose metrics exist here but whose label filters select nothing in this scenario.
NO_DATA_HERE = {"rabbitmq-celery/Worker units": "no Celery unit runs in this scenario"}


def test_core_panels_return_data():
    available = set(api("/api/v1/label/__name__/values"))
    core = []
    for where, expr in dashboard_exprs():
        if where in NO_DATA_HERE:
            continue
        names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?=\s*[{\[)]|\s*$|\s*/|\s*-|\s*or\b)", expr))
        metric_names = {
            n for n in names if n in available or "_" in n and n not in {"histogram_quantile", "label_values"}
        }
        if metric_names and metric_names <= available:
            core.append((where, expr))
    # Host, Redis, probe, app stand-in and up panels have their metrics in this scenario.
    assert len(core) >= 30, f"only {len(core)} panels have their metrics here: {core}"
    empty = []
    for where, expr in core:
        answer = wait_for(lambda e=expr: (query(e).get("data") or {}).get("result"), f"data for {where}", deadline=60)
        if not answer:
            empty.append(where)
    assert not empty, empty


def test_backup_age_from_the_textfile_collector_fires_backup_too_old():
    alerts = wait_for(lambda: firing("BackupTooOld", host=CLIENT), "BackupTooOld to fire")
    assert alerts[0]["labels"]["severity"] == "critical"
    assert firing("WalArchivingFailing") == []


def webhook_notifications() -> list[dict]:
    out = node(CLIENT).run("cat /var/lib/standin/alerts.jsonl").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def notified(alertname: str, status: str, job: str) -> bool:
    return any(
        a["labels"].get("alertname") == alertname and a["status"] == status and a["labels"].get("job") == job
        for n in webhook_notifications()
        for a in n["alerts"]
    )


def test_stopping_an_exporter_fires_target_down_notifies_and_resolves():
    client = node(CLIENT)
    client.check_output("systemctl stop prometheus-redis-exporter")
    try:
        alerts = wait_for(lambda: firing("TargetDown", job="redis"), "TargetDown for redis to fire")
        assert alerts[0]["labels"]["instance"] == f"{CLIENT}:9121"
        assert alerts[0]["labels"]["severity"] == "critical"

        def in_alertmanager():
            code, body = curl(AM_URL + "/api/v2/alerts")
            return code == 200 and any(a["labels"]["alertname"] == "TargetDown" for a in json.loads(body))

        wait_for(in_alertmanager, "Alertmanager to hold TargetDown")
        wait_for(lambda: notified("TargetDown", "firing", "redis"), "the webhook receiver to get TargetDown")
    finally:
        client.check_output("systemctl start prometheus-redis-exporter")
    wait_for(lambda: not firing("TargetDown", job="redis") or None, "TargetDown to resolve")
    wait_for(lambda: notified("TargetDown", "resolved", "redis"), "the webhook receiver to get the resolution")


def test_promtool_unit_tests_pass_on_the_prometheus_host():
    h = node(PROM)
    files = h.check_output("ls /root/rule-tests/monitoring/rule_tests/").split()
    assert len(files) == len(list((ROOT / "monitoring/rule_tests").glob("*_test.yml")))
    res = h.run("cd /root/rule-tests/monitoring/rule_tests && promtool test rules *_test.yml")
    assert res.rc == 0, res.stdout + res.stderr
    assert res.stdout.count("SUCCESS") == len(files)
