"""IPv6 end to end (issue #24 section 2), every host known to the inventory only by its IPv6 address.

From other containers: the firewall lets each declared IPv6 peer in and keeps the others out (and an allowed host's
IPv4 address too, which the inventory does not name); PostgreSQL, Redis/Valkey, RabbitMQ, SeaweedFS and every
exporter listen on the data host's IPv6 address; the real app dials each of them by the IPv6 literal its URLs put in
brackets, verifies their certificates against that address, and serves logins, writes and uploads through the real
edge at a bracketed IPv6 upstream; Prometheus scrapes every target over IPv6, and every host ships its logs over RELP to
the central host's IPv6 address.
"""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from urllib.parse import urlsplit

import pytest
from eterna_testinfra import curl, node, secrets

EDGE, APP, PROM, DATA = "ipv6-edge", "ipv6-app", "ipv6-prom", "ipv6-data"
ADDRESS = {EDGE: "fd24:e7e4:6::10", APP: "fd24:e7e4:6::11", PROM: "fd24:e7e4:6::12", DATA: "fd24:e7e4:6::13"}
JOURNAL_HOSTS = [EDGE, APP, PROM, DATA]
JOURNAL_UNITS = [
    "nftables",
    "nginx",
    "prometheus",
    "prometheus-node-exporter",
    "eterna-api",
    "eterna-worker",
    "rsyslog",
]
# Polling deadline for Prometheus's first scrapes (never a performance assertion).
DEADLINE = 180
TENANT, OWNER = "tenant-six", "owner@tenant-six.test"
EDGE_URL = "https://ipv6-edge"
# curl from the monitoring host resolves the edge's name to its IPv6 address only, and trusts the internal CA.
EDGE_CURL = ("--resolve", f"ipv6-edge:443:[{ADDRESS[EDGE]}]", "--cacert", "/etc/prometheus/tls/ca.crt")


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
    ("name", "services"),
    [
        (DATA, ["postgres", "redis", "rabbitmq", "seaweedfs", "node-exporter"]),
        (APP, ["app", "node-exporter"]),
        (EDGE, ["nginx", "node-exporter"]),
        (PROM, ["prometheus", "rsyslog", "node-exporter"]),
    ],
)
def test_each_service_role_wrote_its_own_rules(name, services):
    """No inventory lists the flows: each service's role wrote its file, which the base role's ruleset includes."""
    host = node(name)
    written = sorted(host.check_output("ls /etc/nftables.d").split())
    assert written == sorted(f"eterna-{service}.nft" for service in services)
    for service in services:
        rules = host.file(f"/etc/nftables.d/eterna-{service}.nft")
        assert (rules.user, rules.group, rules.mode) == ("root", "root", 0o600)
        assert "ip6 saddr" in rules.content_string, service
        assert not re.search(r"\bip saddr", rules.content_string), f"{service}: an IPv4 set on an IPv6-only network"


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
        (APP, DATA, 5432, True),  # the data services: from the app only
        (EDGE, DATA, 5432, False),
        (APP, DATA, 6380, True),
        (PROM, DATA, 6380, False),
        (APP, DATA, 5671, True),
        (EDGE, DATA, 5671, False),
        (APP, DATA, 8333, True),
        (EDGE, DATA, 8333, False),
        (PROM, DATA, 9187, True),  # their exporters: from monitoring only
        (APP, DATA, 9187, False),
        (PROM, DATA, 9121, True),
        (PROM, DATA, 15692, True),
        (PROM, DATA, 9327, True),
        (EDGE, DATA, 9327, False),
    ],
)
def test_firewall_admits_and_blocks_ipv6_peers(client, server, port, allowed):
    assert connects(client, ADDRESS[server], port) is allowed, f"{client} -> [{ADDRESS[server]}]:{port}"


@pytest.mark.parametrize(("client", "server", "port"), [(PROM, EDGE, 9100), (APP, DATA, 5432), (APP, DATA, 5671)])
def test_ipv4_address_of_an_allowed_host_is_not_admitted(client, server, port):
    # The rules name each peer by its IPv6 address; the same host over IPv4 is a stranger.
    assert connects(client, ipv4_of(server), port) is False


