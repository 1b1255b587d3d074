"""Faults on the whole stack (issues #24 section 7 and #22): a healthy stack is quiet; every service the collection
runs comes back by itself after ``kill -9`` of its main process, Prometheus sees it go down and its alert resolve
after, and no acknowledged write is lost (a Redis key, a persistent RabbitMQ message in a durable queue); and when the
PostgreSQL leader's host freezes, Patroni promotes the other member and the app serves again through the router
without a restart, with no acknowledged row lost (synchronous replication).

The restart delay is the collection's (5 s, ``eterna_service_restart_sec``), shorter than Prometheus's scrape
interval (15 s in the lab inventory, which this scenario uses): a 5 s outage may fall between two scrapes. So that
every outage is seen, a test raises RestartSec of the killed unit for its duration, to 5 s more than the interval, with
a runtime drop-in under /run (the unit's own ``Restart=`` still decides whether it comes back); the drop-in is removed
afterwards. Waits poll with generous bounds and assert no timing.

Each outage's own alert must be seen pending (its rule matched the outage) or firing. The alerts' ``for`` (1-2 min)
is not waited out for each service: that would add about 20 minutes to the run and prove only Prometheus's ``for``
arithmetic again. The leader failover's own alert (PatroniFailover, no ``for``) must fire.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shlex
import subprocess
import time
import uuid
from collections.abc import Callable

import pytest
from eterna_testinfra import curl, node, patroni_members, secrets, wait_until

JOURNAL_UNITS = [
    "patroni@*.service",
    "haproxy",
    "nginx",
    "eterna-api",
    "eterna-worker",
    "rabbitmq-server",
    "prometheus",
]
JOURNAL_HOSTS = ["stack-db1", "stack-db2", "stack-data", "stack-edge", "stack-app1", "stack-ops"]

EDGE, CLIENT, DATA, APP = "stack-edge", "stack-ops", "stack-data", "stack-app1"
MEMBERS, APPS = ("stack-db1", "stack-db2"), ("stack-app1", "stack-app2")
PROMETHEUS = f"https://{CLIENT}:9090"
# Alerts that fire on purpose on a healthy system (a dead man's switch); the rules have none today.
ALWAYS_ON = {"Watchdog"}
# Generous bound for a killed service to be back (it is usually back in seconds).
BACK_WITHIN = 300
# After the service is back, how long the test keeps looking for the outage in Prometheus: the last scrape that saw
# it down stays the latest sample until the next scrape, and a rule evaluation must fall in between.
SEEN_WITHIN = 90
FAULT_DROPIN = "zz-eterna-fault-test.conf"
# Files Docker bind-mounts into each container from the disk of the machine running it.
DOCKER_BIND_MOUNTS = {"/etc/hosts", "/etc/hostname", "/etc/resolv.conf"}


@functools.cache
def master_key() -> str:
    return node(CLIENT).ansible.get_variables()["eterna_master_key"]


@functools.cache
def interval() -> int:
    """Prometheus's scrape and rule evaluation interval in the inventory (seconds, the longer of the two).

    Raises ValueError when either is not ``<n>s`` or ``<n>m`` (the role's preflight accepts ``h`` too, which no test
    would wait for).
    """
    variables = node(CLIENT).ansible.get_variables()
    units = {"s": 1, "m": 60}
    seconds = []
    for name in ("prometheus_scrape_interval", "prometheus_evaluation_interval"):
        value = str(variables.get(name, "30s"))  # the role's default
        if value[-1:] not in units or not value[:-1].isdigit():
            raise ValueError(f"{name}: {value!r}")
        seconds.append(int(value[:-1]) * units[value[-1]])
    return max(seconds)


def hold() -> int:
    """RestartSec held during a fault (seconds): longer than the interval, so a scrape sees the outage."""
    return interval() + 5


def derived(purpose: str) -> str:
    return secrets().derive_secret(master_key(), purpose)


def prometheus(path: str, **params: str) -> dict:
    """``data`` of a Prometheus HTTP API answer, asked from the ops host with the UI credentials."""
    args = " ".join(f"--data-urlencode {shlex.quote(f'{k}={v}')}" for k, v in params.items())
    out = node(CLIENT).check_output(
        f"curl -sf -G -u admin:{shlex.quote(derived('prometheus/admin'))} {args} {PROMETHEUS}{path}"
    )
    return json.loads(out)["data"]


def query(expr: str) -> list[dict]:
    return prometheus("/api/v1/query", query=expr)["result"]


def alerts() -> list[dict]:
    """Pending and firing alerts (labels, state) as Prometheus evaluates them."""
    return prometheus("/api/v1/alerts")["alerts"]


def alert_line(alert: dict) -> str:
    labels = alert["labels"]
    rest = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
    return f"{labels['alertname']}{{{rest}}} {alert['state']}"


def targets_down() -> list[str]:
    active = prometheus("/api/v1/targets", state="active")["activeTargets"]
    return [t["scrapeUrl"] for t in active if t["health"] != "up"]


def unit_down(host: str, unit: str) -> bool:
    """The unit is not running (killed, waiting for its restart)."""
    return node(host).run(f"systemctl is-active --quiet {unit}").rc != 0


def unit_state(host: str, unit: str) -> dict[str, str]:
    out = node(host).check_output(f"systemctl show -p ActiveState,SubState,MainPID,NRestarts,Restart {unit}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


# --- A healthy stack is quiet -------------------------------------------------------------------------------------


def about_the_docker_hosts_disk(alert: dict) -> bool:
    """A disk alert about the disk of the machine running the tests: a container's root filesystem (an overlay) or one
    of the files Docker bind-mounts into every container from that disk (``/etc/hosts``, ``/etc/hostname``,
    ``/etc/resolv.conf``; ext4 here).

    That disk is not the stack's: image builds and other scenarios fill it, and HostDiskFillingUp then fires
    rightly about it. On the VMs the collection targets, ``/`` is a real filesystem and those files are not mount
    points, so the exemption never applies.
    """
    labels = alert["labels"]
    return labels["alertname"].startswith("HostDisk") and (
        labels.get("fstype") == "overlay" or labels.get("mountpoint") in DOCKER_BIND_MOUNTS
    )


def test_a_healthy_stack_is_quiet_after_a_quiet_minute(capsys):
    assert wait_until(lambda: not targets_down(), 300, 10), targets_down()
    time.sleep(2 * interval())  # two rule evaluations with every target up
    raised = [a for a in alerts() if a["labels"]["alertname"] not in ALWAYS_ON]
    with capsys.disabled():
        print(
            "\nalerts about the test machine's own disk:",
            [alert_line(a) for a in raised if about_the_docker_hosts_disk(a)],
        )
    noisy = [alert_line(a) for a in raised if not about_the_docker_hosts_disk(a)]
    assert not noisy, noisy


# --- Each managed service comes back after kill -9 ----------------------------------------------------------------


def answers(probe: Callable[[], object]) -> bool:
    """The probe's truth, False when it raises (a command failing while the service is down)."""
    try:
        return bool(probe())
    except (AssertionError, RuntimeError, ValueError, KeyError, IndexError):
        return False


