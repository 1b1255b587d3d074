"""The baseline metrics (issue #25): per-tenant latency bounded by METRICS_LATENCY_TENANTS, requests in flight per
worker, the database pool's connections in use against its limit, and the per-worker series of a multiprocess
registry (a dead worker's gauges dropped, its counters kept)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

APP_DIR = Path(__file__).resolve().parents[1]


def latency_count(tenant: str, route: str = "/api/v1/houses") -> float:
    labels = {"tenant": tenant, "method": "GET", "route": route}
    return REGISTRY.get_sample_value("eterna_http_request_duration_seconds_count", labels) or 0.0


def test_latency_is_labelled_with_the_verified_tenant_not_a_header(client, a):
    before_a, before_forged = latency_count("tenant-a"), latency_count("forged-tenant")
    before_none = latency_count("none")
    client.get("/api/v1/houses", headers={**a.headers, "X-Tenant-ID": "forged-tenant"})
    client.get("/api/v1/houses", headers={"X-Tenant-ID": "forged-tenant"})
    assert latency_count("tenant-a") == before_a + 1
    assert latency_count("none") == before_none + 1
    assert latency_count("forged-tenant") == before_forged == 0


def test_latency_buckets_have_edges_at_the_alert_thresholds(client, a):
    client.get("/api/v1/houses", headers=a.headers)
    text = client.get("/metrics").text
    edges = {
        line.split('le="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith("eterna_http_request_duration_seconds_bucket{") and 'tenant="tenant-a"' in line
    }
    assert {"1.0", "2.0", "+Inf"} <= edges
    assert len(edges) == 10, edges


@pytest.mark.parametrize(
    ("setting", "expected_a", "expected_b"),
    [
        ("tenant-a", "tenant-a", "_other"),
        ("", "_all", "_all"),
        ("tenant-b, *", "tenant-a", "tenant-b"),
    ],
)
def test_latency_tenants_setting_folds_the_others(client, a, b, monkeypatch, setting, expected_a, expected_b):
    from app.config import get_settings

    monkeypatch.setenv("METRICS_LATENCY_TENANTS", setting)
    get_settings.cache_clear()
    counts = {t: latency_count(t) for t in {expected_a, expected_b, "tenant-a", "tenant-b", "none"}}
    client.get("/api/v1/houses", headers=a.headers)
    client.get("/api/v1/houses", headers=b.headers)
    client.get("/api/v1/houses")  # unauthenticated: always "none"
    after = {t: latency_count(t) for t in counts}
    grew = {t: after[t] - counts[t] for t in counts if after[t] != counts[t]}
    expected: dict[str, float] = {"none": 1}
    for tenant in (expected_a, expected_b):
        expected[tenant] = expected.get(tenant, 0) + 1
    assert grew == expected
    # The request counter keeps every tenant whatever the histogram does.
    text = client.get("/metrics").text
    assert 'tenant="tenant-b"' in text


@pytest.mark.parametrize("bad", ["Tenant-A", "a,../b", "_other", "x" * 64])
def test_latency_tenants_setting_refuses_what_is_not_a_tenant_id(monkeypatch, bad):
    from app.config import Settings

    monkeypatch.setenv("METRICS_LATENCY_TENANTS", bad)
    with pytest.raises(ValidationError, match="METRICS_LATENCY_TENANTS"):
        Settings()


def test_in_flight_counts_the_request_being_served_and_not_the_scrape(client, a, monkeypatch):
    from app.api import houses

    seen: list[float | None] = []
    read_houses = houses.house_list_json

    def watching(*args):
        seen.append(REGISTRY.get_sample_value("eterna_http_requests_in_flight"))
        return read_houses(*args)

    monkeypatch.setattr(houses, "house_list_json", watching)
    assert client.get("/api/v1/houses", headers=a.headers).status_code == 200
    assert seen == [1.0]
    assert REGISTRY.get_sample_value("eterna_http_requests_in_flight") == 0.0
    text = client.get("/metrics").text
    assert "eterna_http_requests_in_flight 0.0" in text
    threads = REGISTRY.get_sample_value("eterna_http_worker_threads")
    assert threads is not None and threads >= 1


def test_in_flight_returns_to_zero_after_a_failing_request(client, a, monkeypatch):
    from app.api import houses

    def broken(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(houses, "tenant_house", broken)
    failing = client.__class__(client.app, client=("127.0.0.1", 50001), raise_server_exceptions=False)
    res = failing.get("/api/v1/houses/00000000-0000-4000-8000-000000000000", headers=a.headers)
    assert res.status_code == 500
    assert REGISTRY.get_sample_value("eterna_http_requests_in_flight") == 0.0


def pool_values() -> tuple[float | None, float | None]:
    return (
        REGISTRY.get_sample_value("eterna_db_pool_connections_in_use"),
        REGISTRY.get_sample_value("eterna_db_pool_connections_max"),
    )


def test_get_engine_sizes_the_pool_from_the_settings_and_reports_its_use(tmp_path, monkeypatch):
    from app import db
    from app.config import get_settings

    monkeypatch.setenv("DATABASE_URL", f"sqlite+pysqlite:///{tmp_path / 'pool.db'}")
    monkeypatch.setenv("DB_POOL_SIZE", "2")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "1")
    get_settings.cache_clear()
    db.get_engine.cache_clear()
    try:
        engine = db.get_engine()
        assert engine.pool.size() == 3  # the overflow connections are kept once opened
        assert pool_values() == (0.0, 3.0)
        held = [engine.connect() for _ in range(3)]
        assert pool_values() == (3.0, 3.0), "three checked out of three: saturated"
        held.pop().close()
        assert pool_values() == (2.0, 3.0)
        for conn in held:
            conn.close()
        assert pool_values() == (0.0, 3.0)
    finally:
        db.get_engine().dispose()
        db.get_engine.cache_clear()


def test_a_failed_reconnection_does_not_drive_the_gauge_below_zero(tmp_path):
    import shutil

    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    from app.metrics import instrument_pool

    (tmp_path / "db").mkdir()
    engine = create_engine(f"sqlite+pysqlite:///{tmp_path / 'db' / 'x.db'}", pool_size=1, max_overflow=0)
    instrument_pool(engine, 1)
    conn = engine.connect()
    conn.invalidate()  # the pooled record must reconnect on its next checkout
    conn.close()
    # The database is gone (SQLite cannot create a file in a missing directory): the reconnection fails, and
    # SQLAlchemy sends "checkin" for a record that was never checked out again.
    shutil.rmtree(tmp_path / "db")
    for _ in range(3):
        with pytest.raises(OperationalError):
            engine.connect()
    assert pool_values() == (0.0, 1.0)


def test_instrument_pool_refuses_a_limit_below_one():
    from sqlalchemy import create_engine

    from app.metrics import instrument_pool

    with pytest.raises(ValueError, match="limit must be at least 1"):
        instrument_pool(create_engine("sqlite+pysqlite:///:memory:"), 0)


# A worker of a multiprocess registry: sets its gauges and a counter, prints its pid and, with "--expose", the
# registry as /metrics would answer; then waits for a line on stdin before exiting (so it can stay alive).
WORKER = textwrap.dedent(
    """
    import os, sys
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess
    from app import metrics
    metrics.IN_FLIGHT.set(float(sys.argv[1]))
    metrics.POOL_IN_USE.set(float(sys.argv[1]))
    metrics.REQUESTS.labels("tenant-a", "GET", "/api/v1/houses", "200").inc()
    print(os.getpid(), flush=True)
    if "--expose" in sys.argv:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        sys.stdout.write(generate_latest(registry).decode())
        sys.stdout.flush()
    sys.stdin.readline()
    """
)


def start_worker(multiproc_dir: Path, value: int, expose: bool = False) -> subprocess.Popen[str]:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir))
    args = [sys.executable, "-c", WORKER, str(value)] + (["--expose"] if expose else [])
    return subprocess.Popen(  # noqa: S603 - this interpreter and a constant script
        args, cwd=APP_DIR, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


def finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate("\n", timeout=60)
    assert proc.returncode == 0
    return out


def gauge_lines(text: str, name: str) -> set[str]:
    return {line for line in text.splitlines() if line.startswith(name + "{")}


def test_multiprocess_gauges_are_per_worker_and_a_dead_workers_are_dropped(tmp_path):
    first = start_worker(tmp_path, 3)
    first_pid = int(first.stdout.readline())
    second = start_worker(tmp_path, 1, expose=True)
    second_out = finish(second)
    second_pid = int(second_out.splitlines()[0])
    # Both alive at the scrape: one series per worker, each its own value.
    assert gauge_lines(second_out, "eterna_http_requests_in_flight") == {
        f'eterna_http_requests_in_flight{{pid="{first_pid}"}} 3.0',
        f'eterna_http_requests_in_flight{{pid="{second_pid}"}} 1.0',
    }
    finish(first)
    # Both gone now; a new worker drops their gauges when it starts, and keeps their counters.
    third = start_worker(tmp_path, 0, expose=True)
    third_out = finish(third)
    third_pid = int(third_out.splitlines()[0])
    for name in ("eterna_http_requests_in_flight", "eterna_db_pool_connections_in_use"):
        assert gauge_lines(third_out, name) == {f'{name}{{pid="{third_pid}"}} 0.0'}
    assert (
        'eterna_http_requests_total{method="GET",route="/api/v1/houses",status="200",tenant="tenant-a"} 3.0'
        in third_out
    )


def test_forget_dead_workers_keeps_live_processes_and_ignores_other_files(tmp_path):
    from app.metrics import forget_dead_workers

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    for name in (
        f"gauge_liveall_{dead_pid}.db",
        f"gauge_liveall_{os.getppid()}.db",
        f"counter_{dead_pid}.db",
        "notes.txt",
    ):
        (tmp_path / name).write_bytes(b"")
    assert forget_dead_workers(str(tmp_path)) == [dead_pid]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"gauge_liveall_{os.getppid()}.db", f"counter_{dead_pid}.db", "notes.txt"]
    )
    assert forget_dead_workers("") == []
