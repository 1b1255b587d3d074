"""Liveness and readiness. Readiness checks every dependency with its latency and answers 503 naming
the ones that failed; it answers only internal clients, and a result is reused for
READY_CACHE_SECONDS (one computation at a time: concurrent callers wait for it and share it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import redis
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from kombu import Connection
from sqlalchemy import text

from app import __version__
from app.celery_app import celery_app
from app.config import get_settings
from app.db import get_engine
from app.internal import internal_only
from app.storage import s3_client

router = APIRouter(tags=["health"])


def _postgres() -> None:
    with get_engine().connect() as conn:
        conn.execute(text("SELECT 1"))


def _redis() -> None:
    settings = get_settings()
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=settings.READY_TIMEOUT,
        socket_connect_timeout=settings.READY_TIMEOUT,
        **({"ssl_ca_certs": settings.TLS_CA_FILE} if settings.REDIS_URL.startswith("rediss://") else {}),
    )
    try:
        if not client.ping():
            raise RuntimeError("PING failed")
    finally:
        client.close()


def _rabbitmq() -> None:
    settings = get_settings()
    conn = Connection(
        settings.CELERY_BROKER_URL,
        ssl=celery_app.conf.broker_use_ssl or False,
        connect_timeout=settings.READY_TIMEOUT,
    )
    try:
        conn.ensure_connection(max_retries=1, timeout=settings.READY_TIMEOUT)
    finally:
        conn.release()


def _s3() -> None:
    settings = get_settings()
    for bucket in (settings.S3_BUCKET_DOCUMENTS, settings.S3_BUCKET_BIM):
        s3_client().head_bucket(Bucket=bucket)


CHECKS: dict[str, Callable[[], None]] = {
    "postgresql": _postgres,
    "redis": _redis,
    "rabbitmq": _rabbitmq,
    "s3": _s3,
}


def _run(name: str) -> dict:
    start = time.perf_counter()
    try:
        CHECKS[name]()
        result = {"status": "ok"}
    except Exception as exc:  # noqa: BLE001 - any failure makes the dependency not ready
        result = {"status": "error", "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["latency_ms"] = round((time.perf_counter() - start) * 1000, 2)
    return result


@router.get("/health")
def health() -> dict:
    return {"status": "ok", "version": __version__}


def _compute() -> dict:
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        results = dict(zip(CHECKS, pool.map(_run, CHECKS), strict=True))
    failed = [name for name, res in results.items() if res["status"] != "ok"]
    return {
        "status": "ok" if not failed else "unavailable",
        "failed": failed,
        "checks": results,
        "version": __version__,
    }


class ReadyCache:
    """The last readiness result and when it was computed (time.monotonic seconds)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.body: dict | None = None
        self.at = 0.0

    def clear(self) -> None:
        with self.lock:
            self.body, self.at = None, 0.0

    def get(self, ttl: float) -> tuple[dict, float]:
        """The readiness body and its age in seconds, computed again when older than ``ttl`` seconds."""
        body, at = self.body, self.at
        if body is not None and time.monotonic() - at < ttl:
            return body, time.monotonic() - at
        with self.lock:
            # Another caller may have computed it while this one waited for the lock.
            if self.body is None or time.monotonic() - self.at >= ttl:
                self.body, self.at = _compute(), time.monotonic()
            return self.body, time.monotonic() - self.at


READY_CACHE = ReadyCache()


@router.get("/health/ready", dependencies=[Depends(internal_only)])
def ready() -> JSONResponse:
    body, age = READY_CACHE.get(get_settings().READY_CACHE_SECONDS)
    return JSONResponse(
        {**body, "cached_seconds": round(age, 3)},
        status_code=503 if body["failed"] else 200,
        headers={"Cache-Control": "no-store"},
    )
