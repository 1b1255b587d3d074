"""Host hardening on every host of the whole stack (issue #19): Lynis, the independent auditor, gives each host a
hardening index of at least 85 with no warning, with the collection's services running; every service unit of the
collection has a restart policy; needrestart's findings are restarted by the collection."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import time

import pytest
from eterna_testinfra import ROOT, ansible_env, assert_lynis_report, node

JOURNAL_UNITS = ["eterna-lynis-audit"]
JOURNAL_HOSTS = ["stack-edge"]

HOSTS = ["stack-edge", "stack-app1", "stack-app2", "stack-db1", "stack-db2", "stack-data", "stack-ops"]
LYNIS_UNIT = "eterna-lynis-audit"


@functools.cache
def lynis_started() -> bool:
    """Start Lynis on every host at once (a transient unit each), so the seven audits overlap."""
    for host in HOSTS:
        h = node(host)
        h.run(f"systemctl reset-failed {LYNIS_UNIT} 2>/dev/null; rm -f /var/log/lynis-report.dat")
        h.check_output(
            f"systemd-run --unit={LYNIS_UNIT} --collect --quiet "
            "sh -c 'lynis audit system --quick --no-colors --no-log > /var/log/eterna-lynis.out 2>&1'"
        )
    return True


def lynis_done(host: str) -> bool:
    return node(host).run(f"systemctl is-active --quiet {LYNIS_UNIT}").rc != 0


@pytest.mark.parametrize("host", HOSTS)
def test_lynis_hardening_index_on_every_host(host, capsys):
    assert lynis_started()
    deadline = time.monotonic() + 1800
    while not lynis_done(host) and time.monotonic() < deadline:
        time.sleep(5)
    h = node(host)
    assert_lynis_report(h, host, capsys)


# --- Restart policy of every service the collection runs ----------------------------------------------------------

# Units the roles give the collection's restart drop-in (50-eterna-restart.conf), per host of the stack.
RESTART_DROPINS = {
    # PostgreSQL runs under Patroni (the lab's postgres_ha): Patroni's unit brings it back, etcd beside it.
    "stack-db1": ["patroni@*", "etcd", "prometheus-postgres-exporter", "prometheus-node-exporter"],
    "stack-db2": ["patroni@*", "etcd", "prometheus-postgres-exporter", "prometheus-node-exporter"],
    "stack-app1": ["haproxy"],
    "stack-app2": ["haproxy"],
    "stack-data": ["*-server", "prometheus-redis-exporter", "rabbitmq-server", "prometheus-node-exporter"],
    "stack-edge": ["nginx", "prometheus-nginx-exporter", "prometheus-node-exporter"],
    "stack-ops": [
        "prometheus",
        "prometheus-alertmanager",
        "prometheus-blackbox-exporter",
        "prometheus-node-exporter",
        "etcd",
    ],
}
# Running services of the OS that are not the collection's and stop only when asked (one-shot helpers, logins).
NOT_RESTARTED = re.compile(r"^(systemd-.*|dbus|getty@.*|console-getty|user@.*|serial-getty@.*)\.service$")


@pytest.mark.parametrize("host", HOSTS)
def test_every_running_service_comes_back_after_a_crash(host):
    h = node(host)
    listed = h.check_output("systemctl list-units --type=service --state=running --no-legend --plain")
    units = [line.split()[0] for line in listed.splitlines() if line.strip()]
    policies = {u: h.check_output(f"systemctl show -p Restart --value {u}").strip() for u in units}
    stays_down = {u: p for u, p in policies.items() if p == "no" and not NOT_RESTARTED.match(u)}
    assert not stays_down, stays_down
    for pattern in RESTART_DROPINS.get(host, []):
        found = h.check_output(f"ls /etc/systemd/system/{pattern}.service.d/50-eterna-restart.conf")
        for path in found.split():
            unit = path.split("/")[4].removesuffix(".service.d")
            show = h.check_output(f"systemctl show -p Restart,RestartUSec,StartLimitBurst,After,Wants {unit}")
            assert "RestartUSec=5s" in show and "StartLimitBurst=10" in show, (unit, show)
            # It binds the private address: started at boot only once the network is online.
            assert show.count("network-online.target") == 2, (unit, show)
            assert "Restart=no" not in show, (unit, show)


# --- Coordinated restarts after package upgrades ------------------------------------------------------------------


def restart_outdated(limit: str) -> subprocess.CompletedProcess:
    playbook = str(ROOT / "playbooks" / "restart_outdated.yml")
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return subprocess.run(
        ["ansible-playbook", "-i", inventory, "--limit", limit, playbook],
        capture_output=True,
        text=True,
        timeout=900,
        env=ansible_env(),
    )


def test_services_running_replaced_libraries_are_restarted_by_the_collection():
    """A library replaced under a running nginx (as dpkg does: a new file renamed over the old) makes needrestart
    list nginx; playbooks/restart_outdated.yml restarts it and reports what it leaves to the operator."""
    edge = node("stack-edge")
    lib = edge.check_output("ldd /usr/sbin/nginx | awk '/libssl/ {print $3}'").strip()
    assert lib, "nginx links no libssl"
    pid = edge.check_output("systemctl show -p MainPID --value nginx").strip()
    edge.check_output(f"cp -p {lib} {lib}.eterna-new && mv {lib}.eterna-new {lib}")
    listed = edge.check_output("needrestart -b -r l")
    assert "NEEDRESTART-SVC: nginx.service" in listed, listed
    run = restart_outdated("stack-edge")
    assert run.returncode == 0, run.stdout[-4000:]
    assert re.search(r"restart here: [^;]*nginx[.]service", run.stdout), run.stdout[-4000:]
    assert edge.check_output("systemctl show -p MainPID --value nginx").strip() != pid
    assert edge.service("nginx").is_running
    assert "NEEDRESTART-SVC: nginx.service" not in edge.check_output("needrestart -b -r l")
    # Nothing left to restart: a second run changes nothing.
    again = restart_outdated("stack-edge")
    assert again.returncode == 0 and re.search(r"stack-edge\s*:.*changed=0", again.stdout), again.stdout[-3000:]
