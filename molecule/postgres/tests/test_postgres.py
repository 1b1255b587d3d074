"""The postgres role seen from a client container: TLS + SCRAM only, derived credentials, tuning from RAM,
pgaudit in the JSON log, the exporter, and the modes of files that hold secrets."""

# ruff: noqa: S608 - the SQL is built from identifiers the tests generate (uuid4), never from input.

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import uuid

import pytest
from eterna_testinfra import ROOT, ansible_env, node, pg_cluster, secrets

# journalctl -u takes a pattern: the cluster of whichever PostgreSQL version the release ships.
JOURNAL_UNITS = ["postgresql@*-main.service", "prometheus-postgres-exporter"]
JOURNAL_HOSTS = ["postgres-db"]

DB = "postgres-db"
CLIENT = "postgres-client"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


SECRETS = secrets()


def master_key() -> str:
    return node(DB).ansible.get_variables()["eterna_master_key"]


def password(purpose: str) -> str:
    return SECRETS.derive_secret(master_key(), purpose)


def psql(sql: str, *, user: str = "eterna", pw: str | None = None, db: str = "eterna", sslmode: str = "verify-full"):
    """Run psql on the client against the server; returns the testinfra command result."""
    conninfo = (
        f"host={DB} port=5432 dbname={db} user={user} sslmode={sslmode} sslrootcert={CA_BUNDLE} connect_timeout=5"
    )
    secret = password("postgres/eterna") if pw is None else pw
    flags = "-X -A -t -v ON_ERROR_STOP=1"
    cmd = f"PGPASSWORD={shlex.quote(secret)} psql {shlex.quote(conninfo)} {flags} -c {shlex.quote(sql)}"
    return node(CLIENT).run(cmd)


def query(sql: str, **kwargs) -> str:
    res = psql(sql, **kwargs)
    assert res.rc == 0, res.stderr
    return res.stdout.strip()


def local_query(sql: str, db: str = "postgres") -> str:
    """Query on the server as the postgres superuser over the local socket (peer)."""
    return node(DB).check_output(f"runuser -u postgres -- psql -X -A -t -d {db} -c {shlex.quote(sql)}").strip()


def test_the_release_s_postgresql_runs():
    """The role picks the version its release ships (_postgres_releases in vars/main.yml): the one
    postgresql-common of this release supports, and the only cluster is that version."""
    supported = node(DB).check_output("/usr/share/postgresql-common/supported-versions").split()
    clusters = node(DB).check_output("pg_lsclusters --no-header").splitlines()
    assert len(clusters) == 1, clusters
    assert pg_cluster(DB)["version"] == supported[-1]
    assert local_query("SHOW server_version_num")[: len(supported[-1])] == supported[-1]


@pytest.mark.parametrize("unit", ["cluster", "prometheus-postgres-exporter"])
def test_services_run_and_start_at_boot(unit):
    svc = node(DB).service(pg_cluster(DB)["unit"] if unit == "cluster" else unit)
    assert svc.is_running
    assert svc.is_enabled


def test_app_writes_and_reads_over_verified_tls():
    table = f"probe_{uuid.uuid4().hex[:8]}"
    out = query(
        f"CREATE TABLE {table} (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), note text);"
        f"INSERT INTO {table} (note) VALUES ('hello');"
        f"SELECT note FROM {table};"
        f"SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid();"
        f"DROP TABLE {table};"
    )
    lines = out.splitlines()
    assert "hello" in lines
    ssl_line = next(line for line in lines if line.startswith("t|"))
    assert ssl_line.split("|")[1] in ("TLSv1.2", "TLSv1.3")


def test_plain_tcp_is_refused():
    res = psql("SELECT 1", sslmode="disable")
    assert res.rc != 0
    assert "no encryption" in res.stderr


def test_wrong_password_is_refused():
    res = psql("SELECT 1", pw="not-the-password-" + uuid.uuid4().hex)
    assert res.rc != 0
    assert "password authentication failed" in res.stderr


def test_remote_superuser_is_refused():
    res = psql("SELECT 1", user="postgres", db="postgres", pw="whatever")
    assert res.rc != 0
    assert "rejects connection" in res.stderr


