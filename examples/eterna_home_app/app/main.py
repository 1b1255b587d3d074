"""FastAPI application: ``uvicorn app.main:app``."""

from __future__ import annotations

import logging
import time
import uuid

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.trustedhost import TrustedHostMiddleware

from app import __version__, docs, outages
from app.api import auth, bim, documents, houses, members
from app.config import get_settings
from app.health import router as health_router
from app.logging_setup import configure_logging, request_id_var, tenant_id_var
from app.metrics import IN_FLIGHT, LATENCY, REQUESTS, latency_tenant, set_worker_threads
from app.metrics import router as metrics_router
from app.uploads import UploadLimitMiddleware

settings = get_settings()
configure_logging(settings.LOG_LEVEL)
log = logging.getLogger("app.request")

app = FastAPI(
    title="Eterna Home (reference app)",
    version=__version__,
    debug=settings.DEBUG,
    # /docs is app.docs (assets served by the app, no inline script); no ReDoc.
    docs_url=None,
    redoc_url=None,
    swagger_ui_oauth2_redirect_url=None,
)
app.add_middleware(TrustedHostMiddleware, allowed_hosts=settings.allowed_hosts)
# Bodies over MAX_UPLOAD_BYTES get 413 before they are read; dependency outages answer 503 with Retry-After.
app.add_middleware(UploadLimitMiddleware)
outages.install(app)
if settings.cors_origins:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "PATCH", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
        allow_credentials=True,
    )


@app.middleware("http")
async def observe(request: Request, call_next):  # noqa: ANN001, ANN201 - starlette middleware signature
    request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    request_id_var.set(request_id[:64])
    tenant_id_var.set("none")
    start = time.perf_counter()
    status = 500
    # The scrape itself is not load: an idle worker reads 0 in flight.
    counted = request.url.path != "/metrics"
    if counted:
        # anyio's limiter exists only inside the event loop: its size is read here, not at import.
        set_worker_threads(anyio.to_thread.current_default_thread_limiter().total_tokens)
        IN_FLIGHT.inc()
    try:
        response = await call_next(request)
        status = response.status_code
        response.headers["X-Request-ID"] = request_id_var.get()
        return response
    finally:
        if counted:
            IN_FLIGHT.dec()
        # The tenant of the verified token (app.auth sets it); "none" for unauthenticated requests.
        # Never a client header: labels stay bounded by real tenants.
        tenant = getattr(request.state, "tenant", "none")
        tenant_id_var.set(tenant)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        elapsed = time.perf_counter() - start
        REQUESTS.labels(tenant, request.method, path, str(status)).inc()
        LATENCY.labels(latency_tenant(tenant, get_settings().latency_tenants), request.method, path).observe(elapsed)
        log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.url.path,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )


app.include_router(health_router)
app.include_router(metrics_router)
app.include_router(auth.router)
app.include_router(members.router)
app.include_router(houses.router)
app.include_router(documents.router)
app.include_router(bim.router)
docs.install(app)
