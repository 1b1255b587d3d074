"""The vendor ELK stack (issue #17), exercised from elk-probe (outside the logging host) and elk-client (a shipper).

elk-logging runs Elasticsearch, Logstash, Kibana behind nginx, and the central rsyslog sending through Logstash. Runs
only with the vendor packages (skip-if); nothing here is a stand-in.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import shlex
import time
import uuid

import pytest
from eterna_testinfra import node, secrets

JOURNAL_UNITS = ["elasticsearch", "logstash", "kibana", "nginx", "rsyslog"]
JOURNAL_HOSTS = ["elk-logging"]

LOGGING, CLIENT, PROBE = "elk-logging", "elk-client", "elk-probe"
ES = f"https://{LOGGING}:9200"
KIBANA = f"https://{LOGGING}:5601"
CA = "/usr/local/share/ca-certificates/eterna-internal-ca.crt"
ACCESS_LOG = "/var/log/nginx/eterna-access.log"
PREFIX = "eterna-logs"
CLASSES = ["access", "application", "audit", "security"]


@functools.cache
def derived(purpose: str) -> str:
    """A password the roles derive from the scenario's master key."""
    return secrets().derive_secret(node(PROBE).ansible.get_variables()["eterna_master_key"], purpose)


def elastic() -> tuple[str, str]:
    return ("elastic", derived("elasticsearch/elastic"))


def call(url: str, *, auth=None, method: str = "GET", body=None, headers=(), host: str = PROBE):
    """(HTTP status, parsed JSON or text, response headers) of one request sent with curl from ``host``."""
    args = ["curl", "-sS", "--cacert", CA, "-o", "/root/elk-body", "-D", "/root/elk-headers", "-w", "%{http_code}"]
    args += ["--max-time", "30", "-X", method]
    if auth:
        args += ["-u", f"{auth[0]}:{auth[1]}"]
    for header in headers:
        args += ["-H", header]
    if body is not None:
        data = body if isinstance(body, str) else json.dumps(body)
        kind = "application/x-ndjson" if isinstance(body, str) else "application/json"
        args += ["-H", f"Content-Type: {kind}", "--data-binary", data]
    args.append(url)
    h = node(host)
    code = int(h.run(" ".join(shlex.quote(a) for a in args)).stdout.strip() or 0)
    text = h.run("cat /root/elk-body").stdout
    heads = h.run("cat /root/elk-headers").stdout
    try:
        return code, json.loads(text), heads
    except ValueError:
        return code, text, heads


def es(path: str, **kwargs):
    """(status, body) of an Elasticsearch request as the elastic user."""
    code, answer, _ = call(ES + path, auth=elastic(), **kwargs)
    return code, answer


