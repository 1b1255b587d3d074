"""Honest answers while a dependency is down: 503 with Retry-After, naming the dependency, instead of a 500.

A request that fails because PostgreSQL, Redis, RabbitMQ or S3 cannot be reached (refused, timed out, connection
lost) is answered ``503 Service Unavailable`` with ``Retry-After: DEPENDENCY_RETRY_AFTER`` and
``{"detail": ..., "dependency": name}``; clients and the edge may retry later. So is an S3 error answer with an
HTTP status of 500 or above (``InternalError``, ``ServiceUnavailable``, ``SlowDown``): the S3 API documents these as
retryable server-side conditions. Other errors, S3's 4xx answers among them, stay 500.
"""

from __future__ import annotations

import logging

import redis.exceptions
import sqlalchemy.exc
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from kombu.exceptions import OperationalError as KombuOperationalError

from app.config import get_settings

log = logging.getLogger("app.outages")

# Exception classes meaning "this dependency cannot be reached now", by dependency name (as /health/ready names them).
OUTAGES: dict[str, tuple[type[BaseException], ...]] = {
    "postgresql": (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError),
    "redis": (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError),
    "rabbitmq": (KombuOperationalError,),
    "s3": (BotoConnectionError, HTTPClientError),
}


def outage_response(dependency: str) -> JSONResponse:
    """The 503 answer for ``dependency`` (a key of OUTAGES), with Retry-After in seconds."""
    return JSONResponse(
        {"detail": f"{dependency} is unavailable, retry later", "dependency": dependency},
        status_code=503,
        headers={"Retry-After": str(get_settings().DEPENDENCY_RETRY_AFTER)},
    )


def s3_server_error(exc: ClientError) -> bool:
    """True when the S3 answer behind ``exc`` carries an HTTP status of 500 or above.

    :param exc: botocore's ``ClientError`` (its ``response`` holds ``ResponseMetadata.HTTPStatusCode``).
    :returns: True for a server-side error (InternalError, ServiceUnavailable, SlowDown...), False for a client error
        (NoSuchKey, AccessDenied...) or an answer without a status.
    """
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return int(status) >= 500


def install(app: FastAPI) -> None:
    """Register one exception handler per dependency on ``app``, and one for S3's 5xx answers."""
    for dependency, classes in OUTAGES.items():

        async def handler(request: Request, exc: Exception, dependency: str = dependency) -> JSONResponse:
            log.error("%s unavailable: %s", dependency, type(exc).__name__, extra={"path": request.url.path})
            return outage_response(dependency)

        for cls in classes:
            app.add_exception_handler(cls, handler)

    async def s3_error(request: Request, exc: ClientError) -> JSONResponse:
        if not s3_server_error(exc):
            raise exc  # a 4xx from the store is a bug here, answered 500 by the server error middleware
        log.error("s3 unavailable: %s", exc.response.get("Error", {}).get("Code"), extra={"path": request.url.path})
        return outage_response("s3")

    app.add_exception_handler(ClientError, s3_error)