def test_passwords_are_the_precomputed_scram_verifiers():
    for user, purpose in [
        ("eterna", "postgres/eterna"),
        ("replicator", "postgres/replicator"),
        ("postgres_exporter", "postgres/exporter"),
    ]:
        stored = local_query(f"SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'")
        assert stored == SECRETS.postgres_scram(password(purpose), salt_seed=user)
    assert query("SHOW password_encryption") == "scram-sha-256"
    assert local_query("SHOW ssl_min_protocol_version") == "TLSv1.2"


def test_hba_is_scram_over_tls_only():
    rules = local_query("SELECT type || ' ' || auth_method FROM pg_hba_file_rules WHERE type LIKE 'host%'")
    for rule in rules.splitlines():
        kind, method = rule.split()
        assert (kind, method) in {("hostssl", "scram-sha-256"), ("hostnossl", "reject"), ("hostssl", "reject")}, rule


def test_tuning_follows_the_memory_formula():
    mem_kb = int(node(DB).check_output("awk '/^MemTotal:/ {print $2}' /proc/meminfo"))
    mem_mb = mem_kb // 1024
    shared_mb = mem_mb // 4
    expected_kb = {
        "shared_buffers": shared_mb * 1024,
        "effective_cache_size": mem_mb * 3 // 4 * 1024,
        "maintenance_work_mem": min(mem_mb // 16, 2048) * 1024,
        "work_mem": max((mem_mb - shared_mb) * 1024 // (100 * 3), 4096),
        "wal_buffers": max(min(shared_mb * 1024 * 3 // 100, 16384), 64),
    }
    names = ", ".join(f"pg_size_bytes(current_setting('{n}')) / 1024" for n in expected_kb)
    actual = [int(v) for v in query(f"SELECT {names}").split("|")]
    assert dict(zip(expected_kb, actual, strict=True)) == expected_kb
    other = query(
        "SELECT current_setting('random_page_cost'), current_setting('effective_io_concurrency'), "
        "current_setting('checkpoint_completion_target'), current_setting('max_connections')"
    )
    assert other.split("|") == ["1.1", "200", "0.9", "100"]


def test_data_checksums_and_extensions():
    assert query("SHOW data_checksums") == "on"
    extensions = set(query("SELECT extname FROM pg_extension").split())
    assert {"pg_stat_statements", "pgcrypto", "uuid-ossp", "pgaudit"} <= extensions


def test_public_schema_is_not_writable_by_everyone():
    acl = local_query("SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'", db="eterna")
    public_entries = [e for e in acl.strip("{}").split(",") if e.startswith("=")]
    assert all("C" not in e.split("/")[0] for e in public_entries), acl


def test_ddl_is_audited_in_the_json_log():
    table = f"audit_probe_{uuid.uuid4().hex[:8]}"
    query(f"CREATE TABLE {table} (id int); DROP TABLE {table};")
    out = node(DB).check_output(f"cat {pg_cluster(DB)['json_log_glob']} | grep -F {shlex.quote(table)} || true")
    records = [json.loads(line) for line in out.splitlines()]
    audit = [r for r in records if r["message"].startswith("AUDIT: SESSION") and "CREATE TABLE" in r["message"]]
    assert audit, out
    assert audit[0]["user"] == "eterna"
    assert audit[0]["dbname"] == "eterna"


def test_exporter_reports_up_from_the_client_only_on_the_private_address():
    out = node(CLIENT).check_output(
        f"python3 -c \"import urllib.request; print(urllib.request.urlopen('http://{DB}:9187/metrics', timeout=10)"
        '.read().decode())"'
    )
    assert "\npg_up 1\n" in f"\n{out}"
    assert "pg_replication_lag" in out
    listeners = node(DB).check_output("ss -Hltn 'sport = :9187'")
    assert "0.0.0.0:9187" not in listeners and "*:9187" not in listeners and "127.0.0.1:9187" not in listeners


@pytest.mark.parametrize(
    ("path", "owner", "group", "mode"),
    [
        ("/etc/postgresql/tls/postgres.key", "root", "postgres", 0o640),
        ("/etc/postgresql/tls/postgres.crt", "root", "postgres", 0o644),
        ("/etc/default/prometheus-postgres-exporter", "root", "prometheus", 0o640),
        ("{conf}/pg_hba.conf", "postgres", "postgres", 0o640),
        # Lynis DBS-1828: no configuration file of the cluster readable by other users.
        *[
            (f"{{conf}}/{name}", "postgres", "postgres", 0o640)
            for name in (
                "postgresql.conf",
                "conf.d/00-eterna.conf",
                "pg_ctl.conf",
                "pg_ident.conf",
                "start.conf",
                "environment",
            )
        ],
    ],
)
def test_secret_file_modes(path, owner, group, mode):
    f = node(DB).file(path.format(conf=pg_cluster(DB)["conf"]))
    assert f.exists
    assert (f.user, f.group, f.mode) == (owner, group, mode)


def test_settings_stay_in_conf_d():
    conf_dir = pg_cluster(DB)["conf"]
    conf = node(DB).file(f"{conf_dir}/postgresql.conf").content_string
    assert "include_dir = 'conf.d'" in conf
    assert node(DB).file(f"{conf_dir}/conf.d/00-eterna.conf").exists


def run_postgres_play(extra: dict, *args: str, timeout: int) -> subprocess.CompletedProcess:
    """Run playbooks/services/postgres.yml on the scenario's inventory with ``extra`` as extra vars (JSON)."""
    return subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            str(ROOT / "playbooks" / "services" / "postgres.yml"),
            "-e",
            json.dumps(extra),
            *args,
        ],
        cwd=ROOT,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_new_major_version_over_the_cluster_is_refused():
    """Asking for the next major version over the release's cluster stops in preflight with a pointer to the upgrade."""
    installed = pg_cluster(DB)["version"]
    other = str(int(installed) + 1)
    res = run_postgres_play({"postgres_version": int(other)}, "--tags", "preflight", timeout=600)
    assert res.returncode != 0
    assert f"pg_upgradecluster {installed} main" in " ".join((res.stdout + res.stderr).split())
    assert not node(DB).file(f"/var/lib/postgresql/{other}").exists


def test_a_run_limited_to_other_tags_passes():
    """A run whose tags name none of the play's tasks (``--tags redis``, a phase without PostgreSQL) passes and
    changes nothing: Ansible checks a role's arguments under every tag, also those made of results of tasks the tags
    skipped (pg_hba.conf's result, which config_apply takes)."""
    res = run_postgres_play({}, "--tags", "redis", timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert re.search(r"changed=0\s+unreachable=0\s+failed=0", res.stdout), res.stdout[-3000:]


@pytest.mark.parametrize(
    ("extra", "complaint"),
    [
        ({"postgres_settings": {"no_such_setting": 1}}, "no_such_setting: unrecognized configuration parameter"),
        (
            {
                "postgres_hba_extra": [
                    {
                        "contype": "hostssl",
                        "address": "10.99.0.0/16",
                        "method": "scram-sha-256",
                        "options": "no_such_option=1",
                    }
                ]
            },
            "no_such_option",
        ),
    ],
    ids=["settings", "pg_hba"],
)
def test_refused_configuration_is_rolled_back(extra, complaint):
    """_common's config_apply: a settings file or pg_hba.conf the running server refuses fails the run with the
    server's words, and both live files are back byte for byte, the server still serves, no backup copy is left."""
    conf = pg_cluster(DB)["conf"]
    files = f"{conf}/conf.d/00-eterna.conf {conf}/pg_hba.conf"
    before = node(DB).check_output(f"sha256sum {files}")
    res = run_postgres_play(extra, "--skip-tags", "tls,exporter", timeout=900)
    output = " ".join((res.stdout + res.stderr).split())
    assert res.returncode != 0, output[-3000:]
    assert "The new configuration was refused and the previous files were put back" in output, output[-3000:]
    assert complaint in output, output[-3000:]
    assert node(DB).check_output(f"sha256sum {files}") == before
    assert node(DB).run(f"find {conf} -name '*~'").stdout == "", "backup files left behind"
    assert query("SELECT 1") == "1"
