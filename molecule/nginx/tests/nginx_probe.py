"""Helpers of the nginx scenario's tests: HTTP requests made with curl on the client container."""

from __future__ import annotations

import dataclasses
import functools
import json
import shlex

from eterna_testinfra import access_token, node

EDGE = "nginx-edge"
ACME = "nginx-acme"
APPS = ["nginx-app1", "nginx-app2"]
CLIENT = "nginx-client"
BASE = f"https://{EDGE}"

# Headers every response of the edge carries (HTTPS, errors included).
SECURITY_HEADERS = [
    "content-security-policy",
    "strict-transport-security",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "permissions-policy",
]


@functools.cache
def master_key() -> str:
    """The scenario's master key, as the edge's inventory gives it."""
    return node(EDGE).ansible.get_variables()["eterna_master_key"]


@functools.cache
def key_generation() -> int:
    """The active signing key generation of the scenario (eterna_jwt_key_generation)."""
    return int(node(EDGE).ansible.get_variables().get("eterna_jwt_key_generation", 1))


def token(tenant: str, **kwargs) -> str:
    """An access token of ``tenant`` signed like the app's (see eterna_testinfra.access_token)."""
    kwargs.setdefault("generation", key_generation())
    return access_token(master_key(), tenant, **kwargs)


def bearer(tenant: str, **kwargs) -> tuple[str, str]:
    """curl arguments that send a token of ``tenant``."""
    return ("-H", f"Authorization: Bearer {token(tenant, **kwargs)}")


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, list[str]]
    body: str

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower(), [])
        assert len(values) == 1, f"expected one {name} header, got {values}"
        return values[0]

    def json(self):
        return json.loads(self.body)


def fetch(url: str, *args: str, host: str = CLIENT) -> Response:
    """One request with curl from ``host``: status, headers (lower-case names) and body."""
    opts = " ".join(shlex.quote(a) for a in args)
    cmd = (
        f"curl -sS --max-time 30 -o /tmp/probe.body -D /tmp/probe.head {opts} {shlex.quote(url)} "
        "&& cat /tmp/probe.head && printf '\\n--BODY--\\n' && cat /tmp/probe.body"
    )
    out = node(host).check_output(cmd)
    head, _, body = out.partition("\n--BODY--\n")
    lines = [line.strip() for line in head.strip().splitlines() if line.strip()]
    status = int(lines[0].split()[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return Response(status, headers, body)


def burst(url: str, count: int, *args: str, parallel: int = 0, host: str = CLIENT) -> list[Response]:
    """``count`` requests to ``url`` in one curl run on ``host`` (sequential unless ``parallel``):
    status and security headers of each (bodies are not kept)."""
    opts = " ".join(shlex.quote(a) for a in args)
    transfers = " ".join(f"-o /dev/null {shlex.quote(url)}" for _ in range(count))
    par = f"-Z --parallel-max {parallel}" if parallel else ""
    fields = "\t".join(["%{http_code}"] + [f"%header{{{name}}}" for name in SECURITY_HEADERS])
    out = node(host).check_output(f"curl -sS --max-time 30 {par} -w '{fields}\\n' {opts} {transfers}")
    responses = []
    for line in out.splitlines():
        code, *values = line.split("\t")
        values += [""] * (len(SECURITY_HEADERS) - len(values))  # empty trailing fields are stripped
        headers = {name: [v] for name, v in zip(SECURITY_HEADERS, values, strict=True) if v}
        responses.append(Response(int(code), headers, ""))
    return responses


def assert_security_headers(resp: Response) -> None:
    for name in SECURITY_HEADERS:
        assert len(resp.headers.get(name, [])) == 1, f"{resp.status}: header {name} is {resp.headers.get(name)}"
    hsts = resp.header("strict-transport-security")
    max_age = int(hsts.split("max-age=")[1].split(";")[0])
    assert max_age >= 63072000, hsts
    assert resp.header("x-content-type-options") == "nosniff"
    assert resp.header("x-frame-options") == "DENY"
    assert "frame-ancestors 'none'" in resp.header("content-security-policy")
    assert "access-control-allow-origin" not in resp.headers, "the proxy must not add CORS headers"
