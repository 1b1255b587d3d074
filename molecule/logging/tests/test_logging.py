"""Centralised logging, exercised across containers: logging-client ships, logging-central receives, archives and
indexes, logging-store is the store.

The store is an API stand-in: osmem-server (PyPI), an in-memory server speaking the OpenSearch API (it refuses a
bulk ``_type`` as current servers do), behind nginx with TLS and basic auth. Every check of "in the index" below
runs against that stand-in, queried from the client container with the role's store user.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import json
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from eterna_testinfra import node, run_playbook, secrets

JOURNAL_UNITS = ["rsyslog", "eterna-log-retention", "nginx", "osmem"]
JOURNAL_HOSTS = ["logging-central", "logging-client", "logging-store"]

CLIENT, CENTRAL, STORE = "logging-client", "logging-central", "logging-store"
ARCHIVE = "/srv/log-archive"
STORE_URL = "https://logging-store:9200"
CURLRC = "/root/store.curlrc"
ACCESS_LOG = "/var/log/nginx/eterna-access.log"
APP_FILE = "/var/log/eterna-test/app.json"
PREFIX = "eterna-logs"


def wait_for(predicate, timeout: float = 180, interval: float = 2, what: str = "condition"):
    """Poll ``predicate`` until it returns a truthy value; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}; last value {value!r}")
        time.sleep(interval)


@functools.cache
def store_ready() -> None:
    """Give the client a curl config for the store (role's user and derived password, the internal CA)."""
    host = node(CLIENT)
    key = host.ansible.get_variables()["eterna_master_key"]
    password = secrets().derive_secret(key, "elasticsearch/eterna_rsyslog")
    config = f'user = "eterna_rsyslog:{password}"\ncacert = "/etc/rsyslog.d/tls/ca.crt"\n'
    host.run(f"umask 077 && printf %s {shlex.quote(config)} > {CURLRC}")


def store(method: str, path: str, body: str | None = None) -> dict:
    """One request to the store from the client container; the decoded JSON answer."""
    store_ready()
    data = ""
    if body is not None:
        data = f"-H 'Content-Type: application/x-ndjson' --data-binary {shlex.quote(body)}"
    res = node(CLIENT).run(f"curl -sS -K {CURLRC} -X {method} {data} {shlex.quote(STORE_URL + path)}")
    assert res.rc == 0, res.stderr
    return json.loads(res.stdout or "{}")


def search(query: dict, index: str = f"{PREFIX}-*", size: int = 500) -> list[dict]:
    """The ``_source`` of the documents matching an Elasticsearch query."""
    body = json.dumps({"query": query, "size": size})
    answer = store("POST", f"/{index}/_search", body)
    return [hit["_source"] | {"_index": hit["_index"], "_id": hit["_id"]} for hit in answer["hits"]["hits"]]


def by_marker(marker: str, index: str = f"{PREFIX}-*") -> list[dict]:
    """Documents whose message contains ``marker`` (a unique word)."""
    return search({"match_phrase": {"message": marker}}, index)


def archive_lines(marker: str) -> list[dict]:
    """Archive lines (JSON documents) on the central host that contain ``marker``."""
    res = node(CENTRAL).run(f"grep -rhF -- {shlex.quote(marker)} {ARCHIVE} || true")
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def today() -> dt.date:
    """The central host's UTC date (index and archive days are UTC)."""
    return dt.date.fromisoformat(node(CENTRAL).check_output("date -u +%F").strip())


def log(host: str, text: str, tag: str = "eterna-test", priority: str = "user.notice") -> None:
    """Log one line to ``host``'s journal with logger(1)."""
    node(host).check_output(f"logger -t {tag} -p {priority} -- {shlex.quote(text)}")


def append(host: str, path: str, lines: list[str]) -> None:
    """Append lines to a file imfile watches on ``host`` (the writer is the test, standing in for nginx or the app)."""
    payload = "".join(line + "\n" for line in lines)
    node(host).check_output(f"mkdir -p $(dirname {path}) && printf %s {shlex.quote(payload)} >> {path}")


