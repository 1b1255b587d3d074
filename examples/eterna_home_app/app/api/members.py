"""Tenant membership management and the tenant's audit trail.

Rules beyond the permission check: an actor may only give or take away roles of
``app.rbac.ASSIGNABLE`` (an admin never touches the owner role), and a tenant always keeps at least
one owner. These endpoints act with the caller's role as it is now, not only as its access token
says: an admin demoted or removed is refused at once, not when its token expires (else it could
give itself its role back within the token's lifetime).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import audit
from app.api.schemas import AuditEventOut, MemberIn, MemberOut, MemberPatch
from app.auth import Principal, require
from app.db import get_session
from app.models import AuditEvent, RefreshToken, User, UserTenantRole, utcnow
from app.passwords import hash_password
from app.rbac import ROLES, allowed, can_assign

router = APIRouter(prefix="/api/v1", tags=["members"])

# viewer 0 ... owner 3: the lower of two roles is the one with fewer rights.
_RANK = {role: rank for rank, role in enumerate(reversed(ROLES))}


def require_current(permission: str) -> Callable[..., Principal]:
    """Dependency factory: ``app.auth.require(permission)``, then the caller's membership read again from
    the database. The principal returned acts with the lower of its token's role and its current role;
    HTTPException 403 when the user is no longer an active member of the tenant or that role lacks
    ``permission``."""
    token_check = require(permission)

    def dependency(principal: Principal = Depends(token_check), session: Session = Depends(get_session)) -> Principal:
        row = session.execute(
            select(User.is_active, UserTenantRole.role)
            .join(UserTenantRole, UserTenantRole.user_id == User.id)
            .where(UserTenantRole.tenant_id == principal.tenant, UserTenantRole.user_id == principal.user_id)
        ).first()
        if row is None or not row.is_active:
            raise HTTPException(status_code=403, detail="the caller is no longer a member of this tenant")
        role = min(principal.role, row.role, key=lambda name: _RANK.get(name, -1))
        if not allowed(role, permission):
            raise HTTPException(status_code=403, detail=f"role {role!r} lacks permission {permission!r}")
        return Principal(principal.user_id, principal.tenant, role)

    dependency.__name__ = f"current_role_{permission.replace(':', '_')}"
    return dependency


_members_read = require_current("members:read")
_members_manage = require_current("members:manage")
_audit_read = require_current("audit:read")


def _out(user: User, membership: UserTenantRole) -> MemberOut:
    return MemberOut(
        user_id=user.id,
        email=user.email,
        full_name=user.full_name,
        role=membership.role,
        is_active=user.is_active,
        created_at=membership.created_at,
    )


def _membership(session: Session, tenant: str, user_id: uuid.UUID) -> tuple[User, UserTenantRole]:
    found = session.execute(
        select(User, UserTenantRole)
        .join(UserTenantRole, UserTenantRole.user_id == User.id)
        .where(UserTenantRole.tenant_id == tenant, UserTenantRole.user_id == user_id)
    ).first()
    if found is None:
        raise HTTPException(status_code=404, detail="member not found")
    return found[0], found[1]


def _check_assign(principal: Principal, *roles: str) -> None:
    for role in roles:
        if not can_assign(principal.role, role):
            raise HTTPException(
                status_code=403, detail=f"role {principal.role!r} cannot give or take the role {role!r}"
            )


def _keep_an_owner(session: Session, tenant: str, membership: UserTenantRole) -> None:
    if membership.role != "owner":
        return
    # Lock the tenant's owner rows (PostgreSQL): two concurrent demotions cannot both see two owners.
    owners = session.scalars(
        select(UserTenantRole.id)
        .where(UserTenantRole.tenant_id == tenant, UserTenantRole.role == "owner")
        .with_for_update()
    ).all()
    if len(owners) <= 1:
        raise HTTPException(status_code=409, detail="a tenant keeps at least one owner")


@router.get("/members", response_model=list[MemberOut])
def list_members(
    principal: Principal = Depends(_members_read), session: Session = Depends(get_session)
) -> list[MemberOut]:
    """Members of the caller's tenant, oldest membership first."""
    rows = session.execute(
        select(User, UserTenantRole)
        .join(UserTenantRole, UserTenantRole.user_id == User.id)
        .where(UserTenantRole.tenant_id == principal.tenant)
        .order_by(UserTenantRole.created_at, User.email)
    ).all()
    return [_out(user, membership) for user, membership in rows]


