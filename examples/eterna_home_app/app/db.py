"""Engine and sessions (SQLAlchemy 2, psycopg 3).

Endpoints get their session from ``get_session``, which admits at most DB_POOL_SIZE + DB_MAX_OVERFLOW requests of a
worker at once (``db_slots``): the others wait in the event loop, not on a worker thread. Without that bound a
worker could stall: FastAPI runs a sync endpoint and then the validation of its answer on two separate hops to
the thread pool, with the request's connection held in between; when every thread waited for a connection, the
requests holding the connections waited for a thread, until the pool's timeout failed them.
"""

from __future__ import annotations

import asyncio
import math
import select
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from contextvars import copy_context
from functools import lru_cache
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar
from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session, sessionmaker

from app.config import get_settings
from app.metrics import instrument_pool

T = TypeVar("T")

# Seconds a request waits for a database slot (SQLAlchemy's QueuePool waits as long for a connection), then 503.
SLOT_TIMEOUT = 30.0


@lru_cache
def get_engine() -> Engine:
    """The process's engine (cached): a pool of DB_POOL_SIZE + DB_MAX_OVERFLOW connections, checked on checkout.

    :returns: the SQLAlchemy engine for DATABASE_URL.
    :raises sqlalchemy.exc.ArgumentError: DATABASE_URL is not a database URL.
    """
    settings = get_settings()
    postgres = settings.DATABASE_URL.startswith("postgresql")
    # A host that does not answer fails the request after READY_TIMEOUT (libpq's minimum is 2 s), answered 503
    # by app.outages, instead of holding the API worker for the kernel's TCP timeout.
    connect_args = {"connect_timeout": max(2, math.ceil(settings.READY_TIMEOUT))} if postgres else {}
    # The pool keeps every connection it opened, up to DB_POOL_SIZE + DB_MAX_OVERFLOW (the most the preflight
    # budgets per process): SQLAlchemy's overflow connections are closed as soon as the pool holds DB_POOL_SIZE idle
    # ones, and under sustained load requests then opened a new connection (a PostgreSQL backend, its plans lost)
    # for about one request in ten.
    engine = create_engine(
        settings.DATABASE_URL,
        pool_size=settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW,
        max_overflow=0,
        connect_args=connect_args,
    )
    if postgres:
        # Instead of pool_pre_ping's SELECT 1 round trip on every checkout (see closed_by_peer).
        event.listen(engine, "checkout", _drop_if_closed_by_peer)
    # Saturation metrics of this process's pool (checked out now, at most DB_POOL_SIZE + DB_MAX_OVERFLOW).
    instrument_pool(engine, settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW)
    return engine


def closed_by_peer(fileno: int) -> bool:
    """True when the idle connection on socket ``fileno`` has something to read, or is closed or in error.

    A pooled connection at rest has nothing to read: the pool's reset on checkin read every answer up to
    ReadyForQuery. Anything readable then is PostgreSQL's farewell (the FATAL message sent by a restart, a
    shutdown or pg_terminate_backend, then end of file) or HAProxy closing the session (``on-marked-down
    shutdown-sessions`` during a Patroni failover, or its idle timeout). One ``poll`` with no wait: no round trip.

    :param fileno: the connection's socket descriptor (psycopg ``Connection.fileno()``).
    :returns: True for readable, hung up or in error; False when nothing is pending.
    """
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))


