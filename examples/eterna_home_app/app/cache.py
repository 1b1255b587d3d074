"""Redis: the connection and the key scheme of tenant data.

The app keeps no tenant data in Redis today (``/health/ready`` only sends PING; Celery runs on RabbitMQ
and stores no results). Any cache of tenant data must name its keys with ``tenant_key`` so that
``erase-tenant`` finds them: it deletes every key matching ``tenant_key_pattern(tenant)``.
"""

from __future__ import annotations

from typing import Any

import redis

from app.config import get_settings
from app.tenancy import TENANT_RE

KEY_PREFIX = "eterna:tenant"


def tenant_key(tenant: str, *parts: str) -> str:
    """The Redis key of ``parts`` in ``tenant``'s namespace, e.g. ``eterna:tenant:demo:house:<id>``."""
    if not TENANT_RE.fullmatch(tenant):
        raise ValueError(f"not a tenant id: {tenant!r}")
    return ":".join((KEY_PREFIX, tenant, *parts))


def tenant_key_pattern(tenant: str) -> str:
    """SCAN MATCH pattern of every key of ``tenant`` (tenant ids hold no glob characters)."""
    return tenant_key(tenant, "*")


def redis_client() -> Any:
    """A client for REDIS_URL, verifying TLS against TLS_CA_FILE for rediss:// (as /health/ready does)."""
    settings = get_settings()
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_timeout=30,
        socket_connect_timeout=settings.READY_TIMEOUT,
        **({"ssl_ca_certs": settings.TLS_CA_FILE} if settings.REDIS_URL.startswith("rediss://") else {}),
    )