@pytest.mark.parametrize("name", [EDGE, APP, PROM, DATA])
def test_node_exporter_listens_on_its_bracketed_ipv6_address(name):
    host = node(name)
    assert host.service("prometheus-node-exporter").is_running
    args = host.file("/etc/default/prometheus-node-exporter").content_string
    assert f"--web.listen-address=[{ADDRESS[name]}]:9100" in args
    listeners = host.check_output("ss -Hltn")
    assert f"[{ADDRESS[name]}]:9100" in listeners, listeners


@pytest.mark.parametrize(
    ("port", "where"),
    [
        (5432, "address"),  # PostgreSQL: listen_addresses = localhost plus the private address
        (6380, "address"),  # Redis/Valkey TLS: bind 127.0.0.1 ::1 plus the private address
        (9187, "address"),  # postgres exporter
        (9121, "address"),  # redis exporter
        (15692, "address"),  # RabbitMQ's Prometheus endpoint
        (9327, "address"),  # SeaweedFS metrics
        (5671, "any"),  # AMQPS on every address (rabbitmq_tls_address empty)
        (8333, "any"),  # SeaweedFS S3 on every address (seaweedfs_s3_bind_address 0.0.0.0 is dual-stack in Go)
    ],
)
def test_data_services_listen_on_ipv6(port, where):
    listeners = [line.split()[3] for line in node(DATA).check_output("ss -Hltn").splitlines()]
    wanted = {f"[{ADDRESS[DATA]}]:{port}"} if where == "address" else {f"[::]:{port}", f"*:{port}"}
    assert wanted & set(listeners), f"port {port}: {sorted(a for a in listeners if a.endswith(f':{port}'))}"


@pytest.mark.parametrize(
    ("variable", "scheme", "port"),
    [
        ("DATABASE_URL", "postgresql+psycopg", 5432),
        ("REDIS_URL", "rediss", 6380),
        ("CELERY_BROKER_URL", "amqps", 5671),
        ("S3_ENDPOINT_URL", "https", 8333),
    ],
)
def test_app_urls_name_the_data_host_by_its_bracketed_ipv6_address(variable, scheme, port):
    # Parsed here, never printed whole: the URLs carry passwords.
    env = node(APP).file("/etc/eterna-app/app.env").content_string
    raw = re.search(rf"^{variable}=(.*)$", env, re.M).group(1).strip().strip("'\"")
    url = urlsplit(raw)
    assert (url.scheme, url.hostname, url.port) == (scheme, ADDRESS[DATA], port), (url.scheme, url.hostname, url.port)
    assert f"[{ADDRESS[DATA]}]:{port}" in url.netloc.rsplit("@", 1)[-1]


def test_edge_proxies_to_the_bracketed_ipv6_upstream():
    conf = node(EDGE).file("/etc/nginx/nginx.conf").content_string
    assert re.search(r"server \[fd24:e7e4:6::11\]:8000 ", conf), conf


def test_app_is_ready_over_ipv6_through_the_edge():
    # /health/ready opens a connection to each data service; every one of them admits only IPv6 peers.
    status, body = curl(PROM, f"{EDGE_URL}/health/ready", extra=EDGE_CURL)
    answer = json.loads(body)
    assert status == 200, answer.get("checks")
    assert answer["failed"] == [], answer["checks"]
    assert sorted(answer["checks"]) == ["postgresql", "rabbitmq", "redis", "s3"]


def test_the_data_services_see_the_app_by_its_ipv6_address():
    data = node(DATA)
    sql = "SELECT DISTINCT host(client_addr) FROM pg_stat_activity WHERE usename = 'eterna' AND client_addr IS NOT NULL"
    clients = data.check_output(f"cd /tmp && runuser -u postgres -- psql -Atc {shlex.quote(sql)}").split()
    assert ADDRESS[APP] in clients, clients
    # The Celery worker holds its broker connection open.
    peers = data.check_output("rabbitmqctl -q list_connections peer_host").split()
    assert ADDRESS[APP] in peers, peers


