"""Patroni: writes reach the leader through the router, failover keeps every acknowledged write, the old leader
rejoins as a replica, and etcd and the REST API refuse unauthenticated clients.

The tests run in file order: the checks of the healthy cluster first, then the faults (kill -9 of the leader's
postmaster, a planned switchover, the leader's container stopped, the leader cut off the network with nftables).
Waits have generous deadlines so a loaded host does not fail them; failover times are measured by
benchmarks/failover.py, never asserted here.
"""

# ruff: noqa: S608 - the SQL is built from integers and identifiers the tests generate, never from input.

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time

import pytest
from eterna_testinfra import ROOT, ansible_env, node, patroni_members, secrets

JOURNAL_UNITS = ["patroni@*.service", "etcd.service", "haproxy.service"]
JOURNAL_HOSTS = ["patroni-db1", "patroni-db2", "patroni-db3", "patroni-client"]

MEMBERS = ["patroni-db1", "patroni-db2", "patroni-db3"]
CLIENT = "patroni-client"
MASTER_KEY = "4fdfdb9da08744734653f0afb7572f18f00923fa88ba3e943ada45facf1877ec"
CA = "/etc/ssl/certs/ca-certificates.crt"
WAIT = 240  # seconds: a liveness bound for a loaded host, not a performance figure
# Members cut off the network: patronictl there cannot reach etcd, so the cluster is asked elsewhere.
ISOLATED: set[str] = set()


def password(purpose: str) -> str:
    return secrets().derive_secret(MASTER_KEY, purpose)


def patroni_config(host: str) -> str:
    return node(host).check_output("ls /etc/patroni/*-main.yml").strip()


def cluster(via: str | None = None) -> list[dict]:
    """patronictl's member list, asked on the first running member, not cut off, that answers."""
    return patroni_members(h for h in ([via] if via else MEMBERS) if running(h) and h not in ISOLATED)


def running(host: str) -> bool:
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", host], capture_output=True, text=True)
    return out.stdout.strip() == "true"


def leader(via: str | None = None) -> str | None:
    return next((m["Member"] for m in cluster(via) if m["Role"] == "Leader"), None)


def client_sql(statement: str, port: int = 5000, extra: str = "") -> subprocess.CompletedProcess:
    """psql on the client through the router (read-write 5000, read-only 5001), TLS verified, SCRAM login."""
    conninfo = (
        f"host=127.0.0.1 port={port} dbname=eterna user=eterna sslmode=verify-full sslrootcert={CA} "
        f"connect_timeout=5 {extra}"
    )
    return node(CLIENT).run(
        f"PGPASSWORD={shlex.quote(password('postgres/eterna'))} psql -X -A -t -v ON_ERROR_STOP=1 "
        f"{shlex.quote(conninfo)} -c {shlex.quote(statement)}"
    )


def member_sql(host: str, statement: str, db: str = "postgres") -> str:
    res = node(host).run(f"runuser -u postgres -- psql -X -A -t -d {db} -c {shlex.quote(statement)}")
    assert res.rc == 0, res.stderr
    return res.stdout.strip()


def address(host: str) -> str:
    return node(host).check_output("hostname -I").split()[0]


