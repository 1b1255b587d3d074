"""Authentication and authorisation of /api/v1 requests.

``current_principal`` verifies the Bearer access token and is the only source of the request's
tenant and role; ``require(permission)`` adds the RBAC check of ``app.rbac``. Both record the tenant
on ``request.state.tenant`` (metrics and request logs) and in the logging context.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import OAuth2PasswordBearer

from app.config import get_settings
from app.logging_setup import tenant_id_var
from app.rbac import PERMISSIONS, allowed, permissions_for
from app.tokens import TokenError, verify_access_token

log = logging.getLogger("app.auth")

TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path
# auto_error=False: the 401 below carries the same WWW-Authenticate header for every failure.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, the tenant it acts in and its role there (all from the token)."""

    user_id: uuid.UUID
    tenant: str
    role: str

    @property
    def permissions(self) -> frozenset[str]:
        return permissions_for(self.role)


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    """A 401 with ``WWW-Authenticate: Bearer`` (RFC 6750; ``error="invalid_token"`` when given)."""
    challenge = f'Bearer error="{error}"' if error else "Bearer"
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": challenge})


async def current_principal(request: Request, token: str | None = Depends(oauth2_scheme)) -> Principal:
    """The verified caller. Raises HTTPException 401 without a Bearer token or with one that fails
    any check of ``app.tokens.verify_access_token``."""
    if not token:
        raise unauthorized("not authenticated")
    try:
        claims = verify_access_token(get_settings(), token)
    except TokenError as exc:
        log.info("access token rejected: %s", exc)
        raise unauthorized("invalid or expired access token", "invalid_token") from None
    request.state.tenant = claims.tenant
    request.state.user_id = claims.user_id
    tenant_id_var.set(claims.tenant)
    return Principal(claims.user_id, claims.tenant, claims.role)


def require(permission: str) -> Callable[..., Awaitable[Principal]]:
    """Dependency factory: the verified principal when its role holds ``permission`` (a name of
    ``app.rbac.PERMISSIONS``), else HTTPException 403 (401 as ``current_principal``).
    Raises ValueError at import time for an unknown permission."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")

    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if not allowed(principal.role, permission):
            raise HTTPException(status_code=403, detail=f"role {principal.role!r} lacks permission {permission!r}")
        return principal

    dependency.__name__ = f"require_{permission.replace(':', '_')}"
    return dependency
