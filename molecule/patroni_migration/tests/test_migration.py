"""The primary/replica layout migrated to Patroni by docs/operations-failover.md's steps (side_effect.yml): the old
primary leads with its own data directory (same system identifier: no initdb), every row written before the
migration is on every member, and a write through the router lands on the old primary and reaches both replicas.

Waits have generous deadlines so a loaded host does not fail them; no duration is asserted.
"""

# ruff: noqa: S608 - the SQL is built from constants and a uuid the tests generate, never from input.

from __future__ import annotations

import json
import os
import shlex
import uuid
from pathlib import Path

import pytest
from eterna_testinfra import node, patroni_members, secrets, wait_until

JOURNAL_UNITS = ["patroni@*.service", "etcd.service", "haproxy.service"]
JOURNAL_HOSTS = ["patroni_migration-db1", "patroni_migration-db2", "patroni_migration-db3", "patroni_migration-client"]

OLD_PRIMARY = "patroni_migration-db1"
OLD_REPLICAS = ["patroni_migration-db2", "patroni_migration-db3"]
MEMBERS = [OLD_PRIMARY, *OLD_REPLICAS]
CLIENT = "patroni_migration-client"
MASTER_KEY = "4fdfdb9da08744734653f0afb7572f18f00923fa88ba3e943ada45facf1877ec"
CA = "/etc/ssl/certs/ca-certificates.crt"
WAIT = 300  # seconds: a liveness bound for a loaded host, not a performance figure
ROWS_SQL = "SELECT count(*), md5(string_agg(id || ':' || payload, ',' ORDER BY id)) FROM migration_rows"


def password(purpose: str) -> str:
    return secrets().derive_secret(MASTER_KEY, purpose)


def before() -> dict:
    """What side_effect.yml recorded on the primary before the migration."""
    return json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "migration-before.json").read_text())


def cluster() -> list[dict]:
    """patronictl's member list, asked on the first member that answers."""
    return patroni_members(MEMBERS)


def member_sql(host: str, statement: str, db: str = "postgres") -> str:
    res = node(host).run(f"runuser -u postgres -- psql -X -A -t -d {db} -c {shlex.quote(statement)}")
    assert res.rc == 0, res.stderr
    return res.stdout.strip()


def client_sql(statement: str):
    """psql on the client through the router's read-write port, TLS verified, SCRAM login."""
    conninfo = (
        f"host=127.0.0.1 port=5000 dbname=eterna user=eterna sslmode=verify-full sslrootcert={CA} connect_timeout=5"
    )
    return node(CLIENT).run(
        f"PGPASSWORD={shlex.quote(password('postgres/eterna'))} psql -X -A -t -v ON_ERROR_STOP=1 "
        f"{shlex.quote(conninfo)} -c {shlex.quote(statement)}"
    )


def address(host: str) -> str:
    return node(host).check_output("hostname -I").split()[0]


def old_primary_leads_streaming_replicas() -> bool:
    """Three members, the old primary the running leader, both old replicas streaming on its timeline with a known
    lag (Patroni 4 says "streaming", 3.0 "running")."""
    members = {m["Member"]: m for m in cluster()}
    lead = members.get(OLD_PRIMARY, {})
    return (
        sorted(members) == MEMBERS
        and lead.get("Role") == "Leader"
        and lead.get("State") == "running"
        and all(
            members[r]["Role"] in ("Replica", "Sync Standby")
            and members[r]["State"] in ("streaming", "running")
            and members[r].get("TL") == lead.get("TL")
            and isinstance(members[r].get("Lag in MB"), (int, float))
            for r in OLD_REPLICAS
        )
    )


def test_the_old_primary_leads_both_old_replicas():
    assert wait_until(old_primary_leads_streaming_replicas, WAIT), cluster()
    rows = member_sql(OLD_PRIMARY, "SELECT application_name, state FROM pg_stat_replication ORDER BY 1").splitlines()
    assert rows == [f"{r}|streaming" for r in OLD_REPLICAS], rows


def test_every_member_holds_the_old_cluster_not_a_new_one():
    """Patroni started the old primary's data directory as it was (no initdb) and cloned the replicas from it."""
    for host in MEMBERS:
        sysid = member_sql(host, "SELECT system_identifier FROM pg_control_system()")
        assert sysid == before()["system_identifier"], host


def test_every_row_written_before_the_migration_is_on_every_member():
    expected = f"{before()['rows']}|{before()['md5']}"
    assert before()["rows"] == 10000
    assert member_sql(OLD_PRIMARY, ROWS_SQL, db="eterna") == expected
    for host in OLD_REPLICAS:
        assert wait_until(lambda h=host: member_sql(h, ROWS_SQL, db="eterna") == expected, WAIT), host


def test_a_write_through_the_router_lands_on_the_old_primary_and_reaches_the_replicas():
    marker = uuid.uuid4().hex
    res = client_sql(
        "CREATE TABLE IF NOT EXISTS router_probe (marker text PRIMARY KEY); "
        f"INSERT INTO router_probe VALUES ('{marker}'); "
        "SELECT inet_server_addr(), ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    )
    assert res.rc == 0, res.stderr
    server, ssl = res.stdout.strip().splitlines()[-1].split("|")
    assert server.split("/")[0] == address(OLD_PRIMARY) and ssl == "t"
    probe = f"SELECT count(*) FROM router_probe WHERE marker = '{marker}'"
    for host in OLD_REPLICAS:
        assert wait_until(lambda h=host: member_sql(h, probe, db="eterna") == "1", WAIT), host


@pytest.mark.parametrize("host", MEMBERS)
def test_the_postgres_role_settings_still_apply(host):
    settings = member_sql(
        host,
        "SELECT current_setting('password_encryption'), current_setting('ssl'), "
        "current_setting('shared_preload_libraries'), current_setting('data_checksums'), "
        "current_setting('log_destination')",
    )
    encryption, ssl, preload, checksums, log_destination = settings.split("|")
    assert encryption == "scram-sha-256" and ssl == "on" and checksums == "on", settings
    assert "pgaudit" in preload and log_destination == "jsonlog", settings
    # Patroni runs the cluster: Debian's unit neither starts it (start.conf) nor is enabled any more.
    assert node(host).check_output("grep -v '^#' /etc/postgresql/*/main/start.conf").strip() == "manual"
    unit = node(host).check_output("pg_lsclusters --no-header").split()[0]
    assert node(host).run(f"systemctl is-enabled postgresql@{unit}-main").stdout.strip() != "enabled"


def test_the_rewind_role_exists_and_logs_in_to_the_leader():
    """Patroni creates its rewind role only when it runs initdb itself; a cluster started from existing data gets it
    from the patroni role, with the grants pg_rewind needs (a failover's old leader rewinds as that role)."""
    leader = address(OLD_PRIMARY)
    conninfo = f"host={leader} dbname=postgres user=rewind sslmode=verify-full sslrootcert={CA} connect_timeout=5"
    res = node(OLD_REPLICAS[0]).run(
        f"PGPASSWORD={shlex.quote(password('postgres/rewind'))} psql -X -A -t -v ON_ERROR_STOP=1 "
        f"{shlex.quote(conninfo)} -c \"SELECT count(*) > 0 FROM pg_ls_dir('.', false, false)\""
    )
    assert res.rc == 0 and res.stdout.strip() == "t", res.stderr