def wait_for(predicate, timeout: float = 240, interval: float = 3, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; last value {value!r}")
        time.sleep(interval)


def search(query: dict, index: str = f"{PREFIX}-*") -> list[dict]:
    code, answer = es(f"/{index}/_search", method="POST", body={"query": query, "size": 200})
    assert code == 200, answer
    return [h["_source"] | {"_index": h["_index"], "_id": h["_id"]} for h in answer["hits"]["hits"]]


def today() -> dt.date:
    return dt.date.fromisoformat(node(LOGGING).check_output("date -u +%F").strip())


def test_services_run_and_start_at_boot():
    for unit in ["elasticsearch", "logstash", "kibana", "nginx", "rsyslog"]:
        svc = node(LOGGING).service(unit)
        assert svc.is_running and svc.is_enabled, unit


def test_elasticsearch_answers_over_tls_only_with_valid_credentials():
    code, answer, _ = call(ES + "/")
    assert code == 401, answer
    assert call(ES + "/", auth=("elastic", "wrong-password-0123456789"))[0] == 401
    code, answer = es("/")
    assert code == 200 and answer["cluster_name"] == "eterna-logs", answer
    # No plain HTTP on the port: the connection ends without an HTTP answer (code 000), even with credentials.
    user, password = elastic()
    plain = node(PROBE).run(
        f"curl -s -o /dev/null -w '%{{http_code}}' --max-time 10 -u {user}:{password} http://{LOGGING}:9200/"
    )
    assert plain.stdout.strip() == "000", plain.stdout


def test_every_builtin_user_has_its_derived_password():
    for user in ["elastic", "kibana_system", "logstash_system", "beats_system", "apm_system", "remote_monitoring_user"]:
        code, answer, _ = call(ES + "/_security/_authenticate", auth=(user, derived(f"elasticsearch/{user}")))
        assert code == 200 and answer["username"] == user, (user, answer)


def test_transport_and_http_use_the_internal_ca_and_the_heap_is_set():
    out = node(PROBE).run(f"openssl s_client -connect {LOGGING}:9200 -CAfile {CA} -verify_return_error </dev/null")
    assert "Verify return code: 0 (ok)" in out.stdout, out.stdout[-600:]
    code, nodes = es("/_nodes/jvm,settings")
    assert code == 200
    node_info = next(iter(nodes["nodes"].values()))
    assert node_info["jvm"]["mem"]["heap_max_in_bytes"] == 1024 * 1024 * 1024
    security = node_info["settings"]["xpack"]["security"]
    assert security["enabled"] == "true" and security["transport"]["ssl"]["enabled"] == "true"


def test_templates_and_ilm_policies_follow_each_class_retention():
    retention = json.loads(node(LOGGING).file("/etc/eterna/log-retention.json").content_string)["classes"]
    for data_class in CLASSES:
        code, policy = es(f"/_ilm/policy/{PREFIX}-{data_class}")
        assert code == 200, policy
        phases = policy[f"{PREFIX}-{data_class}"]["policy"]["phases"]
        assert phases["delete"]["min_age"] == f"{retention[data_class]}d"
        code, templates = es(f"/_index_template/{PREFIX}-{data_class}")
        template = templates["index_templates"][0]["index_template"]
        assert template["index_patterns"] == [f"{PREFIX}-{data_class}-*"]
        assert template["template"]["settings"]["index"]["lifecycle"]["name"] == f"{PREFIX}-{data_class}"
        assert template["template"]["settings"]["index"]["number_of_replicas"] == "0"


def test_a_line_shipped_by_rsyslog_arrives_through_logstash_parsed():
    marker = f"elk-{uuid.uuid4().hex}"
    line = json.dumps(
        {"level": "INFO", "logger": "app.api", "message": marker, "request_id": f"r-{marker}", "tenant_id": "t-7"}
    )
    node(CLIENT).check_output(f"logger -t eterna-api -- {shlex.quote(line)}")
    docs = wait_for(lambda: search({"match_phrase": {"message": marker}}), what=f"{marker} in Elasticsearch")
    assert len(docs) == 1
    doc = docs[0]
    assert doc["_index"] == f"{PREFIX}-application-{today():%Y.%m.%d}"
    assert doc["_id"] == doc["event"]["id"]
    assert doc["host"]["name"] == CLIENT and doc["json"]["tenant_id"] == "t-7"
    assert "@version" not in doc
    # The archive on the central host has it too.
    assert node(LOGGING).run(f"grep -rqF {marker} /srv/log-archive/application/{CLIENT}").rc == 0


def test_access_log_fields_are_typed_by_the_pipeline():
    marker = f"acc-{uuid.uuid4().hex}"
    entry = {
        "time": "2026-01-01T00:00:00+00:00",
        "request_id": marker,
        "tenant": "t-3",
        "status": "404",
        "request_time": "0.25",
    }
    node(CLIENT).check_output(
        f"mkdir -p /var/log/nginx && printf '%s\\n' {shlex.quote(json.dumps(entry))} >> {ACCESS_LOG}"
    )
    docs = wait_for(lambda: search({"term": {"json.request_id": marker}}, f"{PREFIX}-access-*"), what="the access line")
    assert docs[0]["json"]["status"] == 404 and docs[0]["json"]["request_time"] == pytest.approx(0.25)
    code, mapping = es(f"/{PREFIX}-access-*/_mapping/field/json.status")
    assert code == 200 and "integer" in json.dumps(mapping)


def test_logstash_requires_a_client_certificate_from_the_internal_ca():
    base = f"timeout 10 openssl s_client -quiet -connect {LOGGING}:5514 -CAfile {CA}"
    refused = node(CLIENT).run(f"echo '{{}}' | {base} 2>&1")
    assert "alert" in refused.stdout.lower(), refused.stdout
    # Control: the host's CA-signed certificate is accepted, so the refusal above is the certificate's.
    tls = "/etc/rsyslog.d/tls"
    accepted = node(CLIENT).run(f"echo '{{}}' | {base} -cert {tls}/rsyslog.crt -key {tls}/rsyslog.key 2>&1")
    assert "alert" not in accepted.stdout.lower() and "error" not in accepted.stdout.lower(), accepted.stdout


def test_retention_deletes_only_indices_past_their_class_period():
    retention = json.loads(node(LOGGING).file("/etc/eterna/log-retention.json").content_string)["classes"]
    now = today()
    old = now - dt.timedelta(days=retention["access"] + 1)
    kept = now - dt.timedelta(days=retention["access"] - 1)
    names = {f"{PREFIX}-access-{old:%Y.%m.%d}": False, f"{PREFIX}-access-{kept:%Y.%m.%d}": True}
    bulk = "".join(
        json.dumps({"index": {"_index": n, "_id": "planted"}}) + "\n" + json.dumps({"message": "planted"}) + "\n"
        for n in names
    )
    code, answer = es("/_bulk?refresh=true", method="POST", body=bulk)
    assert code == 200 and answer["errors"] is False, answer
    code, explain = es(f"/{PREFIX}-access-{kept:%Y.%m.%d}/_ilm/explain")
    assert explain["indices"][f"{PREFIX}-access-{kept:%Y.%m.%d}"]["policy"] == f"{PREFIX}-access"
    node(LOGGING).check_output("systemctl start eterna-log-retention.service")
    code, listing = es(f"/_cat/indices/{PREFIX}-access-*?format=json&h=index")
    present = {row["index"] for row in listing}
    for name, survives in names.items():
        assert (name in present) == survives, name


def test_kibana_login_through_nginx():
    assert call(KIBANA + "/api/status")[0] == 401
    # Kibana itself listens on 127.0.0.1 only.
    assert node(PROBE).run(f"curl -s --max-time 5 http://{LOGGING}:5611/").rc != 0
    login = {
        "providerType": "basic",
        "providerName": "basic",
        "currentURL": f"{KIBANA}/login",
        "params": {"username": "eterna_operator", "password": "wrong-password-0123456789"},
    }
    assert call(KIBANA + "/internal/security/login", method="POST", body=login, headers=["kbn-xsrf: t"])[0] == 401
    login["params"]["password"] = derived("elasticsearch/eterna_operator")
    code, _, heads = call(KIBANA + "/internal/security/login", method="POST", body=login, headers=["kbn-xsrf: t"])
    assert code == 200 and "sid=" in heads and "Secure" in heads, heads
    # TLS from the internal CA, and the security headers.
    code, status, heads = call(
        KIBANA + "/api/status", auth=("eterna_operator", derived("elasticsearch/eterna_operator"))
    )
    assert code == 200 and status["status"]["overall"]["level"] == "available"
    assert "strict-transport-security" in heads.lower()


def test_a_dashboard_and_a_data_view_per_class_are_imported():
    auth = ("eterna_operator", derived("elasticsearch/eterna_operator"))
    for data_class in CLASSES:
        code, dashboard, _ = call(f"{KIBANA}/api/saved_objects/dashboard/{PREFIX}-{data_class}-dashboard", auth=auth)
        assert code == 200, dashboard
        assert dashboard["references"][0]["id"] == f"{PREFIX}-{data_class}-search"
        code, view, _ = call(f"{KIBANA}/api/saved_objects/index-pattern/{PREFIX}-{data_class}", auth=auth)
        assert code == 200 and view["attributes"]["title"] == f"{PREFIX}-{data_class}-*"


def test_secret_files_are_private():
    h = node(LOGGING)
    expected = {
        "/etc/elasticsearch/elasticsearch.yml": ("root", "elasticsearch", 0o660),
        "/etc/elasticsearch/certs/eterna/elasticsearch.key": ("root", "elasticsearch", 0o640),
        "/etc/kibana/kibana.yml": ("root", "kibana", 0o660),
        "/etc/default/logstash": ("root", "root", 0o600),
        "/etc/logstash/tls/logstash.pkcs8.key": ("root", "logstash", 0o640),
    }
    for path, (user, group, mode) in expected.items():
        f = h.file(path)
        assert (f.user, f.group, f.mode) == (user, group, mode), path
