#!/usr/bin/env python3
"""Backup, fingerprint, verify and restore the application database around a migration.

Used by playbooks/migrate.yml on the app host (system python3 + the PostgreSQL client tools) and by
tests/migrations. Connection from DATABASE_URL (SQLAlchemy or libpq URL), passed to psql/pg_dump
through PG* environment variables so the password never shows on a command line.

  dbcheck.py backup   --out FILE           pg_dump -Fc
  dbcheck.py snapshot --out FILE           per table: columns, row count, checksum of every row
  dbcheck.py verify   --before FILE        the tables/columns of FILE still hold the same rows
  dbcheck.py restore  --dump FILE --before FILE
                                           drop tables created since FILE, then pg_restore the dump
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from urllib.parse import parse_qs, unquote, urlsplit

SKIP_TABLES = {"alembic_version"}


def pg_env(url: str) -> dict[str, str]:
    """PG* variables for a postgresql[+driver]:// URL."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgresql") and not parts.scheme.startswith("postgres"):
        raise SystemExit(f"DATABASE_URL must be a postgresql:// URL (got scheme {parts.scheme!r})")
    env = dict(os.environ)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    mapping = {
        "PGHOST": query.get("host") or parts.hostname or "",
        "PGPORT": query.get("port") or (str(parts.port) if parts.port else ""),
        "PGUSER": unquote(parts.username or ""),
        "PGPASSWORD": unquote(parts.password or ""),
        "PGDATABASE": unquote(parts.path.lstrip("/")),
        "PGSSLMODE": query.get("sslmode", ""),
        "PGSSLROOTCERT": query.get("sslrootcert", ""),
    }
    env.update({k: v for k, v in mapping.items() if v})
    return env


def psql(env: dict[str, str], sql: str) -> list[list[str]]:
    out = subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-c", sql],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\x1f") for line in out.splitlines() if line]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def tables(env: dict[str, str]) -> dict[str, list[str]]:
    rows = psql(
        env,
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' "
        "ORDER BY c.table_name, c.ordinal_position",
    )
    result: dict[str, list[str]] = {}
    for table, column in rows:
        if table not in SKIP_TABLES:
            result.setdefault(table, []).append(column)
    return result


def fingerprint(env: dict[str, str], table: str, columns: list[str]) -> dict:
    cols = ", ".join(quote_ident(c) for c in columns)
    (count, checksum), *_ = psql(
        env,
        f"SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), '') "  # noqa: S608 - quoted identifiers
        f"FROM (SELECT md5(ROW({cols})::text) AS h FROM {quote_ident(table)}) s",
    )
    return {"columns": columns, "count": int(count), "checksum": checksum}


def snapshot(env: dict[str, str]) -> dict[str, dict]:
    return {table: fingerprint(env, table, columns) for table, columns in tables(env).items()}


def verify(env: dict[str, str], before: dict[str, dict]) -> list[str]:
    """Differences between ``before`` and the database now, on the columns ``before`` knew."""
    now = tables(env)
    problems = []
    for table, old in sorted(before.items()):
        if table not in now:
            problems.append(f"table {table} is gone")
            continue
        missing = [c for c in old["columns"] if c not in now[table]]
        if missing:
            problems.append(f"table {table} lost columns {', '.join(missing)}")
            continue
        new = fingerprint(env, table, old["columns"])
        if new["count"] != old["count"]:
            problems.append(f"table {table}: {old['count']} rows before, {new['count']} after")
        elif new["checksum"] != old["checksum"]:
            problems.append(f"table {table}: pre-existing rows changed (checksum of preserved columns differs)")
    return problems


def restore(env: dict[str, str], dump: str, before: dict[str, dict]) -> None:
    created = sorted(set(tables(env)) - set(before))
    if created:
        psql(env, "DROP TABLE IF EXISTS " + ", ".join(quote_ident(t) for t in created) + " CASCADE")
    subprocess.run(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--no-owner",
            "--exit-on-error",
            "-d",
            env["PGDATABASE"],
            dump,
        ],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["backup", "snapshot", "verify", "restore"])
    parser.add_argument("--out")
    parser.add_argument("--before")
    parser.add_argument("--dump")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        print("DATABASE_URL is not set", file=sys.stderr)
        return 2
    env = pg_env(url)
    try:
        if args.command == "backup":
            subprocess.run(["pg_dump", "-Fc", "-f", args.out], env=env, check=True, capture_output=True, text=True)
        elif args.command == "snapshot":
            with open(args.out, "w", encoding="utf-8") as fh:
                json.dump(snapshot(env), fh, indent=1, sort_keys=True)
        elif args.command == "verify":
            with open(args.before, encoding="utf-8") as fh:
                problems = verify(env, json.load(fh))
            if problems:
                print("verification failed: " + "; ".join(problems), file=sys.stderr)
                return 1
            print("verified: every pre-existing table, row count and row checksum unchanged")
        elif args.command == "restore":
            with open(args.before, encoding="utf-8") as fh:
                restore(env, args.dump, json.load(fh))
            print(f"restored {args.dump}")
    except subprocess.CalledProcessError as exc:
        print(f"{exc.cmd[0]} failed (rc={exc.returncode}): {exc.stderr.strip()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
