#!/usr/bin/env python3
"""Stand-in for the Eterna Home app in the monitoring scenario, plus a webhook receiver.

* :8000 (HTTP): ``/health/ready`` answers 200, ``/metrics`` exposes the app's metric names with growing counters.
* :8443 (HTTPS, certificate from the internal CA): ``/`` answers 200 (the "public endpoint").
* :9099 (HTTP): ``POST /alerts`` appends Alertmanager's JSON body to /var/lib/standin/alerts.jsonl.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

START = time.time()
ALERTS = Path("/var/lib/standin/alerts.jsonl")
TENANTS = {"acme": 3.0, "globex": 1.0}
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def metrics() -> str:
    """Prometheus text exposition whose counters grow with uptime."""
    up = time.time() - START
    out = [
        "# HELP eterna_http_requests_total HTTP requests served, by tenant, method, route and status.",
        "# TYPE eterna_http_requests_total counter",
    ]
    for tenant, rate in TENANTS.items():
        ok, err = int(up * rate), int(up * rate / 50)
        route = 'method="GET",route="/api/houses"'
        out.append(f'eterna_http_requests_total{{tenant="{tenant}",{route},status="200"}} {ok}')
        out.append(f'eterna_http_requests_total{{tenant="{tenant}",{route},status="500"}} {err}')
    out += [
        "# HELP eterna_http_request_duration_seconds Request latency.",
        "# TYPE eterna_http_request_duration_seconds histogram",
    ]
    count = int(up * sum(TENANTS.values()))
    labels = 'tenant="acme",method="GET",route="/api/houses"'
    for i, le in enumerate(BUCKETS):
        share = min(1.0, 0.5 + 0.1 * i)
        out.append(f'eterna_http_request_duration_seconds_bucket{{{labels},le="{le}"}} {int(count * share)}')
    out.append(f'eterna_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {count}')
    out.append(f"eterna_http_request_duration_seconds_sum{{{labels}}} {count * 0.08:.3f}")
    out.append(f"eterna_http_request_duration_seconds_count{{{labels}}} {count}")
    out += [
        "# HELP eterna_documents_uploaded_total Documents uploaded, by tenant.",
        "# TYPE eterna_documents_uploaded_total counter",
        *(f'eterna_documents_uploaded_total{{tenant="{t}"}} {int(up * r / 10)}' for t, r in TENANTS.items()),
        "# HELP eterna_bim_conversions_total BIM conversions finished, by tenant and result.",
        "# TYPE eterna_bim_conversions_total counter",
        *(f'eterna_bim_conversions_total{{tenant="{t}",status="done"}} {int(up * r / 30)}' for t, r in TENANTS.items()),
        # Saturation gauges of two API workers (multiprocess "liveall": one series per pid), issue #25.
        "# HELP eterna_http_requests_in_flight Requests this API worker is serving now.",
        "# TYPE eterna_http_requests_in_flight gauge",
        *(f'eterna_http_requests_in_flight{{pid="{pid}"}} {n}' for pid, n in (("101", 3), ("102", 1))),
        "# HELP eterna_http_worker_threads Threads this API worker runs its endpoints on.",
        "# TYPE eterna_http_worker_threads gauge",
        *(f'eterna_http_worker_threads{{pid="{pid}"}} 40' for pid in ("101", "102")),
        "# HELP eterna_db_pool_connections_in_use Database connections checked out of this process's pool.",
        "# TYPE eterna_db_pool_connections_in_use gauge",
        *(f'eterna_db_pool_connections_in_use{{pid="{pid}"}} {n}' for pid, n in (("101", 2), ("102", 0))),
        "# HELP eterna_db_pool_connections_max Database connections this process may check out at once.",
        "# TYPE eterna_db_pool_connections_max gauge",
        *(f'eterna_db_pool_connections_max{{pid="{pid}"}} 10' for pid in ("101", "102")),
        "# HELP eterna_dependency_up 1 when the readiness check of a dependency passes.",
        "# TYPE eterna_dependency_up gauge",
        *(f'eterna_dependency_up{{dependency="{d}"}} 1' for d in ("postgres", "redis", "rabbitmq", "s3")),
        "# HELP eterna_dependency_latency_seconds Latency of the last readiness check of a dependency.",
        "# TYPE eterna_dependency_latency_seconds gauge",
        *(
            f'eterna_dependency_latency_seconds{{dependency="{d}"}} 0.004'
            for d in ("postgres", "redis", "rabbitmq", "s3")
        ),
    ]
    return "\n".join(out) + "\n"


class Handler(BaseHTTPRequestHandler):
    def _send(self, status: int, body: str, ctype: str = "text/plain; version=0.0.4") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == "/metrics":
            self._send(200, metrics())
        elif self.path in ("/", "/health", "/health/ready"):
            self._send(200, '{"status": "ok"}', "application/json")
        else:
            self._send(404, "not found")

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != "/alerts":
            self._send(404, "not found")
            return
        with ALERTS.open("a") as fh:
            fh.write(json.dumps(json.loads(body)) + "\n")
        self._send(200, "ok")

    def log_message(self, *args: object) -> None:
        pass


def serve(port: int, tls: bool = False) -> None:
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - test container only
    if tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain("/etc/standin/standin.crt", "/etc/standin/standin.key")
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    ALERTS.parent.mkdir(parents=True, exist_ok=True)
    ALERTS.touch()
    for port, tls in ((8443, True), (9099, False)):
        threading.Thread(target=serve, args=(port, tls), daemon=True).start()
    serve(8000)
