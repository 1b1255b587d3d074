"""Database sessions of requests (app.db): admission by slots so a worker cannot stall on its own pool, and the
house list's one-hop read."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
import sqlalchemy.exc
from pydantic import TypeAdapter
from sqlalchemy import create_engine, select


@pytest.fixture
def small_pool(tmp_path, monkeypatch):
    """A file database behind a real QueuePool of one connection (DB_POOL_SIZE=1, DB_MAX_OVERFLOW=0)."""
    from app import db, models
    from app.config import get_settings

    monkeypatch.setenv("DB_POOL_SIZE", "1")
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    get_settings.cache_clear()
    engine = create_engine(
        f"sqlite+pysqlite:///{tmp_path / 'pool.db'}",
        pool_size=1,
        max_overflow=0,
        pool_timeout=5,
        connect_args={"check_same_thread": False},
    )
    models.Base.metadata.create_all(engine)
    db._factory.cache_clear()
    monkeypatch.setattr(db, "get_engine", lambda: engine)
    yield engine
    db._factory.cache_clear()
    engine.dispose()


def test_more_requests_than_threads_and_connections_all_answer(small_pool):
    """Two worker threads, one connection, eight concurrent requests to endpoints that hold the connection
    across two thread hops (endpoint, then validation of the answer). Before slots, the threads waited for the
    connection while its holder waited for a thread: every request stalled until the pool's timeout (503)."""
    from conftest import World
    from fastapi.testclient import TestClient

    from app import main

    owner = World(small_pool).member("tenant-a", "owner")
    with TestClient(main.app) as client:
        house = client.post("/api/v1/houses", json={"name": "Villa"}, headers=owner.headers).json()

        def two_threads() -> None:
            anyio.to_thread.current_default_thread_limiter().total_tokens = 2

        client.portal.call(two_threads)
        paths = [f"/api/v1/houses/{house['id']}", "/api/v1/houses?limit=5"] * 4
        with ThreadPoolExecutor(len(paths)) as pool:
            statuses = list(pool.map(lambda path: client.get(path, headers=owner.headers).status_code, paths))
    assert statuses == [200] * len(paths)


def test_a_request_that_finds_no_slot_in_time_fails_with_the_pools_timeout(small_pool, monkeypatch):
    from app import db

    monkeypatch.setattr(db, "SLOT_TIMEOUT", 0.05)

    async def two_sessions() -> None:
        async with db.database_session():
            with pytest.raises(sqlalchemy.exc.TimeoutError, match="no database slot"):
                async with db.database_session():
                    pass
        async with db.database_session():  # the slot came back
            pass

    anyio.run(two_sessions)


def test_closing_goes_to_a_thread_only_with_an_open_transaction(small_pool, monkeypatch):
    from sqlalchemy import text

    from app import db

    hops: list[str] = []
    run_sync = anyio.to_thread.run_sync

    async def counting(func, *args, **kwargs):
        hops.append(getattr(getattr(func, "func", func), "__name__", "?"))  # run_in_threadpool passes a partial
        return await run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)

    async def sessions() -> None:
        async with db.database_session():
            pass
        async with db.database_session() as session:
            session.execute(text("SELECT 1"))

    anyio.run(sessions)
    assert hops == ["close"]


def test_house_list_bytes_are_fastapis_encoding_of_the_orm_rows(client, a, b, world):
    from sqlalchemy.orm import Session

    from app.api.schemas import HouseOut
    from app.models import House

    for n in range(3):
        client.post("/api/v1/houses", json={"name": f"A{n}", "address": f"{n} street"}, headers=a.headers)
    client.post("/api/v1/houses", json={"name": "B0"}, headers=b.headers)
    with Session(world.engine) as session:
        rows = session.scalars(
            select(House).where(House.tenant_id == "tenant-a").order_by(House.created_at, House.id).limit(2).offset(1)
        ).all()
        expected = TypeAdapter(list[HouseOut]).dump_json([HouseOut.model_validate(row) for row in rows])
    res = client.get("/api/v1/houses?limit=2&offset=1", headers=a.headers)
    assert res.status_code == 200
    assert res.headers["content-type"] == "application/json"
    assert res.content == expected
    assert [h["name"] for h in client.get("/api/v1/houses", headers=b.headers).json()] == ["B0"]


