"""Centralised logging on the whole stack (issue #17), with the real services writing: a failed login through the
edge leaves an access line on stack-edge (nginx's JSON access log, read by imfile) and an audit line on the app host
that served it (the API's JSON journal line), both carrying the request id the client sent. Both must reach the
logging host (stack-ops) over RELP with mutual TLS and land in its archive by class and host, and the mistyped
password must reach neither. The lab has no search store (rsyslog_elasticsearch_url is empty), so only the archive
is checked here; indexing is tested by the logging scenario against a stand-in store."""

from __future__ import annotations

import json
import shlex
import time
import uuid

from eterna_testinfra import node

JOURNAL_UNITS = ["rsyslog"]
JOURNAL_HOSTS = ["stack-ops", "stack-edge", "stack-app1"]

CENTRAL = "stack-ops"
CLIENT = "stack-ops"  # has curl and the internal CA, as test_stack.py's client; the request crosses to the edge
ARCHIVE = "/srv/log-archive"
APP_HOSTS = ("stack-app1", "stack-app2")


def archive_lines(marker: str) -> list[dict]:
    """Archive lines (JSON documents) on the logging host that contain ``marker``."""
    res = node(CENTRAL).run(f"grep -rhF -- {shlex.quote(marker)} {ARCHIVE} || true")
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def test_a_failed_login_is_archived_from_the_edge_and_the_app_without_the_password():
    request_id = f"stacklog-{uuid.uuid4().hex}"
    password = f"mistyped-{uuid.uuid4().hex}"
    status = node(CLIENT).check_output(
        "curl -s -o /dev/null -w '%{http_code}' --max-time 30 "
        f"-H {shlex.quote('X-Request-ID: ' + request_id)} "
        f"--data-urlencode username=owner@demo.eterna.test --data-urlencode password={shlex.quote(password)} "
        "https://stack-edge/api/v1/auth/token"
    )
    assert status == "401"

    deadline = time.monotonic() + 180
    lines: list[dict] = []
    while time.monotonic() < deadline:
        lines = archive_lines(request_id)
        datasets = {line["event"]["dataset"] for line in lines}
        if {"access", "audit"} <= datasets:
            break
        time.sleep(3)
    by_class = {line["event"]["dataset"]: line for line in lines}
    assert set(by_class) >= {"access", "audit"}, f"archived so far: {lines}"

    access = by_class["access"]
    assert access["host"]["name"] == "stack-edge"
    assert access["json"]["request_id"] == request_id and access["json"]["status"] == 401

    audit = by_class["audit"]
    assert audit["host"]["name"] in APP_HOSTS
    assert audit["json"]["request_id"] == request_id
    assert audit["json"]["audit"]["action"] == "login" and audit["json"]["audit"]["outcome"] == "failure"

    day_files = node(CENTRAL).check_output(f"grep -rlF -- {shlex.quote(request_id)} {ARCHIVE}").split()
    assert any("/access/stack-edge/" in path for path in day_files), day_files
    assert any(f"/audit/{audit['host']['name']}/" in path for path in day_files), day_files
    assert node(CENTRAL).run(f"grep -rqF -- {shlex.quote(password)} {ARCHIVE}").rc == 1, "the password was archived"