def sh(host: str, cmd: str) -> bool:
    return node(host).run(cmd).rc == 0


def answers_on_private_address(host: str, port: int) -> bool:
    """``/metrics`` on ``port`` answers on the host's private address (its first address, as the roles bind it)."""
    return sh(host, f"curl -sf -o /dev/null http://$(hostname -I | awk '{{print $1}}'):{port}/metrics")


def redis_cli(cmd: str) -> str:
    """A command to Redis/Valkey on the data host as the admin user (the release's client)."""
    data = node(DATA)
    cli = "valkey-cli" if data.exists("valkey-cli") else "redis-cli"
    env = f"REDISCLI_AUTH={shlex.quote(derived('redis/admin'))}"
    return data.check_output(f"{env} {cli} --no-auth-warning --user admin -h 127.0.0.1 -p 6379 {cmd}").strip()


def rabbitmq_api(method: str, path: str, body: dict | None = None) -> tuple[int, str]:
    return curl(
        DATA,
        f"http://127.0.0.1:15672/api{path}",
        method,
        extra=("-u", f"admin:{derived('rabbitmq/admin')}"),
        body=body,
    )


_TOKEN: dict[str, tuple[float, str]] = {}


def owner_token() -> str:
    """An access token of the demo tenant's owner, logged in again after 10 minutes (tokens last 15)."""
    if "owner" not in _TOKEN or time.monotonic() - _TOKEN["owner"][0] > 600:
        email, password = "owner@demo.eterna.test", derived("lab/demo-owner")
        out = node(CLIENT).check_output(
            f"curl -sf --data-urlencode username={email} --data-urlencode password={shlex.quote(password)} "
            f"https://{EDGE}/api/v1/auth/token"
        )
        _TOKEN["owner"] = (time.monotonic(), json.loads(out)["access_token"])
    return _TOKEN["owner"][1]


