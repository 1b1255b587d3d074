"""The edge as a client sees it: redirect, TLS, headers, limits, cache, uploads, logs, exporter.

Files are numbered so the disruptive tests (stopping apps, breaking the config) run last.
"""

from __future__ import annotations

import json
import uuid

import pytest
from eterna_testinfra import node
from nginx_probe import ACME, APPS, BASE, CLIENT, EDGE, assert_security_headers, burst, fetch

JOURNAL_UNITS = ["nginx", "prometheus-nginx-exporter"]
JOURNAL_HOSTS = [EDGE]


@pytest.mark.parametrize("host", [EDGE, ACME])
@pytest.mark.parametrize("service", ["nginx", "prometheus-nginx-exporter"])
def test_services_run_and_start_at_boot(host, service):
    svc = node(host).service(service)
    assert svc.is_running
    assert svc.is_enabled


def test_nginx_unit_is_hardened():
    props = node(EDGE).check_output(
        "systemctl show nginx -p NoNewPrivileges -p ProtectSystem -p PrivateTmp -p ProtectHome -p CapabilityBoundingSet"
    )
    assert "NoNewPrivileges=yes" in props
    assert "ProtectSystem=strict" in props
    assert "PrivateTmp=yes" in props
    assert "cap_sys_admin" not in props.lower()


@pytest.mark.parametrize("host", [EDGE, ACME])
def test_private_key_is_root_only(host):
    for path in ("/etc/nginx/tls/eterna.key", "/var/lib/eterna-nginx/last-good/tls/eterna.key"):
        key = node(host).file(path)
        assert key.exists, path
        assert key.user == "root"
        assert key.group == "root"
        assert key.mode == 0o640, f"{path} is {oct(key.mode)}"
    assert node(host).file("/etc/nginx/tls").mode == 0o750


def test_http_redirects_to_https():
    resp = fetch(f"http://{EDGE}/api/houses?page=2")
    assert resp.status == 301
    assert resp.header("location") == f"https://{EDGE}/api/houses?page=2"
    assert resp.header("x-content-type-options") == "nosniff"


def test_acme_challenge_is_served_over_http_not_redirected():
    node(EDGE).check_output("echo probe-token > /var/www/acme/.well-known/acme-challenge/probe")
    try:
        resp = fetch(f"http://{EDGE}/.well-known/acme-challenge/probe")
    finally:
        node(EDGE).run("rm -f /var/www/acme/.well-known/acme-challenge/probe")
    assert resp.status == 200
    assert resp.body.strip() == "probe-token"


