"""A throwaway PostgreSQL 15 cluster (Debian's binaries, unprivileged user, Unix socket in a temp dir)
for the reference app's migration tests."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples" / "eterna_home_app"
# The newest installed PostgreSQL (Debian's `postgresql` package: 15 on Debian 12, 17 on 13), or ETERNA_PG_BIN.
_INSTALLED = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
PG_BIN = Path(os.environ.get("ETERNA_PG_BIN") or (_INSTALLED[-1].parent if _INSTALLED else "/usr/lib/postgresql/bin"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_user(user: str | None, cmd: list[str]) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


@pytest.fixture(scope="session")
def pg_cluster():
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql)")
    user = None
    if os.geteuid() == 0:
        for candidate in ("postgres", "nobody"):
            try:
                pwd.getpwnam(candidate)
                user = candidate
                break
            except KeyError:
                continue
    tmp = Path(tempfile.mkdtemp(prefix="eterna-pg-"))
    tmp.chmod(0o755)
    if user:
        shutil.chown(tmp, user)
    data, port = tmp / "data", _free_port()
    subprocess.run(
        _as_user(user, [str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    opts = f"-k {tmp} -p {port} -c listen_addresses='' -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_user(user, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield {"host": str(tmp), "port": port}
    finally:
        subprocess.run(
            _as_user(user, [str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture
def database_url(pg_cluster, request, monkeypatch):
    """A fresh database per test; DATABASE_URL points at it (alembic env.py and dbcheck read it)."""
    import psycopg

    name = "t_" + request.node.name.lower().replace("[", "_").replace("]", "")[:40]
    conninfo = f"host={pg_cluster['host']} port={pg_cluster['port']} user=postgres dbname=postgres"
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@/{name}?host={pg_cluster['host']}&port={pg_cluster['port']}"
    monkeypatch.setenv("DATABASE_URL", url)
    # psql / pg_dump / pg_restore of the same major version, for dbcheck.
    monkeypatch.setenv("PATH", f"{PG_BIN}:{os.environ['PATH']}")
    return url


@pytest.fixture(scope="session", autouse=True)
def _app_on_path():
    sys.path.insert(0, str(APP_DIR))
    yield
    sys.path.remove(str(APP_DIR))
