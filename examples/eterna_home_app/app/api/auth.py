"""Login (OAuth2 password flow), refresh-token rotation with reuse detection, logout and ``/me``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app import audit
from app.api.schemas import MeOut, RefreshIn, TokenOut
from app.auth import Principal, current_principal, unauthorized
from app.config import get_settings
from app.db import get_session
from app.models import RefreshToken, User, UserTenantRole, utcnow
from app.passwords import verify_password
from app.tenancy import TENANT_RE
from app.tokens import SigningNotConfigured, hash_refresh_token, issue_access_token, new_refresh_token

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

BAD_CREDENTIALS = "incorrect email or password"
BAD_REFRESH = "invalid refresh token"


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were stored in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _issue(
    session: Session, user_id: uuid.UUID, tenant: str, role: str, family_id: uuid.UUID
) -> tuple[TokenOut, RefreshToken]:
    settings = get_settings()
    try:
        access, expires_in = issue_access_token(settings, user_id, tenant, role)
    except SigningNotConfigured:
        raise HTTPException(status_code=503, detail="token signing is not configured") from None
    refresh, digest = new_refresh_token()
    row = RefreshToken(
        id=uuid.uuid4(),
        token_hash=digest,
        user_id=user_id,
        tenant_id=tenant,
        family_id=family_id,
        expires_at=utcnow() + timedelta(seconds=settings.JWT_REFRESH_TTL),
    )
    session.add(row)
    out = TokenOut(access_token=access, expires_in=expires_in, refresh_token=refresh, tenant=tenant, role=role)
    return out, row


def _revoke_family(session: Session, family_id: uuid.UUID) -> int:
    result = session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount or 0


@router.post("/token", response_model=TokenOut)
def login(
    request: Request,
    username: str = Form(..., max_length=255, description="e-mail address"),
    password: str = Form(..., max_length=1024),
    tenant: str | None = Form(
        default=None, pattern=TENANT_RE.pattern, description="tenant id; needed when the user has several tenants"
    ),
    grant_type: str | None = Form(default=None, pattern="^password$"),
    session: Session = Depends(get_session),
) -> TokenOut:
    """OAuth2 password flow: ``username`` is the e-mail. Unknown user, wrong password and inactive
    user all answer the same 401."""
    email = username.strip().lower()
    user = session.scalar(select(User).where(func.lower(User.email) == email))
    ok, new_hash = verify_password(user.hashed_password if user else None, password)
    memberships: dict[str, str] = {}
    if user is not None:
        rows = session.scalars(select(UserTenantRole).where(UserTenantRole.user_id == user.id))
        memberships = {m.tenant_id: m.role for m in rows}
    if not ok or user is None or not user.is_active:
        reason = "unknown_user" if user is None else ("wrong_password" if not ok else "inactive")
        audit.record(
            session,
            request,
            action="login",
            outcome="failure",
            # The tenant asked for only when the user belongs to it (a client cannot write into any
            # tenant's trail), else the user's home tenant.
            tenant_id=(tenant if tenant in memberships else user.tenant_id) if user is not None else None,
            actor_user_id=user.id if user else None,
            target_type="user",
            target_id=user.id if user else None,
            details={"email": email, "reason": reason},
        )
        session.commit()
        raise unauthorized(BAD_CREDENTIALS)
    if new_hash:
        user.hashed_password = new_hash
    if tenant is None:
        if len(memberships) > 1:
            session.commit()
            raise HTTPException(
                status_code=400,
                detail="the user belongs to several tenants: choose one with the form field `tenant` "
                f"({', '.join(sorted(memberships))})",
            )
        tenant = next(iter(memberships), None)
    if tenant is None or tenant not in memberships:
        audit.record(
            session,
            request,
            action="login",
            outcome="denied",
            tenant_id=user.tenant_id,
            actor_user_id=user.id,
            target_type="user",
            target_id=user.id,
            details={"email": email, "reason": "no_membership", "tenant": tenant},
        )
        session.commit()
        raise HTTPException(status_code=403, detail="the user is not a member of that tenant")
    role = memberships[tenant]
    out, _ = _issue(session, user.id, tenant, role, uuid.uuid4())
    audit.record(
        session,
        request,
        action="login",
        outcome="success",
        tenant_id=tenant,
        actor_user_id=user.id,
        target_type="user",
        target_id=user.id,
        details={"email": email, "role": role},
    )
    session.commit()
    return out


@router.post("/refresh", response_model=TokenOut)
def refresh(body: RefreshIn, request: Request, session: Session = Depends(get_session)) -> TokenOut:
    """Rotate a refresh token: the old one is revoked and a new pair is issued for the same tenant,
    with the role read again from the membership. A token that was already rotated revokes its whole
    family (it was stolen, or the client is broken) and answers 401."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(body.refresh_token)))
    if row is None:
        raise unauthorized(BAD_REFRESH)
    context = {"tenant_id": row.tenant_id, "actor_user_id": row.user_id, "target_type": "refresh_token"}

    def refused(action: str, outcome: str, details: dict) -> HTTPException:
        """Record the refusal in the audit trail and commit; the 401 to raise (HTTPException)."""
        audit.record(
            session, request, action=action, outcome=outcome, target_id=row.family_id, details=details, **context
        )
        session.commit()
        return unauthorized(BAD_REFRESH)

    if row.revoked_at is not None:
        if row.replaced_by is not None:
            revoked = _revoke_family(session, row.family_id)
            raise refused("refresh_reuse_detected", "denied", {"family_revoked": revoked})
        raise refused("refresh", "failure", {"reason": "revoked"})
    if _aware(row.expires_at) <= utcnow():
        raise refused("refresh", "failure", {"reason": "expired"})
    user = session.get(User, row.user_id)
    membership = session.scalar(
        select(UserTenantRole).where(UserTenantRole.user_id == row.user_id, UserTenantRole.tenant_id == row.tenant_id)
    )
    if user is None or not user.is_active or membership is None:
        _revoke_family(session, row.family_id)
        raise refused("refresh", "denied", {"reason": "no_membership"})
    out, new_row = _issue(session, row.user_id, row.tenant_id, membership.role, row.family_id)
    session.flush()
    # Conditional: of two concurrent refreshes with the same token, only one rotates it.
    rotated = session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=utcnow(), replaced_by=new_row.id)
    ).rowcount
    if rotated != 1:
        session.rollback()
        revoked = _revoke_family(session, row.family_id)
        raise refused("refresh_reuse_detected", "denied", {"family_revoked": revoked})
    audit.record(
        session,
        request,
        action="refresh",
        outcome="success",
        target_id=row.family_id,
        details={"role": membership.role},
        **context,
    )
    session.commit()
    return out


@router.post("/logout", status_code=204)
def logout(body: RefreshIn, request: Request, session: Session = Depends(get_session)) -> Response:
    """Revoke the refresh token's whole family (this login session). 204 whether or not it was known."""
    row = session.scalar(select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(body.refresh_token)))
    if row is not None:
        revoked = _revoke_family(session, row.family_id)
        audit.record(
            session,
            request,
            action="logout",
            outcome="success",
            tenant_id=row.tenant_id,
            actor_user_id=row.user_id,
            target_type="refresh_token",
            target_id=row.family_id,
            details={"revoked": revoked},
        )
        session.commit()
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
def me(principal: Principal = Depends(current_principal), session: Session = Depends(get_session)) -> MeOut:
    """The caller as the token says, with the permissions of its role."""
    user = session.get(User, principal.user_id)
    if user is None:
        raise unauthorized("unknown user", "invalid_token")
    return MeOut(
        user_id=user.id,
        email=user.email,
        tenant=principal.tenant,
        role=principal.role,
        permissions=sorted(principal.permissions),
    )