@pytest.mark.parametrize(
    ("flag", "accepted"), [("-tls1", False), ("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)]
)
def test_tls_protocol_versions(flag, accepted):
    res = node(CLIENT).run(
        f"openssl s_client -connect {EDGE}:443 -servername {EDGE} {flag} -verify_return_error </dev/null"
    )
    assert (res.rc == 0) == accepted, res.stdout + res.stderr


def test_http2_and_verified_certificate():
    # curl verifies the chain against the client's trust store (the operator's CA was trusted in prepare).
    fmt = "%{http_version} %{ssl_verify_result}"
    out = node(CLIENT).check_output(f"curl -sS -o /dev/null -w '{fmt}' {BASE}/health")
    assert out.split() == ["2", "0"]


def test_proxy_forwards_tenant_request_id_and_scheme():
    rid = uuid.uuid4().hex
    resp = fetch(f"{BASE}/api/houses", "-H", "X-Tenant-ID: tenant-echo", "-H", f"X-Request-ID: {rid}")
    assert resp.status == 200
    body = resp.json()
    assert body["tenant"] == "tenant-echo"
    assert body["request_id"] == rid
    assert body["forwarded_proto"] == "https"
    assert resp.header("x-request-id") == rid


def test_both_upstreams_serve():
    hosts = set()
    for _ in range(12):
        hosts.add(fetch(f"{BASE}/health").json()["host"])
    assert hosts == set(APPS)


@pytest.mark.parametrize(("path", "status"), [("/health", 200), ("/no/such/page", 404), ("/boom", 500)])
def test_security_headers_on_every_status(path, status):
    resp = fetch(BASE + path)
    assert resp.status == status
    assert_security_headers(resp)


def test_csp_is_enforced_with_report_uri():
    resp = fetch(f"{BASE}/docs")
    assert "content-security-policy-report-only" not in resp.headers
    csp = resp.header("content-security-policy")
    assert "script-src 'self'" in csp
    assert "report-uri /csp-report" in csp


def test_app_duplicates_of_proxy_headers_are_hidden():
    # The stand-in app sends X-Frame-Options: SAMEORIGIN; only the proxy's DENY may reach the client.
    resp = fetch(f"{BASE}/health")
    assert resp.headers["x-frame-options"] == ["DENY"]
    assert resp.header("server") == "nginx", "server_tokens off: no version"


def test_internal_paths_are_not_proxied():
    resp = fetch(f"{BASE}/metrics")
    assert resp.status == 404
    assert "<html>" in resp.body, "answered by nginx itself"
    assert '"error"' not in resp.body, "the app's JSON 404 means the path was proxied"
    assert_security_headers(resp)


def test_tenant_burst_gets_429_while_another_tenant_is_served():
    # Scenario limits: 1 r/s per tenant with a burst of 5, 200 r/s per IP: 30 quick requests of one
    # tenant overflow its bucket long before they could drain it.
    answers = burst(f"{BASE}/api/houses", 30, "-H", "X-Tenant-ID: burst-a", parallel=10)
    codes = [r.status for r in answers]
    assert len(codes) == 30
    assert codes.count(429) >= 10, codes
    assert codes.count(200) >= 1, codes
    assert set(codes) <= {200, 429}, codes
    for resp in answers:
        assert_security_headers(resp)
    other = fetch(f"{BASE}/api/houses", "-H", "X-Tenant-ID: calm-b")
    assert other.status == 200
    assert other.json()["tenant"] == "calm-b"
    assert fetch(f"{BASE}/api/houses").status == 200, "requests without a tenant are limited per IP only"


def test_exempt_network_skips_the_request_rates():
    # The scenario exempts 127.0.0.0/8 (nginx_limit_exempt_networks): the edge calling itself is a load
    # generator. The same burst from the client gets 429s above.
    loopback = ("--resolve", f"{EDGE}:443:127.0.0.1", "-H", "X-Tenant-ID: burst-exempt")
    answers = burst(f"{BASE}/api/houses", 30, *loopback, parallel=10, host=EDGE)
    assert [r.status for r in answers] == [200] * 30


def test_auth_endpoints_have_a_stricter_limit():
    codes = [r.status for r in burst(f"{BASE}/api/v1/auth/login", 8, "-X", "POST", "-d", "user=a&password=b")]
    assert codes[0] == 200, codes
    assert 429 in codes, codes
    assert fetch(f"{BASE}/health").status == 200, "the auth limit must not spill over to other paths"


def test_large_bodies_only_on_upload_paths():
    client = node(CLIENT)
    client.check_output("head -c 12582912 /dev/zero > /tmp/upload.bin")
    resp = fetch(f"{BASE}/api/v1/documents/upload", "-X", "POST", "--data-binary", "@/tmp/upload.bin")
    assert resp.status == 200
    assert resp.json()["received"] == 12582912
    refused = fetch(f"{BASE}/api/houses", "-X", "POST", "--data-binary", "@/tmp/upload.bin")
    assert refused.status == 413
    assert_security_headers(refused)


def test_static_assets_are_cached_dynamic_responses_are_not():
    path = f"{BASE}/static/app-{uuid.uuid4().hex}.css"
    first = fetch(path)
    second = fetch(path)
    assert first.header("x-cache-status") == "MISS"
    assert second.header("x-cache-status") == "HIT"
    assert first.body == second.body
    assert_security_headers(second)
    dynamic = [fetch(f"{BASE}/api/houses?c=1").header("x-cache-status") for _ in range(2)]
    assert "HIT" not in dynamic


def test_gzip_for_text():
    client = node(CLIENT)
    url = f"{BASE}/static/big-{uuid.uuid4().hex}.css"
    fmt = "%{http_code} %header{content-encoding}"
    assert client.check_output(f"curl -sS -o /dev/null -H 'Accept-Encoding: gzip' -w '{fmt}' {url}").split() == [
        "200",
        "gzip",
    ]
    assert client.check_output(f"curl -sS -o /dev/null -w '{fmt}' {url}").split() == ["200"]


def test_access_log_is_json_with_tenant_and_timings():
    rid = uuid.uuid4().hex
    fetch(f"{BASE}/api/houses", "-H", "X-Tenant-ID: log-tenant", "-H", f"X-Request-ID: {rid}")
    line = node(EDGE).check_output(f"grep -h {rid} /var/log/nginx/eterna-access.log | tail -n 1")
    entry = json.loads(line)
    assert entry["tenant"] == "log-tenant"
    assert entry["status"] == 200
    assert entry["request_id"] == rid
    assert isinstance(entry["request_time"], float | int)
    assert entry["upstream_response_time"] not in ("", "-")
    assert entry["upstream_addr"].endswith(":8000")


def test_exporter_reads_stub_status():
    metrics = node(CLIENT).check_output(f"curl -sS http://{EDGE}:9113/metrics")
    assert "nginx_up 1" in metrics
    assert "nginx_connections_accepted" in metrics


def test_stub_status_is_loopback_only():
    assert node(EDGE).socket("tcp://127.0.0.1:8080").is_listening
    assert node(CLIENT).run(f"curl -sS --max-time 5 http://{EDGE}:8080/stub_status").rc != 0
