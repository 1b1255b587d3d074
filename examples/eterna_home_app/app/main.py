"""FastAPI application: ``uvicorn app.main:app``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__, docs, outages
from app.api import auth, bim, documents, houses, members
from app.config import get_settings
from app.health import router as health_router
from app.hosts import TrustedHosts
from app.logging_setup import configure_logging
from app.metrics import router as metrics_router
from app.observe import RequestObserver
from app.uploads import UploadLimitMiddleware

settings = get_settings()
configure_logging(settings.LOG_LEVEL)

app = FastAPI(
    title="Eterna Home (reference app)",
    version=__version__,
    debug=settings.DEBUG,
    # /docs is app.docs (assets served by the app, no inline script); no ReDoc.
    docs_url=None,
    redoc_url=None,
    swagger_ui_oauth2_redirect_url=None,
)
app.add_middleware(TrustedHosts, allowed_hosts=settings.allowed_hosts)
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
# Outermost of the app's middleware, so its figures and log line cover everything below it.
app.add_middleware(RequestObserver)

app.include_router(health_router)
app.include_router(metrics_router)
app.include_router(auth.router)
app.include_router(members.router)
app.include_router(houses.router)
app.include_router(documents.router)
app.include_router(bim.router)
docs.install(app)
