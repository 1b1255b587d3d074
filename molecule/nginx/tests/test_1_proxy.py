"""The edge as a client sees it: redirect, TLS, headers, limits, cache, uploads, logs, exporter.

Files are numbered so the disruptive tests (stopping apps, breaking the config) run last.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from eterna_testinfra import node
from nginx_probe import (
    ACME,
    APPS,
    BASE,
    CLIENT,
    EDGE,
    assert_security_headers,
    bearer,
    burst,
    fetch,
    key_generation,
)

JOURNAL_UNITS = ["nginx", "prometheus-nginx-exporter", "mtail"]
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


@pytest.mark.parametrize("host", [EDGE, ACME])
def test_configuration_tests_without_warnings(host):
    # nginx warns about deprecated directives (`listen ... http2` from 1.25.1 on, Debian 13's 1.26): the role
    # writes each release's form, so the live configuration tests clean on Debian 12 and on Debian 13.
    out = node(host).run("nginx -t")
    assert out.rc == 0, out.stderr
    assert "[warn]" not in out.stderr, out.stderr
    assert "[emerg]" not in out.stderr, out.stderr


def test_http2_and_verified_certificate():
    # curl verifies the chain against the client's trust store (the operator's CA was trusted in prepare).
    fmt = "%{http_version} %{ssl_verify_result}"
    out = node(CLIENT).check_output(f"curl -sS -o /dev/null -w '{fmt}' {BASE}/health")
    assert out.split() == ["2", "0"]


def test_proxy_forwards_the_verified_tenant_request_id_and_scheme():
    # The client claims another tenant in the header: only the token's tenant reaches the app.
    rid = uuid.uuid4().hex
    resp = fetch(
        f"{BASE}/api/houses", *bearer("tenant-echo"), "-H", "X-Tenant-ID: tenant-victim", "-H", f"X-Request-ID: {rid}"
    )
    assert resp.status == 200
    body = resp.json()
    assert body["tenant"] == "tenant-echo"
    assert body["request_id"] == rid
    assert body["forwarded_proto"] == "https"
    assert body["authorization"] is True, "the app gets the token too (it verifies it again)"
    # One X-Request-ID: the edge's; the stand-in app sends its own ("app-...") and the edge hides it.
    assert resp.header("x-request-id") == rid


def test_client_tenant_header_is_dropped_on_unprotected_paths_too():
    resp = fetch(f"{BASE}/api/v1/auth/token", "-X", "POST", "-d", "a=b", "-H", "X-Tenant-ID: tenant-victim")
    assert resp.status == 200
    seen = "".join(node(app).check_output("cat /var/lib/fake-app/requests.log") for app in APPS)
    assert "/api/v1/auth/token" in seen
    # The stand-in app does not echo POST headers; the access log shows what the edge attributed.
    rid = uuid.uuid4().hex
    fetch(f"{BASE}/static/x.css", "-H", "X-Tenant-ID: tenant-victim", "-H", f"X-Request-ID: {rid}")
    line = node(EDGE).check_output(f"grep -h {rid} /var/log/nginx/eterna-access.log | tail -n 1")
    assert json.loads(line)["tenant"] == ""


ATTACKS = {
    "no token": lambda: (),
    "not a JWT": lambda: ("-H", "Authorization: Bearer not.a.jwt"),
    "basic auth": lambda: ("-u", "admin:admin"),
    "forged signature": lambda: bearer("tenant-a", key="k" * 64),
    "alg none": lambda: bearer("tenant-a", algorithm="none", key=""),
    "alg switched to HS512": lambda: bearer("tenant-a", algorithm="HS512"),
    "expired": lambda: bearer("tenant-a", lifetime=-120),
    "not yet valid": lambda: bearer("tenant-a", nbf=int(time.time()) + 600),
    "issued in the future": lambda: bearer("tenant-a", iat=int(time.time()) + 600),
    "other audience": lambda: bearer("tenant-a", aud="grafana"),
    "other issuer": lambda: bearer("tenant-a", iss="evil"),
    "unknown kid": lambda: bearer("tenant-a", kid="lab-g9"),
    "kid of another key": lambda: bearer("tenant-a", kid="lab-g2"),
    "other environment's key": lambda: bearer("tenant-a", environment="staging", kid="lab-g3"),
    "no tenant claim": lambda: bearer("tenant-a", tid=None),
    "malformed tenant": lambda: bearer("../etc"),
    # PCRE's "$" matches before a final newline: the edge must not take "tenant-a\n" for "tenant-a".
    "tenant with a final newline": lambda: bearer("tenant-a\n"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_requests_without_a_valid_token_get_401_and_never_reach_the_app(attack):
    rid = uuid.uuid4().hex
    resp = fetch(f"{BASE}/api/houses", *ATTACKS[attack](), "-H", f"X-Request-ID: {rid}")
    assert resp.status == 401, resp.body
    assert resp.header("www-authenticate").startswith('Bearer realm="eterna-api"')
    assert resp.json()["detail"].startswith("not authenticated")
    assert_security_headers(resp)
    for app in APPS:
        assert rid not in node(app).check_output("cat /var/lib/fake-app/requests.log"), f"{app} saw the request"
    line = node(EDGE).check_output(f"grep -h {rid} /var/log/nginx/eterna-access.log | tail -n 1")
    assert json.loads(line)["auth"] not in ("ok", ""), line


def test_a_flood_of_bad_tokens_gets_429_after_the_unauthenticated_burst():
    # Scenario: 5 r/s with a burst of 10 for refused requests per IP. 60 quick requests with a forged token
    # from one client: 401 while the burst lasts, then 429 (the 401 is served where the limits apply).
    codes = [r.status for r in burst(f"{BASE}/api/houses", 60, *bearer("tenant-a", key="k" * 64), parallel=10)]
    assert set(codes) <= {401, 429}, set(codes)
    assert codes.count(429) >= 20, {c: codes.count(c) for c in set(codes)}
    assert codes.count(401) >= 10, {c: codes.count(c) for c in set(codes)}
    assert fetch(f"{BASE}/api/houses", *bearer("tenant-a")).status == 200, "valid tokens are not limited by it"


def test_a_valid_token_passes():
    resp = fetch(f"{BASE}/api/houses", *bearer("tenant-a"))
    assert resp.status == 200
    assert resp.json()["tenant"] == "tenant-a"


def test_token_of_a_retired_key_passes_only_within_its_grace_period():
    # The scenario signs with generation 3; generation 2 is retired until 2099, generation 1 until 2020.
    assert key_generation() == 3
    within = fetch(f"{BASE}/api/houses", *bearer("tenant-a", generation=2))
    assert within.status == 200, within.body
    past = fetch(f"{BASE}/api/houses", *bearer("tenant-a", generation=1))
    assert past.status == 401
    assert "retired" in past.body


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
    answers = burst(f"{BASE}/api/houses", 30, *bearer("burst-a"), parallel=10)
    codes = [r.status for r in answers]
    assert len(codes) == 30
    assert codes.count(429) >= 10, codes
    assert codes.count(200) >= 1, codes
    assert set(codes) <= {200, 429}, codes
    for resp in answers:
        assert_security_headers(resp)
    other = fetch(f"{BASE}/api/houses", *bearer("calm-b"))
    assert other.status == 200
    assert other.json()["tenant"] == "calm-b"
    assert fetch(f"{BASE}/health").status == 200, "requests without a token are limited per IP only"


def test_rotating_tenant_headers_with_one_token_does_not_escape_the_tenant_limit():
    auth = bearer("rotator")[1]
    script = (
        f"for i in $(seq 1 30); do curl -sS --max-time 30 -o /dev/null -w '%{{http_code}}\\n' -H '{auth}' "
        f'-H "X-Tenant-ID: invented-$i" {BASE}/api/houses; done'
    )
    codes = node(CLIENT).check_output(script).split()
    assert len(codes) == 30
    assert codes.count("429") >= 10, codes


def test_a_tenant_in_a_larger_rate_class_is_not_limited_by_the_default_class():
    # Scenario: tenant "premium-t" is in class premium (100 r/s, burst 200); the default is 1 r/s, burst 5.
    codes = [r.status for r in burst(f"{BASE}/api/houses", 30, *bearer("premium-t"), parallel=10)]
    assert codes == [200] * 30, codes


def test_429s_are_counted_per_verified_tenant_for_prometheus():
    burst(f"{BASE}/api/houses", 20, *bearer("counted-c"), parallel=10)
    deadline = time.time() + 30
    value = 0.0
    while time.time() < deadline:
        metrics = node(CLIENT).check_output(f"curl -sS http://{EDGE}:3903/metrics")
        lines = [
            ln
            for ln in metrics.splitlines()
            if ln.startswith("eterna_edge_rate_limited_total{") and 'tenant="counted-c"' in ln
        ]
        value = float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0
        if value >= 10:
            break
        time.sleep(1)
    assert value >= 10, metrics[-2000:]
    assert 'tenant="invented-1"' not in metrics, "header values must never become labels"


def test_readiness_answers_only_internal_networks():
    # The scenario's edge counts only loopback as internal: the client container is outside.
    outside = fetch(f"{BASE}/health/ready")
    assert outside.status == 403
    assert_security_headers(outside)
    inside = fetch(f"{BASE}/health/ready", "--resolve", f"{EDGE}:443:127.0.0.1", host=EDGE)
    assert inside.status == 200
    assert fetch(f"{BASE}/health").status == 200, "liveness stays public"


def test_exempt_network_skips_the_request_rates():
    # The scenario exempts 127.0.0.0/8 (nginx_limit_exempt_networks): the edge calling itself is a load
    # generator. The same burst from the client gets 429s above.
    loopback = ("--resolve", f"{EDGE}:443:127.0.0.1", *bearer("burst-exempt"))
    answers = burst(f"{BASE}/api/houses", 30, *loopback, parallel=10, host=EDGE)
    assert [r.status for r in answers] == [200] * 30


def test_auth_endpoints_have_a_stricter_limit():
    codes = [r.status for r in burst(f"{BASE}/api/v1/auth/token", 8, "-X", "POST", "-d", "user=a&password=b")]
    assert codes[0] == 200, codes
    assert 429 in codes, codes
    assert fetch(f"{BASE}/health").status == 200, "the auth limit must not spill over to other paths"


def test_large_bodies_only_on_upload_paths():
    client = node(CLIENT)
    client.check_output("head -c 12582912 /dev/zero > /tmp/upload.bin")
    auth = bearer("uploader")
    resp = fetch(f"{BASE}/api/v1/documents/upload", *auth, "-X", "POST", "--data-binary", "@/tmp/upload.bin")
    assert resp.status == 200
    assert resp.json()["received"] == 12582912
    refused = fetch(f"{BASE}/api/houses", *auth, "-X", "POST", "--data-binary", "@/tmp/upload.bin")
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
    auth = bearer("cache-t")
    dynamic = [fetch(f"{BASE}/api/houses?c=1", *auth).header("x-cache-status") for _ in range(2)]
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
    fetch(f"{BASE}/api/houses", *bearer("log-tenant"), "-H", "X-Tenant-ID: claimed", "-H", f"X-Request-ID: {rid}")
    line = node(EDGE).check_output(f"grep -h {rid} /var/log/nginx/eterna-access.log | tail -n 1")
    entry = json.loads(line)
    assert entry["tenant"] == "log-tenant"
    assert entry["auth"] == "ok"
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
