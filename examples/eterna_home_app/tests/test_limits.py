"""Issue #24: upload limits, task time limits, and 503 with Retry-After while a dependency is down."""

from __future__ import annotations

import hashlib
import uuid

import pytest
import redis.exceptions
import sqlalchemy.exc
from botocore.exceptions import ClientError, EndpointConnectionError
from celery.exceptions import SoftTimeLimitExceeded
from kombu.exceptions import OperationalError as KombuOperationalError
from pydantic import ValidationError


def test_upload_is_streamed_in_parts_and_hashed(client, world, monkeypatch):
    from app import uploads

    monkeypatch.setattr(uploads, "PART_BYTES", 64 * 1024)
    owner = world.member("t-up", "owner")
    data = bytes(range(256)) * 4096  # 1 MiB
    response = client.post("/api/v1/documents", headers=owner.headers, files={"file": ("plan.pdf", data)})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["size_bytes"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    # Sent to S3 in parts of PART_BYTES: never the whole file in one read.
    assert 0 < client.s3.largest_read <= 64 * 1024
    assert client.s3.objects[("documents", f"t-up/{body['id']}")] == data
    download = client.get(f"/api/v1/documents/{body['id']}/download", headers=owner.headers)
    assert download.status_code == 200
    assert download.content == data


def test_body_over_the_limit_refused_before_it_is_read(client, world, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000")
    from app.config import get_settings

    get_settings.cache_clear()
    owner = world.member("t-big", "owner")
    response = client.post("/api/v1/bim-models", headers=owner.headers, files={"file": ("m.ifc", b"x" * 5000)})
    assert response.status_code == 413, response.text
    assert client.s3.objects == {}


def test_chunked_body_over_the_limit_refused_as_it_arrives(client, world, monkeypatch):
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1000")
    from app.config import get_settings

    get_settings.cache_clear()
    owner = world.member("t-chunk", "owner")

    def chunks():
        for _ in range(20):
            yield b"y" * 500

    headers = {**owner.headers, "Content-Type": "application/octet-stream"}
    response = client.post("/api/v1/houses", headers=headers, content=chunks())
    assert response.status_code == 413, response.text


def test_reader_refuses_a_file_past_the_limit():
    # The body limit counts the multipart envelope; the file alone is counted again while it is streamed to S3.
    import io

    from app import uploads

    reader = uploads._HashingReader(io.BytesIO(b"z" * 5000), 4000)
    assert reader.read(4000) == b"z" * 4000
    with pytest.raises(uploads.UploadTooLarge):
        reader.read(1000)


def test_task_soft_limit_must_be_below_the_hard_limit(monkeypatch):
    from app.config import Settings

    monkeypatch.setenv("CELERY_TASK_SOFT_TIME_LIMIT", "60")
    monkeypatch.setenv("CELERY_TASK_TIME_LIMIT", "60")
    with pytest.raises(ValidationError, match="CELERY_TASK_SOFT_TIME_LIMIT"):
        Settings()


def test_worker_uses_the_time_limits():
    from app.celery_app import celery_app
    from app.config import get_settings

    settings = get_settings()
    assert celery_app.conf.task_soft_time_limit == settings.CELERY_TASK_SOFT_TIME_LIMIT
    assert celery_app.conf.task_time_limit == settings.CELERY_TASK_TIME_LIMIT
    assert celery_app.conf.task_acks_late and celery_app.conf.task_acks_on_failure_or_timeout


@pytest.mark.parametrize(
    ("exc", "dependency"),
    [
        (sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("connection refused")), "postgresql"),
        (redis.exceptions.ConnectionError("refused"), "redis"),
        (KombuOperationalError("refused"), "rabbitmq"),
        (EndpointConnectionError(endpoint_url="http://s3"), "s3"),
        (
            ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject"),
            "s3",
        ),
        (ClientError({"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}}, "GetObject"), "s3"),
    ],
)
def test_dependency_outage_answers_503_with_retry_after(client, world, monkeypatch, exc, dependency):
    from app.api import houses

    def down(*_: object, **__: object):
        raise exc

    monkeypatch.setattr(houses, "house_list_json", down)
    owner = world.member("t-down", "owner")
    response = client.get("/api/v1/houses", headers=owner.headers)
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "30"
    assert response.json()["dependency"] == dependency


@pytest.mark.parametrize(
    "exc",
    [
        RuntimeError("a bug"),
        ClientError({"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}}, "GetObject"),
    ],
)
def test_other_errors_stay_500(engine, world, monkeypatch, exc):
    from fastapi.testclient import TestClient

    from app import main
    from app.api import houses

    def broken(*_: object, **__: object):
        raise exc

    monkeypatch.setattr(houses, "house_list_json", broken)
    owner = world.member("t-bug", "owner")
    with TestClient(main.app, raise_server_exceptions=False) as test_client:
        response = test_client.get("/api/v1/houses", headers=owner.headers)
    assert response.status_code == 500
    assert "Retry-After" not in response.headers


def test_conversion_past_its_soft_limit_is_recorded_failed(client, world, monkeypatch):
    from app import tasks
    from app.models import BIMModel

    owner = world.member("t-slow", "owner")
    response = client.post("/api/v1/bim-models", headers=owner.headers, files={"file": ("m.ifc", b"IFC\n")})
    bim_id = response.json()["id"]

    class StuckS3:
        def get_object(self, **_: object):
            raise SoftTimeLimitExceeded()

    monkeypatch.setattr(tasks, "s3_client", lambda: StuckS3())
    with pytest.raises(SoftTimeLimitExceeded):
        tasks.convert_bim.run(bim_id, "t-slow")
    with world.session() as session:
        bim = session.get(BIMModel, uuid.UUID(bim_id))
        assert bim.conversion_status == "failed"
        assert bim.conversion_error == "time limit exceeded (soft, 1350 s)"


def test_soft_limit_wrapped_by_botocore_is_recognised():
    from botocore.exceptions import HTTPClientError

    from app import tasks

    assert tasks._soft_limit(HTTPClientError(error=SoftTimeLimitExceeded()))
    assert not tasks._soft_limit(HTTPClientError(error=ValueError("x")))


def test_hard_time_limit_recorded_by_the_worker(client, world):
    from celery.exceptions import TimeLimitExceeded

    from app import tasks
    from app.models import BIMModel

    owner = world.member("t-hard", "owner")
    bim_id = client.post("/api/v1/bim-models", headers=owner.headers, files={"file": ("m.ifc", b"IFC\n")}).json()["id"]
    with world.session() as session:
        session.get(BIMModel, uuid.UUID(bim_id)).conversion_status = "processing"
        session.commit()
    tasks.convert_bim.on_failure(TimeLimitExceeded(1500), "task-id", (bim_id, "t-hard"), {}, None)
    with world.session() as session:
        bim = session.get(BIMModel, uuid.UUID(bim_id))
        assert (bim.conversion_status, bim.conversion_error) == ("failed", "time limit exceeded (hard, 1500 s)")