def api(method: str, path: str, body: dict | None = None, form: dict | None = None) -> tuple[int, str]:
    return curl(CLIENT, f"https://{EDGE}{path}", method, body=body, form=form, token=owner_token())


def status_of(method: str, path: str, **kwargs) -> int:
    """The HTTP status of one API call through the edge (0: no HTTP answer at all)."""
    try:
        return api(method, path, **kwargs)[0]
    except AssertionError:  # curl itself failed
        return 0


# Requests that need a dependency, sent while it is down: the API must answer 503 (with Retry-After), never 500.


@functools.cache
def stored_document() -> str:
    """A document uploaded (before any fault) for the download probe; its id."""
    node(CLIENT).check_output("printf 'fault probe\\n' > /tmp/fault-doc.txt")
    status, text = api("POST", "/api/v1/documents", form={"file": "@/tmp/fault-doc.txt"})
    assert status == 201, text
    return json.loads(text)["id"]


def download_document() -> int:
    return status_of("GET", f"/api/v1/documents/{stored_document()}/download")


def convert_new_model() -> int:
    """Upload a BIM model (PostgreSQL and S3 are up) and ask for its conversion (a Celery task through RabbitMQ)."""
    node(CLIENT).check_output("printf 'ISO-10303-21;\\nHEADER;\\nENDSEC;\\n' > /tmp/fault-model.ifc")
    status, text = api("POST", "/api/v1/bim-models", form={"file": "@/tmp/fault-model.ifc"})
    assert status == 201, text
    return status_of("POST", f"/api/v1/bim-models/{json.loads(text)['id']}/convert")


# Acknowledged writes made just before a kill, read back after the restart.


def write_house() -> Callable[[], None]:
    name = f"fault-{uuid.uuid4().hex[:8]}"
    status, text = api("POST", "/api/v1/houses", {"name": name, "address": "1 Crash Lane"})
    assert status == 201, text
    hid = json.loads(text)["id"]

    def check() -> None:
        # The app's pool drops its dead connections on first use: a 503 or two right after the restart is honest.
        answers = []
        assert wait_until(lambda: answers.append(api("GET", f"/api/v1/houses/{hid}")) or answers[-1][0] != 503, 60)
        status, text = answers[-1]
        assert status == 200 and json.loads(text)["name"] == name, (status, text)
        api("DELETE", f"/api/v1/houses/{hid}")

    return check


def write_redis_key() -> Callable[[], None]:
    value = uuid.uuid4().hex
    assert redis_cli(f"SET eterna:fault-probe {value}") == "OK"

    def check() -> None:
        assert redis_cli("GET eterna:fault-probe") == value, "the acknowledged key was lost"
        redis_cli("DEL eterna:fault-probe")

    return check


def write_rabbitmq_message() -> Callable[[], None]:
    queue, payload = "eterna.fault-probe", uuid.uuid4().hex
    status, text = rabbitmq_api("PUT", f"/queues/eterna/{queue}", {"durable": True, "auto_delete": False})
    assert status in (201, 204), text
    # RabbitMQ 4.0.5's Ra (2.14.0) writes a new quorum queue's registration (names.dets) to disk up to 500 ms
    # later (dets auto_save); a node killed inside that window restarts the queue as a new, empty member and loses
    # what was confirmed into it (seen here: killed 0-0.5 s after the declaration, 3 of 3 lost; 1-2 s, 0 of 5). An
    # app's queues are declared when its workers start, not in the second before a crash; see roles/rabbitmq/README.
    time.sleep(2)
    # The management API publishes in confirm mode: routed=true comes with the broker's ack.
    status, text = rabbitmq_api(
        "POST",
        "/exchanges/eterna/amq.default/publish",
        {"properties": {"delivery_mode": 2}, "routing_key": queue, "payload": payload, "payload_encoding": "string"},
    )
    assert status == 200 and json.loads(text)["routed"], text

    def check() -> None:
        status, text = rabbitmq_api(
            "POST", f"/queues/eterna/{queue}/get", {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}
        )
        assert status == 200, text
        assert [m["payload"] for m in json.loads(text)] == [payload], text
        rabbitmq_api("DELETE", f"/queues/eterna/{queue}")

    return check


def keep_prometheus_history() -> Callable[[], None]:
    """Samples Prometheus acknowledged (ingested) before its kill are still queryable after it (its WAL)."""
    before = f"{time.time() - 30:.3f}"
    count = prometheus("/api/v1/query", query="count(up)", time=before)["result"][0]["value"][1]

    def check() -> None:
        result = prometheus("/api/v1/query", query="count(up)", time=before)["result"]
        assert result and result[0]["value"][1] == count, result

    return check