def test_house_rows_encode_as_fastapi_would_with_postgres_types():
    """SQLite gives naive datetimes; psycopg gives aware ones (the session's time zone): both encode the same way."""
    import datetime as dt
    import uuid as uuid_module
    from zoneinfo import ZoneInfo

    from app.api.houses import house_rows_json
    from app.api.schemas import HouseOut

    moments = [
        dt.datetime(2026, 12, 2, 14, 31, 16, 123456, tzinfo=ZoneInfo("Etc/UTC")),
        dt.datetime(2026, 12, 2, 15, 31, 16, tzinfo=ZoneInfo("Europe/Berlin")),
        dt.datetime(2026, 12, 2, 20, 1, 16, 5, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))),
        dt.datetime(1880, 1, 1, tzinfo=ZoneInfo("Europe/Amsterdam")),
        dt.datetime(2026, 12, 2, 14, 31, 16),
    ]
    rows = [
        (uuid_module.uuid4(), f"Villa {n} \u2028 </script>", "Straße 1", moment) for n, moment in enumerate(moments)
    ]
    expected = TypeAdapter(list[HouseOut]).dump_json(
        TypeAdapter(list[HouseOut]).validate_python(
            [dict(zip(HouseOut.model_fields, row, strict=True)) for row in rows]
        )
    )
    assert house_rows_json(rows) == expected


def test_house_list_takes_one_hop_and_gives_its_connection_back_before_its_slot(small_pool, monkeypatch):
    from conftest import World
    from fastapi.testclient import TestClient

    from app import main
    from app.api import houses

    owner = World(small_pool).member("tenant-a", "owner")
    anyio_hops: list[str] = []
    database_hops: list[str] = []
    run_sync = anyio.to_thread.run_sync
    in_database_thread = houses.in_database_thread

    async def counting(func, *args, **kwargs):
        anyio_hops.append(getattr(getattr(func, "func", func), "__name__", "?"))  # run_in_threadpool passes a partial
        return await run_sync(func, *args, **kwargs)

    async def counting_database(func, *args):
        database_hops.append(func.__name__)
        return await in_database_thread(func, *args)

    with TestClient(main.app) as client:
        client.post("/api/v1/houses", json={"name": "Villa"}, headers=owner.headers)
        monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
        monkeypatch.setattr(houses, "in_database_thread", counting_database)
        res = client.get("/api/v1/houses", headers=owner.headers)
    assert res.status_code == 200 and [h["name"] for h in res.json()] == ["Villa"]
    assert database_hops == ["house_list_json"] and anyio_hops == []
    assert small_pool.pool.checkedout() == 0


def test_database_thread_runs_in_the_callers_context_on_a_thread_of_the_slots():
    import contextvars
    import threading

    from app import db

    seen = contextvars.ContextVar("seen", default="unset")

    def where() -> tuple[str, str]:
        return seen.get(), threading.current_thread().name

    async def main() -> tuple[str, str]:
        seen.set("request-1")
        return await db.in_database_thread(where)

    value, thread = anyio.run(main)
    assert value == "request-1"
    assert thread.startswith("eterna-db") and thread != threading.current_thread().name


def test_database_thread_is_waited_for_when_the_caller_is_cancelled():
    """A cancelled request leaves only after its database work ended: its slot never outlives its connection."""
    import threading

    from app import db

    release = threading.Event()
    finished: list[str] = []

    def work() -> str:
        release.wait(5)
        finished.append("work")
        return "done"

    async def main() -> list[str]:
        events: list[str] = []

        async def caller(*, task_status) -> None:
            with anyio.CancelScope() as scope:
                task_status.started(scope)
                await db.in_database_thread(work)
                events.append("returned")

        async with anyio.create_task_group() as group:
            scope = await group.start(caller)
            await anyio.sleep(0.05)
            scope.cancel()
            await anyio.sleep(0.05)
            events.append(f"still waiting, work finished: {finished == ['work']}")
            release.set()
        events.append(f"left, work finished: {finished == ['work']}")
        return events

    assert anyio.run(main) == ["still waiting, work finished: False", "returned", "left, work finished: True"]
