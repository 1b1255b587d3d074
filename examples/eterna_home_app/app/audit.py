"""Audit trail of critical operations: one ``audit_events`` row each, also logged as JSON by the
``app.audit`` logger."""

from __future__ import annotations

import json
import logging
import uuid

from fastapi import Request
from sqlalchemy.orm import Session

from app.logging_setup import request_id_var
from app.models import AuditEvent

log = logging.getLogger("app.audit")


def client_ip(request: Request | None) -> str | None:
    """The client address as the app sees it (uvicorn sets it from X-Forwarded-For for trusted proxies)."""
    return request.client.host if request is not None and request.client else None


def record(
    session: Session,
    request: Request | None,
    *,
    action: str,
    outcome: str,
    tenant_id: str | None = None,
    actor_user_id: uuid.UUID | None = None,
    target_type: str | None = None,
    target_id: str | uuid.UUID | None = None,
    details: dict | None = None,
) -> AuditEvent:
    """Add an audit event to ``session`` (the caller commits, with its own change or alone) and log it.

    ``action`` e.g. ``login``, ``member_role_changed``, ``house_deleted``; ``outcome`` ``success``,
    ``failure`` or ``denied``; ``details`` a JSON-serialisable dict that must never hold a secret
    (password, token, hash). Returns the (pending) AuditEvent.
    """
    event = AuditEvent(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        actor_user_id=actor_user_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        outcome=outcome,
        client_ip=client_ip(request),
        request_id=request_id_var.get() if request is not None else None,
        details=json.dumps(details or {}, sort_keys=True, default=str),
    )
    session.add(event)
    log.info(
        "audit %s %s",
        action,
        outcome,
        extra={
            "audit": {
                "id": str(event.id),
                "action": action,
                "outcome": outcome,
                "tenant_id": tenant_id,
                "actor_user_id": str(actor_user_id) if actor_user_id else None,
                "target_type": target_type,
                "target_id": event.target_id,
                "client_ip": event.client_ip,
                "details": details or {},
            }
        },
    )
    return event