def celery_consumers() -> int:
    return int(float(query('sum(rabbitmq_detailed_queue_consumers{queue="celery"})')[0]["value"][1]))


@dataclasses.dataclass
class Fault:
    """A service to kill: where, its unit, when it is back, what Prometheus shows while it is down."""

    name: str
    host: str
    unit: Callable[[], str]
    ready: Callable[[], bool]
    # PromQL that returns a series while the service is down (None: nobody is left to see it, e.g. Prometheus).
    down: str | None
    # Alerts of the outage (with the service's host among their labels): each must be seen pending or firing.
    alerts: tuple[str, ...] = ()
    write: Callable[[], Callable[[], None]] | None = None
    # A request that needs the service, sent a few times while it is down: 503, never 500.
    during: Callable[[], int] | None = None


FAULTS = [
    Fault(
        "redis",
        DATA,
        lambda: "valkey-server" if node(DATA).exists("valkey-server") else "redis-server",
        lambda: redis_cli("PING") == "PONG",
        f'redis_up{{host="{DATA}"}} == 0',
        ("RedisDown",),
        write=write_redis_key,
    ),
    Fault(
        "rabbitmq",
        DATA,
        lambda: "rabbitmq-server",
        lambda: sh(DATA, "rabbitmq-diagnostics -q check_running && rabbitmq-diagnostics -q check_local_alarms"),
        f'up{{job="rabbitmq", host="{DATA}"}} == 0',
        ("TargetDown",),
        write=write_rabbitmq_message,
        during=convert_new_model,
    ),
    Fault(
        "seaweedfs",
        DATA,
        lambda: "seaweedfs",
        # Its metrics listen on the private address only (seaweedfs_metrics_bind_address), like the exporters.
        lambda: answers_on_private_address(DATA, 9327),
        f'up{{job="objectstore", host="{DATA}"}} == 0',
        ("TargetDown",),
        during=download_document,
    ),
    Fault(
        "nginx",
        EDGE,
        lambda: "nginx",
        lambda: sh(CLIENT, f"curl -sf -o /dev/null https://{EDGE}/health"),
        f'nginx_up{{host="{EDGE}"}} == 0 or up{{job="nginx", host="{EDGE}"}} == 0',
        # The exporter keeps answering (nginx_up 0); the probe of the public URL through the edge fails.
        ("ProbeFailed",),
    ),
    Fault(
        "app-api",
        APP,
        lambda: "eterna-api",
        lambda: sh(APP, "curl -sf -o /dev/null http://127.0.0.1:8000/health"),
        f'up{{job="app", host="{APP}"}} == 0',
        ("TargetDown", "ProbeFailed"),
    ),
    Fault(
        "celery-worker",
        APP,
        lambda: "eterna-worker",
        lambda: sh(APP, "systemctl is-active -q eterna-worker"),
        # One worker per app host: the queue's consumers drop while this one is down. No alert is due: the other
        # app host's worker still consumes (CeleryWorkersAbsent is for a queue nobody consumes).
        'sum(rabbitmq_detailed_queue_consumers{queue="celery"}) < {consumers}',
    ),
    Fault(
        "node-exporter",
        DATA,
        lambda: "prometheus-node-exporter",
        lambda: answers_on_private_address(DATA, 9100),
        f'up{{job="node", host="{DATA}"}} == 0',
        ("NodeDown",),
    ),
    Fault(
        "alertmanager",
        CLIENT,
        lambda: "prometheus-alertmanager",
        lambda: sh(CLIENT, "systemctl is-active -q prometheus-alertmanager"),
        f'up{{job="alertmanager", host="{CLIENT}"}} == 0',
        ("TargetDown",),
    ),
    Fault(
        "prometheus",
        CLIENT,
        lambda: "prometheus",
        lambda: sh(CLIENT, "systemctl is-active -q prometheus") and bool(query("up")),
        None,
        write=keep_prometheus_history,
    ),
]


