"""Three-node cluster: every node runs in one cluster with the same cookie, quorum queues replicate
to all nodes and keep their confirmed messages when the node leading them stops, and the management
API on the private address is served over verified TLS."""

from __future__ import annotations

import hashlib
import json
import shlex
import time
import uuid

import pytest
from eterna_testinfra import node, secrets

NODES = ["rabbitmq_cluster-n1", "rabbitmq_cluster-n2", "rabbitmq_cluster-n3"]
JOURNAL_UNITS = ["rabbitmq-server"]
JOURNAL_HOSTS = NODES
PROBE = "/usr/local/bin/amqp_probe.py"


SECRETS = secrets()


def secret(purpose: str, **kwargs) -> str:
    return SECRETS.derive_secret(node(NODES[0]).ansible.get_variables()["eterna_master_key"], purpose, **kwargs)


def node_name(host: str) -> str:
    """The scenario names nodes after the container (rabbitmq_nodename in molecule.yml)."""
    return f"rabbit@{host}"


def cluster_status(host: str) -> dict:
    return json.loads(node(host).check_output("rabbitmqctl -q cluster_status --formatter json"))


def probe(client: str, action: str, target: str, **options) -> tuple[int, dict]:
    """Run the AMQP probe on ``client`` against ``target`` over TLS with the app credentials."""
    args = " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in options.items())
    pw = shlex.quote(secret("rabbitmq/eterna"))
    res = node(client).run(f"AMQP_PASSWORD={pw} python3 {PROBE} {action} --host {target} {args}")
    lines = res.stdout.strip().splitlines()
    assert lines, f"probe printed nothing: {res.stderr}"
    return res.rc, json.loads(lines[-1])


def wait_until(predicate, attempts: int = 60, pause: float = 5) -> bool:
    """Poll a condition; the caller asserts on the result, never on elapsed time."""
    for _ in range(attempts):
        if predicate():
            return True
        time.sleep(pause)
    return predicate()


def test_all_nodes_run_in_one_cluster():
    expected = sorted(node_name(h) for h in NODES)
    for host in NODES:
        status = cluster_status(host)
        assert sorted(status["running_nodes"]) == expected, host
        assert sorted(status["disk_nodes"]) == expected, host
        assert status["cluster_name"] == "eterna"
        assert status["partitions"] == {}


def test_cookie_is_identical_and_private():
    digests = set()
    for host in NODES:
        f = node(host).file("/var/lib/rabbitmq/.erlang.cookie")
        assert (f.mode, f.user, f.group) == (0o400, "rabbitmq", "rabbitmq")
        digests.add(hashlib.sha256(f.content).hexdigest())
    assert len(digests) == 1
    expected = secret("rabbitmq/erlang_cookie", length=32)
    assert digests == {hashlib.sha256(expected.encode()).hexdigest()}


def test_users_are_cluster_wide():
    for host in NODES:
        users = {u["user"] for u in json.loads(node(host).check_output("rabbitmqctl -q list_users --formatter json"))}
        assert users == {"eterna", "admin"}, host


def test_every_stable_feature_flag_is_enabled_on_every_node():
    """Flags are cluster-wide; the next package upgrade needs every stable one on."""
    for host in NODES:
        flags = json.loads(
            node(host).check_output("rabbitmqctl -q list_feature_flags name state stability --formatter json")
        )
        assert [f["name"] for f in flags if f["stability"] in ("stable", "required") and f["state"] != "enabled"] == []


@pytest.fixture
def restart_stopped():
    """Start again any node a test stopped, and wait until it is back in the cluster."""
    stopped: list[str] = []
    yield stopped
    for host in stopped:
        node(host).run("systemctl start rabbitmq-server")
    expected = sorted(node_name(h) for h in NODES)
    assert wait_until(lambda: sorted(cluster_status(NODES[0])["running_nodes"]) == expected)


def test_quorum_queue_keeps_its_messages_when_its_leader_stops(restart_stopped):
    queue = f"ha-{uuid.uuid4().hex[:8]}"
    rc, out = probe(NODES[2], "publish", NODES[0], queue=queue, count=50, prefix=queue)
    assert rc == 0, out

    listing = node(NODES[0]).check_output(
        "rabbitmqctl -q list_queues -p eterna name type leader members --formatter json"
    )
    info = next(q for q in json.loads(listing) if q["name"] == queue)
    assert info["type"] == "quorum"
    assert sorted(info["members"]) == sorted(node_name(h) for h in NODES), "the queue must replicate to every node"

    leader_host = next(h for h in NODES if node_name(h) == info["leader"])
    node(leader_host).check_output("systemctl stop rabbitmq-server")
    restart_stopped.append(leader_host)
    survivors = [h for h in NODES if h != leader_host]
    assert wait_until(lambda: len(cluster_status(survivors[0])["running_nodes"]) == 2)

    # Consume from a surviving node through another surviving node's TLS listener.
    rc, out = probe(survivors[0], "consume", survivors[1], queue=queue, count=50)
    assert rc == 0, out
    assert out["bodies"] == [f"{queue}-{i}" for i in range(50)]


def test_management_api_on_private_address_uses_tls():
    target = NODES[0]
    address = node(target).check_output("hostname -I").split()[0]
    assert node(target).socket(f"tcp://{address}:15672").is_listening
    script = (
        "import base64, ssl, sys, urllib.request, urllib.error\n"
        "req = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Basic ' + "
        "base64.b64encode(sys.argv[2].encode()).decode()})\n"
        "try:\n"
        "    print(urllib.request.urlopen(req, timeout=20, context=ssl.create_default_context()).status)\n"
        "except urllib.error.HTTPError as exc:\n"
        "    print(exc.code)\n"
    )
    url = f"https://{target}:15672/api/nodes"

    def status(credentials: str) -> int:
        cmd = f"python3 -c {shlex.quote(script)} {shlex.quote(url)} {shlex.quote(credentials)}"
        return int(node(NODES[1]).check_output(cmd).strip())

    assert status("admin:" + secret("rabbitmq/admin")) == 200
    assert status("admin:wrong-" + secret("rabbitmq/admin")) == 401
    plain = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=20)"
    assert node(NODES[1]).run(f"python3 -c {shlex.quote(plain)} http://{target}:15672/").rc != 0, "no plain HTTP"
