"""Failures: an app host going away, no app at all, a broken template, a broken live file.
Runs last (file order); every test puts the scenario back as it found it."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from eterna_testinfra import node
from nginx_probe import APPS, BASE, CLIENT, EDGE, assert_security_headers, bearer, fetch

JOURNAL_UNITS = ["nginx", "fake-app", "failover-probe"]
JOURNAL_HOSTS = [EDGE, CLIENT]

SCENARIO = Path(__file__).resolve().parent.parent
PROJECT = SCENARIO.parent.parent


def wait_all_upstreams_healthy() -> None:
    """After apps come back, wait until both answer again through the proxy (passive health)."""
    for _ in range(60):
        answers = [fetch(f"{BASE}/health") for _ in range(4)]
        if {r.json()["host"] for r in answers if r.status == 200} == set(APPS):
            return
        node(CLIENT).run("sleep 1")
    raise AssertionError("both app hosts did not come back behind the proxy")


def test_stopping_one_upstream_loses_no_request():
    client = node(CLIENT)
    client.run("systemctl reset-failed failover-probe 2>/dev/null; rm -f /root/failover.log")
    client.check_output(
        "systemd-run --unit=failover-probe --property=Type=exec sh -c "
        "'for i in $(seq 1 150); do "
        f'curl -s --max-time 20 -o /dev/null -w "%{{http_code}}\\n" {BASE}/health >> /root/failover.log; '
        "done'"
    )
    try:
        for _ in range(120):
            done = int(client.check_output("cat /root/failover.log 2>/dev/null | wc -l"))
            if done >= 30:
                break
            client.run("sleep 0.5")
        node(APPS[0]).check_output("systemctl stop fake-app")
        for _ in range(300):
            if client.run("systemctl is-active --quiet failover-probe").rc != 0:
                break
            client.run("sleep 1")
        codes = client.check_output("cat /root/failover.log").split()
    finally:
        node(APPS[0]).check_output("systemctl start fake-app")
    assert len(codes) == 150, f"the probe made {len(codes)} requests"
    assert set(codes) == {"200"}, {c: codes.count(c) for c in set(codes)}
    wait_all_upstreams_healthy()


def test_no_upstream_gives_502_with_security_headers():
    for app in APPS:
        node(app).check_output("systemctl stop fake-app")
    try:
        resp = fetch(f"{BASE}/api/houses?nocache={uuid.uuid4().hex}", *bearer("tenant-a"))
    finally:
        for app in APPS:
            node(app).check_output("systemctl start fake-app")
    assert resp.status == 502
    assert_security_headers(resp)
    wait_all_upstreams_healthy()


def converge_edge(*extra: str) -> subprocess.CompletedProcess:
    eph = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=f"{eph}/ansible.cfg",
        ANSIBLE_ROLES_PATH=str(PROJECT / "roles"),
        ANSIBLE_FILTER_PLUGINS=str(PROJECT / "filter_plugins"),
        ANSIBLE_PIPELINING="True",
        ANSIBLE_FORCE_COLOR="0",
    )
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(SCENARIO / "converge.yml"),
            "--limit",
            EDGE,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=1200,
    )


def test_broken_template_change_is_refused_and_live_config_keeps_serving():
    """_common's config_apply: the tree is written in place, `nginx -t` refuses it, every file is put back byte for
    byte before any reload, the play fails with nginx's words, and no backup copy is left."""
    edge = node(EDGE)
    tree = "/etc/nginx/nginx.conf /etc/nginx/eterna/site.conf /etc/nginx/eterna/headers.conf /etc/nginx/eterna/jwt.js"
    live_before = edge.check_output(f"sha256sum {tree}")
    proc = converge_edge("-e", "nginx_server_extra_config='not_a_directive on;'")
    assert proc.returncode != 0, "a configuration nginx rejects must fail the play"
    output = " ".join((proc.stdout + proc.stderr).split())
    assert "The new configuration was refused and the previous files were put back" in output, output[-3000:]
    assert "/etc/nginx/eterna/site.conf" in output, output[-3000:]
    assert 'unknown directive "not_a_directive"' in output, output[-3000:]
    assert edge.check_output(f"sha256sum {tree}") == live_before
    assert edge.run("find /etc/nginx -name '*~'").stdout == "", "backup files left behind"
    assert edge.service("nginx").is_running
    assert fetch(f"{BASE}/health").status == 200


def test_failed_reload_restores_the_last_good_configuration():
    edge = node(EDGE)
    good = edge.check_output("sha256sum /etc/nginx/eterna/site.conf")
    edge.check_output("echo 'broken_directive;' >> /etc/nginx/eterna/site.conf")
    res = edge.run("/usr/local/sbin/eterna-nginx-reload")
    assert res.rc != 0
    assert "restoring the last good configuration" in res.stderr
    assert edge.check_output("sha256sum /etc/nginx/eterna/site.conf") == good
    assert "broken_directive" in edge.file("/etc/nginx.failed/eterna/site.conf").content_string
    assert edge.run("nginx -t").rc == 0
    assert fetch(f"{BASE}/health").status == 200
