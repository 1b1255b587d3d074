"""benchmarks/load/house_token.py against a small in-process stand-in of the app's login and house routes: the token
it prints is the login's, it tops the list up to 50 rows without touching the ones there, sends the Host header it is
given, and refuses a refused login and a base URL that is not http(s)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from module_loader import load_file

house_token = load_file("benchmarks/load/house_token.py", "house_token")

TOKEN = "tok-123"  # noqa: S105 - the stand-in's token


class FakeApp(BaseHTTPRequestHandler):
    """The login (form) and the house list/create routes; records the requests it saw."""

    houses: list[dict] = []
    seen: list[tuple[str, str, str | None, str | None]] = []
    accepted = "right"  # what the stand-in login accepts

    def log_message(self, *args):  # keep pytest's output clean
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        self.seen.append((self.command, self.path, self.headers.get("Authorization"), self.headers.get("Host")))
        return body

    def do_POST(self):
        body = self._record()
        if self.path == "/api/v1/auth/token":
            form = urllib.parse.parse_qs(body.decode())
            if form.get("password") == [self.accepted]:
                return self._answer(200, {"access_token": TOKEN, "token_type": "bearer"})
            return self._answer(401, {"detail": "invalid credentials"})
        if self.path == "/api/v1/houses" and self.headers.get("Authorization") == f"Bearer {TOKEN}":
            self.houses.append(json.loads(body))
            return self._answer(201, self.houses[-1])
        return self._answer(401, {"detail": "not authenticated"})

    def do_GET(self):
        self._record()
        if self.path == "/api/v1/houses?limit=50" and self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return self._answer(200, self.houses[:50])
        return self._answer(401, {"detail": "not authenticated"})


@pytest.fixture
def app():
    FakeApp.houses = [{"name": f"existing {i}", "address": "kept"} for i in range(47)]
    FakeApp.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeApp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_prints_the_login_token_and_tops_the_list_up_to_50(app):
    assert house_token.main([app, "owner@t.test", "right"]) == TOKEN
    assert len(FakeApp.houses) == 50
    assert all(h["address"] == "kept" for h in FakeApp.houses[:47])
    assert [h["name"] for h in FakeApp.houses[47:]] == ["bench 47", "bench 48", "bench 49"]
    posts = [s for s in FakeApp.seen if s[0] == "POST" and s[1] == "/api/v1/houses"]
    assert len(posts) == 3 and all(auth == f"Bearer {TOKEN}" for _, _, auth, _ in posts)


def test_a_full_list_is_left_alone(app):
    FakeApp.houses = [{"name": str(i), "address": "kept"} for i in range(50)]
    house_token.main([app, "owner@t.test", "right"])
    assert len(FakeApp.houses) == 50
    assert [s[1] for s in FakeApp.seen] == ["/api/v1/auth/token", "/api/v1/houses?limit=50"]


def test_sends_the_host_header_it_is_given(app):
    house_token.main([app, "owner@t.test", "right", "lab-edge"])
    assert {host for *_, host in FakeApp.seen} == {"lab-edge"}


def test_a_refused_login_raises_and_creates_nothing(app):
    with pytest.raises(urllib.error.HTTPError) as err:
        house_token.main([app, "owner@t.test", "wrong"])
    assert err.value.code == 401
    assert len(FakeApp.houses) == 47


@pytest.mark.parametrize("base", ["file:///etc/passwd", "ftp://127.0.0.1", "127.0.0.1:8000"])
def test_refuses_a_base_url_that_is_not_http(base):
    with pytest.raises(ValueError, match="BASE_URL must be http"):
        house_token.main([base, "owner@t.test", "right"])