def _drop_if_closed_by_peer(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    # DisconnectionError makes the pool discard this connection and hand out a fresh one instead (the request
    # goes on; a fresh connection that cannot be made raises OperationalError, answered 503).
    if dbapi_connection.closed or closed_by_peer(dbapi_connection.fileno()):
        raise sa_exc.DisconnectionError("the server closed the pooled connection")


@lru_cache
def _factory() -> sessionmaker[Session]:
    return sessionmaker(bind=get_engine(), expire_on_commit=False)


def session_scope() -> Session:
    """A new session on the process's engine (no connection until its first query). Use it as a context manager.

    :returns: a ``Session`` with ``expire_on_commit=False``.
    """
    return _factory()()


class _Slots:
    """The database admission of one event loop: ``enter`` bounds concurrent sessions; ``close`` runs their
    closing rollbacks on threads of their own, never queued behind the endpoints' thread pool; ``threads`` (one
    thread per slot, started on demand) runs the work of a request that holds a slot (``in_database_thread``)."""

    def __init__(self, size: int) -> None:
        self.enter = anyio.Semaphore(size)
        self.close = anyio.CapacityLimiter(size)
        self.threads = ThreadPoolExecutor(max_workers=size, thread_name_prefix="eterna-db")


_SLOTS: RunVar[_Slots] = RunVar("eterna_db_slots")
# The last event loop db_slots() served and its slots: a uvicorn worker has one loop, so every request after the
# first finds its slots without anyio's RunVar lookup (which asks sniffio for the running library each time).
_LAST: tuple[asyncio.AbstractEventLoop | None, _Slots | None] = (None, None)


def db_slots() -> _Slots:
    """This event loop's slots, made on first use with DB_POOL_SIZE + DB_MAX_OVERFLOW of them.

    :returns: the ``_Slots`` of the running event loop (one per loop: uvicorn has one per worker, tests one per client).
    :raises RuntimeError: no event loop runs in this thread.
    """
    global _LAST
    loop = asyncio.get_running_loop()
    last_loop, last_slots = _LAST
    if loop is last_loop and last_slots is not None:
        return last_slots
    try:
        slots = _SLOTS.get()
    except LookupError:
        settings = get_settings()
        slots = _Slots(settings.DB_POOL_SIZE + settings.DB_MAX_OVERFLOW)
        _SLOTS.set(slots)
    _LAST = (loop, slots)
    return slots


async def in_database_thread(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on one of this event loop's database threads, for a request that holds a database slot.

    The hop anyio's ``to_thread.run_sync`` (FastAPI's ``run_in_threadpool``) makes costs two extra turns of the
    event loop (a checkpoint and its limiter) and a ``queue.Queue`` put whose condition variable is Python code;
    here it is one ``run_in_executor`` on the slots' own ``ThreadPoolExecutor``, whose queue is C. The slots
    already bound the callers to the executor's size, so a caller never waits for a thread. Like ``run_sync``,
    the wait is shielded from cancellation: the slot is not given back while the thread still uses a connection.
    The function runs in a copy of the caller's context (request id and tenant of log lines).

    :param func: a blocking callable; runs in another thread.
    :param args: its positional arguments.
    :returns: what ``func`` returns.
    :raises Exception: whatever ``func`` raises, in the caller.
    """
    future = asyncio.get_running_loop().run_in_executor(db_slots().threads, copy_context().run, func, *args)
    with anyio.CancelScope(shield=True):
        return await future


@asynccontextmanager
async def database_slot() -> AsyncIterator[None]:
    """Hold one of the worker's database slots: at most as many requests as the pool has connections hold one.

    The wait is in the event loop, so a request on a worker thread never waits for a connection. Give back any
    connection taken under the slot before leaving the block.

    :returns: an async context manager yielding nothing.
    :raises sqlalchemy.exc.TimeoutError: no slot within SLOT_TIMEOUT seconds (answered 503 by app.outages).
    """
    slots = db_slots()
    try:
        slots.enter.acquire_nowait()
    except anyio.WouldBlock:
        # Only a request that has to wait pays for the timeout's cancel scope.
        try:
            with anyio.fail_after(SLOT_TIMEOUT):
                await slots.enter.acquire()
        except TimeoutError:
            raise sa_exc.TimeoutError(f"no database slot free within {SLOT_TIMEOUT:.0f} s") from None
    try:
        yield
    finally:
        slots.enter.release()


@asynccontextmanager
async def database_session() -> AsyncIterator[Session]:
    """A session for a request, holding one of the worker's database slots (``database_slot``) until it is closed.

    Opening the session does no I/O and happens in the event loop; so does closing it when no transaction is
    open (nothing to send). Else the closing rollback runs on a thread of the slots' own limiter, never queued
    behind the endpoints' thread pool.

    :returns: an async context manager yielding one ``Session``.
    :raises sqlalchemy.exc.TimeoutError: no slot within SLOT_TIMEOUT seconds (answered 503 by app.outages).
    """
    async with database_slot():
        session = session_scope()
        try:
            yield session
        finally:
            if not session.in_transaction():
                session.close()
            else:
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(session.close, limiter=db_slots().close)


async def get_session() -> AsyncIterator[Session]:
    """FastAPI dependency: ``database_session`` for the whole request (closed after the response was sent).

    :returns: an async iterator yielding one ``Session``.
    :raises sqlalchemy.exc.TimeoutError: no database slot within SLOT_TIMEOUT seconds (503).
    """
    async with database_session() as session:
        yield session