@router.post("/members", response_model=MemberOut, status_code=201)
def add_member(
    body: MemberIn,
    request: Request,
    principal: Principal = Depends(_members_manage),
    session: Session = Depends(get_session),
) -> MemberOut:
    """Add a new user to the caller's tenant with ``role`` (``password`` required). 409 when an account
    with that e-mail exists already, in this tenant or any other: e-mail addresses are not verified, so
    attaching an existing account through the API would let an admin of one tenant pre-create an account
    (with a password it knows) that another tenant later adds. The platform operator attaches existing
    accounts after checking who holds them (``python -m app.manage create-owner --existing-user``)."""
    _check_assign(principal, body.role)
    email = body.email.strip().lower()
    user = session.scalar(select(User).where(func.lower(User.email) == email))
    created = user is None
    if user is None:
        if not body.password:
            raise HTTPException(status_code=422, detail="password is required to create a new user")
        user = User(
            id=uuid.uuid4(),
            tenant_id=principal.tenant,
            email=email,
            full_name=body.full_name,
            hashed_password=hash_password(body.password),
        )
        session.add(user)
        session.flush()
    elif session.scalar(
        select(UserTenantRole).where(UserTenantRole.user_id == user.id, UserTenantRole.tenant_id == principal.tenant)
    ):
        raise HTTPException(status_code=409, detail="already a member")
    else:
        audit.record(
            session,
            request,
            action="member_added",
            outcome="denied",
            tenant_id=principal.tenant,
            actor_user_id=principal.user_id,
            target_type="user",
            target_id=None,
            details={"role": body.role, "reason": "existing_account"},
        )
        session.commit()
        raise HTTPException(
            status_code=409,
            detail="an account with this e-mail exists already; the platform operator can add it to this tenant "
            "after checking who holds it",
        )
    membership = UserTenantRole(id=uuid.uuid4(), user_id=user.id, tenant_id=principal.tenant, role=body.role)
    session.add(membership)
    audit.record(
        session,
        request,
        action="member_added",
        outcome="success",
        tenant_id=principal.tenant,
        actor_user_id=principal.user_id,
        target_type="user",
        target_id=user.id,
        details={"role": body.role, "user_created": created},
    )
    session.commit()
    return _out(user, membership)


@router.patch("/members/{user_id}", response_model=MemberOut)
def change_role(
    user_id: uuid.UUID,
    body: MemberPatch,
    request: Request,
    principal: Principal = Depends(_members_manage),
    session: Session = Depends(get_session),
) -> MemberOut:
    """Change a member's role. The new role applies to its next token (login or refresh)."""
    user, membership = _membership(session, principal.tenant, user_id)
    _check_assign(principal, membership.role, body.role)
    if body.role != membership.role:
        if body.role != "owner":
            _keep_an_owner(session, principal.tenant, membership)
        previous = membership.role
        membership.role = body.role
        audit.record(
            session,
            request,
            action="member_role_changed",
            outcome="success",
            tenant_id=principal.tenant,
            actor_user_id=principal.user_id,
            target_type="user",
            target_id=user.id,
            details={"from": previous, "to": body.role},
        )
        session.commit()
    return _out(user, membership)


@router.delete("/members/{user_id}", status_code=204)
def remove_member(
    user_id: uuid.UUID,
    request: Request,
    principal: Principal = Depends(_members_manage),
    session: Session = Depends(get_session),
) -> Response:
    """Remove a member from the caller's tenant and revoke its refresh tokens there (its access tokens
    expire within JWT_ACCESS_TTL)."""
    user, membership = _membership(session, principal.tenant, user_id)
    _check_assign(principal, membership.role)
    _keep_an_owner(session, principal.tenant, membership)
    role = membership.role
    session.delete(membership)
    session.execute(
        update(RefreshToken)
        .where(
            RefreshToken.user_id == user.id,
            RefreshToken.tenant_id == principal.tenant,
            RefreshToken.revoked_at.is_(None),
        )
        .values(revoked_at=utcnow())
    )
    audit.record(
        session,
        request,
        action="member_removed",
        outcome="success",
        tenant_id=principal.tenant,
        actor_user_id=principal.user_id,
        target_type="user",
        target_id=user.id,
        details={"role": role},
    )
    session.commit()
    return Response(status_code=204)


@router.get("/audit-events", response_model=list[AuditEventOut])
def list_audit_events(
    limit: int = Query(default=100, ge=1, le=500),
    offset: int = Query(default=0, ge=0),
    principal: Principal = Depends(_audit_read),
    session: Session = Depends(get_session),
) -> list[AuditEvent]:
    """The caller's tenant's audit events, newest first."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.tenant_id == principal.tenant)
        .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(session.scalars(query))
