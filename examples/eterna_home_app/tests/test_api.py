"""Behaviour of the reference app without external services."""

from __future__ import annotations

import uuid

import pytest
from pydantic import ValidationError

A = {"X-Tenant-ID": "tenant-a"}
B = {"X-Tenant-ID": "tenant-b"}


def test_liveness(client):
    res = client.get("/health")
    assert res.status_code == 200
    assert res.json()["status"] == "ok"
    assert res.headers["X-Request-ID"]


def test_untrusted_host_is_refused(client):
    assert client.get("/health", headers={"Host": "evil.example"}).status_code == 400


def test_tenant_header_required_and_validated(client):
    assert client.get("/api/v1/houses").status_code == 422
    assert client.get("/api/v1/houses", headers={"X-Tenant-ID": "../etc"}).status_code == 400


def test_tenant_isolation(client):
    house = client.post("/api/v1/houses", json={"name": "Villa A"}, headers=A).json()
    hid = house["id"]
    assert uuid.UUID(hid).version == 4
    assert [h["id"] for h in client.get("/api/v1/houses", headers=A).json()] == [hid]
    assert client.get("/api/v1/houses", headers=B).json() == []
    assert client.get(f"/api/v1/houses/{hid}", headers=B).status_code == 404
    assert client.patch(f"/api/v1/houses/{hid}", json={"name": "stolen"}, headers=B).status_code == 404
    assert client.delete(f"/api/v1/houses/{hid}", headers=B).status_code == 404
    assert client.get(f"/api/v1/houses/{hid}", headers=A).json()["name"] == "Villa A"
    assert client.patch(f"/api/v1/houses/{hid}", json={"name": "Villa A2"}, headers=A).json()["name"] == "Villa A2"
    assert client.delete(f"/api/v1/houses/{hid}", headers=A).status_code == 204
    assert client.get(f"/api/v1/houses/{hid}", headers=A).status_code == 404


def test_document_roundtrip_and_isolation(client):
    payload = bytes(range(256)) * 40
    res = client.post("/api/v1/documents", files={"file": ("plan.bin", payload, "application/octet-stream")}, headers=A)
    assert res.status_code == 201, res.text
    doc = res.json()
    assert doc["size_bytes"] == len(payload)
    down = client.get(f"/api/v1/documents/{doc['id']}/download", headers=A)
    assert down.content == payload
    assert client.get(f"/api/v1/documents/{doc['id']}/download", headers=B).status_code == 404


def test_cors_allowlist(client):
    pre = {"Access-Control-Request-Method": "GET"}
    ok = client.options("/api/v1/houses", headers={**pre, "Origin": "https://app.example.test"})
    assert ok.headers.get("access-control-allow-origin") == "https://app.example.test"
    bad = client.options("/api/v1/houses", headers={**pre, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in bad.headers


def test_metrics_count_per_tenant(client):
    client.get("/api/v1/houses", headers=A)
    text = client.get("/metrics").text
    assert 'eterna_http_requests_total{method="GET",route="/api/v1/houses",status="200",tenant="tenant-a"}' in text


@pytest.mark.parametrize(
    "env",
    [
        {"DEBUG": "true", "SECRET_KEY": "x" * 64},
        {"CORS_ORIGINS": "*", "SECRET_KEY": "x" * 64},
        {"SECRET_KEY": ""},
    ],
)
def test_production_refuses_unsafe_settings(monkeypatch, env):
    from app.config import Settings

    monkeypatch.setenv("ENVIRONMENT", "production")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValidationError, match="unsafe production settings"):
        Settings()
