"""Stand-in for the Eterna Home app on :8000, enough to exercise the proxy.

GET /health, /health/ready      JSON with this host's name
GET /docs, /docs/app.js          a page whose script is an external file (CSP script-src 'self' allows it)
GET /docs-inline                 a page with an inline script (the CSP must block it)
GET /api/houses                  echoes the tenant and request id headers (the edge requires a token here)
GET /static/app.css              a static asset (cached by the proxy)
GET /boom                        500
POST /csp-report                 stores CSP violation reports in /var/lib/fake-app/csp-reports.log
POST <anything else>             answers with the number of body bytes received
Every request that reaches it is appended to /var/lib/fake-app/requests.log (method, path, request id), so a
test can prove that the edge refused a request without calling the app. Like the real app, every response
carries an X-Request-ID of its own.
"""

from __future__ import annotations

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HOST = socket.gethostname()
REPORTS = Path("/var/lib/fake-app/csp-reports.log")
SEEN = Path("/var/lib/fake-app/requests.log")

DOCS = """<!doctype html>
<html><head><meta charset="utf-8"><title>Eterna Home API docs</title>
<script src="/docs/app.js"></script></head>
<body><h1>Eterna Home API</h1><p id="status">script not run</p></body></html>
"""
DOCS_JS = """document.addEventListener("DOMContentLoaded", function () {
  document.getElementById("status").textContent = "script ran";
});
"""
DOCS_INLINE = """<!doctype html>
<html><head><meta charset="utf-8"><title>inline</title></head>
<body><p id="status">script not run</p>
<script>document.getElementById("status").textContent = "inline script ran";</script></body></html>
"""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-app"

    def log_message(self, format, *args):  # noqa: A002 - signature of the base class
        pass

    def reply(self, status: int, body: bytes, ctype: str = "application/json", extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        # Headers the proxy owns: it must hide these, so a client sees one value only.
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "SAMEORIGIN")
        self.send_header("X-Request-ID", "app-" + self.headers.get("X-Request-ID", "none"))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def reply_json(self, status: int, data: dict, extra: dict | None = None) -> None:
        self.reply(status, json.dumps(data).encode(), extra=extra)

    def seen(self) -> None:
        with SEEN.open("a") as fh:
            fh.write(f"{self.command} {self.path} {self.headers.get('X-Request-ID', '')}\n")

    def do_GET(self):  # noqa: N802 - http.server naming
        self.seen()
        path = self.path.split("?", 1)[0]
        if path in ("/health", "/health/ready"):
            self.reply_json(200, {"status": "ok", "host": HOST})
        elif path == "/docs":
            self.reply(200, DOCS.encode(), "text/html; charset=utf-8")
        elif path == "/docs/app.js":
            self.reply(200, DOCS_JS.encode(), "text/javascript")
        elif path == "/docs-inline":
            self.reply(200, DOCS_INLINE.encode(), "text/html; charset=utf-8")
        elif path.startswith("/api/houses"):
            self.reply_json(
                200,
                {
                    "host": HOST,
                    "tenant": self.headers.get("X-Tenant-ID", ""),
                    "request_id": self.headers.get("X-Request-ID", ""),
                    "forwarded_proto": self.headers.get("X-Forwarded-Proto", ""),
                    "authorization": bool(self.headers.get("Authorization")),
                },
            )
        elif path.startswith("/static/"):
            rules = "".join(f".c{i} {{ margin: {i}px; }}\n" for i in range(200))  # big enough for gzip
            self.reply(200, f"/* served by {HOST} */\n{rules}".encode(), "text/css")
        elif path.startswith("/boom"):
            self.reply_json(500, {"error": "boom"})
        else:
            self.reply_json(404, {"error": "not found"})

    do_HEAD = do_GET

    def do_POST(self):  # noqa: N802 - http.server naming
        self.seen()
        length = int(self.headers.get("Content-Length") or 0)
        received = 0
        if length:
            while received < length:
                chunk = self.rfile.read(min(1 << 20, length - received))
                if not chunk:
                    break
                received += len(chunk)
                if self.path.startswith("/csp-report"):
                    with REPORTS.open("ab") as fh:
                        fh.write(chunk)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                received += len(self.rfile.read(size))
                self.rfile.readline()
        if self.path.startswith("/csp-report"):
            with REPORTS.open("a") as fh:
                fh.write("\n")
            self.reply(204, b"")
        else:
            self.reply_json(200, {"host": HOST, "received": received})


if __name__ == "__main__":
    REPORTS.parent.mkdir(parents=True, exist_ok=True)
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()  # noqa: S104 - upstream of the proxy
