"""TLS graded by sslyze and testssl.sh, the CSP in a real browser, and ACME issuance and renewal."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from eterna_testinfra import node
from nginx_probe import ACME, APPS, BASE, CLIENT, EDGE

JOURNAL_UNITS = ["nginx", "certbot", "pebble"]
JOURNAL_HOSTS = [EDGE, ACME, CLIENT]

TEST_CA = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "test-ca" / "test-ca.crt"


def container_ip(name: str) -> str:
    return node(name).check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def sslyze_result():
    """sslyze from the controller against the edge's container address, with the operator's CA."""
    sslyze = shutil.which("sslyze")
    assert sslyze, "sslyze is a pinned dependency in pyproject.toml"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "sslyze.json"
        proc = subprocess.run(
            [
                sslyze,
                "--mozilla_config=intermediate",
                f"--certinfo_ca_file={TEST_CA}",
                f"--json_out={out}",
                f"{EDGE}:443{{{container_ip(EDGE)}}}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        data = json.loads(out.read_text())
    return proc, data["server_scan_results"][0]["scan_result"]


def test_sslyze_mozilla_intermediate_compliant(sslyze_result):
    proc, _ = sslyze_result
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "OK - Compliant" in proc.stdout


def test_sslyze_forward_secrecy_on_every_suite_and_no_legacy_protocol(sslyze_result):
    _, scan = sslyze_result
    for proto in ("ssl_2_0", "ssl_3_0", "tls_1_0", "tls_1_1"):
        assert scan[f"{proto}_cipher_suites"]["result"]["accepted_cipher_suites"] == [], proto
    accepted = [
        suite
        for proto in ("tls_1_2", "tls_1_3")
        for suite in scan[f"{proto}_cipher_suites"]["result"]["accepted_cipher_suites"]
    ]
    assert scan["tls_1_3_cipher_suites"]["result"]["accepted_cipher_suites"], "TLS 1.3 must be offered"
    for suite in accepted:
        name = suite["cipher_suite"]["name"]
        assert (suite.get("ephemeral_key") or {}).get("type_name") in ("ECDH", "X25519"), name
        assert "GCM" in name or "CHACHA20" in name, f"{name} is not AEAD"
    for check in ("heartbleed", "openssl_ccs_injection", "robot"):
        result = json.dumps(scan[check]["result"])
        assert "VULNERABLE" not in result.replace("NOT_VULNERABLE", ""), check


@pytest.fixture(scope="module")
def testssl_findings():
    """testssl.sh on the client, limited to protocols, forward secrecy, the certificate and server
    defaults, and HTTP headers (sslyze covers the cipher list and vulnerabilities much faster)."""
    client = node(CLIENT)
    client.run("rm -f /root/testssl.json")
    res = client.run(
        "testssl --quiet --color 0 --warnings off --nodns=min --add-ca /usr/local/share/eterna-test/test-ca.pem "
        f"--jsonfile /root/testssl.json -p -f -S -h {BASE}"
    )
    assert client.file("/root/testssl.json").exists, res.stdout[-3000:] + res.stderr[-2000:]
    return {f["id"]: f for f in json.loads(client.file("/root/testssl.json").content_string)}


def test_testssl_no_medium_or_worse(testssl_findings):
    bad = {i: f for i, f in testssl_findings.items() if f["severity"] in ("MEDIUM", "HIGH", "CRITICAL")}
    assert not bad, bad


def test_testssl_protocols(testssl_findings):
    for proto in ("SSLv2", "SSLv3", "TLS1", "TLS1_1"):
        assert testssl_findings[proto]["finding"].startswith("not offered"), testssl_findings[proto]
    assert testssl_findings["TLS1_2"]["finding"].startswith("offered"), testssl_findings["TLS1_2"]
    assert testssl_findings["TLS1_3"]["finding"].startswith("offered"), testssl_findings["TLS1_3"]


def test_testssl_forward_secrecy_everywhere(testssl_findings):
    # testssl.sh 3.2 (Debian 13) names the check FS, 3.0 (Debian 12) PFS.
    fs = "FS" if "FS" in testssl_findings else "PFS"
    assert testssl_findings[fs]["severity"] == "OK", testssl_findings.get(fs)
    fs_suites = testssl_findings[f"{fs}_ciphers"]["finding"].split()
    assert fs_suites and all(s.startswith(("TLS_", "ECDHE-")) for s in fs_suites), fs_suites
    # No suite with static RSA key exchange is accepted at all.
    res = node(CLIENT).run(f"openssl s_client -connect {EDGE}:443 -servername {EDGE} -tls1_2 -cipher kRSA </dev/null")
    assert res.rc != 0


def test_testssl_hsts_two_years(testssl_findings):
    hsts = testssl_findings["HSTS_time"]
    assert hsts["severity"] == "OK", hsts
    assert int(hsts["finding"].split("=")[1].split()[0]) >= 63072000, hsts


def csp_reports() -> int:
    return sum(int(node(app).check_output("cat /var/lib/fake-app/csp-reports.log 2>/dev/null | wc -l")) for app in APPS)


def probe(path: str) -> dict:
    return json.loads(node(CLIENT).check_output(f"python3 /usr/local/bin/csp_probe.py {BASE}{path}"))


def test_chromium_loads_docs_with_csp_enforced_and_no_violation():
    before = csp_reports()
    page = probe("/docs")
    assert page["title"] == "Eterna Home API docs"
    assert page["status"] == "script ran", "the same-origin script must be allowed"
    errors = [e["message"] for e in page["console"] if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]]
    assert not errors, errors
    assert csp_reports() == before, "the browser reported a CSP violation"


def test_chromium_blocks_inline_script_and_reports_it():
    # Control: the same probe does see a violation, so the test above can fail.
    before = csp_reports()
    page = probe("/docs-inline")
    assert page["status"] == "script not run"
    assert any("Content Security Policy" in e["message"] for e in page["console"]), page["console"]
    for _ in range(20):
        if csp_reports() > before:
            break
        node(CLIENT).run("sleep 1")
    assert csp_reports() > before, "no violation report reached the report-uri"


def served_certificate(host: str) -> str:
    return node(CLIENT).check_output(
        f"openssl s_client -connect {host}:443 -servername {host} </dev/null 2>/dev/null "
        "| openssl x509 -noout -serial -issuer"
    )


def test_acme_certificate_from_pebble_verifies():
    client = node(CLIENT)
    client.check_output(
        "curl -sS --cacert /usr/local/share/eterna-test/test-ca.pem https://nginx-client:15000/roots/0 "
        "-o /tmp/pebble-root.pem"
    )
    assert "Pebble Intermediate" in served_certificate(ACME)
    out = client.check_output(
        f"curl -sS --cacert /tmp/pebble-root.pem -o /dev/null -w '%{{ssl_verify_result}} %{{http_code}}' "
        f"https://{ACME}/health"
    )
    assert out.split() == ["0", "200"]
    assert node(ACME).service("certbot.timer").is_enabled
    assert node(ACME).service("certbot.timer").is_running


def test_acme_renewal_through_the_timer_service_reloads_nginx():
    acme = node(ACME)
    before = served_certificate(ACME)
    # Make the 5-year Pebble certificate due, then run the unit the timer starts.
    acme.check_output(
        "sed -i 's/^#* *renew_before_expiry.*/renew_before_expiry = 3650 days/' /etc/letsencrypt/renewal/eterna.conf"
    )
    acme.check_output("systemctl start certbot.service")
    after = served_certificate(ACME)
    assert after != before, "nginx still serves the old certificate"
    assert "Pebble Intermediate" in after
    live = acme.check_output("openssl x509 -in /etc/letsencrypt/live/eterna/cert.pem -noout -serial")
    assert live.strip() in after
    key = acme.file("/etc/nginx/tls/eterna.key")
    assert (key.user, key.group, key.mode) == ("root", "root", 0o640)