def relp_open(cert_args: str) -> str:
    """A shell command sending a RELP "open" frame to the central host over TLS, printing what comes back."""
    offer = "relp_version=0\\nrelp_software=test\\ncommands=syslog"
    frame = f"1 open {len(offer.replace(chr(92) + 'n', chr(10)))} {offer}\\n"
    return (
        f"printf '{frame}' | timeout 10 openssl s_client -quiet -connect logging-central:2514 "
        f"-CAfile /etc/rsyslog.d/tls/ca.crt {cert_args} 2>&1"
    )


def test_services_run_and_listen_with_tls_only():
    assert node(CENTRAL).service("rsyslog").is_running
    assert node(CLIENT).service("rsyslog").is_running
    assert node(CENTRAL).socket("tcp://0.0.0.0:2514").is_listening
    # Without a client certificate the TLS handshake is refused (mutual TLS), so no RELP session opens.
    res = node(CLIENT).run(relp_open(""))
    assert "certificate required" in res.stdout and " rsp " not in res.stdout


def test_secret_files_are_private():
    central = node(CENTRAL)
    for path in ["/etc/rsyslog.d/05-eterna-central.conf", "/etc/eterna/log-retention.json"]:
        f = central.file(path)
        assert (f.user, f.mode) == ("root", 0o600), path
    assert central.file("/etc/rsyslog.d/tls/rsyslog.key").mode == 0o640
    assert central.file(ARCHIVE).mode == 0o750


def test_journal_line_arrives_parsed_in_archive_and_index():
    marker = f"arrive-{uuid.uuid4().hex}"
    line = json.dumps(
        {
            "level": "INFO",
            "logger": "app.api",
            "message": marker,
            "request_id": f"rid-{marker}",
            "tenant_id": "tenant-7",
        }
    )
    log(CLIENT, line, tag="eterna-api")
    docs = wait_for(lambda: by_marker(marker), what=f"{marker} in the index")
    assert len(docs) == 1
    doc = docs[0]
    assert doc["_index"] == f"{PREFIX}-application-{today():%Y.%m.%d}"
    assert doc["host"]["name"] == CLIENT
    assert doc["process"]["name"] == "eterna-api"
    assert doc["log"]["level"] == "notice"
    assert doc["event"]["dataset"] == "application"
    # Parsed: the app's JSON keys are fields, not a blob.
    assert doc["json"]["request_id"] == f"rid-{marker}"
    assert doc["json"]["tenant_id"] == "tenant-7"
    assert doc["json"]["level"] == "INFO"
    assert doc["labels"]["environment"] == "lab"
    lines = wait_for(lambda: archive_lines(marker), what=f"{marker} in the archive")
    assert len(lines) == 1 and lines[0]["json"]["request_id"] == f"rid-{marker}"
    day = node(CENTRAL).file(f"{ARCHIVE}/application/{CLIENT}/{today():%Y-%m-%d}.jsonl")
    assert day.contains(marker)


def test_access_log_file_line_arrives_with_its_fields():
    marker = f"acc-{uuid.uuid4().hex}"
    entry = {
        "time": "2026-01-01T00:00:00+00:00",
        "remote_addr": "198.51.100.20",
        "request_id": marker,
        "tenant": "tenant-3",
        "method": "GET",
        "uri": f"/api/v1/houses?q={marker}",
        "status": 201,
        "request_time": 0.012,
    }
    append(CLIENT, ACCESS_LOG, [json.dumps(entry)])
    docs = wait_for(lambda: by_marker(marker, f"{PREFIX}-access-*"), what=f"{marker} in the access index")
    assert len(docs) == 1
    doc = docs[0]
    assert doc["_index"] == f"{PREFIX}-access-{today():%Y.%m.%d}"
    assert doc["json"]["status"] == 201 and doc["json"]["tenant"] == "tenant-3"
    assert doc["json"]["request_time"] == pytest.approx(0.012)
    assert doc["log"]["file"]["path"] == ACCESS_LOG
    assert (
        wait_for(lambda: archive_lines(marker), what="the access line in the archive")[0]["event"]["dataset"]
        == "access"
    )


