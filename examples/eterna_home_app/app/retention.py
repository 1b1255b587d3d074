"""Retention jobs (issue #20) run by ``python -m app.manage enforce-retention`` from a daily systemd timer:

- the audit trail: rows of ``audit_events`` older than ``audit_days`` are deleted (the pruning itself is audited);
- application data at contract end: a tenant whose contract ended more than ``after_contract_days`` ago (the
  operator's list of ended contracts, ``[{"tenant": ..., "ended_on": "YYYY-MM-DD"}]``) is erased like
  ``erase-tenant`` does, and its erasure record is kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.models import AuditEvent
from app.tenancy import TENANT_RE


class BadContracts(ValueError):
    """The list of ended contracts is malformed; the message names the entry."""


def prune_audit(session: Session, days: int, now: datetime | None = None) -> dict[str, Any]:
    """Delete audit events older than ``days`` (int > 0) days before ``now`` (UTC, default: the current time).

    Returns {"cutoff": ISO time, "deleted": int}. Commits. Raises ValueError when days < 1.
    """
    if days < 1:
        raise ValueError("audit retention must be at least one day")
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    old = AuditEvent.created_at < cutoff
    count = session.scalar(select(func.count()).select_from(AuditEvent).where(old)) or 0
    session.execute(delete(AuditEvent).where(old))
    session.commit()
    return {"cutoff": cutoff.isoformat(), "deleted": int(count)}


def due_contracts(contracts: Iterable[Mapping[str, Any]], after_days: int, today: date) -> list[str]:
    """Tenants whose contract ended more than ``after_days`` days before ``today``: their data is due for erasure.

    ``contracts``: mappings with ``tenant`` (a tenant id) and ``ended_on`` (ISO date). Returns the tenant ids in
    the order given, each once. Raises BadContracts naming the entry for a bad tenant id or date, and when
    after_days < 0.
    """
    if after_days < 0:
        raise BadContracts("the days after a contract's end must be 0 or more")
    due: list[str] = []
    for position, entry in enumerate(contracts, start=1):
        tenant = str(entry.get("tenant", ""))
        if not TENANT_RE.fullmatch(tenant):
            raise BadContracts(f"ended contract {position}: tenant must match {TENANT_RE.pattern}")
        try:
            ended = date.fromisoformat(str(entry.get("ended_on", "")))
        except ValueError:
            raise BadContracts(f"ended contract {position} ({tenant}): ended_on must be a date YYYY-MM-DD") from None
        if ended + timedelta(days=after_days) < today and tenant not in due:
            due.append(tenant)
    return due
