"""Roles and permissions: the one place that says who may do what in a tenant.

A principal's permissions are ``MATRIX[role]``; every /api/v1 endpoint declares the one permission it
needs (``app.auth.require``). Membership rules that are not a plain permission (admin and the owner
role, the last owner) live in ``app.api.members``.
"""

from __future__ import annotations

ROLES: tuple[str, ...] = ("owner", "admin", "member", "viewer")

PERMISSIONS: frozenset[str] = frozenset(
    {
        "houses:read",
        "houses:write",
        "houses:delete",
        "documents:read",
        "documents:write",
        "documents:delete",
        "bim:read",
        "bim:write",
        "bim:delete",
        "members:read",
        "members:manage",
        "audit:read",
    }
)

_READ = frozenset({"houses:read", "documents:read", "bim:read"})
_WRITE = frozenset({"houses:write", "documents:write", "bim:write"})
_DELETE = frozenset({"houses:delete", "documents:delete", "bim:delete"})

MATRIX: dict[str, frozenset[str]] = {
    "owner": PERMISSIONS,
    "admin": _READ | _WRITE | _DELETE | {"members:read", "members:manage", "audit:read"},
    "member": _READ | _WRITE | {"members:read"},
    "viewer": _READ,
}

# Roles an actor may give or take away. Only an owner touches the owner role.
ASSIGNABLE: dict[str, frozenset[str]] = {
    "owner": frozenset(ROLES),
    "admin": frozenset({"admin", "member", "viewer"}),
    "member": frozenset(),
    "viewer": frozenset(),
}

if set(MATRIX) != set(ROLES) or any(not perms <= PERMISSIONS for perms in MATRIX.values()):
    raise RuntimeError("rbac.MATRIX must cover exactly ROLES with known permissions")


def permissions_for(role: str) -> frozenset[str]:
    """Permissions of ``role`` (str); an unknown role has none (empty frozenset)."""
    return MATRIX.get(role, frozenset())


def allowed(role: str, permission: str) -> bool:
    """True when ``role`` holds ``permission``. Raises ValueError for a permission that does not exist
    (a typo must not silently deny or allow)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return permission in permissions_for(role)


def can_assign(actor_role: str, role: str) -> bool:
    """True when an actor with ``actor_role`` may give ``role`` to someone or take it away."""
    return role in ASSIGNABLE.get(actor_role, frozenset())