def test_app_json_file_and_audit_and_security_classes():
    marker = f"cls-{uuid.uuid4().hex}"
    append(CLIENT, APP_FILE, [json.dumps({"level": "INFO", "message": f"file {marker}", "request_id": "r1"})])
    log(
        CLIENT,
        json.dumps(
            {
                "level": "INFO",
                "logger": "app.audit",
                "message": f"audit {marker}",
                "audit": {"action": "login", "outcome": "success"},
            }
        ),
        tag="eterna-api",
    )
    log(
        CLIENT,
        f"Failed password for invalid user mallory-{marker[-8:]} from 192.0.2.55 port 4242 ssh2",
        tag="sshd",
        priority="authpriv.info",
    )
    wait_for(lambda: len(by_marker(marker)) == 2, what="the file and audit lines")
    classes = {
        doc["message"].split()[0] if not doc["message"].startswith("{") else doc["json"]["message"].split()[0]: doc[
            "event"
        ]["dataset"]
        for doc in by_marker(marker)
    }
    assert classes == {"file": "application", "audit": "audit"}
    user = f"mallory-{marker[-8:]}"
    docs = wait_for(
        lambda: search({"match_phrase": {"auth.user": user}}, f"{PREFIX}-security-*"), what="the sshd failure"
    )
    assert docs[0]["auth"]["source"] == "192.0.2.55"
    assert docs[0]["event"]["dataset"] == "security"


def test_secrets_are_redacted_before_leaving_the_host():
    marker = f"sec-{uuid.uuid4().hex}"
    s = {
        name: f"{name}{uuid.uuid4().hex[:12]}"
        for name in ["bearer", "cookie", "password", "token", "basic", "userinfo", "jsonpw", "apikey"]
    }
    log(CLIENT, f"{marker} curl -H 'Authorization: Bearer {s['bearer']}' -H 'Cookie: session={s['cookie']}'")
    log(CLIENT, f"{marker} fetched https://deploy:{s['userinfo']}@objects.internal/bucket")
    log(CLIENT, json.dumps({"message": f"{marker} login", "password": s["jsonpw"], "api_key": s["apikey"]}))
    append(
        CLIENT,
        ACCESS_LOG,
        [
            json.dumps(
                {
                    "request_id": marker,
                    "uri": f"/api/v1/auth/token?password={s['password']}&token={s['token']}",
                    "http_authorization": f"Basic {s['basic']}",
                    "status": 200,
                }
            )
        ],
    )
    docs = wait_for(lambda: len(by_marker(marker)) >= 4 and by_marker(marker), what="the four planted lines")
    text = json.dumps(docs)
    assert "[REDACTED]" in text
    archived = node(CENTRAL).run(f"grep -rhF -- {shlex.quote(marker)} {ARCHIVE}").stdout
    assert archived.count("\n") >= 4
    for name, secret in s.items():
        assert secret not in text, f"{name} reached the index"
        assert node(CENTRAL).run(f"grep -rqF -- {shlex.quote(secret)} {ARCHIVE}").rc == 1, f"{name} in the archive"
        hits = store("GET", f"/{PREFIX}-*/_search?q={secret}")["hits"]["hits"]
        assert hits == [], f"{name} is searchable in the store"
    # Fields kept: the scheme of the header and the key names remain for the reader.
    assert "Bearer [REDACTED]" in text and "password=[REDACTED]" in text


def numbered(marker: str, n: int) -> None:
    """Log ``n`` numbered lines with ``marker`` on the client, in one logger run (one journal write each)."""
    lines = "\\n".join(f"{marker} {i:03d}" for i in range(1, n + 1))
    node(CLIENT).check_output(f"printf '{lines}\\n' | logger -t eterna-numbered")


def numbers(docs: list[dict], marker: str) -> list[int]:
    """The line numbers of the documents carrying ``marker``, sorted (duplicates kept)."""
    return sorted(int(d["message"].split(marker)[1].split()[0]) for d in docs)


