"""The tenant of a request comes from the X-Tenant-ID header (set by the edge after authentication)."""

from __future__ import annotations

import re

from fastapi import Header, HTTPException

from app.logging_setup import tenant_id_var

TENANT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def current_tenant(x_tenant_id: str = Header(..., alias="X-Tenant-ID")) -> str:
    if not TENANT_RE.match(x_tenant_id):
        raise HTTPException(status_code=400, detail="X-Tenant-ID must match ^[a-z0-9][a-z0-9-]{0,62}$")
    tenant_id_var.set(x_tenant_id)
    return x_tenant_id
