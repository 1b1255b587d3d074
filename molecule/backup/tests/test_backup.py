"""The backup role, exercised for real: backups, PITR into the drill's scratch instance, drills that must fail
on a wrong passphrase or a corrupted backup, a disaster recovery of the primary, host exports and the S3 mirror.

The PostgreSQL tests share one module fixture that seeds data and takes a backup; they run in file order and the
disaster recovery comes last, because it moves the cluster to a new timeline.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from eterna_testinfra import node, pg_cluster, secrets

JOURNAL_UNITS = [
    "pgbackrest",
    "eterna-backup-full",
    "eterna-backup-drill",
    "eterna-backup-files",
    "eterna-backup-objectstore",
]
JOURNAL_HOSTS = ["backup-repo", "backup-db"]

DB, REPO, S3 = "backup-db", "backup-repo", "backup-s3"
ROOT = Path(__file__).resolve().parents[3]
TOOL = "/usr/local/sbin/eterna-backup"
DRILL_PSQL = "runuser -u pgbackrest -- psql -XAtq -h /var/lib/eterna-backup/drill/run -p 5499 -U postgres"
RCLONE = "runuser -u pgbackrest -- rclone --config /etc/eterna-backup/rclone.conf"
STATS_SQL = "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '') FROM {table} t"
EVENTS_COUNT = "SELECT count(*) FROM events"
ITEMS_BY_BATCH = "SELECT batch, count(*), min(id), max(id) FROM items GROUP BY 1 ORDER BY 1"
MASTER_KEY = "4fdfdb9da08744734653f0afb7572f18f00923fa88ba3e943ada45facf1877ec"


def derive(purpose: str, **kw) -> str:
    return secrets().derive_secret(MASTER_KEY, purpose, **kw)


def sh(host: str, cmd: str):
    return node(host).run(cmd)


def ok(host: str, cmd: str) -> str:
    res = sh(host, cmd)
    assert res.rc == 0, f"{host}: {cmd}\nrc={res.rc}\n{res.stdout}\n{res.stderr}"
    return res.stdout


def psql(sql: str, db: str = "eterna") -> str:
    return ok(DB, f"runuser -u postgres -- psql -XAtq -v ON_ERROR_STOP=1 -d {db} -c {shlex.quote(sql)}").strip()


def as_repo(cmd: str):
    return sh(REPO, f"cd /tmp && runuser -u pgbackrest -- {cmd}")


def archive_now() -> None:
    """Close the current WAL segment and wait until the primary has archived it."""
    segment = psql("SELECT pg_walfile_name(pg_switch_wal())", "postgres")
    for _ in range(180):
        if psql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver", "postgres") >= segment:
            return
        time.sleep(1)
    # Why not: the archiver's failures and pgBackRest's own words (archive-async pushes from a spool on the primary).
    stats = psql("SELECT failed_count, last_failed_wal, last_failed_time FROM pg_stat_archiver", "postgres")
    log = sh(DB, "cat /var/log/postgresql/*.json /var/log/pgbackrest/*.log | grep -iE 'archive' | tail -n 20").stdout
    pytest.fail(f"WAL segment {segment} was not archived; pg_stat_archiver: {stats}\n{log}")


def table_stats() -> dict[str, str]:
    """Row count and content hash of every table the tests write, read from the live primary."""
    out = {}
    for db, table in (("eterna", "items"), ("eterna", "alembic_version"), ("eterna_audit", "events")):
        sql = STATS_SQL.format(table=table)
        out[f"{db}.{table}"] = psql(sql, db)
    return out


def latest_label() -> str:
    info = json.loads(as_repo("pgbackrest --stanza=eterna --output=json info").stdout)
    return info[0]["backup"][-1]["label"]


def metric(host: str, name: str) -> str:
    """The sample lines of the textfile that start with ``name`` (a metric name, optionally with labels)."""
    text = node(host).file("/var/lib/prometheus/node-exporter/eterna_backup.prom").content_string
    return "\n".join(line for line in text.splitlines() if line.startswith(name + " ") or line.startswith(name + "{"))


@pytest.fixture(scope="module")
def seeded():
    """Tables in two databases, 1000 rows, a full backup, 500 rows, a noted time, 300 more rows, all archived."""
    psql("DROP TABLE IF EXISTS items, alembic_version")
    psql(
        "CREATE TABLE items (id bigserial PRIMARY KEY, batch text NOT NULL, payload text,"
        " at timestamptz DEFAULT clock_timestamp())"
    )
    psql("CREATE INDEX items_batch ON items (batch)")
    psql("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
    psql("INSERT INTO alembic_version VALUES ('3f2a9c1d0e7b')")
    psql("DROP TABLE IF EXISTS events", "eterna_audit")
    psql("CREATE TABLE events (id bigserial PRIMARY KEY, body jsonb)", "eterna_audit")
    psql("INSERT INTO items (batch, payload) SELECT 'A', md5(g::text) FROM generate_series(1, 1000) g")
    psql("INSERT INTO events (body) SELECT jsonb_build_object('n', g) FROM generate_series(1, 100) g", "eterna_audit")
    ok(REPO, "systemctl start eterna-backup-full.service")
    label = latest_label()
    psql("INSERT INTO items (batch, payload) SELECT 'B', md5(g::text) FROM generate_series(1, 500) g")
    target = psql("SELECT clock_timestamp()")
    time.sleep(1.5)
    psql("INSERT INTO items (batch, payload) SELECT 'C', md5(g::text) FROM generate_series(1, 300) g")
    archive_now()
    history = ok(REPO, "find /var/lib/pgbackrest/archive/eterna -name '*.history*' | sort")
    return {"label": label, "target": target, "history": history}


# --- configuration, secrets, hardening -------------------------------------------------------------------


def test_secret_files_are_private():
    for path in ("/etc/pgbackrest/pgbackrest.conf", "/etc/pgbackrest/drill.conf", "/etc/eterna-backup/rclone.conf"):
        f = node(REPO).file(path)
        assert (f.user, f.group, f.mode) == ("root", "pgbackrest", 0o640), path
    assert (
        f"repo1-cipher-pass={derive('backup/pgbackrest', length=64)}"
        in node(REPO).file("/etc/pgbackrest/pgbackrest.conf").content_string
    )
    for host, group in ((REPO, "pgbackrest"), (DB, "postgres")):
        key = node(host).file("/etc/pgbackrest/tls/pgbackrest.key")
        assert (key.user, key.group, key.mode) == ("root", group, 0o640)
    db_conf = node(DB).file("/etc/pgbackrest/pgbackrest.conf").content_string
    assert "cipher-pass" not in db_conf, "the passphrase belongs on the repository host only"
    # The archive command's settings in the cluster's conf.d: no configuration file readable by others (DBS-1828).
    confd = node(DB).check_output("ls -d /etc/postgresql/*/main/conf.d").strip()
    archiving = node(DB).file(f"{confd}/60-pgbackrest.conf")
    assert (archiving.user, archiving.group, archiving.mode) == ("postgres", "postgres", 0o640)


@pytest.mark.parametrize(("host", "user"), [(DB, "postgres"), (REPO, "pgbackrest")])
def test_tls_server_runs_hardened(host, user):
    svc = node(host).service("pgbackrest")
    assert svc.is_running and svc.is_enabled
    props = ok(host, "systemctl show pgbackrest -p User -p NoNewPrivileges -p ProtectSystem -p PrivateTmp")
    assert f"User={user}" in props
    assert "NoNewPrivileges=yes" in props and "ProtectSystem=strict" in props and "PrivateTmp=yes" in props
    assert node(host).socket("tcp://0.0.0.0:8432").is_listening


def test_firewall_admits_only_the_backup_peers():
    probe = "timeout 5 bash -c '</dev/tcp/{}/8432'"
    assert sh(REPO, probe.format(DB)).rc == 0
    assert sh(DB, probe.format(REPO)).rc == 0
    assert sh(S3, probe.format(DB)).rc != 0
    assert sh(S3, probe.format(REPO)).rc != 0


def test_job_units_and_timers():
    props = ok(REPO, "systemctl show eterna-backup-full.service -p User -p NoNewPrivileges -p ProtectSystem")
    assert "User=pgbackrest" in props and "NoNewPrivileges=yes" in props and "ProtectSystem=strict" in props
    timers = ok(REPO, "systemctl list-timers --all --no-legend --plain")
    for job in ("full", "diff", "drill", "files", "objectstore"):
        assert f"eterna-backup-{job}.timer" in timers
    assert "eterna-backup-incr.timer" not in timers, "no incremental schedule is set in this scenario"
    assert "eterna-backup-walstatus.timer" in ok(DB, "systemctl list-timers --all --no-legend --plain")


def test_archiving_is_on_and_repository_encrypted():
    assert psql("SHOW archive_mode", "postgres") == "on"
    assert "pgbackrest --stanza=eterna archive-push" in psql("SHOW archive_command", "postgres")
    archive_now()
    wal = ok(REPO, "find /var/lib/pgbackrest/archive/eterna -type f -name '0000*' | head -n 1").strip()
    assert wal, "no WAL file in the repository"
    assert ok(REPO, f"head -c 8 {wal}") == "Salted__", "repository files must be encrypted"
    info = as_repo("pgbackrest --stanza=eterna info").stdout
    assert "cipher: aes-256-cbc" in info and "status: ok" in info


# --- backups, manifests, point-in-time recovery, drills ---------------------------------------------------


def test_backup_records_a_manifest(seeded):
    manifest = json.loads(ok(REPO, f"cat /var/lib/eterna-backup/manifests/{seeded['label']}.json"))
    assert manifest["backup_label"] == seeded["label"]
    eterna = manifest["databases"]["eterna"]
    assert eterna["tables"]["public.items"]["rows"] == 1000
    assert eterna["alembic_revision"] == "3f2a9c1d0e7b"
    assert manifest["databases"]["eterna_audit"]["tables"]["public.events"]["rows"] == 100
    assert 'eterna_backup_last_status{type="full"} 1' in metric(REPO, 'eterna_backup_last_status{type="full"}')


def test_pitr_restores_exactly_the_rows_before_the_target(seeded):
    res = as_repo(f"{TOOL} pg-drill --keep --target {shlex.quote(seeded['target'])}")
    try:
        assert res.rc == 0, res.stdout + res.stderr
        assert "drill result: OK" in res.stdout
        rows = ok(
            REPO,
            f"{DRILL_PSQL} -d eterna -c {shlex.quote(ITEMS_BY_BATCH)}",
        )
        assert rows.split() == ["A|1000|1|1000", "B|500|1001|1500"]
        events = ok(REPO, f"{DRILL_PSQL} -d eterna_audit -c {shlex.quote(EVENTS_COUNT)}")
        assert events.strip() == "100"
    finally:
        as_repo(f"{TOOL} pg-drill-stop")
    assert not node(REPO).file("/var/lib/eterna-backup/drill/data").exists


def test_drill_matches_the_manifest_of_the_latest_backup(seeded):
    ok(REPO, "systemctl start eterna-backup-drill.service")
    report = json.loads(ok(REPO, "cat /var/lib/eterna-backup/state/drill-report.json"))
    assert report["result"] == "ok"
    assert report["amcheck"] == "ok"
    assert report["mismatches"] == []
    assert report["matched_tables"] == 3
    assert report["databases"]["eterna"]["alembic_revision"] == "3f2a9c1d0e7b"
    assert report["databases"]["eterna"]["tables"]["public.items"]["rows"] == 1000
    assert 'eterna_backup_last_status{type="drill"} 1' in metric(REPO, 'eterna_backup_last_status{type="drill"}')
    log = ok(REPO, "journalctl -u eterna-backup-drill -n 20 --no-pager")
    assert "drill result: OK" in log and "restore" in log


def test_drill_fails_loudly_with_a_wrong_passphrase(seeded):
    res = as_repo(f"env PGBACKREST_REPO1_CIPHER_PASS=not-the-passphrase-of-this-repository {TOOL} pg-drill")
    assert res.rc != 0
    assert "drill result: FAILED" in res.stdout
    assert "ERROR" in res.stderr
    state = json.loads(ok(REPO, "cat /var/lib/eterna-backup/state/drill.json"))
    assert state["last_status"] == 0


def test_drill_fails_loudly_on_a_corrupted_backup(seeded):
    backup_dir = f"/var/lib/pgbackrest/backup/eterna/{latest_label()}"
    largest = f"find {backup_dir} -type f ! -name 'backup.manifest*' -printf '%s %p\\n' | sort -n | tail -n 1"
    victim = ok(REPO, largest).split()[-1]
    assert victim
    ok(REPO, f"cp -a {victim} /root/victim.orig")
    try:
        size = int(ok(REPO, f"stat -c %s {victim}"))
        ok(REPO, f"dd if=/dev/urandom of={victim} bs=1 seek={size // 2} count=64 conv=notrunc status=none")
        res = as_repo(f"{TOOL} pg-drill")
        assert res.rc != 0, res.stdout
        assert "drill result: FAILED" in res.stdout
        assert "ERROR" in res.stderr
    finally:
        ok(REPO, f"cp -a /root/victim.orig {victim} && rm /root/victim.orig")
    assert as_repo(f"{TOOL} pg-drill").rc == 0, "the drill must pass again once the file is repaired"


def test_drills_never_archive_into_the_production_repository(seeded):
    """Every drill above promoted its scratch instance to a new timeline; none of them may reach the archive."""
    history = ok(REPO, "find /var/lib/pgbackrest/archive/eterna -name '*.history*' | sort")
    assert history == seeded["history"], f"a drill pushed a new timeline into the repository: {history}"


def test_wal_status_metrics_on_the_primary():
    ok(DB, "systemctl start eterna-backup-walstatus.service")
    assert metric(DB, "eterna_backup_wal_archive_failed").strip() == "eterna_backup_wal_archive_failed 0"
    assert metric(DB, "eterna_backup_wal_last_archived_timestamp_seconds")


def test_disaster_recovery_brings_back_every_committed_row(seeded):
    psql("INSERT INTO items (batch, payload) SELECT 'D', md5(g::text) FROM generate_series(1, 200) g")
    psql("INSERT INTO events (body) SELECT jsonb_build_object('late', g) FROM generate_series(1, 50) g", "eterna_audit")
    archive_now()
    before = table_stats()
    timeline = psql("SELECT timeline_id FROM pg_control_checkpoint()", "postgres")
    # The disaster: PostgreSQL dies and most of its data directory is gone.
    cluster = pg_cluster(DB)
    data = cluster["data"]
    ok(DB, f"touch {data}/MARKER-before-disaster")
    ok(DB, f"systemctl kill -s KILL {cluster['unit']} && sleep 2")
    ok(DB, f"rm -rf {data}/base {data}/global")
    env = dict(
        os.environ,
        ANSIBLE_ROLES_PATH=str(ROOT / "roles"),
        ANSIBLE_FILTER_PLUGINS=str(ROOT / "filter_plugins"),
        ANSIBLE_CACHE_PLUGIN="memory",
        ANSIBLE_PIPELINING="True",
    )
    res = subprocess.run(
        [
            "ansible-playbook",
            "-i",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "playbooks/disaster_recovery.yml",
            "-e",
            "backup_dr_confirm=true",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert psql("SELECT pg_is_in_recovery()", "postgres") == "f"
    assert table_stats() == before
    assert psql("SELECT count(*) FROM items WHERE batch = 'D'") == "200"
    assert int(psql("SELECT timeline_id FROM pg_control_checkpoint()", "postgres")) > int(timeline)
    moved = ok(DB, f"ls -d {data}.dr-*").split()
    assert any(node(DB).file(f"{d}/MARKER-before-disaster").exists for d in moved), (
        "the old data directory must be kept"
    )
    psql("INSERT INTO items (batch) VALUES ('after-dr')")
    archive_now()
    assert as_repo("pgbackrest --stanza=eterna --log-level-console=warn check").rc == 0
    assert latest_label() != seeded["label"], "the DR playbook takes a fresh full backup"


# --- other data ---------------------------------------------------------------------------------------------


def test_host_exports_and_the_ssh_gate():
    ok(S3, "redis-cli SET eterna:probe backup-test && redis-cli SAVE")
    ok(REPO, "systemctl start eterna-backup-files.service")
    base = "/var/backups/eterna/hosts"
    tarball = ok(REPO, f"ls -t {base}/{DB}/config/*.tar.gz | head -n 1").strip()
    assert node(REPO).file(tarball).mode == 0o600
    assert f"{pg_cluster(DB)['conf'].lstrip('/')}/postgresql.conf" in ok(REPO, f"tar tzf {tarball}")
    rdb = ok(REPO, f"ls -t {base}/{S3}/redis/*.rdb | head -n 1").strip()
    assert ok(REPO, f"head -c 5 {rdb}") == "REDIS"
    assert 'eterna_backup_last_status{type="files"} 1' in metric(REPO, 'eterna_backup_last_status{type="files"}')
    ssh = (
        "ssh -i /var/lib/eterna-backup/.ssh/id_ed25519 -o BatchMode=yes "
        "-o UserKnownHostsFile=/var/lib/eterna-backup/.ssh/known_hosts eterna-backup@" + DB
    )
    refused = as_repo(f"{ssh} cat /etc/shadow")
    assert refused.rc != 0 and "refused" in refused.stderr
    assert as_repo(f"{ssh} export redis").rc != 0, "a db host exports no Redis snapshot"
    assert as_repo(f"{ssh} pg-manifest 'x;id'").rc != 0


def test_object_storage_mirror_restores_an_overwritten_object():
    for bucket in ("documents", "bim-models"):
        ok(REPO, f"{RCLONE} mkdir source:{bucket}")
    put = "printf {} | " + RCLONE + " rcat source:documents/plans/house.txt"
    cat = RCLONE + " cat source:documents/plans/house.txt"
    ok(REPO, put.format("version-1"))
    ok(REPO, "systemctl start eterna-backup-objectstore.service")
    ok(REPO, put.format("version-2-overwrites"))
    as_repo(f"{TOOL} objectstore-restore --bucket documents --key plans/house.txt")
    assert ok(REPO, cat) == "version-1"
    # A later mirror run keeps the copy it replaces under versions/<run>, which can be restored too.
    ok(REPO, put.format("version-3"))
    time.sleep(1)
    ok(REPO, "systemctl start eterna-backup-objectstore.service")
    runs = ok(REPO, "ls /var/backups/eterna/objectstore/versions").split()
    kept = [
        r
        for r in runs
        if node(REPO).file(f"/var/backups/eterna/objectstore/versions/{r}/documents/plans/house.txt").exists
    ]
    assert kept, "the mirror must keep the overwritten copy"
    ok(REPO, put.format("version-4"))
    res = as_repo(f"{TOOL} objectstore-restore --bucket documents --key plans/house.txt --version {kept[-1]}")
    assert res.rc == 0, res.stderr
    assert ok(REPO, cat) == "version-1"
    assert 'eterna_backup_last_status{type="objectstore"} 1' in metric(
        REPO, 'eterna_backup_last_status{type="objectstore"}'
    )
