"""The request observer (app.observe.RequestObserver), a plain ASGI middleware: request id, one log line, metrics
and the in-flight gauge, for answered requests, failing ones and clients that go away."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from prometheus_client import REGISTRY

IN_FLIGHT = "eterna_http_requests_in_flight"


def requests_count(tenant: str, route: str, status: str, method: str = "GET") -> float:
    labels = {"tenant": tenant, "method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("eterna_http_requests_total", labels) or 0.0


class Captured(logging.Handler):
    """The app.request records of a test, formatted by the app's JsonFormatter."""

    def __init__(self) -> None:
        from app.logging_setup import JsonFormatter

        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def request_log():
    handler = Captured()
    logger = logging.getLogger("app.request")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def http_scope(path: str = "/thing", headers: list[tuple[bytes, bytes]] | None = None) -> dict:
    return {"type": "http", "method": "GET", "path": path, "headers": headers or [], "state": {}}


async def drive(app, scope: dict) -> list[dict]:
    """Call ``app`` (an ASGI app) once with an empty body; the messages it sent."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_one_log_line_per_request_with_the_fields_of_before(client, a, request_log):
    res = client.get("/api/v1/houses?limit=5", headers={**a.headers, "X-Request-ID": "one-line"})
    assert res.status_code == 200
    (line,) = [entry for entry in request_log if entry["request_id"] == "one-line"]
    assert line["message"] == "request" and line["logger"] == "app.request"
    fields = (line["method"], line["path"], line["status"], line["tenant_id"])
    assert fields == ("GET", "/api/v1/houses", 200, "tenant-a")
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert res.headers.get_list("X-Request-ID") == ["one-line"]


def test_requests_are_counted_by_route_template_and_unmatched(client, a):
    before = requests_count("tenant-a", "/api/v1/houses/{house_id}", "404")
    before_unmatched = requests_count("none", "unmatched", "404")
    missing = client.get("/api/v1/houses/00000000-0000-4000-8000-000000000000", headers=a.headers)
    assert missing.status_code == 404
    assert client.get("/no/such/route").status_code == 404
    assert requests_count("tenant-a", "/api/v1/houses/{house_id}", "404") == before + 1
    assert requests_count("none", "unmatched", "404") == before_unmatched + 1


def test_request_id_replaces_the_apps_own_header_and_is_cut_to_64_characters():
    from app.observe import RequestObserver

    async def app(scope, receive, send):
        headers = [(b"content-type", b"text/plain"), (b"X-Request-ID", b"set-by-the-app")]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    long_id = "r" * 100
    sent = asyncio.run(drive(RequestObserver(app), http_scope(headers=[(b"x-request-id", long_id.encode())])))
    ids = [value for name, value in sent[0]["headers"] if name.lower() == b"x-request-id"]
    assert ids == [b"r" * 64]
    assert (b"content-type", b"text/plain") in sent[0]["headers"]
    sent = asyncio.run(drive(RequestObserver(app), http_scope(headers=[(b"x-request-id", b"")])))
    (generated,) = [value for name, value in sent[0]["headers"] if name == b"x-request-id"]
    assert len(generated) == 32 and int(generated, 16) >= 0


def test_a_failing_app_counts_500_leaves_nothing_in_flight_and_logs_once(request_log):
    from app.observe import RequestObserver

    async def app(scope, receive, send):
        raise RuntimeError("boom")

    before = requests_count("none", "unmatched", "500")
    with pytest.raises(RuntimeError):
        asyncio.run(drive(RequestObserver(app), http_scope(headers=[(b"x-request-id", b"failing")])))
    assert REGISTRY.get_sample_value(IN_FLIGHT) == 0.0
    assert requests_count("none", "unmatched", "500") == before + 1
    assert [(entry["status"], entry["path"]) for entry in request_log if entry["request_id"] == "failing"] == [
        (500, "/thing")
    ]


@pytest.mark.parametrize("gone", ["send fails", "task cancelled"])
def test_a_client_that_goes_away_leaves_nothing_in_flight(request_log, gone):
    from app.observe import RequestObserver

    seen: list[float | None] = []

    async def app(scope, receive, send):
        seen.append(REGISTRY.get_sample_value(IN_FLIGHT))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if gone == "send fails":
            await send({"type": "http.response.body", "body": b"x"})
        else:
            await asyncio.Event().wait()  # never set: the server cancels the task

    async def send(message: dict) -> None:
        if message["type"] == "http.response.body":
            raise OSError("client disconnected")

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    async def serve() -> None:
        call = RequestObserver(app)(http_scope(headers=[(b"x-request-id", gone.encode())]), receive, send)
        if gone == "send fails":
            with pytest.raises(OSError):
                await call
        else:
            task = asyncio.ensure_future(call)
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

    asyncio.run(serve())
    assert seen == [1.0]
    assert REGISTRY.get_sample_value(IN_FLIGHT) == 0.0
    # Logged once, with the status the response had started with.
    assert [entry["status"] for entry in request_log if entry["request_id"] == gone] == [200]


def test_path_in_the_log_is_escaped_like_starlettes_url():
    from app.observe import request_path

    assert request_path({"path": "/a?b#c\\d"}) == "/a%3Fb%23c%5Cd"
    assert request_path({"path": "/api/v1/houses"}) == "/api/v1/houses"


def test_non_http_scopes_pass_through_untouched():
    from app.observe import RequestObserver

    calls: list[str] = []

    async def app(scope, receive, send):
        calls.append(scope["type"])

    asyncio.run(RequestObserver(app)({"type": "lifespan"}, None, None))
    assert calls == ["lifespan"]
