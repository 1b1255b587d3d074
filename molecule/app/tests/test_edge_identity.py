"""Identity end to end: the real app behind the real edge (nginx role on app-edge), attacked from the
client container the way an outsider or a tenant's own users would try."""

from __future__ import annotations

import json
import os
import shlex
import time
import uuid
from pathlib import Path

import pytest
from app_probe import (
    CLIENT,
    EDGE,
    EDGE_BASE,
    OWNERS,
    WEB,
    A,
    B,
    create_house,
    http,
    login,
    master_key,
    owner_token,
    password,
    trust_edge_ca,
)
from eterna_testinfra import access_token, leak_check_of_verbose_run, node

JOURNAL_UNITS = ["nginx", "eterna-api"]
JOURNAL_HOSTS = [EDGE, WEB]

ROLES = ("owner", "admin", "member", "viewer")


def edge(method: str, path: str, token: str | None = None, body: dict | None = None, **kwargs) -> tuple[int, str]:
    """A request through the edge."""
    return http(method, path, token, body, edge=True, **kwargs)


def app_saw(request_id: str) -> bool:
    """True when the API logged a request with this id (its JSON request log in the journal)."""
    return node(WEB).run(f"journalctl -u eterna-api --since -10min --no-pager | grep -q {request_id}").rc == 0


@pytest.fixture(scope="module")
def role_tokens() -> dict[str, str]:
    """An access token of tenant-a per role: the owner adds an admin, a member and a viewer (through the edge),
    each then logs in through the edge."""
    tokens = {"owner": owner_token(A)}
    for role in ROLES[1:]:
        email = f"{role}@tenant-a.test"
        status, text = edge(
            "POST", "/api/v1/members", tokens["owner"], {"email": email, "role": role, "password": password(role)}
        )
        assert status in (201, 409), text  # 409: a re-run of verify on the same containers
        status, body = login(email, password(role), A, edge=True)
        assert status == 200, body
        assert body["role"] == role and body["tenant"] == A
        tokens[role] = body["access_token"]
    return tokens


def test_login_through_the_edge_returns_a_short_lived_token_pair():
    status, body = login(OWNERS[A], password("owner-a"), edge=True)
    assert status == 200, body
    assert body["token_type"] == "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    assert 0 < body["expires_in"] <= 900
    assert body["refresh_token"] and body["refresh_token"] != body["access_token"]
    status, text = edge("GET", "/api/v1/auth/me", body["access_token"])
    assert status == 200, text
    me = json.loads(text)
    assert (me["email"], me["tenant"], me["role"]) == (OWNERS[A], A, "owner")


def test_wrong_password_is_refused_and_audited():
    status, _ = login(OWNERS[A], "not-the-password-1", edge=True)
    assert status == 401
    status, text = edge("GET", "/api/v1/audit-events?limit=20", owner_token(A))
    assert status == 200, text
    events = json.loads(text)
    failures = [e for e in events if e["action"] == "login" and e["outcome"] == "failure"]
    assert failures, events
    assert "not-the-password-1" not in text, "the audit trail must never hold a tried password"


FORGERIES = {
    "no token": lambda: None,
    "forged signature": lambda: access_token(master_key(), A, key="f" * 64),
    "expired": lambda: access_token(master_key(), A, lifetime=-120),
    "other audience": lambda: access_token(master_key(), A, aud="grafana"),
    "alg none": lambda: access_token(master_key(), A, algorithm="none", key=""),
}


@pytest.mark.parametrize("forgery", sorted(FORGERIES))
def test_forged_or_missing_tokens_get_401_at_the_edge_and_never_reach_the_app(forgery):
    rid = uuid.uuid4().hex
    token = FORGERIES[forgery]()
    status, text = edge("GET", "/api/v1/houses", token, extra=("-H", f"X-Request-ID: {rid}"))
    assert status == 401, text
    assert "not authenticated" in text
    assert not app_saw(rid), "the edge passed a request it must refuse"


def test_the_app_itself_refuses_the_same_forgery():
    # Defence in depth: a forged token sent straight to an app host (inside the network) is refused too.
    status, _ = http("GET", "/api/v1/houses", access_token(master_key(), A, key="f" * 64))
    assert status == 401


def test_valid_token_with_another_tenants_header_sees_only_its_own_tenant():
    house_a = create_house(owner_token(A), "Villa of A (edge)", edge=True)
    token_b = owner_token(B)
    status, text = edge("GET", "/api/v1/houses", token_b, tenant_header=A)
    assert status == 200
    assert house_a["id"] not in text
    hid = house_a["id"]
    for method, body in (("GET", None), ("PATCH", {"name": "taken by B"}), ("DELETE", None)):
        status, _ = edge(method, f"/api/v1/houses/{hid}", token_b, body=body, tenant_header=A)
        assert status == 404, method
    status, text = edge("GET", f"/api/v1/houses/{hid}", owner_token(A))
    assert status == 200 and json.loads(text)["name"] == "Villa of A (edge)"