def test_central_outage_clients_queue_and_deliver_exactly_once():
    marker = f"outage-{uuid.uuid4().hex}"
    central = node(CENTRAL)
    # The socket too: systemd would start rsyslog again on the first write to it.
    central.check_output("systemctl stop syslog.socket rsyslog.service")
    assert not central.service("rsyslog").is_running
    try:
        numbered(marker, 100)
        time.sleep(5)
        assert not central.service("rsyslog").is_running
        assert by_marker(marker) == [], "delivered while the central host was down"
    finally:
        central.check_output("systemctl start syslog.socket rsyslog.service")
    docs = wait_for(
        lambda: (d := by_marker(marker)) and len(d) >= 100 and d, timeout=240, what="the 100 queued lines in the index"
    )
    time.sleep(10)  # a late duplicate would show here
    docs = by_marker(marker)
    assert numbers(docs, marker) == list(range(1, 101))
    assert numbers(archive_lines(marker), marker) == list(range(1, 101))


def test_store_outage_archive_keeps_everything_and_the_index_catches_up_once():
    marker = f"storedown-{uuid.uuid4().hex}"
    store_host = node(STORE)
    store_host.check_output("systemctl stop nginx")
    try:
        numbered(marker, 100)
        # The archive has them all while the store is down.
        wait_for(lambda: len(archive_lines(marker)) == 100, timeout=120, what="100 lines in the archive")
    finally:
        store_host.check_output("systemctl start nginx")
    wait_for(lambda: len(by_marker(marker)) >= 100, timeout=240, what="the 100 lines in the index after the outage")
    time.sleep(10)
    assert numbers(by_marker(marker), marker) == list(range(1, 101))
    assert numbers(archive_lines(marker), marker) == list(range(1, 101))


ROGUE_CONF = """
global(workDirectory="/tmp/rogue")
module(load="imfile")
module(load="omrelp" tls.tlslib="openssl")
input(type="imfile" file="/tmp/rogue/in.log" tag="rogue" ruleset="r")
ruleset(name="r") {{
  action(type="omrelp" target="logging-central" port="2514" tls="on" tls.authmode="name"
         tls.permittedPeer=["logging-central"] tls.cacert="/etc/rsyslog.d/tls/ca.crt"
         tls.mycert="{cert}" tls.myprivkey="{key}" action.resumeRetryCount="-1" action.resumeInterval="2")
}}
"""


def rogue_send(cert: str, key: str, marker: str) -> None:
    """Run a second rsyslog on the client that sends ``marker`` over RELP with the given certificate."""
    client = node(CLIENT)
    client.check_output("rm -rf /tmp/rogue && mkdir -p /tmp/rogue && touch /tmp/rogue/in.log")
    client.check_output(f"printf %s {shlex.quote(ROGUE_CONF.format(cert=cert, key=key))} > /tmp/rogue/rsyslog.conf")
    pid = client.check_output(
        "nohup rsyslogd -n -f /tmp/rogue/rsyslog.conf -i /tmp/rogue/pid >/tmp/rogue/out 2>&1 & echo $!"
    ).strip()
    try:
        time.sleep(2)
        client.check_output(f"echo {shlex.quote(marker)} >> /tmp/rogue/in.log")
        time.sleep(15)
    finally:
        client.run(f"kill {pid}; sleep 1; kill -9 {pid} 2>/dev/null")


def test_client_with_a_self_signed_certificate_is_refused():
    client = node(CLIENT)
    client.check_output(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=logging-client "
        "-addext subjectAltName=DNS:logging-client -keyout /root/self.key -out /root/self.crt 2>/dev/null"
    )
    # The RELP session itself: the server answers "rsp" to a CA-signed client only.
    ok = client.run(relp_open("-cert /etc/rsyslog.d/tls/rsyslog.crt -key /etc/rsyslog.d/tls/rsyslog.key"))
    assert "1 rsp " in ok.stdout, ok.stdout
    refused = client.run(relp_open("-cert /root/self.crt -key /root/self.key"))
    assert "1 rsp " not in refused.stdout and "alert" in refused.stdout, refused.stdout
    marker = f"rogue-{uuid.uuid4().hex}"
    rogue_send("/root/self.crt", "/root/self.key", marker)
    assert archive_lines(marker) == [], "a self-signed client got its line into the archive"
    assert by_marker(marker) == []
    # Control: the same sender with the CA-signed certificate gets through, so the refusal above is the certificate's.
    control = f"control-{uuid.uuid4().hex}"
    rogue_send("/etc/rsyslog.d/tls/rsyslog.crt", "/etc/rsyslog.d/tls/rsyslog.key", control)
    wait_for(lambda: archive_lines(control), timeout=60, what="the control line from a CA-signed client")


