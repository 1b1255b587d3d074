"""The Debian 12 -> 13 upgrade (playbooks/upgrade_release.yml) seen from the other containers: PostgreSQL 17 serves the
rows written on 15 over TLS with SCRAM, the replica was cloned again from it and streams (the rows of 15 and a row
written after the upgrade), the new pgBackRest stanza backs up and restores, Redis kept its key, RabbitMQ 4.0 came
back with its users, vhost and policies, the app serves on Python 3.13 the house its owner wrote on Debian 12; the
playbook refused while a queue held a message, changed nothing in check mode, and changed nothing when run again on
the upgraded hosts.

The side effect (side_effect.yml) wrote the data on Debian 12 and ran the playbook; it left each run's output, exit
code and the hosts' fingerprints around the runs that must change nothing in the ephemeral directory.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import uuid
from pathlib import Path

import pytest
from eterna_testinfra import curl, node, secrets, wait_until

DB, REPLICA, DATA, APP = "upgrade-db", "upgrade-replica", "upgrade-data", "upgrade-app"
JOURNAL_UNITS = [
    "postgresql@17-main",
    "redis-server",
    "rabbitmq-server",
    "pgbackrest",
    "eterna-backup-drill",
    "seaweedfs*",
    "eterna-api",
    "eterna-worker",
]
JOURNAL_HOSTS = [DB, REPLICA, DATA, APP]
CA = "/usr/local/share/ca-certificates/eterna-internal-ca.crt"
PROBE = "/usr/local/bin/amqp_probe.py"
EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
ROWS = "SELECT count(*) || ':' || md5(string_agg(id || '=' || body, ',' ORDER BY id)) FROM upgrade_probe"
# The same digest computed from what side_effect.yml inserted on Debian 12: ids 1..5000, body md5(id).
EXPECTED_ROWS = "SELECT md5(string_agg(g || '=' || md5(g::text), ',' ORDER BY g)) FROM generate_series(1, 5000) g"
TLS_SESSION = (
    "SELECT current_setting('server_version_num')::int / 10000, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
)
HBA_METHODS = "SELECT DISTINCT type || ' ' || auth_method FROM pg_hba_file_rules WHERE type LIKE 'host%'"
STALE_EXTENSIONS = (
    "SELECT x.extname FROM pg_extension x JOIN pg_available_extensions a ON a.name = x.extname "
    "WHERE a.default_version IS DISTINCT FROM x.extversion"
)


def secret(purpose: str) -> str:
    return secrets().derive_secret(node(DB).ansible.get_variables()["eterna_master_key"], purpose)


def ok(host: str, cmd: str) -> str:
    res = node(host).run(cmd)
    assert res.rc == 0, f"{host}: {cmd}\nrc={res.rc}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def local_psql(sql: str, db: str = "postgres", host: str = DB) -> str:
    """psql as postgres on a db host itself (catalog checks the application's role may not read)."""
    return ok(host, f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {db} -c {shlex.quote(sql)}").strip()


def remote_psql(sql: str, *, password: str | None = None, sslmode: str = "verify-full"):
    """psql on the data host against the db host, as the application's role."""
    conninfo = (
        f"host={DB} port=5432 dbname=eterna user=eterna sslmode={sslmode} "
        "sslrootcert=/etc/ssl/certs/ca-certificates.crt connect_timeout=10"
    )
    pw = secret("postgres/eterna") if password is None else password
    return node(DATA).run(
        f"PGPASSWORD={shlex.quote(pw)} psql {shlex.quote(conninfo)} -XAtq -v ON_ERROR_STOP=1 -c {shlex.quote(sql)}"
    )


def run_result(name: str) -> dict:
    path = EPHEMERAL / f"upgrade-{name}.json"
    assert path.exists(), f"the side effect did not record the {name} run ({path})"
    return json.loads(path.read_text())


def run_log(name: str) -> str:
    return (EPHEMERAL / f"upgrade-{name}.log").read_text()


def fingerprint(name: str) -> dict:
    return json.loads((EPHEMERAL / f"fingerprint-{name}.json").read_text())


def recap(log: str) -> dict[str, dict[str, int]]:
    """PLAY RECAP counters per host of an ansible-playbook output."""
    out = {}
    for line in log.split("PLAY RECAP", 1)[1].splitlines():
        m = re.match(r"^(\S+)\s+:\s+(.*)$", line.strip())
        if m:
            out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
    return out


@pytest.mark.parametrize("host", [DB, REPLICA, DATA, APP])
def test_hosts_run_debian_13(host):
    assert node(host).check_output("cat /etc/debian_version").startswith("13.")
    assert "VERSION_CODENAME=trixie" in node(host).check_output("cat /etc/os-release")
    assert node(host).file("/var/lib/eterna-upgrade/os-done").exists
    # The bookworm sources are kept for the rollback, the live ones name trixie only.
    assert node(host).file("/var/lib/eterna-upgrade/apt-sources-bookworm.tar").exists
    sources = node(host).check_output("cat /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null || true")
    assert "trixie" in sources
    assert "bookworm" not in sources


def test_postgresql_17_serves_the_rows_written_on_15_over_tls_with_scram():
    res = remote_psql(TLS_SESSION)
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "17|t"
    res = remote_psql(ROWS)
    assert res.rc == 0, res.stderr
    count, digest = res.stdout.strip().split(":")
    assert count == "5000"
    assert digest == local_psql(EXPECTED_ROWS)


def test_postgresql_17_refuses_a_wrong_password_and_plain_tcp():
    res = remote_psql("SELECT 1", password="not-the-password-" + uuid.uuid4().hex)
    assert res.rc != 0
    assert "password authentication failed" in res.stderr
    res = remote_psql("SELECT 1", sslmode="disable")
    assert res.rc != 0
    rules = local_psql(HBA_METHODS)
    assert "hostssl scram-sha-256" in rules.split("\n")
    assert not {"host trust", "host md5", "hostssl md5", "hostssl trust"} & set(rules.split("\n"))


def test_the_replica_was_cloned_again_and_streams_from_the_primary_on_17():
    # Its 15 cluster was dropped, not kept: the data is the primary's.
    clusters = [line.split()[:4] for line in ok(REPLICA, "pg_lsclusters --no-header").splitlines()]
    assert clusters == [["17", "main", "5432", "online,recovery"]], clusters
    recovery = "SELECT current_setting('server_version_num')::int / 10000, pg_is_in_recovery()"
    assert local_psql(recovery, host=REPLICA) == "17|t"
    # The primary sees it streaming, on the slot the postgres role named after it.
    streaming = (
        "SELECT s.slot_name || ':' || r.state FROM pg_stat_replication r "
        "JOIN pg_replication_slots s ON s.active_pid = r.pid"
    )
    assert local_psql(streaming) == "upgrade_replica:streaming"


def test_the_replica_holds_the_rows_written_on_15_and_a_row_written_after_the_upgrade():
    count, digest = local_psql(ROWS, "eterna", host=REPLICA).split(":")
    assert count == "5000"
    assert digest == local_psql(EXPECTED_ROWS)
    token = uuid.uuid4().hex
    # A uuid of the test in the SQL, no outside input.
    insert = f"INSERT INTO upgrade_after VALUES ('{token}')"  # noqa: S608
    local_psql(
        f"SET ROLE eterna; CREATE TABLE IF NOT EXISTS upgrade_after (token text PRIMARY KEY); {insert}", "eterna"
    )
    seen = f"SELECT count(*) FROM upgrade_after WHERE token = '{token}'"  # noqa: S608
    # Replay is asynchronous: the row arrives once the replica has applied the primary's WAL.
    assert wait_until(lambda: local_psql(seen, "eterna", host=REPLICA) == "1", timeout=120)


def test_the_old_cluster_is_kept_stopped_and_manual():
    clusters = [line.split() for line in ok(DB, "pg_lsclusters --no-header").splitlines()]
    by_version = {c[0]: c for c in clusters}
    assert by_version["17"][3] == "online" and by_version["17"][2] == "5432"
    assert by_version["15"][3] == "down"
    assert ok(DB, "cat /etc/postgresql/15/main/start.conf").strip().endswith("manual")


def test_extensions_follow_the_new_packages():
    assert local_psql(STALE_EXTENSIONS, "eterna") == ""
    assert "pgaudit" in local_psql("SHOW shared_preload_libraries")


def test_the_stanza_was_upgraded_and_backed_up_on_17():
    info = json.loads(ok(DATA, "cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --output=json info"))[0]
    versions = [db["version"] for db in info["db"]]
    assert versions[0] == "15" and versions[-1] == "17"
    current = info["db"][-1]["id"]
    assert [b for b in info["backup"] if b["database"]["id"] == current and b["type"] == "full"]
    # Backups of 15 are kept: they restore into 15 (the rollback).
    assert [b for b in info["backup"] if b["database"]["id"] != current]
    ok(DATA, "cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --log-level-console=warn check")


def test_a_restore_drill_of_the_new_backup_passes():
    # eterna-backup pg-drill: the newest backup restored into a scratch PostgreSQL 17, the consistency manifest and
    # amcheck checked; the unit fails when any of it does.
    ok(DATA, "systemctl start eterna-backup-drill.service")
    assert "17" in ok(DATA, "ls /usr/lib/postgresql")


def test_redis_kept_its_key_and_runs_redis_8():
    cli = f"redis-cli --no-auth-warning --tls --cacert {CA} -h {DATA} -p 6380 --user eterna"
    res = node(DB).run(f"REDISCLI_AUTH={shlex.quote(secret('redis/eterna'))} {cli} GET upgrade:probe")
    assert res.rc == 0, res.stderr
    assert res.stdout.strip() == "written-on-debian-12"
    assert node(DATA).check_output("redis-server --version").split("v=")[1].startswith("8.")
    assert node(DATA).service("redis-server").is_running
    assert not node(DATA).package("valkey-server").is_installed


def probe(action: str, **options) -> tuple[int, dict]:
    args = " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in options.items())
    res = node(DB).run(
        f"AMQP_PASSWORD={shlex.quote(secret('rabbitmq/eterna'))} python3 {PROBE} {action} --host {DATA} {args}"
    )
    lines = res.stdout.strip().splitlines()
    assert lines, res.stderr
    return res.rc, json.loads(lines[-1])


def test_rabbitmq_4_came_back_with_users_vhost_and_policies():
    assert node(DATA).check_output("rabbitmqctl -q version").startswith("4.0")
    users = {u["user"] for u in json.loads(node(DATA).check_output("rabbitmqctl -q list_users --formatter json"))}
    assert {"eterna", "admin"} <= users
    assert "guest" not in users
    vhosts = {v["name"] for v in json.loads(node(DATA).check_output("rabbitmqctl -q list_vhosts --formatter json"))}
    assert "eterna" in vhosts
    policies = json.loads(node(DATA).check_output("rabbitmqctl -q list_policies -p eterna --formatter json"))
    assert [p for p in policies if p["name"] == "upgrade-ttl" and p["pattern"] == "^upgrade-"]
    # 3.10's data is kept beside, never deleted.
    assert node(DATA).file("/var/lib/rabbitmq/mnesia-3.10").is_directory


def test_a_client_publishes_and_consumes_on_rabbitmq_4():
    queue = f"after-upgrade-{uuid.uuid4().hex[:8]}"
    rc, out = probe("publish", queue=queue, count=5, prefix=queue)
    assert rc == 0, out
    rc, out = probe("consume", queue=queue, count=5)
    assert rc == 0, out
    assert out["bodies"] == [f"{queue}-{i}" for i in range(5)]


API = f"http://{APP}:8000"


def test_the_app_is_ready_from_another_container():
    # /health/ready opens a connection to each store, all of them upgraded: PostgreSQL 17, Redis 8, RabbitMQ 4.0, S3.
    status, body = curl(DB, f"{API}/health/ready")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["failed"] == [], answer["checks"]
    assert sorted(answer["checks"]) == ["postgresql", "rabbitmq", "redis", "s3"]


def test_the_app_runs_its_python_3_13_release():
    app = node(APP)
    # The role names the release after its Python: the one deployed on Debian 12 (3.11) is kept as the previous one.
    assert app.check_output("readlink -f /opt/eterna-app/current").endswith("-py313")
    assert app.check_output("readlink -f /opt/eterna-app/previous").endswith("-py311")
    pid = app.check_output("systemctl show -p MainPID --value eterna-api")
    assert app.check_output(f"readlink /proc/{pid}/exe") == "/usr/bin/python3.13"


def test_the_owner_lists_the_house_written_on_debian_12_and_creates_another():
    fields = ("--data-urlencode", "username=owner@upgrade.test")
    fields += ("--data-urlencode", "password=" + secret("molecule/upgrade-owner"))
    status, body = curl(DB, f"{API}/api/v1/auth/token", "POST", extra=fields)
    assert status == 200, body
    token = json.loads(body)["access_token"]
    status, body = curl(DB, f"{API}/api/v1/houses", token=token)
    assert status == 200, body
    assert "Written on Debian 12" in [h["name"] for h in json.loads(body)], body
    name = f"Written on Debian 13 {uuid.uuid4().hex[:8]}"
    status, body = curl(
        DB, f"{API}/api/v1/houses", "POST", body={"name": name, "address": "13 Trixie Street"}, token=token
    )
    assert status == 201, body
    status, body = curl(DB, f"{API}/api/v1/houses?limit=500", token=token)
    assert status == 200, body
    assert name in [h["name"] for h in json.loads(body)], body


def test_the_upgrade_was_refused_while_a_queue_held_a_message():
    assert run_result("refused")["rc"] != 0
    log = run_log("refused")
    assert "eterna/upgrade-held (1 messages)" in log
    assert "upgrade_rabbitmq_discard_messages" in log
    # Refused in the preflight: no host changed.
    assert fingerprint("after-refused") == fingerprint("before-refused")


def test_check_mode_on_debian_12_changed_nothing():
    assert run_result("check")["rc"] == 0, run_log("check")[-3000:]
    before = fingerprint("before-check")
    assert all(any(line.startswith("release 12.") for line in lines) for lines in before.values())
    assert fingerprint("after-check") == before


def test_a_second_run_on_the_upgraded_hosts_changes_nothing():
    assert run_result("upgrade")["rc"] == 0
    assert run_result("rerun")["rc"] == 0
    counters = recap(run_log("rerun"))
    assert set(counters) >= {DB, REPLICA, DATA, APP}
    assert {host: c["changed"] for host, c in counters.items() if c["changed"]} == {}
    assert all(c["failed"] == 0 for c in counters.values())