def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family():
    _, first = login(OWNERS[B], password("owner-b"), edge=True)
    status, text = edge("POST", "/api/v1/auth/refresh", body={"refresh_token": first["refresh_token"]})
    assert status == 200, text
    second = json.loads(text)
    assert second["refresh_token"] != first["refresh_token"]
    # The stolen first token replayed: refused, and the rotated one dies with it.
    assert edge("POST", "/api/v1/auth/refresh", body={"refresh_token": first["refresh_token"]})[0] == 401
    assert edge("POST", "/api/v1/auth/refresh", body={"refresh_token": second["refresh_token"]})[0] == 401


# Expected access per endpoint, written out (not derived from the app's matrix, so a typo there fails here).
MATRIX = [
    ("GET", "/api/v1/houses", ROLES),
    ("POST", "/api/v1/houses", ("owner", "admin", "member")),
    ("GET", "/api/v1/houses/{house}", ROLES),
    ("PATCH", "/api/v1/houses/{house}", ("owner", "admin", "member")),
    ("DELETE", "/api/v1/houses/{fresh_house}", ("owner", "admin")),
    ("GET", "/api/v1/documents", ROLES),
    ("POST", "/api/v1/documents", ("owner", "admin", "member")),
    ("GET", "/api/v1/documents/{document}", ROLES),
    ("GET", "/api/v1/documents/{document}/download", ROLES),
    ("DELETE", "/api/v1/documents/{fresh_document}", ("owner", "admin")),
    ("GET", "/api/v1/bim-models", ROLES),
    ("POST", "/api/v1/bim-models", ("owner", "admin", "member")),
    ("GET", "/api/v1/bim-models/{bim}", ROLES),
    ("DELETE", "/api/v1/bim-models/{fresh_bim}", ("owner", "admin")),
    ("GET", "/api/v1/members", ("owner", "admin", "member")),
    ("POST", "/api/v1/members", ("owner", "admin")),
    ("GET", "/api/v1/audit-events", ("owner", "admin")),
    ("GET", "/api/v1/auth/me", ROLES),
]


def _upload(kind: str) -> str:
    client = node(CLIENT)
    client.check_output("printf 'ISO-10303-21;\\nENDSEC;\\n' > /tmp/matrix.ifc")
    status, text = edge("POST", f"/api/v1/{kind}", owner_token(A), form={"file": "@/tmp/matrix.ifc"})
    assert status == 201, text
    return json.loads(text)["id"]


def _request(method: str, template: str, role: str, token: str) -> tuple[int, str]:
    ids = {}
    if "{house}" in template or "{fresh_house}" in template:
        ids["house"] = ids["fresh_house"] = create_house(owner_token(A), f"matrix {role}", edge=True)["id"]
    if "document}" in template:
        ids["document"] = ids["fresh_document"] = _upload("documents")
    if "bim}" in template:
        ids["bim"] = ids["fresh_bim"] = _upload("bim-models")
    path = template.format(**ids)
    body = form = None
    if method == "POST" and template.endswith("/houses"):
        body = {"name": f"made by {role}"}
    elif method == "PATCH":
        body = {"name": f"renamed by {role}"}
    elif method == "POST" and template.endswith("/members"):
        body = {"email": f"guest-{uuid.uuid4().hex[:8]}@tenant-a.test", "role": "viewer", "password": "x" * 16}
    elif method == "POST":
        node(CLIENT).check_output("printf 'ISO-10303-21;\\nENDSEC;\\n' > /tmp/matrix.ifc")
        form = {"file": "@/tmp/matrix.ifc"}
    return edge(method, path, token, body=body, form=form)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("method", "template", "allowed"), MATRIX, ids=[f"{m} {t}" for m, t, _ in MATRIX])
def test_role_endpoint_matrix_through_the_edge(role_tokens, role, method, template, allowed):
    status, text = _request(method, template, role, role_tokens[role])
    if role in allowed:
        assert 200 <= status < 300, f"{role} {method} {template}: {status} {text}"
    else:
        assert status == 403, f"{role} {method} {template}: {status} {text}"


def test_role_change_is_audited_and_takes_effect_at_the_next_login(role_tokens):
    status, text = edge("GET", "/api/v1/members", owner_token(A))
    viewer = next(m for m in json.loads(text) if m["email"] == "viewer@tenant-a.test")
    status, text = edge("PATCH", f"/api/v1/members/{viewer['user_id']}", owner_token(A), body={"role": "member"})
    assert status == 200, text
    try:
        _, body = login("viewer@tenant-a.test", password("viewer"), A, edge=True)
        assert body["role"] == "member"
        events = json.loads(edge("GET", "/api/v1/audit-events?limit=50", owner_token(A))[1])
        assert any(e["action"] == "member_role_changed" for e in events), [e["action"] for e in events]
    finally:
        edge("PATCH", f"/api/v1/members/{viewer['user_id']}", owner_token(A), body={"role": "viewer"})