def test_ip_pseudonymisation_switch():
    marker = f"anon-{uuid.uuid4().hex}"
    log(CENTRAL, f"{marker} central client 203.0.113.77 connected")  # rsyslog_anonymize_ips: true there
    log(CLIENT, f"{marker} client client 203.0.113.77 connected")  # the default: off
    docs = wait_for(lambda: len(by_marker(marker)) == 2 and by_marker(marker), what="both lines")
    by_host = {d["host"]["name"]: d["message"] for d in docs}
    assert "203.0.113.77" in by_host[CLIENT]
    assert "203.0.113.77" not in by_host[CENTRAL]
    assert by_host[CENTRAL].startswith(f"{marker} central client ") and by_host[CENTRAL].endswith(" connected")


def test_index_templates_per_class():
    for data_class in ["access", "application", "audit", "security"]:
        answer = store("GET", f"/_index_template/{PREFIX}-{data_class}")
        template = answer["index_templates"][0]["index_template"]
        assert template["index_patterns"] == [f"{PREFIX}-{data_class}-*"]
        assert template["_meta"]["eterna_hash"]


def test_retention_removes_only_what_is_older_than_its_class_period():
    central = node(CENTRAL)
    now = today()
    access_days = json.loads(central.file("/etc/eterna/log-retention.json").content_string)["classes"]["access"]
    old, kept = now - dt.timedelta(days=access_days + 1), now - dt.timedelta(days=access_days - 1)
    audit_old = now - dt.timedelta(days=access_days + 1)  # within audit's longer retention: kept
    indices = {
        f"{PREFIX}-access-{old:%Y.%m.%d}": False,
        f"{PREFIX}-access-{kept:%Y.%m.%d}": True,
        f"{PREFIX}-audit-{audit_old:%Y.%m.%d}": True,
        f"other-{old:%Y.%m.%d}": True,
    }
    bulk = "".join(
        json.dumps({"index": {"_index": name, "_id": "planted"}}) + "\n" + json.dumps({"message": "planted"}) + "\n"
        for name in indices
    )
    assert store("POST", "/_bulk", bulk)["errors"] is False
    host_dir = f"{ARCHIVE}/access/planted-host"
    files = {
        f"{host_dir}/{old:%Y-%m-%d}.jsonl": False,
        f"{host_dir}/{kept:%Y-%m-%d}.jsonl": True,
        f"{ARCHIVE}/audit/planted-host/{audit_old:%Y-%m-%d}.jsonl": True,
    }
    for path in files:
        central.check_output(f'mkdir -p $(dirname {path}) && echo \'{{"message":"planted"}}\' > {path}')
    central.check_output("systemctl start eterna-log-retention.service")
    listed = {
        row["index"]
        for row in json.loads(
            node(CLIENT).check_output(f"curl -sS -K {CURLRC} '{STORE_URL}/_cat/indices?format=json&h=index'")
        )
    }
    for name, survives in indices.items():
        assert (name in listed) == survives, name
    for path, survives in files.items():
        assert central.file(path).exists == survives, path
    # The kept day files older than the seal delay are in their host's manifest, which verifies.
    manifest = central.file(f"{host_dir}/SHA256SUMS")
    assert manifest.contains(f"{kept:%Y-%m-%d}.jsonl") and not manifest.contains(f"{old:%Y-%m-%d}.jsonl")
    assert central.run(f"cd {host_dir} && sha256sum -c SHA256SUMS").rc == 0
    assert central.file(f"{ARCHIVE}/RETENTION.log").contains(f"{old:%Y-%m-%d}.jsonl")
    # A sealed file changed afterwards fails the next run (exit 2).
    central.check_output(f"echo tampered >> {host_dir}/{kept:%Y-%m-%d}.jsonl")
    res = central.run("/usr/bin/python3 /usr/local/lib/eterna/eterna_log_retention.py run")
    assert res.rc == 2 and "differs from the sealed" in res.stderr
    central.check_output(f"rm -rf {ARCHIVE}/access/planted-host {ARCHIVE}/audit/planted-host")


