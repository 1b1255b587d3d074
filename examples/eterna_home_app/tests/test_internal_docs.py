"""Internal-only endpoints, the readiness cache, and the self-served Swagger UI."""

from __future__ import annotations

import threading
import time
from html.parser import HTMLParser

import pytest


@pytest.fixture
def checks(monkeypatch):
    from app import health

    calls: dict[str, int] = {}

    def fake(name, delay=0.0):  # noqa: ANN001, ANN202
        def check() -> None:
            calls[name] = calls.get(name, 0) + 1
            time.sleep(delay)

        return check

    monkeypatch.setattr(health, "CHECKS", {"postgresql": fake("postgresql", 0.2), "redis": fake("redis")})
    return calls


def test_internal_endpoints_hidden_from_outside(external_client, checks):
    assert external_client.get("/health/ready").status_code == 404
    assert external_client.get("/metrics").status_code == 404
    assert checks == {}
    assert external_client.get("/health").status_code == 200


def test_internal_endpoints_answer_inside(client, checks):
    res = client.get("/health/ready")
    assert res.status_code == 200 and res.json()["status"] == "ok"
    assert client.get("/metrics").status_code == 200


@pytest.mark.parametrize(
    ("host", "internal"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.31.0.1", True),
        ("172.32.0.1", False),
        ("192.168.5.5", True),
        ("::1", True),
        ("fd00::1", True),
        ("::ffff:10.0.0.1", True),
        ("8.8.8.8", False),
        ("2001:db8::1", False),
        ("testclient", False),
        (None, False),
    ],
)
def test_internal_networks(host, internal):
    from app.internal import is_internal

    assert is_internal(host) is internal


def test_internal_networks_are_configurable(external_client, checks, monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("INTERNAL_NETWORKS", "203.0.113.0/24")
    get_settings.cache_clear()
    assert external_client.get("/health/ready").status_code == 200


def test_readiness_is_cached(client, checks, monkeypatch):
    from app.config import get_settings

    first = client.get("/health/ready").json()
    second = client.get("/health/ready").json()
    assert checks == {"postgresql": 1, "redis": 1}
    assert second["checks"] == first["checks"] and second["cached_seconds"] > 0
    monkeypatch.setenv("READY_CACHE_SECONDS", "0")
    get_settings.cache_clear()
    client.get("/health/ready")
    assert checks == {"postgresql": 2, "redis": 2}


def test_concurrent_readiness_callers_share_one_computation(checks):
    from app.health import READY_CACHE

    results = []
    threads = [threading.Thread(target=lambda: results.append(READY_CACHE.get(5.0)[0])) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert checks == {"postgresql": 1, "redis": 1}
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_readiness_reports_failures(client, monkeypatch):
    from app import health

    def broken() -> None:
        raise ConnectionError("refused")

    monkeypatch.setattr(health, "CHECKS", {"postgresql": broken})
    res = client.get("/health/ready")
    assert res.status_code == 503 and res.json()["failed"] == ["postgresql"]


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.inline_scripts = 0
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):  # noqa: ANN001, ANN201
        attrs = dict(attrs)
        for name in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"{tag} has inline {name}")
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script":
            self._in_script = True
            if "src" not in attrs:
                self.inline_scripts += 1
            else:
                self.refs.append(attrs["src"])
        if tag == "link" and "href" in attrs:
            self.refs.append(attrs["href"])

    def handle_endtag(self, tag):  # noqa: ANN001, ANN201
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):  # noqa: ANN001, ANN201
        if self._in_script and data.strip():
            self.problems.append("script with inline content")


def test_docs_page_has_no_inline_script_and_serves_its_assets(client):
    res = client.get("/docs")
    assert res.status_code == 200 and res.headers["content-type"].startswith("text/html")
    page = _Page()
    page.feed(res.text)
    assert page.inline_scripts == 0 and page.problems == []
    assert "cdn" not in res.text.lower() and "http" not in res.text
    assert {"/docs/assets/swagger-ui-bundle.js", "/docs/init.js", "/docs/assets/swagger-ui.css"} <= set(page.refs)
    for ref in page.refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    assert "SwaggerUIBundle" in client.get("/docs/assets/swagger-ui-bundle.js").text
    init = client.get("/docs/init.js")
    assert init.headers["content-type"].startswith("text/javascript")
    assert "persistAuthorization: false" in init.text and "validatorUrl: null" in init.text


def test_swagger_ui_is_version_5(client):
    # FastAPI emits OpenAPI 3.1, which Swagger UI renders from version 5 on.
    bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
    assert 'PACKAGE_VERSION:"5.' in bundle
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")


def test_default_doc_pages_are_gone(client):
    assert client.get("/redoc").status_code == 404
    assert client.get("/docs/oauth2-redirect").status_code == 404


def test_openapi_declares_the_password_flow(client):
    spec = client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            public = not path.startswith("/api/") or path in (
                "/api/v1/auth/token",
                "/api/v1/auth/refresh",
                "/api/v1/auth/logout",
            )
            assert ("security" in op) is not public, (method, path)
