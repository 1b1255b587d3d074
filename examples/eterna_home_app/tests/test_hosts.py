"""The Host header check (app.hosts): names and IPv4 as Starlette's middleware, IPv6 literals in brackets too."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.hosts import TrustedHosts, host_of


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("app-web", "app-web"),
        ("app-web:8000", "app-web"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[FD24:E7E4:6::11]", "fd24:e7e4:6::11"),
        ("[::1", ""),
        ("", ""),
    ],
)
def test_host_of(header, host):
    assert host_of(header) == host


def client() -> TestClient:
    app = FastAPI()

    @app.get("/")
    def root() -> dict:
        return {"ok": True}

    app.add_middleware(
        TrustedHosts, allowed_hosts=["localhost", "127.0.0.1", "::1", "fd24:e7e4:6::11", "*.example.org"]
    )
    return TestClient(app)


@pytest.mark.parametrize(
    "header", ["localhost", "localhost:8000", "127.0.0.1:8000", "[::1]:8000", "[fd24:e7e4:6::11]:8000", "a.example.org"]
)
def test_allowed_hosts_pass(header):
    assert client().get("/", headers={"Host": header}).status_code == 200


@pytest.mark.parametrize(
    "header", ["evil.test", "[", "[::2]:8000", "fd24:e7e4:6::11", "example.org", "127.0.0.2", "[::1"]
)
def test_other_hosts_get_400(header):
    response = client().get("/", headers={"Host": header})
    assert (response.status_code, response.text) == (400, "Invalid host header")