def hold_restart(host: str, unit: str, seconds: int | None) -> None:
    """Set (seconds) or remove (None) the test's runtime RestartSec drop-in of ``unit``."""
    h, path = node(host), f"/run/systemd/system/{unit}.service.d"
    if seconds is None:
        h.check_output(f"rm -f {path}/{FAULT_DROPIN} && systemctl daemon-reload")
    else:
        h.check_output(
            f"mkdir -p {path} && printf '[Service]\\nRestartSec={seconds}\\n' > {path}/{FAULT_DROPIN}"
            " && systemctl daemon-reload"
        )


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.name)
def test_a_killed_service_comes_back_and_prometheus_sees_the_outage(fault: Fault, capsys):
    unit, host = fault.unit(), node(fault.host)
    before = unit_state(fault.host, unit)
    assert before["ActiveState"] == "active" and before["MainPID"] != "0", before
    assert before["Restart"] != "no", f"{unit} would stay down: Restart={before['Restart']}"
    down = fault.down
    if down and "{consumers}" in down:
        down = down.replace("{consumers}", str(celery_consumers()))
    check = fault.write() if fault.write else None
    if fault.during is download_document:
        stored_document()  # uploaded while S3 is up
    seen_down, seen_alerts, answers_503 = False, set(), []
    expected = dict.fromkeys(fault.alerts, "pending")

    def all_seen() -> bool:
        if down and not seen_down:
            return False
        states = {name: {state for n, state in seen_alerts if n == name} for name in expected}
        return all(state in states[name] or "firing" in states[name] for name, state in expected.items())

    hold_restart(fault.host, unit, hold() if down else None)
    back_since = None
    try:
        host.check_output(f"kill -9 {before['MainPID']}")
        deadline = time.monotonic() + hold() + BACK_WITHIN
        while time.monotonic() < deadline:
            if down:
                seen_down = seen_down or bool(query(down))
                seen_alerts |= {
                    (a["labels"]["alertname"], a["state"])
                    for a in alerts()
                    if a["labels"]["alertname"] in fault.alerts and fault.host in json.dumps(a["labels"])
                }
            if fault.during and back_since is None and len(answers_503) < 3 and unit_down(fault.host, unit):
                answers_503.append(fault.during())
            if back_since is None:
                now = unit_state(fault.host, unit)
                if (
                    now["ActiveState"] == "active"
                    and now["MainPID"] not in ("0", before["MainPID"])
                    and answers(fault.ready)
                ):
                    back_since = time.monotonic()
            # Back, and the outage seen (or no longer findable: the scrape after the restart has replaced it).
            if back_since is not None and (all_seen() or time.monotonic() - back_since > SEEN_WITHIN):
                break
            time.sleep(3)
    finally:
        hold_restart(fault.host, unit, None)
    after = unit_state(fault.host, unit)
    with capsys.disabled():
        print(
            f"\n{fault.name}: {unit} restarts {before['NRestarts']} -> {after['NRestarts']}, seen down: {seen_down},"
            f" alerts seen: {sorted(seen_alerts)}, API during the outage: {answers_503}"
        )
    assert after["ActiveState"] == "active" and answers(fault.ready), after
    assert int(after["NRestarts"]) > int(before["NRestarts"]), "systemd did not restart it (someone else did?)"
    if down:
        assert seen_down, f"Prometheus never saw {fault.name} down ({down})"
    assert all_seen(), f"expected {expected}, seen {sorted(seen_alerts)}"
    if check:
        check()
    if fault.during:
        # The app answers an honest 503 while its dependency is down, never a 500.
        # (A success is possible only if the service came back between the check and the request.)
        assert 503 in answers_503 and set(answers_503) <= {503, 200, 201, 202}, answers_503

    # The outage's alerts resolve: Prometheus scrapes the service again and nothing about it stays pending.
    def resolved() -> bool:
        if down and query(down):
            return False
        return not [a for a in alerts() if a["labels"]["alertname"] in fault.alerts]

    assert wait_until(resolved, BACK_WITHIN, 5), [alert_line(a) for a in alerts()]


# --- The PostgreSQL leader's host freezes: Patroni fails over, the app serves on ----------------------------------

# Members frozen by the test: node() would hang on them, so the cluster is asked on the others.
FROZEN: set[str] = set()
# Generous bound for a failover and for a rejoin (Patroni's ttl is 20 s; a loaded machine is slower).
FAILOVER_WITHIN = 240


def docker(*args: str) -> None:
    subprocess.run(["docker", *args], check=True, capture_output=True, timeout=60)


def live_members() -> list[dict]:
    """Patroni's member list, asked on the members not frozen (node() would hang on a frozen one)."""
    return patroni_members(h for h in MEMBERS if h not in FROZEN)


def patroni_leader() -> str | None:
    return next((m["Member"] for m in live_members() if m["Role"] == "Leader" and m["State"] == "running"), None)


