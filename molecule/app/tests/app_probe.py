"""Helpers of the app scenario's tests: requests from the client container (app-data), straight to the app
(app-web:8000) or through the real edge (https://app-edge), with tokens from the app's own login."""

from __future__ import annotations

import functools
import json
import os
import shlex
from pathlib import Path

from eterna_testinfra import curl, node, secrets

WEB = "app-web"
CLIENT = "app-data"
EDGE = "app-edge"
BASE = f"http://{WEB}:8000"
EDGE_BASE = f"https://{EDGE}"
A = "tenant-a"
B = "tenant-b"
OWNERS = {A: "owner@tenant-a.test", B: "owner@tenant-b.test"}
# The internal CA (made on the controller by roles/_common) as the client container trusts it.
CA = "/usr/local/share/ca-certificates/eterna-molecule-ca.crt"


@functools.cache
def master_key() -> str:
    """The scenario's master key."""
    return node(WEB).ansible.get_variables()["eterna_master_key"]


def password(purpose: str) -> str:
    """A test user's password, derived like molecule.yml derives the owners' (``molecule/<purpose>``)."""
    return secrets().derive_secret(master_key(), f"molecule/{purpose}")


@functools.cache
def trust_edge_ca() -> None:
    """Install the internal CA on the client for curl and Chromium (the edge's certificate is issued by it)."""
    pem = (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki" / "ca.crt").read_text()
    client = node(CLIENT)
    client.check_output(f"printf '%s' {shlex.quote(pem)} > {CA}")
    client.check_output(
        "mkdir -p /root/.pki/nssdb && { [ -f /root/.pki/nssdb/cert9.db ] || "
        "certutil -d sql:/root/.pki/nssdb -N --empty-password; } && "
        f"certutil -d sql:/root/.pki/nssdb -A -t 'C,,' -n eterna-molecule-ca -i {CA}"
    )


def http(
    method: str,
    path: str,
    token: str | None = None,
    body: dict | None = None,
    form: dict | None = None,
    tenant_header: str | None = None,
    edge: bool = False,
    extra: tuple[str, ...] = (),
) -> tuple[int, str]:
    """(status, body) of one request from the client, to the app or (``edge``) through nginx."""
    if edge:
        trust_edge_ca()
        return curl(CLIENT, EDGE_BASE + path, method, tenant_header, body, form, token, ("--cacert", CA, *extra))
    return curl(CLIENT, BASE + path, method, tenant_header, body, form, token, extra)


def login(email: str, secret: str, tenant: str | None = None, edge: bool = False) -> tuple[int, dict]:
    """POST /api/v1/auth/token (OAuth2 password form): (status, JSON body)."""
    fields = ["--data-urlencode", f"username={email}", "--data-urlencode", f"password={secret}"]
    if tenant:
        fields += ["--data-urlencode", f"tenant={tenant}"]
    status, text = http("POST", "/api/v1/auth/token", edge=edge, extra=tuple(fields))
    try:
        return status, json.loads(text)
    except json.JSONDecodeError:
        return status, {"raw": text}


@functools.cache
def owner_token(tenant: str) -> str:
    """An access token of the tenant's first owner (created by the role's app_bootstrap_owners)."""
    status, body = login(OWNERS[tenant], password(f"owner-{tenant[-1]}"))
    assert status == 200, body
    return body["access_token"]


def create_house(token: str, name: str, edge: bool = False) -> dict:
    """A new house of the token's tenant."""
    status, text = http("POST", "/api/v1/houses", token, {"name": name, "address": "1 Test Street"}, edge=edge)
    assert status == 201, text
    return json.loads(text)
