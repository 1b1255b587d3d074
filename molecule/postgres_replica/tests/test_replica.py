"""Streaming replication: the standby follows the primary over TLS through its slot and refuses writes."""

# ruff: noqa: S608 - the SQL is built from identifiers the tests generate (uuid4), never from input.

from __future__ import annotations

import shlex
import time
import uuid

from eterna_testinfra import node, pg_cluster

# journalctl -u takes a pattern: the cluster of whichever PostgreSQL version the release ships.
JOURNAL_UNITS = ["postgresql@*-main.service"]
JOURNAL_HOSTS = ["postgres_replica-primary", "postgres_replica-standby"]

PRIMARY = "postgres_replica-primary"
STANDBY = "postgres_replica-standby"
SLOT = "postgres_replica_standby"


def sql(host: str, statement: str, db: str = "eterna"):
    return node(host).run(f"runuser -u postgres -- psql -X -A -t -d {db} -c {shlex.quote(statement)}")


def value(host: str, statement: str, db: str = "eterna") -> str:
    res = sql(host, statement, db)
    assert res.rc == 0, res.stderr
    return res.stdout.strip()


def test_roles():
    assert value(PRIMARY, "SELECT pg_is_in_recovery()") == "f"
    assert value(STANDBY, "SELECT pg_is_in_recovery()") == "t"
    assert node(STANDBY).file(f"{pg_cluster(STANDBY)['data']}/standby.signal").exists


def test_row_written_on_primary_appears_on_standby():
    marker = uuid.uuid4().hex
    value(PRIMARY, "CREATE TABLE IF NOT EXISTS replication_probe (marker text)")
    value(PRIMARY, f"INSERT INTO replication_probe VALUES ('{marker}')")
    deadline = time.monotonic() + 10
    seen = ""
    while time.monotonic() < deadline:
        seen = sql(STANDBY, f"SELECT count(*) FROM replication_probe WHERE marker = '{marker}'").stdout.strip()
        if seen == "1":
            break
        time.sleep(0.5)
    assert seen == "1", "the row did not reach the standby within 10 s"


def test_standby_refuses_writes():
    res = sql(STANDBY, "CREATE TABLE must_fail (id int)")
    assert res.rc != 0
    assert "read-only transaction" in res.stderr


def test_streaming_over_tls_through_the_slot():
    row = value(
        PRIMARY,
        "SELECT r.application_name, r.state, s.ssl, r.usename FROM pg_stat_replication r "
        "JOIN pg_stat_ssl s ON s.pid = r.pid",
        db="postgres",
    )
    assert row == f"{SLOT}|streaming|t|replicator"
    assert value(PRIMARY, f"SELECT active FROM pg_replication_slots WHERE slot_name = '{SLOT}'", db="postgres") == "t"
    conninfo = value(STANDBY, "SHOW primary_conninfo", db="postgres")
    assert "sslmode=verify-full" in conninfo
    assert "password" not in conninfo


def test_replication_lag_is_exposed():
    out = node(PRIMARY).check_output(
        f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{STANDBY}:9187/metrics', timeout=10)"
        '.read().decode())"'
    )
    metrics = dict(line.rsplit(" ", 1) for line in out.splitlines() if line.startswith("pg_replication_"))
    lag = next(v for k, v in metrics.items() if k.startswith("pg_replication_lag"))
    is_replica = next(v for k, v in metrics.items() if k.startswith("pg_replication_is_replica"))
    assert float(lag) >= 0
    assert is_replica == "1"
    assert "\npg_up 1\n" in f"\n{out}"


def test_replication_password_file_mode():
    f = node(STANDBY).file("/var/lib/postgresql/.pgpass")
    assert (f.user, f.group, f.mode) == ("postgres", "postgres", 0o600)


def test_slot_wal_is_bounded_and_exposed():
    """max_slot_wal_keep_size bounds the WAL the standby's slot holds; the exporter shows it for the alert."""
    assert value(PRIMARY, "SHOW max_slot_wal_keep_size", db="postgres") == "10GB"
    out = node(PRIMARY).check_output(
        f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{PRIMARY}:9187/metrics', timeout=10)"
        '.read().decode())"'
    )
    samples = {
        line.split("{", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in out.splitlines()
        if line.startswith("pg_replication_slot_wal_") and f'slot_name="{SLOT}"' in line
    }
    assert samples["pg_replication_slot_wal_limit_bytes"] == 10 * 1024**3
    assert samples["pg_replication_slot_wal_lost"] == 0
    assert 0 <= samples["pg_replication_slot_wal_retained_bytes"] < 10 * 1024**3
