#!/usr/bin/python3
"""eterna-backup: the jobs behind the backup role's systemd units.

Backup host (runs as the repository user):
  pg-backup TYPE              pgBackRest backup (full|diff|incr), then a consistency manifest from the primary
  pg-drill [--target TIME]    restore into a scratch instance, pg_amcheck it, compare it with the manifest
  pg-drill-stop               stop and remove a scratch instance kept with --keep
  files                       pull config/Redis/RabbitMQ exports from every host over SSH, with retention
  objectstore-mirror          mirror the S3 buckets with rclone, keeping overwritten files per run
  objectstore-restore         put one object (or a whole bucket) back from the mirror
Database hosts:
  pg-manifest POINT           (as postgres) freeze a consistent point, print per-table counts and checksums
  wal-status                  (as postgres) record pg_stat_archiver for the metrics
Every host:
  export ITEM [ARG]           (root, through the SSH gate) stream one export to stdout
  ssh-gate                    forced command of the backup host's SSH key: validate, then sudo export
  metrics [--job JOB]         (root, ExecStopPost) render the node_exporter textfile from the state files

Each job records its start, end and result in <state_dir>/<job>.json; `metrics` turns those into
eterna_backup_* gauges. Nothing here prints a secret.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

CONFIG_FILE = Path(os.environ.get("ETERNA_BACKUP_CONFIG", "/etc/eterna-backup/eterna-backup.json"))
EXPORT_ITEMS = ("config", "redis", "rabbitmq", "pg-manifest")
POINT_RE = re.compile(r"^eterna-[0-9]{8}-[0-9]{6}[FDI]?$")
STAMP_FMT = "%Y%m%dT%H%M%SZ"
# Text output of every type must not depend on the session, or checksums would differ between hosts.
STABLE_SESSION = (
    "SET DateStyle = 'ISO, YMD'; SET TimeZone = 'UTC'; SET IntervalStyle = 'postgres'; "
    "SET extra_float_digits = 3; SET bytea_output = 'hex'"
)
# Order-independent checksum: the sum of the first 64 bits of each row's md5, plus the row count.
CHECKSUM_SQL = (
    "SELECT count(*), coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)::text "
    "FROM ONLY {table} t"
)
TABLES_SQL = """
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
ORDER BY 1
"""
# The same tables as (schema, name), for statements that take identifiers (psycopg2.sql.Identifier quotes them).
TABLE_IDENTIFIERS_SQL = """
SELECT n.nspname, c.relname
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence = 'p'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_(toast|temp)'
ORDER BY 1, 2
"""


class JobError(RuntimeError):
    """A job failed for a reason worth one line in the log and a 0 in the metrics."""


def log(msg: str) -> None:
    print(f"eterna-backup: {msg}", flush=True)


def now() -> float:
    return time.time()


def load_config() -> dict[str, Any]:
    try:
        return json.loads(CONFIG_FILE.read_text())
    except FileNotFoundError as exc:
        raise JobError(f"{CONFIG_FILE} is missing: converge the backup role first") from exc


# The snapshot of each server the redis role installs (redis_implementation): Valkey by default on Debian 13.
RDB_OF_UNIT = {"valkey-server.service": "/var/lib/valkey/dump.rdb", "redis-server.service": "/var/lib/redis/dump.rdb"}


def redis_rdb_path(cfg: dict[str, Any]) -> str:
    """The snapshot to export: cfg's redis_rdb_path when set, else that of the server whose unit is active.

    Raises JobError when no path is set and neither valkey-server nor redis-server is active.
    """
    if cfg.get("redis_rdb_path"):
        return cfg["redis_rdb_path"]
    for unit, path in RDB_OF_UNIT.items():
        if subprocess.run(["systemctl", "is-active", "--quiet", unit], check=False).returncode == 0:
            return path
    raise JobError(f"no Redis server is active here ({', '.join(RDB_OF_UNIT)}); set backup_redis_rdb_path")


def run(cmd: list[str], *, capture: bool = True, env: dict[str, str] | None = None, **kw: Any) -> str:
    """Run a command; raise JobError with its stderr tail when it fails."""
    res = subprocess.run(cmd, capture_output=capture, text=True, errors="replace", env=env, check=False, **kw)
    if res.returncode != 0:
        tail = ((res.stderr or "") + (res.stdout or "")).strip().splitlines()[-15:]
        raise JobError(f"{cmd[0]} {' '.join(cmd[1:3])} failed (exit {res.returncode}):\n" + "\n".join(tail))
    return res.stdout if capture else ""


def atomic_write(path: Path, data: str | bytes, mode: int = 0o640) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------------------------------------
# job state and metrics


class Job:
    """Context manager recording a job's duration and result in <state_dir>/<name>.json."""

    def __init__(self, cfg: dict[str, Any], name: str) -> None:
        self.path = Path(cfg["state_dir"]) / f"{name}.json"
        self.name = name
        self.detail: dict[str, Any] = {}

    def __enter__(self) -> Job:
        self.state = read_json(self.path) or {"job": self.name}
        self.state.update({"running_since": now()})
        atomic_write(self.path, json.dumps(self.state), 0o644)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        end = now()
        start = self.state.pop("running_since")
        self.state.update({"last_start": start, "last_end": end, "last_duration": end - start})
        self.state["last_status"] = 0 if exc_type else 1
        self.state["last_message"] = str(exc).splitlines()[0][:200] if exc else "ok"
        if not exc_type:
            self.state["last_success"] = end
        self.state.update(self.detail)
        atomic_write(self.path, json.dumps(self.state), 0o644)
        return False


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def cmd_metrics(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    """Render the textfile from every state file. With --job, a unit that died before recording its end
    (killed, timed out) is recorded as failed first, from systemd's SERVICE_RESULT."""
    state_dir = Path(cfg["state_dir"])
    if args.job and os.environ.get("SERVICE_RESULT", "success") != "success":
        path = state_dir / f"{args.job}.json"
        state = read_json(path) or {"job": args.job}
        if "running_since" in state:
            start = state.pop("running_since")
            state.update({"last_start": start, "last_end": now(), "last_duration": now() - start})
            state.update({"last_status": 0, "last_message": f"unit result {os.environ['SERVICE_RESULT']}"})
            atomic_write(path, json.dumps(state), 0o644)
    lines: dict[str, list[str]] = {}

    def gauge(name: str, help_text: str, value: float, labels: str = "") -> None:
        block = lines.setdefault(name, [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"])
        block.append(f"{name}{labels} {value:.3f}".rstrip("0").rstrip("."))

    for path in sorted(state_dir.glob("*.json")):
        state = read_json(path) or {}
        if path.stem == "wal":
            if "failed" in state:
                gauge("eterna_backup_wal_archive_failed", "1 when the last WAL archive attempt failed", state["failed"])
                gauge(
                    "eterna_backup_wal_archive_failed_count",
                    "pg_stat_archiver.failed_count since the statistics reset",
                    state["failed_count"],
                )
                gauge(
                    "eterna_backup_wal_last_archived_timestamp_seconds",
                    "Time the last WAL segment was archived",
                    state.get("last_archived_time") or 0,
                )
            continue
        if "last_status" not in state:
            continue
        label = f'{{type="{path.stem}"}}'
        gauge(
            "eterna_backup_last_status", "1 when the last run succeeded, 0 when it failed", state["last_status"], label
        )
        gauge(
            "eterna_backup_last_success_timestamp_seconds",
            "Time the last successful run ended",
            state.get("last_success", 0),
            label,
        )
        gauge("eterna_backup_last_duration_seconds", "Duration of the last run", state["last_duration"], label)
        gauge("eterna_backup_last_run_timestamp_seconds", "Time the last run ended", state["last_end"], label)
    text = "".join(line + "\n" for block in lines.values() for line in block)
    atomic_write(Path(cfg["metrics_file"]), text, 0o644)


# ----------------------------------------------------------------------------------------------------------
# consistency manifest (database side and scratch side share this code, so both compute identically)


def table_stats(conn: Any) -> dict[str, Any]:
    """Row count and an order-independent checksum of every permanent user table, plus the Alembic revision."""
    cur = conn.cursor()
    cur.execute(STABLE_SESSION)
    cur.execute(TABLES_SQL)
    tables = [r[0] for r in cur.fetchall()]
    out: dict[str, Any] = {"tables": {}, "alembic_revision": None}
    for name in tables:
        # name comes quoted from format('%I.%I') in the catalog query.
        query = CHECKSUM_SQL.format(table=name)
        cur.execute(query)
        rows, checksum = cur.fetchone()
        out["tables"][name] = {"rows": rows, "checksum": checksum}
    cur.execute(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_name = 'alembic_version' ORDER BY table_schema = 'public' DESC LIMIT 1"
    )
    row = cur.fetchone()
    if row:
        from psycopg2 import sql

        query = sql.SQL("SELECT string_agg(version_num, ',' ORDER BY version_num) FROM {}")
        cur.execute(query.format(sql.Identifier(row[0], row[1])))
        out["alembic_revision"] = cur.fetchone()[0]
    return out


def cmd_pg_manifest(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    """Freeze a point every database agrees on, create a named restore point there, and print the counts.

    Writers are held off only for the few milliseconds between taking SHARE locks (NOWAIT, so this never
    queues behind or deadlocks with the application) and exporting a snapshot; the counting then runs on the
    imported snapshot while the application writes again.
    """
    import psycopg2
    from psycopg2 import errors, extensions, sql

    if not POINT_RE.match(args.point):
        raise JobError(f"bad restore point name {args.point!r}")
    dbs = cfg["manifest_databases"]

    def connect(db: str) -> Any:
        return psycopg2.connect(host=cfg["pg_socket_dir"], port=cfg["pg_port"], dbname=db, user="postgres")

    holders: dict[str, Any] = {}
    attempts = cfg.get("lock_attempts", 120)
    for _ in range(attempts):
        try:
            for db in dbs:
                conn = holders[db] = connect(db)
                cur = conn.cursor()
                cur.execute(TABLE_IDENTIFIERS_SQL)
                tables = [sql.Identifier(schema, name) for schema, name in cur.fetchall()]
                if tables:
                    cur.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE NOWAIT").format(sql.SQL(", ").join(tables)))
            break
        except errors.LockNotAvailable:
            for conn in holders.values():
                conn.close()
            holders.clear()
            time.sleep(0.5)
    else:
        raise JobError(f"could not lock the tables of {dbs} in {attempts} attempts: the application kept writing")
    first = holders[dbs[0]].cursor()
    first.execute("SELECT pg_create_restore_point(%s)::text, now()", (args.point,))
    lsn, point_time = first.fetchone()
    readers: dict[str, Any] = {}
    for db, conn in holders.items():
        cur = conn.cursor()
        cur.execute("SELECT pg_export_snapshot()")
        snapshot = cur.fetchone()[0]
        reader = readers[db] = connect(db)
        reader.set_session(isolation_level=extensions.ISOLATION_LEVEL_REPEATABLE_READ, readonly=True)
        reader.cursor().execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
    for conn in holders.values():
        conn.commit()
        conn.close()
    manifest = {
        "restore_point": args.point,
        "lsn": lsn,
        "time": point_time.isoformat(),
        "databases": {db: table_stats(conn) for db, conn in readers.items()},
    }
    for conn in readers.values():
        conn.rollback()
        conn.close()
    json.dump(manifest, sys.stdout, sort_keys=True)


def cmd_wal_status(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    import psycopg2

    conn = psycopg2.connect(host=cfg["pg_socket_dir"], port=cfg["pg_port"], dbname="postgres", user="postgres")
    cur = conn.cursor()
    cur.execute(
        "SELECT failed_count, extract(epoch FROM last_archived_time), extract(epoch FROM last_failed_time) "
        "FROM pg_stat_archiver"
    )
    failed_count, archived, failed = cur.fetchone()
    state = {
        "failed_count": failed_count,
        "last_archived_time": float(archived) if archived else None,
        "failed": 1 if failed and (not archived or failed > archived) else 0,
    }
    atomic_write(Path(cfg["state_dir"]) / "wal.json", json.dumps(state), 0o644)


# ----------------------------------------------------------------------------------------------------------
# backup host: pgBackRest


def pgbackrest(cfg: dict[str, Any], *args: str, config: str | None = None, capture: bool = True) -> str:
    cmd = ["pgbackrest", f"--stanza={cfg['stanza']}", "--log-level-console=warn"]
    if config:
        cmd.append(f"--config={config}")
    return run([*cmd, *args], capture=capture)


def backups(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    # strict=False: a wrong passphrase puts undecodable bytes into the status message.
    info = json.loads(pgbackrest(cfg, "info", "--output=json"), strict=False)
    if not info:
        return []
    stanza = info[0]
    if stanza["status"]["code"] != 0:
        raise JobError(f"stanza {cfg['stanza']}: {stanza['status']['message']}")
    return stanza.get("backup", [])


def ssh(cfg: dict[str, Any], host: str, *words: str, stdout: Any = subprocess.PIPE) -> subprocess.CompletedProcess:
    src = next((s for s in cfg["sources"] if s["name"] == host), None)
    if src is None:
        raise JobError(f"{host} is not a backup source")
    cmd = [
        "ssh",
        "-i",
        cfg["ssh_key"],
        "-o",
        "BatchMode=yes",
        "-o",
        f"UserKnownHostsFile={cfg['known_hosts']}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "ConnectTimeout=15",
        "-p",
        str(src.get("port", 22)),
        f"{cfg['ssh_user']}@{src['address']}",
        " ".join(words),
    ]
    res = subprocess.run(cmd, stdout=stdout, stderr=subprocess.PIPE, check=False)
    if res.returncode != 0:
        raise JobError(f"ssh {host} {' '.join(words)} failed (exit {res.returncode}): {res.stderr.decode()[-500:]}")
    return res


# pgBackRest's words when backup-standby=y finds no standby it can use (2.45: "unable to find a standby to perform
# the backup"; later releases say "standby" too). Matched loosely, in lower case.
NO_STANDBY_RE = re.compile(r"unable to find (a )?standby")


def backup_with_standby_fallback(cfg: dict[str, Any], backup_type: str) -> list[str]:
    """Run ``pgbackrest backup``; with a standby configured and none usable, run it again from the primary.

    pgBackRest 2.45 (Debian 12) has only backup-standby=y, which fails every backup while the standby is down;
    2.55 (Debian 13) is configured with backup-standby=prefer and falls back by itself, saying so in a WARN line.
    Either way the fallback is not silent: the warnings are returned (and logged, and kept in the job's state).

    :returns: the warnings (pgBackRest's WARN lines and ours), empty when the backup ran as configured.
    :raises JobError: when the backup fails for another reason, or fails from the primary too.
    """
    warnings: list[str] = []
    try:
        out = pgbackrest(cfg, "backup", f"--type={backup_type}")
    except JobError as exc:
        if not cfg.get("backup_standby") or not NO_STANDBY_RE.search(str(exc).lower()):
            raise
        warnings.append("no healthy standby: backing up from the primary instead (backup_from_standby)")
        log(f"WARNING: {warnings[-1]}; pgBackRest said: {str(exc).splitlines()[-1]}")
        out = pgbackrest(cfg, "backup", f"--type={backup_type}", "--backup-standby=n")
    for line in out.splitlines():
        if "WARN:" in line:
            warnings.append(line.split("WARN:", 1)[1].strip())
            log(f"WARNING: {warnings[-1]}")
    return warnings


def cmd_pg_backup(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    with Job(cfg, args.type) as job:
        log(f"{args.type} backup of stanza {cfg['stanza']} starts")
        warnings = backup_with_standby_fallback(cfg, args.type)
        latest = backups(cfg)[-1]
        label = latest["label"]
        job.detail = {"label": label, "size": latest["info"]["size"], "repo_size": latest["info"]["repository"]["size"]}
        if warnings:
            job.detail["warnings"] = warnings
        log(f"backup {label} done ({latest['info']['size']} bytes, {latest['info']['repository']['size']} in the repo)")
        if cfg.get("manifest_databases"):
            record_manifest(cfg, label)
        prune_manifests(cfg)


def record_manifest(cfg: dict[str, Any], label: str) -> None:
    point = "eterna-" + dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S") + label[-1]
    # Under Patroni any member may lead: ask each in turn, a standby refuses (it cannot create a restore point).
    errors = []
    for host in cfg.get("pg_manifest_hosts") or [cfg["pg_primary"]]:
        try:
            out = ssh(cfg, host, "pg-manifest", point).stdout
            break
        except JobError as exc:
            errors.append(str(exc))
    else:
        raise JobError("no db host could record the manifest: " + " | ".join(errors))
    manifest = json.loads(out)
    manifest["backup_label"] = label
    # The restore point's WAL must reach the repository before a drill can recover to it: `check` switches
    # the WAL segment and waits until it is archived.
    pgbackrest(cfg, "check")
    atomic_write(Path(cfg["manifest_dir"]) / f"{label}.json", json.dumps(manifest, sort_keys=True, indent=1))
    tables = sum(len(d["tables"]) for d in manifest["databases"].values())
    log(f"manifest of {label}: restore point {point} at {manifest['lsn']}, {tables} tables")


def prune_manifests(cfg: dict[str, Any]) -> None:
    labels = {b["label"] for b in backups(cfg)}
    for path in Path(cfg["manifest_dir"]).glob("*.json"):
        if path.stem not in labels:
            path.unlink()
            log(f"manifest {path.name} removed: its backup expired")


def drill_paths(cfg: dict[str, Any]) -> tuple[Path, Path, Path]:
    base = Path(cfg["drill"]["dir"])
    return base, base / "data", base / "run"


def drill_stop(cfg: dict[str, Any], *, remove: bool) -> None:
    base, data, _ = drill_paths(cfg)
    bindir = cfg["drill"]["bindir"]
    if (data / "postmaster.pid").exists():
        subprocess.run([f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"], check=False)
    if remove and data.exists():
        shutil.rmtree(data)


def drill_connect(cfg: dict[str, Any], db: str) -> Any:
    import psycopg2

    _, _, rundir = drill_paths(cfg)
    return psycopg2.connect(host=str(rundir), port=cfg["drill"]["port"], dbname=db, user="postgres")


def cmd_pg_drill(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    report: dict[str, Any] = {"result": "failed", "target": args.target or "latest manifest"}
    report_path = Path(cfg["state_dir"]) / "drill-report.json"
    try:
        with Job(cfg, "drill") as job:
            try:
                drill(cfg, args, report)
                report["result"] = "ok"
            finally:
                job.detail = {"restore_seconds": report.get("restore_seconds")}
                atomic_write(report_path, json.dumps(report, sort_keys=True, indent=1), 0o644)
                if not args.keep:
                    drill_stop(cfg, remove=True)
    finally:
        log(
            f"drill result: {report['result'].upper()}; target {report['target']}; "
            f"restore {report.get('restore_seconds', '-')} s, verify {report.get('verify_seconds', '-')} s"
        )


def drill(cfg: dict[str, Any], args: argparse.Namespace, report: dict[str, Any]) -> None:
    base, data, rundir = drill_paths(cfg)
    dcfg = cfg["drill"]
    manifest: dict[str, Any] | None = None
    restore_args = ["--archive-mode=off", "--target-action=promote", f"--pg1-path={data}"]
    if args.target:
        restore_args += ["--type=time", f"--target={args.target}"]
    else:
        labels = [b["label"] for b in backups(cfg)]
        candidates = [lbl for lbl in labels if (Path(cfg["manifest_dir"]) / f"{lbl}.json").exists()]
        if not candidates:
            raise JobError("no backup with a manifest in the repository: run a backup first")
        manifest = json.loads((Path(cfg["manifest_dir"]) / f"{candidates[-1]}.json").read_text())
        report.update({"backup_label": candidates[-1], "restore_point": manifest["restore_point"]})
        restore_args += [f"--set={candidates[-1]}", "--type=name", f"--target={manifest['restore_point']}"]
    drill_stop(cfg, remove=True)
    rundir.mkdir(mode=0o700, parents=True, exist_ok=True)
    log(f"restoring into {data} ({' '.join(restore_args[3:])})")
    t0 = now()
    pgbackrest(cfg, "restore", *restore_args, config=dcfg["config"])
    write_drill_conf(cfg, data, rundir)
    logfile = base / "postgres.log"
    overrides = " ".join(f"-c {k}={shlex.quote(str(v))}" for k, v in dcfg["overrides"].items())
    res = subprocess.run(
        [f"{dcfg['bindir']}/pg_ctl", "-D", str(data), "-l", str(logfile), "-w", "-t", "3600", "-o", overrides, "start"],
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0:
        raise JobError("the scratch instance did not start:\n" + tail(logfile))
    wait_promoted(cfg, logfile, dcfg.get("recovery_timeout", 3600))
    report["restore_seconds"] = round(now() - t0, 1)
    t1 = now()
    dbs = cfg["manifest_databases"]
    amcheck = [f"{dcfg['bindir']}/pg_amcheck", "-h", str(rundir), "-p", str(dcfg["port"]), "-U", "postgres"]
    run([*amcheck, "--install-missing", *dcfg["amcheck_args"], *[a for db in dbs for a in ("-d", db)]])
    report["amcheck"] = "ok"
    stats = {}
    for db in dbs:
        conn = drill_connect(cfg, db)
        conn.set_session(readonly=True)
        stats[db] = table_stats(conn)
        conn.close()
    report["databases"] = stats
    report["verify_seconds"] = round(now() - t1, 1)
    if manifest is not None:
        problems = compare(manifest["databases"], stats)
        report["mismatches"] = problems
        if problems:
            raise JobError(f"{len(problems)} differences with the manifest: " + "; ".join(problems[:5]))
        report["matched_tables"] = sum(len(d["tables"]) for d in stats.values())


def compare(expected: dict[str, Any], got: dict[str, Any]) -> list[str]:
    problems = []
    for db, exp in expected.items():
        have = got.get(db)
        if have is None:
            problems.append(f"{db}: database missing")
            continue
        if exp.get("alembic_revision") != have.get("alembic_revision"):
            problems.append(f"{db}: alembic {have.get('alembic_revision')} != {exp.get('alembic_revision')}")
        for table in sorted(set(exp["tables"]) | set(have["tables"])):
            e, h = exp["tables"].get(table), have["tables"].get(table)
            if e != h:
                problems.append(f"{db}.{table}: restored {h} != recorded {e}")
    return problems


def write_drill_conf(cfg: dict[str, Any], data: Path, rundir: Path) -> None:
    dcfg = cfg["drill"]
    user = pwd.getpwuid(os.getuid()).pw_name
    # A hot standby needs these at least as high as on the primary: read them from the restored control file.
    control = run([f"{dcfg['bindir']}/pg_controldata", str(data)], env={"LC_ALL": "C", "PATH": os.environ["PATH"]})
    limits = {
        "max_connections": "max_connections setting",
        "max_worker_processes": "max_worker_processes setting",
        "max_wal_senders": "max_wal_senders setting",
        "max_prepared_transactions": "max_prepared_xacts setting",
        "max_locks_per_transaction": "max_locks_per_xact setting",
    }
    found = dict(re.findall(r"^(.+?):\s+(\d+)$", control, re.M))
    settings = "".join(f"{k} = {found[v]}\n" for k, v in limits.items() if v in found)
    (data / "postgresql.conf").write_text(
        f"port = {dcfg['port']}\nlisten_addresses = ''\nunix_socket_directories = '{rundir}'\n"
        f"hot_standby = on\n{settings}"
    )
    (data / "pg_hba.conf").write_text("local all postgres peer map=drill\n")
    (data / "pg_ident.conf").write_text(f"drill {user} postgres\n")


def wait_promoted(cfg: dict[str, Any], logfile: Path, timeout: float) -> None:
    import psycopg2

    deadline = now() + timeout
    _, data, _ = drill_paths(cfg)
    while now() < deadline:
        if not (data / "postmaster.pid").exists():
            raise JobError("the scratch instance stopped during recovery:\n" + tail(logfile))
        try:
            conn = drill_connect(cfg, "postgres")
            cur = conn.cursor()
            cur.execute("SELECT pg_is_in_recovery()")
            in_recovery = cur.fetchone()[0]
            conn.close()
            if not in_recovery:
                return
        except psycopg2.OperationalError:
            pass
        time.sleep(1)
    raise JobError(f"recovery did not finish within {timeout} s:\n" + tail(logfile))


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"({path} is missing)"


def cmd_pg_drill_stop(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    drill_stop(cfg, remove=True)


# ----------------------------------------------------------------------------------------------------------
# backup host: other data


def cmd_files(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    with Job(cfg, "files"):
        stamp = dt.datetime.now(dt.UTC).strftime(STAMP_FMT)
        failures = []
        suffix = {"config": "tar.gz", "redis": "rdb", "rabbitmq": "json"}
        for src in cfg["sources"]:
            for item in src["items"]:
                dest = Path(cfg["files_dir"]) / src["name"] / item / f"{stamp}.{suffix[item]}"
                dest.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
                part = dest.with_suffix(dest.suffix + ".part")
                try:
                    with open(part, "wb") as fh:
                        ssh(cfg, src["name"], "export", item, stdout=fh)
                    if part.stat().st_size == 0:
                        raise JobError("empty export")
                    os.chmod(part, 0o600)
                    os.replace(part, dest)
                    log(f"{src['name']} {item}: {dest.stat().st_size} bytes")
                except JobError as exc:
                    part.unlink(missing_ok=True)
                    failures.append(f"{src['name']} {item}: {exc}")
                    log(f"{src['name']} {item} FAILED: {exc}")
                keep = sorted(dest.parent.glob(f"*.{suffix[item]}"))
                for old in keep[: -cfg["files_keep"]]:
                    old.unlink()
        if failures:
            raise JobError(f"{len(failures)} exports failed: " + "; ".join(failures))


def rclone(cfg: dict[str, Any], *args: str) -> str:
    return run(["rclone", "--config", cfg["objectstore"]["rclone_config"], *args])


def cmd_objectstore_mirror(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    ocfg = cfg["objectstore"]
    with Job(cfg, "objectstore"):
        stamp = dt.datetime.now(dt.UTC).strftime(STAMP_FMT)
        root = Path(ocfg["dir"])
        for bucket in ocfg["buckets"]:
            # Files the source overwrote or deleted since the last run move to versions/<stamp>/<bucket>/.
            rclone(
                cfg,
                "sync",
                f"source:{bucket}",
                str(root / "current" / bucket),
                "--backup-dir",
                str(root / "versions" / stamp / bucket),
                "--checksum",
            )
            log(f"bucket {bucket} mirrored")
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(days=ocfg["keep_days"])
        for vdir in (root / "versions").glob("*"):
            with contextlib.suppress(ValueError):
                if dt.datetime.strptime(vdir.name, STAMP_FMT).replace(tzinfo=dt.UTC) < cutoff:
                    shutil.rmtree(vdir)


def cmd_objectstore_restore(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    """Copy the mirrored object (or, with --version STAMP, the copy the mirror set aside at that run) back."""
    root = Path(cfg["objectstore"]["dir"])
    if args.bucket not in cfg["objectstore"]["buckets"]:
        raise JobError(f"unknown bucket {args.bucket}")
    base = root / "versions" / args.version / args.bucket if args.version else root / "current" / args.bucket
    if not base.is_dir():
        raise JobError(f"{base} does not exist: list versions with `ls {root / 'versions'}`")
    if args.key:
        src = base / args.key
        if not src.resolve().is_relative_to(base.resolve()) or not src.is_file():
            raise JobError(f"{args.key} is not in {base}")
        rclone(cfg, "copyto", str(src), f"source:{args.bucket}/{args.key}")
        log(f"restored {args.bucket}/{args.key} from {base}")
    else:
        rclone(cfg, "copy", str(base), f"source:{args.bucket}")
        log(f"restored bucket {args.bucket} from {base}")


# ----------------------------------------------------------------------------------------------------------
# every host: the export side of `files`, reachable only through the SSH forced command


def cmd_ssh_gate(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    """The backup key's forced command: serve ``export ITEM`` or ``pg-manifest POINT`` through sudo, nothing else.

    :raises JobError: for any other SSH_ORIGINAL_COMMAND (the refusal reaches the backup host's log).
    """
    words = os.environ.get("SSH_ORIGINAL_COMMAND", "").split()
    if len(words) < 2 or words[0] not in ("export", "pg-manifest"):
        raise JobError("refused: only `export ITEM` and `pg-manifest POINT` are served")
    if words[0] == "pg-manifest":
        words = ["export", "pg-manifest", *words[1:]]
    if words[1] not in EXPORT_ITEMS or len(words) > 3:
        raise JobError(f"refused: unknown export {words[1:]}")
    if words[1] == "pg-manifest" and (len(words) != 3 or not POINT_RE.match(words[2])):
        raise JobError("refused: pg-manifest needs a restore point name")
    if words[1] != "pg-manifest" and len(words) != 2:
        raise JobError(f"refused: export {words[1]} takes no argument")
    sys.stdout.flush()
    os.execv("/usr/bin/sudo", ["sudo", "-n", "/usr/local/sbin/eterna-backup", *words])  # noqa: S606 - validated argv


def cmd_export(cfg: dict[str, Any], args: argparse.Namespace) -> None:
    allowed = cfg.get("export_items", [])
    if args.item not in allowed:
        raise JobError(f"{args.item} is not exported by this host (exports: {allowed})")
    out = sys.stdout.buffer
    if args.item == "config":
        paths = [p for p in cfg["config_paths"] if Path(p).exists()]
        proc = subprocess.run(
            ["tar", "--create", "--gzip", "--file=-", "--warning=no-file-changed", "--ignore-failed-read", *paths],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
        if proc.returncode not in (0, 1):  # 1: a file changed while read, harmless for configuration
            raise JobError(f"tar failed: {proc.stderr.decode()[-300:]}")
    elif args.item == "redis":
        with open(redis_rdb_path(cfg), "rb") as fh:
            shutil.copyfileobj(fh, out)
    elif args.item == "rabbitmq":
        # "-" writes the definitions (vhosts, users, queues, policies; no messages) to standard output.
        out.write(run(["rabbitmqctl", "--quiet", "export_definitions", "-"]).encode())
    elif args.item == "pg-manifest":
        if not args.arg or not POINT_RE.match(args.arg):
            raise JobError("pg-manifest needs a restore point name")
        os.execv(  # noqa: S606 - fixed program, validated argument
            "/usr/sbin/runuser",
            ["runuser", "-u", "postgres", "--", "/usr/local/sbin/eterna-backup", "pg-manifest", args.arg],
        )


# ----------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eterna-backup", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pg-backup")
    p.add_argument("type", choices=["full", "diff", "incr"])
    p = sub.add_parser("pg-drill")
    p.add_argument("--target", help="recovery target time, e.g. '2026-01-31 12:00:00+00'; default: latest manifest")
    p.add_argument("--keep", action="store_true", help="leave the scratch instance running for inspection")
    sub.add_parser("pg-drill-stop")
    p = sub.add_parser("pg-manifest")
    p.add_argument("point")
    sub.add_parser("wal-status")
    sub.add_parser("files")
    sub.add_parser("objectstore-mirror")
    p = sub.add_parser("objectstore-restore")
    p.add_argument("--bucket", required=True)
    p.add_argument("--key", help="one object; default: the whole bucket")
    p.add_argument("--version", help="a versions/<STAMP> run of the mirror; default: the current mirror")
    p = sub.add_parser("export")
    p.add_argument("item", choices=EXPORT_ITEMS)
    p.add_argument("arg", nargs="?")
    sub.add_parser("ssh-gate")
    p = sub.add_parser("metrics")
    p.add_argument("--job")
    args = parser.parse_args(argv)
    os.umask(0o027)
    try:
        cfg = {} if args.cmd == "ssh-gate" else load_config()
        handler = globals()["cmd_" + args.cmd.replace("-", "_")]
        handler(cfg, args)
    except JobError as exc:
        print(f"eterna-backup {args.cmd}: ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # noqa: BLE001 - any other failure must still end in one clear ERROR line
        traceback.print_exc()
        print(f"eterna-backup {args.cmd}: ERROR: unexpected {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