def healthy_pair() -> bool:
    """A running leader and the other member streaming from it on its timeline as the synchronous standby."""
    members = {m["Member"]: m for m in live_members()}
    leader = next((m for m in members.values() if m["Role"] == "Leader" and m["State"] == "running"), None)
    return (
        set(members) == set(MEMBERS)
        and leader is not None
        and all(
            m["Role"] == "Sync Standby" and m["State"] in ("streaming", "running") and m.get("TL") == leader.get("TL")
            for name, m in members.items()
            if name != leader["Member"]
        )
    )


def writable(host: str) -> bool:
    res = node(host).run("runuser -u postgres -- psql -X -A -t -d postgres -c 'SELECT pg_is_in_recovery()'")
    return res.rc == 0 and res.stdout.strip() == "f"


def test_the_app_serves_through_a_leader_failover(capsys):
    """``docker pause`` freezes the leader's host (PostgreSQL, Patroni, its etcd member, everything). HAProxy on the app
    hosts marks it down, Patroni promotes the synchronous standby once the leader key expires, and the API writes
    again through the same router: no restart of the app, no acknowledged row lost, never a 500. The frozen host comes
    back as a replica of the new leader; a switchover then puts the leader back where it was for the next tests."""
    assert wait_until(healthy_pair, FAILOVER_WITHIN, 3), live_members()
    old = patroni_leader()
    assert old is not None
    standby = next(h for h in MEMBERS if h != old)
    check = write_house()  # acknowledged before the fault
    api_before = {app: unit_state(app, "eterna-api") for app in APPS}
    statuses: list[int] = []
    written: list[str] = []
    docker("pause", old)
    FROZEN.add(old)
    started = time.monotonic()
    try:
        # Write through the edge until a write succeeds again (each try: a new house, 30 s at most).
        def writes() -> bool:
            try:
                house = {"name": f"failover-{uuid.uuid4().hex[:8]}", "address": "2 Failover Road"}
                status, text = api("POST", "/api/v1/houses", house)
            except AssertionError:  # curl itself failed: no HTTP answer within its 30 s
                status, text = 0, ""
            statuses.append(status)
            if status == 201:
                written.append(json.loads(text)["id"])
            return status == 201

        assert wait_until(writes, FAILOVER_WITHIN, 1), statuses
        serving_after = time.monotonic() - started
        assert patroni_leader() == standby, live_members()
        assert writable(standby)
        check()  # the house acknowledged before the fault is there (synchronous replication)
        api("DELETE", f"/api/v1/houses/{written[0]}")
    finally:
        docker("unpause", old)
        FROZEN.discard(old)
    # The old leader demotes itself and follows the new one (pg_rewind when it diverged): one writable member.
    assert wait_until(healthy_pair, FAILOVER_WITHIN, 3), live_members()
    assert [h for h in MEMBERS if writable(h)] == [standby]
    api_after = {app: unit_state(app, "eterna-api") for app in APPS}
    seen = wait_until(
        lambda: any(a["labels"]["alertname"] == "PatroniFailover" and a["state"] == "firing" for a in alerts()),
        SEEN_WITHIN,
        5,
    )
    answered = {code: statuses.count(code) for code in sorted(set(statuses))}
    restarts = {a: (api_before[a]["NRestarts"], api_after[a]["NRestarts"]) for a in APPS}
    with capsys.disabled():
        print(
            f"\nleader {old} frozen: {standby} leads; the API wrote again after {serving_after:.1f} s; answers while"
            f" waiting: {answered}; PatroniFailover firing: {seen}; eterna-api restarts: {restarts}"
        )
    # The app was not restarted: same main process, same restart count, on every app host.
    for app in APPS:
        assert (api_after[app]["MainPID"], api_after[app]["NRestarts"]) == (
            api_before[app]["MainPID"],
            api_before[app]["NRestarts"],
        ), (app, api_before[app], api_after[app])
    # Never a 500 or a dead app (502): 503 while no leader is reachable (0: no answer within curl's 30 s).
    assert not set(statuses) & {500, 502}, statuses
    assert seen, [alert_line(a) for a in alerts()]

    # Put the leader back where the converge left it (a planned switchover to the synchronous standby).
    h = node(standby)
    config = h.check_output("ls /etc/patroni/*-main.yml").split()[0]
    h.check_output(f"patronictl -c {config} switchover --leader {standby} --candidate {old} --force")
    assert wait_until(lambda: patroni_leader() == old and healthy_pair(), FAILOVER_WITHIN, 3), live_members()
