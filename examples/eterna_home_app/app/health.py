"""Liveness and readiness. Readiness checks every dependency with its latency and answers 503 naming
the ones that failed."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import redis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from kombu import Connection
from sqlalchemy import text

from app import __version__
from app.celery_app import celery_app
from app.config import get_settings
from app.db import get_engine
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


@router.get("/health/ready")
def ready() -> JSONResponse:
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        results = dict(zip(CHECKS, pool.map(_run, CHECKS), strict=True))
    failed = [name for name, res in results.items() if res["status"] != "ok"]
    body = {
        "status": "ok" if not failed else "unavailable",
        "failed": failed,
        "checks": results,
        "version": __version__,
    }
    return JSONResponse(body, status_code=503 if failed else 200)
