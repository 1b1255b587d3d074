"""The rabbitmq role seen from a client container: AMQP over verified TLS with the derived app
credentials, publisher confirms, refused credentials, durability across a restart, the metrics
endpoint, the listeners that must stay local, and the modes of the files that hold secrets."""

from __future__ import annotations

import json
import shlex
import time
import uuid

import pytest
from eterna_testinfra import node, secrets

JOURNAL_UNITS = ["rabbitmq-server"]
JOURNAL_HOSTS = ["rabbitmq-broker"]

BROKER = "rabbitmq-broker"
CLIENT = "rabbitmq-client"
PROBE = "/usr/local/bin/amqp_probe.py"


SECRETS = secrets()


def secret(purpose: str, **kwargs) -> str:
    return SECRETS.derive_secret(node(BROKER).ansible.get_variables()["eterna_master_key"], purpose, **kwargs)


def probe(action: str, *, password: str | None = None, host: str = BROKER, **options) -> tuple[int, dict]:
    """Run the AMQP probe on the client; returns (exit code, parsed JSON line)."""
    pw = secret("rabbitmq/eterna") if password is None else password
    args = " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in options.items())
    res = node(CLIENT).run(f"AMQP_PASSWORD={shlex.quote(pw)} python3 {PROBE} {action} --host {host} {args}")
    lines = res.stdout.strip().splitlines()
    assert lines, f"probe printed nothing: {res.stderr}"
    return res.rc, json.loads(lines[-1])


def broker_queues() -> dict[str, dict]:
    out = node(BROKER).check_output("rabbitmqctl -q list_queues -p eterna name type durable messages --formatter json")
    return {q["name"]: q for q in json.loads(out)}


def wait_for_broker() -> None:
    """Poll until the node has booted; the caller's assertion decides, never a clock."""
    for _ in range(60):
        if node(BROKER).run("rabbitmq-diagnostics -q check_running").rc == 0:
            return
        time.sleep(5)


def test_service_runs_and_starts_at_boot():
    svc = node(BROKER).service("rabbitmq-server")
    assert svc.is_running
    assert svc.is_enabled


def test_unit_is_hardened():
    props = node(BROKER).check_output(
        "systemctl show rabbitmq-server -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp -p ProtectHome"
    )
    for expected in ["User=rabbitmq", "NoNewPrivileges=yes", "ProtectSystem=strict", "PrivateTmp=yes"]:
        assert expected in props


def test_stable_node_name_and_cluster_name():
    status = json.loads(node(BROKER).check_output("rabbitmqctl -q cluster_status --formatter json"))
    assert status["running_nodes"] == [f"rabbit@{BROKER}"]
    assert status["cluster_name"] == "eterna"


def test_publish_with_confirms_and_consume_over_tls():
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    rc, out = probe("publish", queue=queue, count=20, prefix=queue)
    assert rc == 0, out
    assert out == {"published": 20, "confirmed": True}
    rc, out = probe("consume", queue=queue, count=20)
    assert rc == 0, out
    assert out["bodies"] == [f"{queue}-{i}" for i in range(20)]


def test_durable_queues_default_to_quorum():
    queue = f"probe-{uuid.uuid4().hex[:8]}"
    rc, out = probe("publish", queue=queue, count=1)
    assert rc == 0, out
    info = broker_queues()[queue]
    assert info["type"] == "quorum"
    assert info["durable"] is True
    probe("consume", queue=queue, count=1)


def test_every_stable_feature_flag_is_enabled():
    """The next package upgrade needs them on (RabbitMQ refuses data whose required flags are off)."""
    flags = json.loads(
        node(BROKER).check_output("rabbitmqctl -q list_feature_flags name state stability --formatter json")
    )
    assert [f["name"] for f in flags if f["stability"] == "stable" and f["state"] != "enabled"] == []
    assert [f["name"] for f in flags if f["stability"] == "required" and f["state"] != "enabled"] == []