def test_an_admin_cannot_make_an_owner_and_the_last_owner_stays(role_tokens):
    members = json.loads(edge("GET", "/api/v1/members", owner_token(A))[1])
    viewer = next(m for m in members if m["email"] == "viewer@tenant-a.test")
    owner = next(m for m in members if m["email"] == OWNERS[A])
    status, _ = edge("PATCH", f"/api/v1/members/{viewer['user_id']}", role_tokens["admin"], body={"role": "owner"})
    assert status == 403
    status, _ = edge("PATCH", f"/api/v1/members/{owner['user_id']}", owner_token(A), body={"role": "admin"})
    assert status == 409


def test_trailing_slash_redirect_keeps_the_public_scheme_and_host():
    # uvicorn trusts X-Forwarded-Proto from the edge host only (app_forwarded_allow_ips), so the app's
    # redirect points back at https://app-edge, not at http://.
    trust_edge_ca()
    out = node(CLIENT).check_output(
        f"curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}' --cacert /usr/local/share/ca-certificates/"
        f"eterna-molecule-ca.crt -H 'Authorization: Bearer {owner_token(A)}' {EDGE_BASE}/api/v1/houses/"
    )
    code, location = out.split(" ", 1)
    assert code in ("307", "308"), out
    assert location == f"{EDGE_BASE}/api/v1/houses", out


def test_forwarded_headers_from_elsewhere_are_not_trusted():
    # Straight to the app from the client (not an edge host): a forged X-Forwarded-Proto is ignored.
    out = node(CLIENT).check_output(
        f"curl -s -o /dev/null -w '%{{redirect_url}}' -H 'X-Forwarded-Proto: https' -H 'X-Forwarded-For: 10.9.9.9' "
        f"-H 'Authorization: Bearer {owner_token(A)}' http://{WEB}:8000/api/v1/houses/"
    )
    assert out.startswith("http://"), out


def test_one_request_id_per_response_through_the_edge():
    trust_edge_ca()
    rid = uuid.uuid4().hex
    head = node(CLIENT).check_output(
        "curl -s -o /dev/null -D - --cacert /usr/local/share/ca-certificates/eterna-molecule-ca.crt "
        f"-H 'X-Request-ID: {rid}' {EDGE_BASE}/health"
    )
    values = [line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("x-request-id:")]
    assert values == [rid]


def test_docs_work_in_a_real_browser_under_the_csp_and_list_houses():
    create_house(owner_token(B), "Seen in the browser", edge=True)
    trust_edge_ca()
    env = f"EMAIL={shlex.quote(OWNERS[B])} PASSWORD={shlex.quote(password('owner-b'))}"
    out = node(CLIENT).check_output(f"{env} python3 /usr/local/bin/swagger_probe.py {EDGE_BASE}/docs")
    result = json.loads(out)
    refused = [e["message"] for e in result["console"] if "Refused to" in e["message"]]
    assert refused == [], refused
    assert result.get("error") is None, result
    assert result["steps"] == ["rendered", "authorised", "executed"], result
    assert result["status"] == "200", result
    assert "Seen in the browser" in result["body"]
    csp = node(CLIENT).check_output(
        "curl -s -D - -o /dev/null --cacert /usr/local/share/ca-certificates/eterna-molecule-ca.crt "
        f"{EDGE_BASE}/docs | grep -i '^content-security-policy:'"
    )
    assert "script-src 'self'" in csp and "style-src 'self'" in csp


def test_the_edge_counts_requests_per_verified_tenant():
    edge("GET", "/api/v1/houses", owner_token(B))
    deadline = time.time() + 20
    while time.time() < deadline:
        metrics = node(CLIENT).check_output(f"curl -s http://{EDGE}:3903/metrics")
        if 'tenant="tenant-b"' in metrics:
            break
        time.sleep(1)
    assert 'eterna_edge_requests_total{prog="eterna-nginx.mtail",status="200",tenant="tenant-b"}' in metrics


def test_secrets_are_root_or_service_only():
    keys = node(EDGE).file("/etc/nginx/eterna-secrets/jwt-keys.conf")
    assert (keys.user, keys.mode) == ("root", 0o600)
    assert node(EDGE).file("/etc/nginx/eterna-secrets").mode == 0o700
    env = node(WEB).file("/etc/eterna-app/app.env")
    assert env.mode == 0o600
    assert "JWT_KEYS=" in env.content_string


def test_no_secret_leaks_in_a_verbose_run_of_the_app_and_edge_plays():
    """-vvv runs of the app and edge plays print no derived secret (database, broker, S3, owners' passwords),
    no JWT signing key, no token and no password hash."""
    log = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "app-edge-vvv.log"
    res = leak_check_of_verbose_run(["services/app.yml", "services/nginx.yml"], master_key(), log)
    assert res.returncode == 0, res.stdout
    assert "secrets searched" in res.stdout
