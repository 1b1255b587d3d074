"""Prometheus metrics; multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is set (uvicorn --workers N).

Traffic, by the tenant of the verified token (never a client header):

- ``eterna_http_requests_total{tenant,method,route,status}``: counter of answered requests.
- ``eterna_http_request_duration_seconds{tenant,method,route}``: histogram of the time until the response starts
  (seconds; buckets ``LATENCY_BUCKETS``, with edges at the 1 s and 2 s alert thresholds). Which tenants keep a
  label of their own is METRICS_LATENCY_TENANTS (``latency_tenant``): the histogram is the large one, roughly
  tenants x routes x 12 series per app host.

Saturation, one series per API worker process (label ``pid`` in multiprocess mode):

- ``eterna_http_requests_in_flight``: requests the worker is serving now (``/metrics`` itself not counted).
- ``eterna_http_worker_threads``: the worker's thread pool size (anyio's default limiter): the app's endpoints are
  synchronous, so a worker serves at most this many requests at once and queues the others.
- ``eterna_db_pool_connections_in_use``: connections the worker's SQLAlchemy pool has checked out now.
- ``eterna_db_pool_connections_max``: the most it may check out (DB_POOL_SIZE + DB_MAX_OVERFLOW); past it a
  request waits for a connection, then fails 503 after the pool's timeout.

These gauges use ``multiprocess_mode="liveall"``: each worker's value is its own (a sum would hide one saturated
worker among idle ones, and "max" would lose the per-worker view), and the file of a worker that died is dropped
(``forget_dead_workers``) so a replaced worker leaves no stale series behind.
"""

from __future__ import annotations

import glob
import os
import re
import threading
from typing import Any

from fastapi import APIRouter, Depends, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, event

from app.internal import internal_only

# Seconds. Edges at 1 and 2 (the AppHighLatency thresholds) make the alerts exact rather than interpolated between
# buckets; nine edges (plus +Inf, _sum and _count: 12 series per label set) instead of the client's fifteen pay for
# the tenant label.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
# Label value of the tenants folded together by METRICS_LATENCY_TENANTS (a tenant id never starts with "_").
OTHER_TENANTS = "_other"
ALL_TENANTS = "_all"
# The tenant label of unauthenticated requests (app.main), kept whatever METRICS_LATENCY_TENANTS says.
NO_TENANT = "none"

REQUESTS = Counter(
    "eterna_http_requests_total",
    "HTTP requests by tenant, method, route and status",
    ["tenant", "method", "route", "status"],
)
LATENCY = Histogram(
    "eterna_http_request_duration_seconds",
    "Seconds until the response starts, by tenant (METRICS_LATENCY_TENANTS), method and route",
    ["tenant", "method", "route"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge(
    "eterna_http_requests_in_flight",
    "Requests this API worker is serving now (the /metrics request excluded)",
    multiprocess_mode="liveall",
)
WORKER_THREADS = Gauge(
    "eterna_http_worker_threads",
    "Threads this API worker runs its synchronous endpoints on (requests beyond them wait)",
    multiprocess_mode="liveall",
)
POOL_IN_USE = Gauge(
    "eterna_db_pool_connections_in_use",
    "Database connections this process has checked out of its SQLAlchemy pool",
    multiprocess_mode="liveall",
)
POOL_MAX = Gauge(
    "eterna_db_pool_connections_max",
    "Database connections this process may check out at once (DB_POOL_SIZE + DB_MAX_OVERFLOW)",
    multiprocess_mode="liveall",
)

_LIVE_FILE_RE = re.compile(r"gauge_live[a-z]+_([0-9]+)\.db$")

router = APIRouter(tags=["metrics"])


def latency_tenant(tenant: str, keep: frozenset[str] | None) -> str:
    """The tenant label of the latency histogram for a request of ``tenant``.

    :param tenant: the verified tenant id, or ``NO_TENANT`` for an unauthenticated request.
    :param keep: the tenants labelled on their own (``Settings.latency_tenants``): None for every tenant; an empty
        set folds all tenants into ``ALL_TENANTS``; otherwise the others are folded into ``OTHER_TENANTS``.
    :returns: ``tenant``, ``NO_TENANT``, ``ALL_TENANTS`` or ``OTHER_TENANTS``. Never raises.
    """
    if keep is None or tenant == NO_TENANT:
        return tenant
    if not keep:
        return ALL_TENANTS
    return tenant if tenant in keep else OTHER_TENANTS


def set_worker_threads(total_tokens: float) -> None:
    """Record the size of this worker's thread pool (``anyio.to_thread.current_default_thread_limiter()``).

    :param total_tokens: the limiter's ``total_tokens`` (threads; anyio's default is 40).
    """
    WORKER_THREADS.set(total_tokens)


def instrument_pool(engine: Engine, limit: int) -> None:
    """Keep ``eterna_db_pool_connections_in_use`` and ``_max`` of this process in step with ``engine``'s pool.

    The pool's ``checkout`` event adds the connection record, ``checkin`` removes it, and the gauge is the size of
    that set. A set, not a counter: SQLAlchemy sends ``checkin`` without a ``checkout`` when a connection attempt
    fails (the database is down), which would drive a counter below zero.

    :param engine: the process's engine (app.db.get_engine).
    :param limit: connections the pool may hand out at once (pool_size + max_overflow).
    :raises ValueError: ``limit`` below 1.
    """
    if limit < 1:
        raise ValueError(f"instrument_pool: limit must be at least 1 (got {limit})")
    checked_out: set[int] = set()
    lock = threading.Lock()

    def checkout(_dbapi: Any, record: Any, _proxy: Any) -> None:
        with lock:
            checked_out.add(id(record))
            POOL_IN_USE.set(len(checked_out))

    def checkin(_dbapi: Any, record: Any) -> None:
        with lock:
            checked_out.discard(id(record))
            POOL_IN_USE.set(len(checked_out))

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    POOL_MAX.set(limit)
    POOL_IN_USE.set(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


def forget_dead_workers(path: str | None) -> list[int]:
    """Drop the live-gauge files of processes that no longer run from the multiprocess directory ``path``.

    uvicorn replaces a worker that dies without telling prometheus_client, whose "live" gauge modes keep a dead
    process's last values until ``multiprocess.mark_process_dead`` is called for it. Each worker calls this once
    when it starts. (A stop of the service empties the directory: systemd's RuntimeDirectory.)

    :param path: the PROMETHEUS_MULTIPROC_DIR, or None/empty (single process: nothing to do).
    :returns: the process ids whose files were removed, sorted.
    """
    if not path:
        return []
    dead = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = _LIVE_FILE_RE.search(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, path)
    return sorted(dead)


forget_dead_workers(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(internal_only)])
def metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    return Response(data, media_type=CONTENT_TYPE_LATEST)
