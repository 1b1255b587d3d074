"""Endpoints for the edge and monitoring only (/health/ready, /metrics): clients outside
INTERNAL_NETWORKS get 404, as if the endpoint did not exist."""

from __future__ import annotations

import ipaddress

from fastapi import HTTPException, Request

from app.config import get_settings


def is_internal(host: str | None) -> bool:
    """True when ``host`` (an IP address string, as in request.client.host) lies in INTERNAL_NETWORKS;
    False for None or anything that is not an IP address."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in get_settings().internal_networks)


def internal_only(request: Request) -> None:
    """Dependency: HTTPException 404 unless the client address is internal. The address is
    request.client.host, which uvicorn takes from X-Forwarded-For only for its trusted proxies."""
    if not is_internal(request.client.host if request.client else None):
        raise HTTPException(status_code=404, detail="Not Found")
