"""App unit tests: SQLite in memory instead of PostgreSQL, an in-memory S3 stub, cheap argon2
parameters, and signing keys of their own (k2 signs; k1 is retired with a grace period)."""

from __future__ import annotations

import io
import os
import time
import uuid
from dataclasses import dataclass

import pytest

SECRET_K1 = "K1" * 32
SECRET_K2 = "K2" * 32
GRACE_END = int(time.time()) + 3600

os.environ.update(
    {
        "DATABASE_URL": "sqlite+pysqlite:///:memory:",
        "ALLOWED_HOSTS": "testserver",
        "CORS_ORIGINS": "https://app.example.test",
        "CELERY_BROKER_URL": "memory://",
        "JWT_KEYS": f"k2:{SECRET_K2},k1:{SECRET_K1}:{GRACE_END}",
        "JWT_ACTIVE_KID": "k2",
        "READY_CACHE_SECONDS": "5",
    }
)

INTERNAL_CLIENT = ("127.0.0.1", 50000)
EXTERNAL_CLIENT = ("203.0.113.7", 50000)
PASSWORD = "correct horse battery staple"  # noqa: S105 - test users' password


class FakeBody(io.BytesIO):
    """A botocore StreamingBody stand-in: read() and iter_chunks()."""

    def iter_chunks(self, chunk_size: int = 1024):
        while chunk := self.read(chunk_size):
            yield chunk


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        # Largest single read() of upload_fileobj: the app must stream, not read a file whole.
        self.largest_read = 0

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: object) -> None:  # noqa: N803 - boto3 names
        self.objects[(Bucket, Key)] = Body

    def upload_fileobj(self, Fileobj, Bucket: str, Key: str, **_: object) -> None:  # noqa: ANN001, N803
        from app.uploads import PART_BYTES

        parts = []
        while chunk := Fileobj.read(PART_BYTES):
            self.largest_read = max(self.largest_read, len(chunk))
            parts.append(chunk)
        self.objects[(Bucket, Key)] = b"".join(parts)

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803
        return {"Body": FakeBody(self.objects[(Bucket, Key)])}

    def delete_object(self, Bucket: str, Key: str) -> None:  # noqa: N803
        self.objects.pop((Bucket, Key), None)


@dataclass
class Member:
    user_id: uuid.UUID
    email: str
    tenant: str
    role: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class World:
    """Users and memberships made directly in the database, with access tokens minted by the app."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine

    def session(self):  # noqa: ANN201
        from sqlalchemy.orm import Session

        return Session(self.engine, expire_on_commit=False)

    def user(
        self,
        email: str,
        memberships: dict[str, str],
        password: str = PASSWORD,
        active: bool = True,
    ) -> uuid.UUID:
        from app.models import Tenant, User, UserTenantRole
        from app.passwords import hash_password

        with self.session() as session:
            for tenant in memberships:
                if session.get(Tenant, tenant) is None:
                    session.add(Tenant(id=tenant, name=tenant))
            user = User(
                id=uuid.uuid4(),
                tenant_id=next(iter(memberships)),
                email=email,
                hashed_password=hash_password(password),
                is_active=active,
            )
            session.add(user)
            session.flush()
            for tenant, role in memberships.items():
                session.add(UserTenantRole(id=uuid.uuid4(), user_id=user.id, tenant_id=tenant, role=role))
            session.commit()
            return user.id

    def member(self, tenant: str, role: str, email: str | None = None) -> Member:
        from app.config import get_settings
        from app.tokens import issue_access_token

        email = email or f"{role}-{uuid.uuid4().hex[:8]}@{tenant}.example"
        user_id = self.user(email, {tenant: role})
        token, _ = issue_access_token(get_settings(), user_id, tenant, role)
        return Member(user_id, email, tenant, role, token)

    def audit(self, action: str | None = None) -> list:
        from sqlalchemy import select

        from app.models import AuditEvent

        with self.session() as session:
            query = select(AuditEvent).order_by(AuditEvent.created_at)
            if action:
                query = query.where(AuditEvent.action == action)
            return list(session.scalars(query))


@pytest.fixture(autouse=True)
def _fresh_settings_and_cheap_hashing():
    from argon2 import PasswordHasher

    from app import passwords
    from app.config import get_settings
    from app.health import READY_CACHE

    get_settings.cache_clear()
    READY_CACHE.clear()
    previous = passwords.hasher()
    passwords.set_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    passwords.set_hasher(previous)
    get_settings.cache_clear()
    READY_CACHE.clear()


@pytest.fixture
def engine(monkeypatch):
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from app import db, models

    engine = create_engine(
        "sqlite+pysqlite:///:memory:", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    models.Base.metadata.create_all(engine)
    db.get_engine.cache_clear()
    db._factory.cache_clear()
    monkeypatch.setattr(db, "get_engine", lambda: engine)
    yield engine
    db._factory.cache_clear()


@pytest.fixture
def world(engine) -> World:
    return World(engine)


@pytest.fixture
def client(engine, world, monkeypatch):
    from fastapi.testclient import TestClient

    from app import main, tasks, uploads
    from app.api import bim, documents

    s3 = FakeS3()
    monkeypatch.setattr(documents, "s3_client", lambda: s3)
    monkeypatch.setattr(bim, "s3_client", lambda: s3)
    monkeypatch.setattr(uploads, "s3_client", lambda: s3)
    queued: list[tuple] = []
    monkeypatch.setattr(tasks.convert_bim, "delay", lambda *args: queued.append(args))
    with TestClient(main.app, client=INTERNAL_CLIENT) as test_client:
        test_client.s3 = s3
        test_client.queued = queued
        test_client.world = world
        yield test_client


@pytest.fixture
def external_client(client):
    from fastapi.testclient import TestClient

    from app import main

    with TestClient(main.app, client=EXTERNAL_CLIENT) as test_client:
        yield test_client


@pytest.fixture
def a(world):
    """The owner of tenant-a (a World member)."""
    return world.member("tenant-a", "owner")


@pytest.fixture
def b(world):
    """The owner of tenant-b (a World member)."""
    return world.member("tenant-b", "owner")
