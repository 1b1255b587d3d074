"""App unit tests: SQLite in memory instead of PostgreSQL and an in-memory S3 stub."""

from __future__ import annotations

import io
import os

import pytest

os.environ.update(
    {
        "DATABASE_URL": "sqlite+pysqlite:///:memory:",
        "ALLOWED_HOSTS": "testserver",
        "CORS_ORIGINS": "https://app.example.test",
        "CELERY_BROKER_URL": "memory://",
    }
)


class FakeS3:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: object) -> None:  # noqa: N803 - boto3 names
        self.objects[(Bucket, Key)] = Body

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803
        return {"Body": io.BytesIO(self.objects[(Bucket, Key)])}

    def delete_object(self, Bucket: str, Key: str) -> None:  # noqa: N803
        self.objects.pop((Bucket, Key), None)


@pytest.fixture
def client(monkeypatch):
    from fastapi.testclient import TestClient
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    from app import db, main, models
    from app.api import bim, documents

    engine = create_engine(
        "sqlite+pysqlite:///:memory:", poolclass=StaticPool, connect_args={"check_same_thread": False}
    )
    models.Base.metadata.create_all(engine)
    db.get_engine.cache_clear()
    db._factory.cache_clear()
    monkeypatch.setattr(db, "get_engine", lambda: engine)
    s3 = FakeS3()
    monkeypatch.setattr(documents, "s3_client", lambda: s3)
    monkeypatch.setattr(bim, "s3_client", lambda: s3)
    with TestClient(main.app) as test_client:
        test_client.s3 = s3
        yield test_client
    db._factory.cache_clear()