def test_counters_reach_the_textfile_collector():
    def value(host: str, name: str, counter: str) -> float:
        text = node(host).file("/var/lib/prometheus/node-exporter/rsyslog.prom").content_string
        for line in text.splitlines():
            if line.startswith("rsyslog_stat{") and f'name="{name}"' in line and f'counter="{counter}"' in line:
                return float(line.rsplit(" ", 1)[1])
        return -1.0

    wait_for(lambda: value(CLIENT, f"fwd-{CENTRAL}", "processed") > 0, what="the client's forwarder counter")
    wait_for(lambda: value(CENTRAL, "store", "processed") > 0, what="the central store action counter")
    assert value(CENTRAL, "store queue", "size") >= 0


def test_tenant_erase_pseudonymises_the_archive_and_deletes_the_index(tmp_path: Path):
    """Issue #20: playbooks/tenant_erase.yml on the logging hosts, with lines of two tenants whose ids overlap
    (``<t>`` and ``<t>-b``) in the journal, the access log and a sealed day of the archive."""
    gone = f"t{uuid.uuid4().hex[:8]}"
    kept = f"{gone}-b"
    central = node(CENTRAL)
    for tenant in (gone, kept):
        log(CLIENT, json.dumps({"level": "INFO", "message": f"booked for {tenant}", "tenant_id": tenant}), "eterna-api")
        append(CLIENT, ACCESS_LOG, [json.dumps({"request_id": f"r-{tenant}", "tenant": tenant, "uri": f"/t/{tenant}"})])
    wait_for(lambda: len(by_marker(gone)) >= 2 and len(by_marker(kept)) >= 2, what="both tenants' lines in the index")
    wait_for(lambda: len(archive_lines(kept)) >= 2, what="both tenants' lines in the archive")
    # A sealed older day holding both tenants (planted: the archive's own days are not old enough to be sealed).
    old = today() - dt.timedelta(days=3)
    sealed_dir = f"{ARCHIVE}/application/{CLIENT}"
    sealed = f"{sealed_dir}/{old:%Y-%m-%d}.jsonl"
    lines = [json.dumps({"message": f"older line of {t}", "json": {"tenant_id": t}}) for t in (gone, kept)]
    central.check_output(f"printf '%s\\n' {' '.join(shlex.quote(line) for line in lines)} > {sealed}")
    central.check_output("systemctl start eterna-log-retention.service")
    assert central.file(f"{sealed_dir}/SHA256SUMS").contains(f"{old:%Y-%m-%d}.jsonl")

    def erase(*extra: str) -> subprocess.CompletedProcess:
        args = ["-e", f"tenant_erase_tenant={gone}", "-e", f"tenant_erase_record_dir={tmp_path}", *extra]
        return run_playbook("tenant_erase.yml", *args)

    refused = erase("-e", f"tenant_erase_confirm={kept}")
    # Ansible prints a failed task's message on stderr.
    assert refused.returncode != 0 and "No log line erased" in refused.stdout + refused.stderr
    assert len(archive_lines(gone)) >= 3
    result = erase("-e", f"tenant_erase_confirm={gone}")
    assert result.returncode == 0, result.stdout[-3000:]
    word = re.compile(r"(?<![A-Za-z0-9_-])" + re.escape(gone) + r"(?![A-Za-z0-9_-])")
    archived = central.run(f"grep -rhF -- {shlex.quote(gone)} {ARCHIVE}/access {ARCHIVE}/application").stdout
    assert not word.search(archived), "a line of the erased tenant is still in the archive"
    assert not [d for d in by_marker(gone) if word.search(json.dumps(d))], "the erased tenant is still in the index"
    # The other tenant is untouched in both.
    tenants = [d["json"].get("tenant_id") or d["json"].get("tenant") for d in by_marker(kept) if "json" in d]
    assert tenants.count(kept) >= 2
    assert len(archive_lines(kept)) >= 3
    # The pseudonym replaced the id, keyed with the derived key (not a hash anyone can recompute).
    key = node(CLIENT).ansible.get_variables()["eterna_master_key"]
    pseudonym_key = secrets().derive_secret(key, "logging/tenant_pseudonym").encode()
    name = "tenant-" + hmac.new(pseudonym_key, gone.encode(), "sha256").hexdigest()[:16]
    assert f"older line of {name}" in central.file(sealed).content_string
    assert len(archive_lines(name)) >= 3
    # The seal verifies, the retention job finds nothing tampered, and the rewrite is recorded without the id.
    assert central.run(f"cd {sealed_dir} && sha256sum -c --quiet SHA256SUMS").rc == 0
    assert central.run("/usr/bin/python3 /usr/local/lib/eterna/eterna_log_retention.py run").rc == 0
    records = [json.loads(line) for line in central.file(f"{ARCHIVE}/RETENTION.log").content_string.splitlines()]
    rewrites = [r for r in records if r["action"] == "pseudonymise" and r["pseudonym"] == name]
    assert {r["file"] for r in rewrites} >= {sealed} and not word.search(json.dumps(records))
    record = json.loads((tmp_path / f"{gone}-log-erasure-{CENTRAL}.json").read_text())
    assert record["archive_lines"] >= 3 and record["index_documents"] >= 2 and record["problems"] == []
    # rsyslog writes on into the rewritten files: a new line arrives.
    after = f"after-erase-{uuid.uuid4().hex}"
    log(CLIENT, json.dumps({"message": after, "tenant_id": kept}), "eterna-api")
    wait_for(lambda: archive_lines(after), what="a line logged after the erasure in the archive")
    central.check_output(f"rm -f {sealed} && sed -i '/{old:%Y-%m-%d}.jsonl/d' {sealed_dir}/SHA256SUMS")


