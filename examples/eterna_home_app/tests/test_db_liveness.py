"""The checkout check of app.db that replaces pool_pre_ping: a pooled connection that the server closed is replaced
at checkout, so the next request succeeds. On sockets, and against a real PostgreSQL (a throwaway cluster: Debian's
server binaries, an unprivileged user, a Unix socket in a temporary directory; skipped without them), whose
sessions end by pg_terminate_backend and by a restart."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy.exc
from sqlalchemy import text

_INITDB = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
PG_BIN = Path(os.environ.get("ETERNA_PG_BIN") or (_INITDB[-1].parent if _INITDB else "/nonexistent"))


@pytest.fixture
def postgres():
    """A running cluster; yields (pg_ctl command prefix, socket directory, database URL). Stopped and removed
    afterwards."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
    as_user: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="eterna-app-pg-"))
    tmp.chmod(0o755)
    if os.geteuid() == 0:
        user = "postgres" if any(p.pw_name == "postgres" for p in pwd.getpwall()) else "nobody"
        as_user = ["runuser", "-u", user, "--"]
        shutil.chown(tmp, user)
    data = tmp / "data"
    subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"], check=True,
                   capture_output=True)  # fmt: skip
    pg_ctl = [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(tmp / "log"), "-w"]
    opts = ["-o", f"-k {tmp} -p 5432 -c listen_addresses='' -c fsync=off"]
    subprocess.run([*pg_ctl, *opts, "start"], check=True, capture_output=True)
    try:
        yield [*pg_ctl, *opts], str(tmp), f"postgresql+psycopg://postgres@/postgres?host={tmp}&port=5432"
    finally:
        subprocess.run([*pg_ctl, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def test_connections_closed_by_the_server_are_replaced_at_checkout(postgres, monkeypatch):
    import psycopg

    from app import db
    from app.config import get_settings

    pg_ctl, socket_dir, url = postgres
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    get_settings.cache_clear()
    db.get_engine.cache_clear()
    engine = db.get_engine()
    try:
        assert engine.pool._pre_ping is False

        def backend() -> int:
            with engine.connect() as conn:
                return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()

        first = backend()
        # An administrator ends the pooled connection's session: its socket now holds a FATAL message and EOF.
        with psycopg.connect(host=socket_dir, port=5432, user="postgres", autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone() == (True,)
            # The signal is sent; wait until the backend has actually gone (a query racing its exit would fail
            # with or without the check, as it would after pool_pre_ping's SELECT 1).
            for _ in range(200):
                if admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (first,)).fetchone() == (0,):
                    break
                time.sleep(0.05)
        second = backend()
        assert second != first
        subprocess.run([*pg_ctl, "-m", "fast", "restart"], check=True, capture_output=True)
        third = backend()
        assert third != second
    finally:
        engine.dispose()
        db.get_engine.cache_clear()


def test_closed_by_peer_sees_data_end_of_file_and_nothing():
    from app.db import closed_by_peer

    ours, server = socket.socketpair()
    with ours, server:
        assert closed_by_peer(ours.fileno()) is False
        server.sendall(b"E")  # PostgreSQL's FATAL ErrorResponse before it closes
        assert closed_by_peer(ours.fileno()) is True
    ours, server = socket.socketpair()
    with ours:
        server.close()
        assert closed_by_peer(ours.fileno()) is True


def test_checkout_drops_a_connection_the_server_closed():
    from app.db import _drop_if_closed_by_peer

    class Connection:
        def __init__(self, sock: socket.socket, closed: bool = False) -> None:
            self.sock, self.closed = sock, closed

        def fileno(self) -> int:
            return self.sock.fileno()

    ours, server = socket.socketpair()
    with ours, server:
        _drop_if_closed_by_peer(Connection(ours), None, None)  # idle and open: kept
        with pytest.raises(sqlalchemy.exc.DisconnectionError):
            _drop_if_closed_by_peer(Connection(ours, closed=True), None, None)
        server.close()
        with pytest.raises(sqlalchemy.exc.DisconnectionError):
            _drop_if_closed_by_peer(Connection(ours), None, None)