def test_login_write_and_upload_through_the_edge_over_ipv6():
    master = node(APP).ansible.get_variables()["eterna_master_key"]
    fields = (
        "--data-urlencode",
        f"username={OWNER}",
        "--data-urlencode",
        "password=" + secrets().derive_secret(master, "molecule/owner-six"),
    )
    status, body = curl(PROM, f"{EDGE_URL}/api/v1/auth/token", "POST", extra=(*EDGE_CURL, *fields))
    assert status == 200, status
    token = json.loads(body)["access_token"]
    name = f"IPv6 house {uuid.uuid4().hex[:8]}"
    status, body = curl(
        PROM,
        f"{EDGE_URL}/api/v1/houses",
        "POST",
        body={"name": name, "address": "6 Test Street"},
        token=token,
        extra=EDGE_CURL,
    )
    assert status == 201, body
    status, body = curl(PROM, f"{EDGE_URL}/api/v1/houses", token=token, extra=EDGE_CURL)
    assert status == 200, body
    assert name in [h["name"] for h in json.loads(body)], body
    content = uuid.uuid4().hex
    node(PROM).check_output(f"printf %s {content} > /tmp/ipv6-doc.txt")
    status, body = curl(
        PROM, f"{EDGE_URL}/api/v1/documents", "POST", form={"file": "@/tmp/ipv6-doc.txt"}, token=token, extra=EDGE_CURL
    )
    assert status == 201, body
    doc = json.loads(body)["id"]
    status, body = curl(PROM, f"{EDGE_URL}/api/v1/documents/{doc}/download", token=token, extra=EDGE_CURL)
    assert (status, body) == (200, content)
    # uvicorn trusts X-Forwarded-Proto from the edge's IPv6 address, so the app's redirect keeps https.
    redirect = node(PROM).check_output(
        shlex.join(
            [
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{redirect_url}",
                *EDGE_CURL,
                "-H",
                f"Authorization: Bearer {token}",
                f"{EDGE_URL}/api/v1/houses/",
            ]
        )
    )
    assert redirect == f"{EDGE_URL}/api/v1/houses", redirect


def test_prometheus_scrapes_every_target_over_ipv6():
    # Prometheus's certificate names its IPv6 address; the password is read on the host, never put on a command line.
    url = f"https://[{ADDRESS[PROM]}]:9090/api/v1/targets?state=active"
    ask = (
        "curl -sS --max-time 10 --cacert /etc/prometheus/tls/ca.crt"
        f' -u "admin:$(cat /etc/prometheus/secrets/admin_password)" {shlex.quote(url)}'
    )
    wanted = (
        {f"[{a}]:9100" for a in ADDRESS.values()}
        | {f"[{ADDRESS[DATA]}]:{port}" for port in (9187, 9121, 15692, 9327)}
        | {f"[{ADDRESS[APP]}]:8000", f"[{ADDRESS[EDGE]}]:9113"}
    )
    targets = []
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        targets = json.loads(node(PROM).check_output(ask))["data"]["activeTargets"]
        scraped = {
            urlsplit(t["scrapeUrl"]).netloc: t for t in targets if t["scrapeUrl"].startswith(("http://[", "https://["))
        }
        if wanted <= set(scraped) and all(scraped[w]["health"] == "up" for w in wanted):
            break
        time.sleep(3)
    scraped = {urlsplit(t["scrapeUrl"]).netloc: t for t in targets}
    assert wanted <= set(scraped), sorted(scraped)
    assert all(scraped[w]["health"] == "up" for w in wanted), [(w, scraped[w]["lastError"]) for w in sorted(wanted)]


@pytest.mark.parametrize("sender", [EDGE, APP, DATA])
def test_logs_travel_over_relp_to_the_central_ipv6_address(sender):
    # Each host's rsyslog dials the central host's private (IPv6) address; the line lands in its archive.
    ship = node(sender).file("/etc/rsyslog.d/10-eterna-ship.conf").content_string
    assert f'target="{ADDRESS[PROM]}"' in ship
    marker = f"ipv6-relp-{uuid.uuid4().hex}"
    node(sender).check_output(f"logger -t eterna-test -- {marker}")
    archived = ""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline and marker not in archived:
        archived = node(PROM).run(f"grep -rhF -- {marker} /srv/log-archive || true").stdout
        time.sleep(2)
    assert marker in archived
    assert json.loads(archived.splitlines()[0])["host"]["name"] == sender
    sessions = node(sender).check_output("ss -Htn state established '( dport = :2514 )'")
    assert f"[{ADDRESS[PROM]}]:2514" in sessions, sessions
