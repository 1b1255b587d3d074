"""Per-request observation as a plain ASGI middleware: request id, in-flight gauge, request counter, latency
histogram and one JSON log line per request.

It does what the ``@app.middleware("http")`` function of earlier versions did, without Starlette's
BaseHTTPMiddleware (which runs the rest of the app in a task of its own and passes the response through memory
streams): the same ``X-Request-ID`` answer header, metrics with the same names and labels, and the same log fields.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio.to_thread

from app.config import get_settings
from app.logging_setup import request_id_var, tenant_id_var
from app.metrics import IN_FLIGHT, LATENCY, NO_TENANT, REQUESTS, latency_tenant, set_worker_threads

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("app.request")

REQUEST_ID_HEADER = b"x-request-id"
# Longest request id kept from a client's header (longer ones are cut).
REQUEST_ID_MAX = 64


def request_path(scope: Scope) -> str:
    """The path as Starlette's ``request.url.path`` gives it: ``scope["path"]`` with ``?``, ``#`` and ``\\``
    percent-encoded, so a path cannot forge a query string in the log.

    :param scope: an ASGI HTTP scope.
    :returns: the path string.
    """
    path = scope["path"]
    if "?" in path or "#" in path or "\\" in path:
        path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    return path


def incoming_request_id(scope: Scope) -> str:
    """The client's ``X-Request-ID`` (first one, cut to REQUEST_ID_MAX characters), or a new random hex id.

    :param scope: an ASGI HTTP scope (header names are lower case bytes).
    :returns: the request id of this request.
    """
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            if value:
                return value.decode("latin-1")[:REQUEST_ID_MAX]
            break
    return uuid.uuid4().hex


class _Children:
    """Prometheus children by label values: ``labels()`` takes a lock and rebuilds the key on every call, and
    the house list pays it twice a request. Same metrics, same label sets; a dict lookup after the first use."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str, str], Any] = {}
        self.latency: dict[tuple[str, str, str], Any] = {}

    def count(self, tenant: str, method: str, route: str, status: str) -> None:
        key = (tenant, method, route, status)
        child = self.requests.get(key)
        if child is None:
            child = self.requests[key] = REQUESTS.labels(*key)
        child.inc()

    def observe(self, tenant: str, method: str, route: str, seconds: float) -> None:
        key = (tenant, method, route)
        child = self.latency.get(key)
        if child is None:
            child = self.latency[key] = LATENCY.labels(*key)
        child.observe(seconds)


class RequestObserver:
    """ASGI middleware around the whole app (outermost but for Starlette's error middleware).

    For each HTTP request: sets the request id (the client's ``X-Request-ID`` or a new one) in the logging
    context and answers it in ``X-Request-ID`` (replacing any the app set); counts the request in
    ``eterna_http_requests_in_flight`` while the app serves it (``/metrics`` excepted), also when the app raises or
    the client goes away; then counts ``eterna_http_requests_total`` and observes
    ``eterna_http_request_duration_seconds`` (seconds until the response started) by the verified tenant
    (``scope["state"]["tenant"]``, set by app.auth; ``none`` without a valid token), method and route template
    (``unmatched`` when no route matched), and logs one ``request`` line with method, path, status and
    duration_ms. Status 500 when the app raised before answering. Lifespan and websocket scopes pass through.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.children = _Children()
        # The event loop whose thread pool size the gauge holds (read once per loop, not per request).
        self.threads_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope)
        request_id_var.set(request_id)
        tenant_id_var.set(NO_TENANT)
        header = (REQUEST_ID_HEADER, request_id.encode("latin-1"))
        path = request_path(scope)
        start = time.perf_counter()
        started_after: float | None = None
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal started_after, status
            if message["type"] == "http.response.start":
                started_after = time.perf_counter() - start
                status = message["status"]
                headers = [item for item in message.get("headers", ()) if item[0].lower() != REQUEST_ID_HEADER]
                headers.append(header)
                message["headers"] = headers
            await send(message)

        # The scrape itself is not load: an idle worker reads 0 in flight.
        counted = path != "/metrics"
        if counted:
            loop = asyncio.get_running_loop()
            if loop is not self.threads_loop:
                # anyio's limiter exists only inside the event loop: its size is read here, not at import.
                set_worker_threads(anyio.to_thread.current_default_thread_limiter().total_tokens)
                self.threads_loop = loop
            IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, observed_send)
        finally:
            if counted:
                IN_FLIGHT.dec()
            elapsed = started_after if started_after is not None else time.perf_counter() - start
            # The tenant of the verified token (app.auth sets it); never a client header: labels stay bounded
            # by real tenants.
            state = scope.get("state")
            tenant = state.get("tenant", NO_TENANT) if state else NO_TENANT
            tenant_id_var.set(tenant)
            route = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.children.count(tenant, method, route, str(status))
            self.children.observe(latency_tenant(tenant, get_settings().latency_tenants), method, route, elapsed)
            log.info(
                "request",
                extra={"method": method, "path": path, "status": status, "duration_ms": round(elapsed * 1000, 2)},
            )