def wait_for(predicate, what: str, timeout: int = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    pytest.fail(f"{what} did not happen within {timeout} s; cluster: {cluster()}")


def writable_members() -> list[str]:
    """Members whose PostgreSQL accepts writes right now (never more than one)."""
    out = []
    for host in MEMBERS:
        if not running(host):
            continue
        res = node(host).run("runuser -u postgres -- psql -X -A -t -d postgres -c 'SELECT pg_is_in_recovery()'")
        if res.rc == 0 and res.stdout.strip() == "f":
            out.append(host)
    return out


def healthy_cluster() -> bool:
    """Three members, one running leader, and every replica replicating on the leader's timeline with a known lag
    (Patroni 4 says "streaming", 3.0 "running"; a demoted leader also runs before its rewind, on its old timeline)."""
    members = cluster()
    leaders = [m for m in members if m["Role"] == "Leader" and m["State"] == "running"]
    return (
        len(members) == 3
        and len(leaders) == 1
        and all(m["State"] in ("streaming", "running") and m.get("TL") == leaders[0].get("TL") for m in members)
        and all(isinstance(m.get("Lag in MB"), (int, float)) for m in members if m is not leaders[0])
    )


# ---------------------------------------------------------------------------------------------------------------
# the healthy cluster


def test_three_members_one_leader_streaming_replicas():
    wait_for(healthy_cluster, "a healthy cluster")
    members = cluster()
    roles = sorted(m["Role"] for m in members)
    assert roles.count("Leader") == 1
    # Synchronous mode (the scenario sets it): one replica is the synchronous standby.
    assert "Sync Standby" in roles, members


def test_etcd_cluster_has_three_healthy_members():
    host = node(MEMBERS[0])
    out = host.check_output(
        "etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/etcd/tls/ca.crt --cert=/etc/etcd/tls/etcd.crt "
        "--key=/etc/etcd/tls/etcd.key member list -w json"
    )
    members = json.loads(out)["members"]
    assert sorted(m["name"] for m in members) == MEMBERS
    assert all(url.startswith("https://") for m in members for url in m["clientURLs"] + m["peerURLs"])


def test_etcd_refuses_a_client_without_a_certificate():
    db1 = address(MEMBERS[0])
    body = '\'{"key": "Lw=="}\''
    # Without a client certificate the TLS handshake is refused (curl: 35 handshake, 56 receive failure; 55 send
    # failure with Debian 12's curl 7.88 and etcd 3.4, which drop the connection as the request is sent).
    res = node(CLIENT).run(f"curl -s --cacert {CA} --max-time 10 -X POST https://{db1}:2379/v3/kv/range -d {body}")
    assert res.rc in (35, 55, 56) and res.stdout == "", (res.rc, res.stdout, res.stderr)
    # Plain HTTP is not served on the client port either.
    plain = node(CLIENT).run(f"curl -s --max-time 10 -X POST http://{db1}:2379/v3/kv/range -d {body}")
    assert '"header"' not in plain.stdout
    # The same endpoint with a member's certificate answers: the refusal is about the certificate.
    ok = node(MEMBERS[1]).run(
        f"etcdctl --endpoints=https://{db1}:2379 --cacert=/etc/etcd/tls/ca.crt --cert=/etc/etcd/tls/etcd.crt "
        "--key=/etc/etcd/tls/etcd.key get /eterna --prefix --keys-only"
    )
    assert ok.rc == 0 and "/eterna/" in ok.stdout, ok.stderr


def test_rest_api_refuses_unauthenticated_changes():
    api = f"https://{address(MEMBERS[0])}:8008"
    client = node(CLIENT)
    # Reading the state needs no password.
    assert client.check_output(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {CA} {api}/cluster") == "200"
    for method, path, body in [
        ("PATCH", "/config", '{"ttl": 5}'),
        ("POST", "/switchover", '{"candidate": "patroni-db2"}'),
        ("POST", "/restart", "{}"),
        ("POST", "/reinitialize", "{}"),
    ]:
        for auth in ["", "-u patroni:wrong-password"]:
            code = client.check_output(
                f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {CA} {auth} -X {method} {api}{path} -d '{body}'"
            )
            assert code == "401", f"{method} {path} {auth or 'without credentials'} answered {code}"
    # Nothing changed: the TTL is still the role's.
    config = json.loads(client.check_output(f"curl -s --cacert {CA} {api}/config"))
    assert config["ttl"] != 5
    # Plain HTTP is refused on the API port.
    assert client.run(f"curl -s --max-time 5 http://{address(MEMBERS[0])}:8008/cluster").stdout == ""


def test_writes_through_the_router_reach_the_leader():
    res = client_sql(
        "SELECT inet_server_addr(), pg_is_in_recovery(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    )
    assert res.rc == 0, res.stderr
    server, recovery, ssl = res.stdout.strip().split("|")
    assert server.split("/")[0] == address(leader())
    assert recovery == "f" and ssl == "t"
    res = client_sql("CREATE TABLE IF NOT EXISTS router_probe (id int); INSERT INTO router_probe VALUES (1)")
    assert res.rc == 0, res.stderr


def test_read_only_port_reaches_a_replica():
    res = wait_for(
        lambda: (r := client_sql("SELECT pg_is_in_recovery()", port=5001)).rc == 0 and r, "a read-only session"
    )
    assert res.stdout.strip() == "t"
    refused = client_sql("CREATE TABLE must_fail (id int)", port=5001)
    assert refused.rc != 0 and "read-only" in refused.stderr


def test_router_refuses_plain_text_and_wrong_password():
    plain = client_sql("SELECT 1", extra="sslmode=disable")
    assert plain.rc != 0
    wrong = node(CLIENT).run(
        "PGPASSWORD=wrong psql -X -A -t 'host=127.0.0.1 port=5000 dbname=eterna user=eterna sslmode=require' "
        "-c 'SELECT 1'"
    )
    assert wrong.rc != 0 and "password authentication failed" in wrong.stderr


def test_postgres_role_settings_apply_on_every_member():
    for host in MEMBERS:
        settings = member_sql(
            host,
            "SELECT current_setting('shared_preload_libraries'), current_setting('ssl'), "
            "current_setting('password_encryption'), current_setting('max_slot_wal_keep_size'), "
            "current_setting('log_destination'), current_setting('data_checksums')",
        )
        preload, ssl, encryption, keep, log_destination, checksums = settings.split("|")
        assert "pgaudit" in preload and ssl == "on" and encryption == "scram-sha-256", (host, settings)
        assert keep == "10GB" and log_destination == "jsonlog" and checksums == "on", (host, settings)
        # Patroni never lets Debian's unit start a second copy of the cluster.
        assert node(host).check_output("cat /etc/postgresql/*/main/start.conf | grep -v '^#'").strip() == "manual"


def test_replication_is_tls_through_patroni_slots():
    lead = leader()
    rows = member_sql(
        lead,
        "SELECT r.application_name, s.ssl, r.usename, r.sync_state FROM pg_stat_replication r "
        "JOIN pg_stat_ssl s ON s.pid = r.pid ORDER BY 1",
    ).splitlines()
    assert len(rows) == 2, rows
    assert all(row.split("|")[1:3] == ["t", "replicator"] for row in rows), rows
    assert any(row.endswith("|sync") for row in rows), rows
    slots = member_sql(lead, "SELECT slot_name FROM pg_replication_slots WHERE active ORDER BY 1").splitlines()
    assert len(slots) == 2, slots


def test_secrets_files_are_private():
    for host in MEMBERS:
        config = node(host).file(patroni_config(host))
        assert config.user == "postgres" and config.mode == 0o600
        assert node(host).file("/etc/patroni/tls/patroni.key").mode == 0o640
        assert node(host).file("/etc/etcd/tls/etcd.key").mode == 0o640


def test_exporter_reports_each_member():
    for host in MEMBERS:
        out = node(CLIENT).check_output(f"curl -s --max-time 10 http://{address(host)}:9187/metrics")
        assert "pg_up 1" in out, host


def test_a_refused_member_file_is_explained_without_its_passwords():
    """A member file Patroni's validator refuses (here: etcd on a port nobody serves) stops the run before it is
    written, with the validator's reason in the output and none of the file's passwords, even with -vvv."""
    before = {host: node(host).check_output(f"sha1sum {patroni_config(host)}") for host in MEMBERS}
    res = subprocess.run(
        [
            "ansible-playbook",
            "-vvv",
            "--check",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(ROOT / "playbooks" / "services" / "patroni.yml"),
            "-e",
            json.dumps({"patroni_etcd_port": 1}),
        ],
        cwd=ROOT,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert "Validate the changed member configuration with Patroni" in out
    assert ":1 is not reachable" in out, out[-3000:]
    for purpose in ["patroni/restapi", "postgres/superuser", "postgres/replicator", "postgres/rewind"]:
        assert password(purpose) not in out, purpose
    assert {host: node(host).check_output(f"sha1sum {patroni_config(host)}") for host in MEMBERS} == before


# ---------------------------------------------------------------------------------------------------------------
# faults, with a writer on the client recording every acknowledged id

WRITER = "/root/failover-writer"


def start_writer(table: str) -> None:
    assert client_sql(f"CREATE TABLE IF NOT EXISTS {table} (id int PRIMARY KEY)").rc == 0
    script = (
        f"rm -f {WRITER}.acked {WRITER}.stop; i=0; while [ ! -e {WRITER}.stop ]; do i=$((i+1)); "
        f"if psql -X -q 'host=127.0.0.1 port=5000 dbname=eterna user=eterna sslmode=verify-full "
        f"sslrootcert={CA} connect_timeout=3' -c 'INSERT INTO {table} VALUES ('$i')' >/dev/null 2>&1; "
        f"then echo $i >> {WRITER}.acked; fi; sleep 0.05; done"
    )
    node(CLIENT).check_output(
        f"PGPASSWORD={shlex.quote(password('postgres/eterna'))} nohup bash -c {shlex.quote(script)} >/dev/null 2>&1 &"
    )
    wait_for(lambda: acked_count() >= 5, "the first acknowledged writes")


def acked() -> list[int]:
    out = node(CLIENT).run(f"cat {WRITER}.acked").stdout
    return [int(line) for line in out.split()]


def acked_count() -> int:
    return len(acked())


def stop_writer() -> list[int]:
    node(CLIENT).run(f"touch {WRITER}.stop")
    time.sleep(2)
    return acked()


def assert_no_acknowledged_write_lost(table: str) -> None:
    ids = stop_writer()
    assert ids, "the writer recorded no acknowledged write"
    stored = wait_for(lambda: (r := client_sql(f"SELECT id FROM {table}")).rc == 0 and r, "a read through the router")
    present = {int(v) for v in stored.stdout.split()}
    missing = sorted(set(ids) - present)
    assert not missing, f"{len(missing)} acknowledged ids lost: {missing[:20]}"


def watch_failover(old: str, table: str, *, expect_new_leader: bool) -> str:
    """Wait for a leader (a new one when expect_new_leader) and for writes to resume, checking all along that no
    two members accept writes at once."""
    before = acked_count()

    def settled():
        writers = writable_members()
        assert len(writers) <= 1, f"two writable members at once: {writers}"
        lead = leader()
        if not lead or (expect_new_leader and lead == old):
            return None
        return lead if acked_count() > before + 5 else None

    return wait_for(settled, f"a leader and resumed writes after losing {old}")


def rejoined_as_replica(host: str) -> bool:
    member = next((m for m in cluster() if m["Member"] == host), None)
    return (
        bool(member) and member["Role"] in ("Replica", "Sync Standby") and member["State"] in ("streaming", "running")
    )


def same_timeline(host: str) -> bool:
    members = {m["Member"]: m for m in cluster()}
    lead = next((m for m in members.values() if m["Role"] == "Leader"), None)
    return bool(lead) and host in members and members[host].get("TL") == lead.get("TL")


def test_kill_leader_postmaster_fails_over_without_losing_acknowledged_writes():
    old = leader()
    start_writer("failover_kill")
    pid = member_sql(old, "SELECT pg_postmaster_start_time() IS NOT NULL")  # the server answers
    assert pid == "t"
    node(old).check_output("kill -9 $(head -1 /var/lib/postgresql/*/main/postmaster.pid)")
    new = watch_failover(old, "failover_kill", expect_new_leader=True)
    assert new != old
    assert_no_acknowledged_write_lost("failover_kill")
    # The old leader comes back by itself as a replica (pg_rewind onto the new timeline when it diverged).
    # The old leader comes back by itself as a replica on the new leader's timeline (Patroni rewinds it with
    # pg_rewind when it diverged, else it simply follows).
    wait_for(lambda: rejoined_as_replica(old), f"{old} rejoining as a replica")
    wait_for(lambda: same_timeline(old), f"{old} following the new timeline")


def test_planned_switchover_through_the_authenticated_api():
    wait_for(healthy_cluster, "a healthy cluster")
    old = leader()
    # After the previous test's fault the leader may not have named its synchronous standby yet (seen on Debian 12).
    candidate = wait_for(
        lambda: next((m["Member"] for m in cluster() if m["Role"] == "Sync Standby"), None), "a synchronous standby"
    )
    start_writer("failover_switchover")
    api = f"https://{address(old)}:8008"
    body = json.dumps({"leader": old, "candidate": candidate})
    code = node(CLIENT).check_output(
        f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {CA} -u patroni:{shlex.quote(password('patroni/restapi'))} "
        f"-X POST {api}/switchover -d {shlex.quote(body)}"
    )
    assert code == "200", code
    new = watch_failover(old, "failover_switchover", expect_new_leader=True)
    assert new == candidate
    assert_no_acknowledged_write_lost("failover_switchover")
    wait_for(lambda: rejoined_as_replica(old), f"{old} rejoining as a replica")
    wait_for(lambda: same_timeline(old), f"{old} following the new timeline")


def test_stopped_leader_container_fails_over_and_rejoins():
    wait_for(healthy_cluster, "a healthy cluster")
    old = leader()
    start_writer("failover_stop")
    subprocess.run(["docker", "stop", "-t", "1", old], check=True, capture_output=True)
    try:
        new = watch_failover(old, "failover_stop", expect_new_leader=True)
        assert new != old
        assert_no_acknowledged_write_lost("failover_stop")
    finally:
        subprocess.run(["docker", "start", old], check=True, capture_output=True)
    # systemd in the container starts etcd and Patroni again; the member catches up as a replica.
    wait_for(lambda: rejoined_as_replica(old), f"{old} rejoining as a replica")
    wait_for(lambda: same_timeline(old), f"{old} following the new timeline")
    wait_for(healthy_cluster, "a healthy cluster after the rejoin")


def test_leader_cut_off_the_network_is_replaced_and_rejoins():
    """nftables drops every packet in and out of the leader (its PostgreSQL, Patroni and etcd member): the members
    that still hold etcd's majority elect the synchronous standby once the leader key expires; the isolated leader,
    which can reach neither etcd nor the other members, demotes itself, so it never accepts writes beside the new
    leader (watch_failover checks every second, through docker exec, which needs no network)."""
    wait_for(healthy_cluster, "a healthy cluster")
    old = leader()
    start_writer("failover_partition")
    since = node(old).check_output("date '+%Y-%m-%d %H:%M:%S'").strip()
    node(old).check_output("eterna-partition on")
    ISOLATED.add(old)
    try:
        # The cut is real: the client reaches neither the old leader's PostgreSQL nor its REST API.
        assert node(CLIENT).run(f"curl -s --max-time 3 --cacert {CA} https://{address(old)}:8008/health").rc != 0
        new = watch_failover(old, "failover_partition", expect_new_leader=True)
        assert new != old
        # Still cut off, the old leader no longer accepts writes (Patroni demoted it without etcd).
        wait_for(lambda: old not in writable_members(), f"the isolated {old} refusing writes")
        assert writable_members() == [new]
        assert_no_acknowledged_write_lost("failover_partition")
    finally:
        node(old).run("eterna-partition off")
        ISOLATED.discard(old)
    wait_for(lambda: rejoined_as_replica(old), f"{old} rejoining as a replica")
    wait_for(lambda: same_timeline(old), f"{old} following the new timeline")
    wait_for(healthy_cluster, "a healthy cluster after the rejoin")
    # Its demotion (a fast shutdown, whose checkpoint the others never received) diverged from the new timeline:
    # Patroni rewound it with pg_rewind rather than cloning it again.
    patroni_log = node(old).run(f"journalctl -u 'patroni@*' --since '{since}' --no-pager").stdout
    assert "pg_rewind exit code=0" in patroni_log, patroni_log[-3000:]