def test_tls_certificate_is_verified():
    """A CA other than the internal one makes the handshake fail: the client really checks the chain."""
    other_ca = node(CLIENT).check_output("ls /usr/share/ca-certificates/mozilla/*.crt | head -n 1").strip()
    rc, out = probe("connect", cafile=other_ca)
    assert rc == 4, out
    assert "CERTIFICATE_VERIFY_FAILED" in out["detail"]


def test_tls_rejects_a_name_the_certificate_does_not_carry():
    ip = node(BROKER).check_output("hostname -I").split()[0]
    res = node(CLIENT).run(
        f"echo | openssl s_client -connect {ip}:5671 -verify_return_error -verify_hostname not-the-broker.example"
    )
    assert res.rc != 0
    assert "hostname mismatch" in (res.stdout + res.stderr)


def test_guest_is_refused():
    rc, out = probe("connect", user="guest", password="guest", vhost="/")  # noqa: S106 - the well-known default
    assert rc == 3, out
    users = node(BROKER).check_output("rabbitmqctl -q list_users --formatter json")
    assert "guest" not in [u["user"] for u in json.loads(users)]


def test_wrong_password_is_refused():
    rc, out = probe("connect", password="not-" + secret("rabbitmq/eterna"))
    assert rc == 3, out


def test_admin_password_does_not_open_the_app_user():
    rc, out = probe("connect", password=secret("rabbitmq/admin"))
    assert rc == 3, out


def test_app_user_is_limited_to_its_vhost():
    perms = json.loads(node(BROKER).check_output("rabbitmqctl -q list_user_permissions eterna --formatter json"))
    assert [p["vhost"] for p in perms] == ["eterna"]
    node(BROKER).check_output("rabbitmqctl -q add_vhost probe-other")
    try:
        rc, out = probe("connect", vhost="probe-other")
        assert rc == 3, out
    finally:
        node(BROKER).run("rabbitmqctl -q delete_vhost probe-other")


def test_password_is_stored_as_a_hash_only():
    definitions = node(BROKER).check_output("cat /etc/rabbitmq/definitions.json")
    assert secret("rabbitmq/eterna") not in definitions
    assert secret("rabbitmq/admin") not in definitions
    users = {u["name"]: u for u in json.loads(definitions)["users"]}
    assert users["eterna"]["hashing_algorithm"] == "rabbit_password_hashing_sha256"
    assert users["eterna"]["tags"] == []
    assert users["admin"]["tags"] == ["administrator"]


def http_status(host: str, url: str, user: str, password: str, cafile: str = "") -> int:
    """HTTP status of a GET with basic auth, run with Python's urllib on ``host`` (TLS verified against cafile)."""
    script = (
        "import base64, ssl, sys, urllib.request, urllib.error\n"
        "url, user, pw, cafile = sys.argv[1:5]\n"
        "req = urllib.request.Request(url, headers={'Authorization': 'Basic ' + "
        "base64.b64encode(f'{user}:{pw}'.encode()).decode()})\n"
        "ctx = ssl.create_default_context(cafile=cafile or None)\n"
        "try:\n"
        "    print(urllib.request.urlopen(req, timeout=20, context=ctx).status)\n"
        "except urllib.error.HTTPError as exc:\n"
        "    print(exc.code)\n"
    )
    cmd = f"python3 -c {shlex.quote(script)} {shlex.quote(url)} {shlex.quote(user)} {shlex.quote(password)} '{cafile}'"
    return int(node(host).check_output(cmd).strip())


def test_management_api_is_local_and_needs_the_admin():
    api = "http://127.0.0.1:15672/api/whoami"
    assert http_status(BROKER, api, "admin", secret("rabbitmq/admin")) == 200
    assert http_status(BROKER, api, "admin", "wrong-" + secret("rabbitmq/admin")) == 401
    assert http_status(BROKER, api, "eterna", secret("rabbitmq/eterna")) == 401, "the app user has no management tag"
    assert node(CLIENT).run(f"nc -z -w 3 {BROKER} 15672").rc != 0


