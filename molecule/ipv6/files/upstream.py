"""Stand-in for the app on [::]:8000: answers every GET with the path and the peer address it saw (JSON)."""

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = json.dumps({"app": "ipv6-upstream", "path": self.path, "peer": self.client_address[0]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


if __name__ == "__main__":
    Server(("::", 8000), Handler).serve_forever()
