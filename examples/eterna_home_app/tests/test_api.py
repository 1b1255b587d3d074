"""Behaviour of the reference app without external services."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError


def test_liveness_is_public(client, external_client):
    for c in (client, external_client):
        res = c.get("/health")
        assert res.status_code == 200
        assert res.json()["status"] == "ok"
        assert len(res.headers.get_list("X-Request-ID")) == 1


def test_request_id_is_echoed_once(client):
    res = client.get("/health", headers={"X-Request-ID": "abc123"})
    assert res.headers.get_list("X-Request-ID") == ["abc123"]


def test_untrusted_host_is_refused(client):
    assert client.get("/health", headers={"Host": "evil.example"}).status_code == 400


def test_tenant_header_alone_gets_nothing(client, a):
    client.post("/api/v1/houses", json={"name": "Villa A"}, headers=a.headers)
    res = client.get("/api/v1/houses", headers={"X-Tenant-ID": "tenant-a"})
    assert res.status_code == 401
    assert res.headers["WWW-Authenticate"].startswith("Bearer")


def test_tenant_isolation(client, a, b):
    house = client.post("/api/v1/houses", json={"name": "Villa A"}, headers=a.headers).json()
    hid = house["id"]
    assert uuid.UUID(hid).version == 4
    assert [h["id"] for h in client.get("/api/v1/houses", headers=a.headers).json()] == [hid]
    assert client.get("/api/v1/houses", headers=b.headers).json() == []
    assert client.get(f"/api/v1/houses/{hid}", headers=b.headers).status_code == 404
    assert client.patch(f"/api/v1/houses/{hid}", json={"name": "stolen"}, headers=b.headers).status_code == 404
    assert client.delete(f"/api/v1/houses/{hid}", headers=b.headers).status_code == 404
    assert client.get(f"/api/v1/houses/{hid}", headers=a.headers).json()["name"] == "Villa A"
    renamed = client.patch(f"/api/v1/houses/{hid}", json={"name": "Villa A2"}, headers=a.headers)
    assert renamed.json()["name"] == "Villa A2"
    assert client.delete(f"/api/v1/houses/{hid}", headers=a.headers).status_code == 204
    assert client.get(f"/api/v1/houses/{hid}", headers=a.headers).status_code == 404


def test_token_of_b_with_header_of_a_sees_only_b(client, world, a, b):
    """The attack of issue 15: a valid token of tenant B plus a header naming tenant A."""
    house_a = client.post("/api/v1/houses", json={"name": "A's"}, headers=a.headers).json()["id"]
    doc_a = client.post(
        "/api/v1/documents", files={"file": ("a.txt", b"secret of a", "text/plain")}, headers=a.headers
    ).json()["id"]
    bim_a = client.post("/api/v1/bim-models", files={"file": ("a.ifc", b"IFC", "text/plain")}, headers=a.headers)
    bim_a = bim_a.json()["id"]
    other_a = world.member("tenant-a", "viewer")
    house_b = client.post("/api/v1/houses", json={"name": "B's"}, headers=b.headers).json()["id"]

    attacker = {**b.headers, "X-Tenant-ID": "tenant-a"}
    assert [h["id"] for h in client.get("/api/v1/houses", headers=attacker).json()] == [house_b]
    assert client.get("/api/v1/documents", headers=attacker).json() == []
    assert client.get("/api/v1/bim-models", headers=attacker).json() == []
    assert [m["email"] for m in client.get("/api/v1/members", headers=attacker).json()] == [b.email]
    assert client.get("/api/v1/auth/me", headers=attacker).json()["tenant"] == "tenant-b"
    attempts = [
        ("GET", f"/api/v1/houses/{house_a}", {}),
        ("PATCH", f"/api/v1/houses/{house_a}", {"json": {"name": "stolen"}}),
        ("DELETE", f"/api/v1/houses/{house_a}", {}),
        ("GET", f"/api/v1/documents/{doc_a}", {}),
        ("GET", f"/api/v1/documents/{doc_a}/download", {}),
        ("DELETE", f"/api/v1/documents/{doc_a}", {}),
        ("GET", f"/api/v1/bim-models/{bim_a}", {}),
        ("POST", f"/api/v1/bim-models/{bim_a}/convert", {}),
        ("DELETE", f"/api/v1/bim-models/{bim_a}", {}),
        ("PATCH", f"/api/v1/members/{other_a.user_id}", {"json": {"role": "admin"}}),
        ("DELETE", f"/api/v1/members/{other_a.user_id}", {}),
        ("POST", "/api/v1/documents", {"files": {"file": ("x", b"x")}, "data": {"house_id": house_a}}),
        ("POST", "/api/v1/bim-models", {"files": {"file": ("x", b"x")}, "data": {"house_id": house_a}}),
    ]
    for method, path, kwargs in attempts:
        res = client.request(method, path, headers=attacker, **kwargs)
        assert res.status_code == 404, (method, path, res.status_code)
    # Nothing of A changed.
    assert client.get(f"/api/v1/houses/{house_a}", headers=a.headers).json()["name"] == "A's"
    assert client.get(f"/api/v1/documents/{doc_a}/download", headers=a.headers).content == b"secret of a"
    assert client.get(f"/api/v1/bim-models/{bim_a}", headers=a.headers).json()["conversion_status"] == "none"
    assert len(client.get("/api/v1/members", headers=a.headers).json()) == 2
    assert client.queued == []


def test_document_roundtrip_and_isolation(client, a, b):
    payload = bytes(range(256)) * 40
    res = client.post(
        "/api/v1/documents", files={"file": ("plan.bin", payload, "application/octet-stream")}, headers=a.headers
    )
    assert res.status_code == 201, res.text
    doc = res.json()
    assert doc["size_bytes"] == len(payload)
    down = client.get(f"/api/v1/documents/{doc['id']}/download", headers=a.headers)
    assert down.content == payload
    assert client.get(f"/api/v1/documents/{doc['id']}/download", headers=b.headers).status_code == 404


def test_bim_upload_convert_delete(client, a):
    bim = client.post("/api/v1/bim-models", files={"file": ("m.ifc", b"IFC\n", "text/plain")}, headers=a.headers)
    assert bim.status_code == 201
    bim_id = bim.json()["id"]
    res = client.post(f"/api/v1/bim-models/{bim_id}/convert", headers=a.headers)
    assert res.status_code == 202
    assert res.json()["conversion_status"] == "queued"
    assert client.queued == [(bim_id, "tenant-a")]
    assert client.post(f"/api/v1/bim-models/{bim_id}/convert", headers=a.headers).status_code == 409
    assert client.delete(f"/api/v1/bim-models/{bim_id}", headers=a.headers).status_code == 204
    assert client.s3.objects == {}
    assert client.get(f"/api/v1/bim-models/{bim_id}", headers=a.headers).status_code == 404


def test_cors_allowlist(client):
    pre = {"Access-Control-Request-Method": "GET"}
    ok = client.options("/api/v1/houses", headers={**pre, "Origin": "https://app.example.test"})
    assert ok.headers.get("access-control-allow-origin") == "https://app.example.test"
    bad = client.options("/api/v1/houses", headers={**pre, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in bad.headers


def _count(text: str, labels: str) -> float:
    for line in text.splitlines():
        if line.startswith("eterna_http_requests_total{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_label_the_verified_tenant(client, a):
    labels_a = 'method="GET",route="/api/v1/houses",status="200",tenant="tenant-a"'
    labels_forged = 'tenant="forged-tenant"'
    labels_none = 'method="GET",route="/api/v1/houses",status="401",tenant="none"'
    before = client.get("/metrics").text
    client.get("/api/v1/houses", headers={**a.headers, "X-Tenant-ID": "forged-tenant"})
    client.get("/api/v1/houses", headers={"X-Tenant-ID": "forged-tenant"})
    after = client.get("/metrics").text
    assert _count(after, labels_a) == _count(before, labels_a) + 1
    assert _count(after, labels_none) == _count(before, labels_none) + 1
    assert labels_forged not in after


def test_request_log_carries_the_verified_tenant(client, a):
    import io
    import json
    import logging

    from app.logging_setup import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("app.request")
    logger.addHandler(handler)
    try:
        client.get("/api/v1/houses", headers={**a.headers, "X-Tenant-ID": "forged-tenant", "X-Request-ID": "log-1"})
        client.get("/api/v1/houses", headers={"X-Tenant-ID": "forged-tenant", "X-Request-ID": "log-2"})
    finally:
        logger.removeHandler(handler)
    entries = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert {entry["request_id"]: entry["tenant_id"] for entry in entries} == {"log-1": "tenant-a", "log-2": "none"}


@pytest.mark.parametrize(
    "env",
    [
        {"DEBUG": "true", "SECRET_KEY": "x" * 64},
        {"CORS_ORIGINS": "*", "SECRET_KEY": "x" * 64},
        {"SECRET_KEY": ""},
        {"SECRET_KEY": "x" * 64, "JWT_KEYS": "", "JWT_ACTIVE_KID": ""},
    ],
)
def test_production_refuses_unsafe_settings(monkeypatch, env):
    from app.config import Settings

    monkeypatch.setenv("ENVIRONMENT", "production")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match="unsafe production settings"):
        Settings()


def test_production_accepts_safe_settings(monkeypatch):
    from app.config import Settings

    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "x" * 64)
    assert Settings().JWT_ACTIVE_KID == "k2"
