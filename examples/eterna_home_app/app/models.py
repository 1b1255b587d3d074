"""ORM models at the head revision. Every main model carries ``tenant_id``; primary keys are UUIDs so
ids cannot be enumerated across tenants."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class TenantMixin:
    tenant_id: Mapped[str] = mapped_column(String(64), index=True)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Tenant(Base):
    """A tenant (revision 0006). Its id is the ``tenant_id`` of every tenant-scoped row and the ``tid``
    claim of access tokens."""

    __tablename__ = "tenants"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(IdMixin, TenantMixin, Base):
    """A person who logs in. ``tenant_id`` is the tenant the user was first created in; the tenants
    the user may act in, and the role in each, are the user's UserTenantRole rows."""

    __tablename__ = "users"
    email: Mapped[str] = mapped_column(String(255), unique=True)
    full_name: Mapped[str] = mapped_column(String(255), default="")
    # argon2id (argon2-cffi's PasswordHasher encoding); empty: cannot log in.
    hashed_password: Mapped[str] = mapped_column(String(255), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")


class House(IdMixin, TenantMixin, Base):
    __tablename__ = "houses"
    # The house list's WHERE and ORDER BY (revision 0007): a page reads its rows from the index, unsorted.
    __table_args__ = (Index("ix_houses_tenant_created", "tenant_id", "created_at", "id"),)
    name: Mapped[str] = mapped_column(String(255))
    address: Mapped[str] = mapped_column(String(500), default="")
    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Room(IdMixin, TenantMixin, Base):
    __tablename__ = "rooms"
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    area_m2: Mapped[float | None] = mapped_column(Numeric(8, 2))


class Booking(IdMixin, TenantMixin, Base):
    __tablename__ = "bookings"
    room_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class MaintenanceRecord(IdMixin, TenantMixin, Base):
    __tablename__ = "maintenance_records"
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id", ondelete="CASCADE"))
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32), default="open")


class Node(IdMixin, TenantMixin, Base):
    __tablename__ = "nodes"
    house_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("houses.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(64))
    serial: Mapped[str] = mapped_column(String(128))


class AudioLog(IdMixin, TenantMixin, Base):
    __tablename__ = "audio_logs"
    node_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("nodes.id", ondelete="SET NULL"))
    transcript: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


class Document(IdMixin, TenantMixin, Base):
    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_tenant_created", "tenant_id", "created_at"),)
    house_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("houses.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    object_key: Mapped[str] = mapped_column(String(512))


class BIMModel(IdMixin, TenantMixin, Base):
    __tablename__ = "bim_models"
    __table_args__ = (Index("ix_bim_models_tenant_created", "tenant_id", "created_at"),)
    house_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("houses.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    object_key: Mapped[str] = mapped_column(String(512))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Asynchronous conversion (revision 0005): none -> queued -> processing -> completed|failed.
    conversion_status: Mapped[str] = mapped_column(String(32), default="none", server_default="none")
    conversion_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    conversion_completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    converted_object_key: Mapped[str | None] = mapped_column(String(512))
    conversion_error: Mapped[str | None] = mapped_column(Text)


class UserTenantRole(Base):
    __tablename__ = "user_tenant_roles"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id", name="uq_user_tenant_roles_user_tenant"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # Revision 0006 makes it a foreign key to tenants.
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32), default="member")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RefreshToken(Base):
    """An opaque refresh token, stored only as its SHA-256 (hex). Rotation revokes a token and points
    ``replaced_by`` at its successor in the same ``family_id``; presenting a revoked token again
    revokes the whole family (revision 0006)."""

    __tablename__ = "refresh_tokens"
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    family_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    replaced_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class AuditEvent(Base):
    """One critical operation (login, token refresh, membership change, deletion), revision 0006.
    ``tenant_id`` and ``actor_user_id`` are empty when unknown (a failed login of an unknown e-mail)."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_created", "tenant_id", "created_at"),)
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str | None] = mapped_column(String(64))
    target_id: Mapped[str | None] = mapped_column(String(255))
    outcome: Mapped[str] = mapped_column(String(16))
    client_ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")


class AIAssistantInteraction(IdMixin, TenantMixin, Base):
    __tablename__ = "ai_assistant_interactions"
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    prompt: Mapped[str] = mapped_column(Text)
    response: Mapped[str] = mapped_column(Text, default="")
    model_name: Mapped[str] = mapped_column(String(128), default="")
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
