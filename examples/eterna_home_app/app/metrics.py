"""Prometheus metrics; multiprocess-safe when PROMETHEUS_MULTIPROC_DIR is set (several workers)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

from app.internal import internal_only

REQUESTS = Counter(
    "eterna_http_requests_total",
    "HTTP requests by tenant, method, route and status",
    ["tenant", "method", "route", "status"],
)
LATENCY = Histogram("eterna_http_request_duration_seconds", "HTTP request latency", ["method", "route"])

router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False, dependencies=[Depends(internal_only)])
def metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        data = generate_latest(registry)
    else:
        data = generate_latest()
    return Response(data, media_type=CONTENT_TYPE_LATEST)