def test_plain_amqp_is_loopback_only():
    assert node(BROKER).socket("tcp://127.0.0.1:5672").is_listening
    assert node(CLIENT).run(f"nc -z -w 3 {BROKER} 5672").rc != 0
    assert node(CLIENT).run(f"nc -z -w 3 {BROKER} 5671").rc == 0


def test_metrics_endpoint_exposes_rabbitmq_series():
    out = node(CLIENT).check_output(f"curl -sf http://{BROKER}:15692/metrics")
    series = {line.split("{")[0].split(" ")[0] for line in out.splitlines() if not line.startswith("#")}
    assert "rabbitmq_identity_info" in series
    assert len([s for s in series if s.startswith("rabbitmq_")]) > 20


def test_persistent_messages_survive_a_restart():
    quorum = f"durable-q-{uuid.uuid4().hex[:8]}"
    classic = f"durable-c-{uuid.uuid4().hex[:8]}"
    assert probe("publish", queue=quorum, count=5, prefix=quorum)[0] == 0
    assert probe("publish", queue=classic, queue_type="classic", count=5, prefix=classic)[0] == 0
    assert broker_queues()[classic]["type"] == "classic"
    node(BROKER).check_output("systemctl restart rabbitmq-server")
    wait_for_broker()
    rc, out = probe("consume", queue=quorum, count=5)
    assert rc == 0, out
    assert out["bodies"] == [f"{quorum}-{i}" for i in range(5)]
    rc, out = probe("consume", queue=classic, queue_type="classic", count=5)
    assert rc == 0, out
    assert out["bodies"] == [f"{classic}-{i}" for i in range(5)]


def test_confirmed_messages_survive_kill_9():
    """Publisher confirms hold through a crash: kill -9 right after the last confirm, nothing lost.

    The queue is declared (by the first publish) 2 s before the crash: Ra keeps a new quorum queue's registration
    in memory for up to 500 ms (roles/rabbitmq/README.md, "A quorum queue's first half second").
    """
    queue = f"crash-q-{uuid.uuid4().hex[:8]}"
    assert probe("publish", queue=queue, count=1, prefix=f"{queue}-first")[0] == 0
    time.sleep(2)
    assert probe("publish", queue=queue, count=5, prefix=queue)[0] == 0
    broker = node(BROKER)
    pid = broker.check_output("systemctl show -p MainPID --value rabbitmq-server")
    broker.check_output(f"kill -9 {pid}")
    for _ in range(60):
        new_pid = broker.check_output("systemctl show -p MainPID --value rabbitmq-server")
        if new_pid not in ("0", pid):
            break
        time.sleep(2)
    wait_for_broker()
    rc, out = probe("consume", queue=queue, count=6)
    assert rc == 0, out
    assert out["bodies"] == [f"{queue}-first-0"] + [f"{queue}-{i}" for i in range(5)]


@pytest.mark.parametrize(
    ("path", "mode", "owner", "group"),
    [
        ("/var/lib/rabbitmq/.erlang.cookie", 0o400, "rabbitmq", "rabbitmq"),
        ("/etc/rabbitmq/definitions.json", 0o640, "root", "rabbitmq"),
        ("/etc/rabbitmq/rabbitmq.conf", 0o640, "root", "rabbitmq"),
        ("/etc/rabbitmq/tls/rabbitmq.key", 0o640, "rabbitmq", "rabbitmq"),
    ],
)
def test_secret_file_modes(path, mode, owner, group):
    f = node(BROKER).file(path)
    assert f.exists
    assert f.mode == mode
    assert f.user == owner
    assert f.group == group


def test_erlang_cookie_is_derived():
    cookie = node(BROKER).check_output("cat /var/lib/rabbitmq/.erlang.cookie")
    assert cookie == secret("rabbitmq/erlang_cookie", length=32)