def test_refused_configuration_is_put_back_and_rsyslog_keeps_running():
    """_common's config_apply on rsyslog.conf with the role's drop-ins: a central drop-in rsyslogd refuses (a queue
    size written "8GB": the preflight does not check sizes, the template writes it as given, rsyslogd reads only
    k/m/g/t suffixes) fails the run with rsyslogd's words; every file is back byte for byte with its mode and owner,
    no backup copy is left, and the same rsyslog process still receives the client's lines."""
    central = node(CENTRAL)
    files = "/etc/rsyslog.conf /etc/rsyslog.d/*.conf"
    snapshot = f"sha256sum {files} && stat -c '%a %U:%G %n' {files}"
    before = central.check_output(snapshot)
    pid = central.check_output("systemctl show --property MainPID --value rsyslog")
    res = run_playbook(
        "services/logging.yml", "--limit", CENTRAL, "-e", json.dumps({"rsyslog_central_queue_max_disk": "8GB"})
    )
    output = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0, output[-3000:]
    assert (
        "The new configuration was refused and the previous files were put back "
        "(/etc/rsyslog.d/05-eterna-central.conf)" in output
    ), output[-3000:]
    assert "The check (rsyslogd -N1) said:" in output and "does not contain a valid size" in output, output[-3000:]
    assert central.check_output(snapshot) == before
    assert central.run("find /etc/rsyslog.conf* /etc/rsyslog.d -name '*~'").stdout == "", "backup files left behind"
    assert central.run("rsyslogd -N1").rc == 0
    # Not restarted: the process that read the previous configuration still runs and receives.
    assert central.check_output("systemctl show --property MainPID --value rsyslog") == pid
    assert central.service("rsyslog").is_running
    marker = f"after-refusal-{uuid.uuid4().hex}"
    log(CLIENT, marker)
    wait_for(lambda: archive_lines(marker), what="a client line in the archive after the refused run")
