"""IPv6 end to end (issue #24 section 2), every host known to the inventory only by its IPv6 address.

From other containers: the firewall lets the monitoring host's IPv6 address in and keeps the app host's out (and the
monitoring host's IPv4 address too, which the inventory does not name), the edge proxies to the app at a bracketed
IPv6 upstream, each node exporter listens on its bracketed IPv6 address and Prometheus scrapes every one of them.
"""

from __future__ import annotations

import json
import re
import shlex
import time

import pytest
from eterna_testinfra import curl, node

EDGE, APP, PROM = "ipv6-edge", "ipv6-app", "ipv6-prom"
ADDRESS = {EDGE: "fd24:e7e4:6::10", APP: "fd24:e7e4:6::11", PROM: "fd24:e7e4:6::12"}
JOURNAL_HOSTS = [EDGE, APP, PROM]
JOURNAL_UNITS = ["nftables", "nginx", "prometheus", "prometheus-node-exporter"]
# Polling deadline for Prometheus's first scrapes (never a performance assertion).
DEADLINE = 180


def connects(client: str, address: str, port: int) -> bool:
    """Whether a TCP connection from container ``client`` to ``address``:``port`` opens within 3 s."""
    probe = "import socket, sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()"
    return node(client).run(shlex.join(["python3", "-c", probe, address, str(port)])).rc == 0


def ipv4_of(name: str) -> str:
    """The container's IPv4 address on the scenario network (Docker always gives one; the inventory never names it)."""
    return next(a for a in node(name).check_output("hostname -I").split() if ":" not in a)


def test_ruleset_matches_ipv6_sources_with_ip6_rules():
    ruleset = node(EDGE).check_output("nft list table inet eterna_filter")
    assert re.search(r"ip6 saddr \{?\s*fd24:e7e4:6::12\s*\}? tcp dport 22 accept", ruleset), ruleset
    assert re.search(r"ip6 saddr \{?\s*fd24:e7e4:6::12\s*\}? tcp dport 9100 accept", ruleset), ruleset
    assert not re.search(r"\bip saddr [^\n]*fd24", ruleset), "an IPv6 address in an IPv4 set"


@pytest.mark.parametrize(
    ("client", "server", "port", "allowed"),
    [
        (PROM, EDGE, 9100, True),  # node exporter: monitoring only
        (APP, EDGE, 9100, False),
        (PROM, APP, 9100, True),
        (EDGE, APP, 9100, False),
        (EDGE, APP, 8000, True),  # the app: from the edge and monitoring
        (PROM, APP, 8000, True),
        (PROM, EDGE, 22, True),  # SSH: base_ssh_allowed_sources names the monitoring host's /128 only
        (APP, EDGE, 22, False),
    ],
)
def test_firewall_admits_and_blocks_ipv6_peers(client, server, port, allowed):
    assert connects(client, ADDRESS[server], port) is allowed, f"{client} -> [{ADDRESS[server]}]:{port}"


def test_ipv4_address_of_an_allowed_host_is_not_admitted():
    # The rule names the monitoring host by its IPv6 address; the same host over IPv4 is a stranger.
    assert connects(PROM, ipv4_of(EDGE), 9100) is False


@pytest.mark.parametrize("name", [EDGE, APP, PROM])
def test_node_exporter_listens_on_its_bracketed_ipv6_address(name):
    host = node(name)
    assert host.service("prometheus-node-exporter").is_running
    args = host.file("/etc/default/prometheus-node-exporter").content_string
    assert f"--web.listen-address=[{ADDRESS[name]}]:9100" in args
    listeners = host.check_output("ss -Hltn")
    assert f"[{ADDRESS[name]}]:9100" in listeners, listeners


def test_edge_proxies_to_the_bracketed_ipv6_upstream():
    conf = node(EDGE).file("/etc/nginx/nginx.conf").content_string
    assert re.search(r"server \[fd24:e7e4:6::11\]:8000 ", conf), conf
    # The client reaches the edge over IPv6 too (its name resolved to the IPv6 address only).
    status, body = curl(PROM, "https://ipv6-edge/ipv6-probe", extra=("--resolve", f"ipv6-edge:443:[{ADDRESS[EDGE]}]"))
    assert status == 200, body
    answer = json.loads(body)
    assert answer["app"] == "ipv6-upstream"
    assert answer["path"] == "/ipv6-probe"
    # The app saw the edge's IPv6 address: the hop from the edge to the upstream was IPv6.
    assert answer["peer"] == ADDRESS[EDGE]


def test_prometheus_scrapes_every_node_exporter_over_ipv6():
    # Prometheus's certificate names its IPv6 address; the password is read on the host, never put on a command line.
    url = f"https://[{ADDRESS[PROM]}]:9090/api/v1/targets?state=active"
    ask = (
        "curl -sS --max-time 10 --cacert /etc/prometheus/tls/ca.crt"
        f' -u "admin:$(cat /etc/prometheus/secrets/admin_password)" {shlex.quote(url)}'
    )
    targets = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        targets = [
            t for t in json.loads(node(PROM).check_output(ask))["data"]["activeTargets"] if t["labels"]["job"] == "node"
        ]
        if len(targets) == 3 and all(t["health"] == "up" for t in targets):
            break
        time.sleep(3)
    scraped = sorted(re.sub(r"^https?://", "", t["scrapeUrl"]) for t in targets)
    assert scraped == sorted(f"[{a}]:9100/metrics" for a in ADDRESS.values()), scraped
    assert all(t["health"] == "up" for t in targets), [(t["scrapeUrl"], t["lastError"]) for t in targets]
