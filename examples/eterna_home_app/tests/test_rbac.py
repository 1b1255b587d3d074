"""The role x endpoint matrix. The permission each endpoint needs is read from the app's routes, the
expected outcome per role comes from app.rbac.MATRIX, and both are checked against a table written
out by hand below, so a typo in the matrix or a wrong ``require(...)`` fails; then every role calls
every endpoint and gets its success status or 403."""

from __future__ import annotations

import uuid

import pytest
from fastapi.routing import APIRoute

from app.main import app
from app.rbac import MATRIX, ROLES, allowed

OW, AD, ME, VI = "owner", "admin", "member", "viewer"

# endpoint -> (permission, roles allowed, success status). Written by hand: the expectation.
EXPECTED: dict[tuple[str, str], tuple[str, set[str], int]] = {
    ("GET", "/api/v1/houses"): ("houses:read", {OW, AD, ME, VI}, 200),
    ("POST", "/api/v1/houses"): ("houses:write", {OW, AD, ME}, 201),
    ("GET", "/api/v1/houses/{house_id}"): ("houses:read", {OW, AD, ME, VI}, 200),
    ("PATCH", "/api/v1/houses/{house_id}"): ("houses:write", {OW, AD, ME}, 200),
    ("DELETE", "/api/v1/houses/{house_id}"): ("houses:delete", {OW, AD}, 204),
    ("GET", "/api/v1/documents"): ("documents:read", {OW, AD, ME, VI}, 200),
    ("POST", "/api/v1/documents"): ("documents:write", {OW, AD, ME}, 201),
    ("GET", "/api/v1/documents/{document_id}"): ("documents:read", {OW, AD, ME, VI}, 200),
    ("GET", "/api/v1/documents/{document_id}/download"): ("documents:read", {OW, AD, ME, VI}, 200),
    ("DELETE", "/api/v1/documents/{document_id}"): ("documents:delete", {OW, AD}, 204),
    ("GET", "/api/v1/bim-models"): ("bim:read", {OW, AD, ME, VI}, 200),
    ("POST", "/api/v1/bim-models"): ("bim:write", {OW, AD, ME}, 201),
    ("GET", "/api/v1/bim-models/{bim_id}"): ("bim:read", {OW, AD, ME, VI}, 200),
    ("POST", "/api/v1/bim-models/{bim_id}/convert"): ("bim:write", {OW, AD, ME}, 202),
    ("DELETE", "/api/v1/bim-models/{bim_id}"): ("bim:delete", {OW, AD}, 204),
    ("GET", "/api/v1/members"): ("members:read", {OW, AD, ME}, 200),
    ("POST", "/api/v1/members"): ("members:manage", {OW, AD}, 201),
    ("PATCH", "/api/v1/members/{user_id}"): ("members:manage", {OW, AD}, 200),
    ("DELETE", "/api/v1/members/{user_id}"): ("members:manage", {OW, AD}, 204),
    ("GET", "/api/v1/audit-events"): ("audit:read", {OW, AD}, 200),
}
# Any valid token, no permission: who am I.
AUTHENTICATED_ONLY = {("GET", "/api/v1/auth/me")}
PUBLIC = {("POST", "/api/v1/auth/token"), ("POST", "/api/v1/auth/refresh"), ("POST", "/api/v1/auth/logout")}


def _required_permissions(route: APIRoute) -> set[str]:
    found = set()
    stack = [route.dependant]
    while stack:
        dep = stack.pop()
        name = getattr(dep.call, "__name__", "")
        if name.startswith("require_"):
            found.add(name.removeprefix("require_").replace("_", ":", 1))
        stack.extend(dep.dependencies)
    return found


def _walk(routes):  # noqa: ANN001, ANN202 - FastAPI wraps included routers (original_router)
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes)
        else:
            yield route


def _api_routes() -> dict[tuple[str, str], APIRoute]:
    routes = {}
    for route in _walk(app.routes):
        if isinstance(route, APIRoute) and route.path.startswith("/api/"):
            for method in route.methods:
                routes[(method, route.path)] = route
    assert routes, "no API route found: the route walk no longer matches FastAPI's structure"
    return routes


def test_every_api_endpoint_is_in_the_table():
    assert set(_api_routes()) == set(EXPECTED) | AUTHENTICATED_ONLY | PUBLIC


def test_each_endpoint_requires_the_expected_permission():
    routes = _api_routes()
    for key, (permission, _, _) in EXPECTED.items():
        assert _required_permissions(routes[key]) == {permission}, key
    for key in AUTHENTICATED_ONLY | PUBLIC:
        assert _required_permissions(routes[key]) == set(), key


def test_matrix_matches_the_written_expectation():
    generated = {key: {role for role in ROLES if allowed(role, perm)} for key, (perm, _, _) in EXPECTED.items()}
    written = {key: roles for key, (_, roles, _) in EXPECTED.items()}
    assert generated == written
    # And nothing in the matrix is unused by an endpoint (members:*, audit:* included).
    used = {perm for perm, _, _ in EXPECTED.values()}
    assert set().union(*MATRIX.values()) == used


def _prepare(client, world, owner, key) -> tuple[str, dict]:
    """A fresh target for one call: (concrete path, request kwargs)."""
    method, path = key
    h = owner.headers
    house = client.post("/api/v1/houses", json={"name": "h"}, headers=h).json()["id"]
    if "{document_id}" in path:
        doc = client.post("/api/v1/documents", files={"file": ("d.txt", b"doc")}, headers=h).json()["id"]
        path = path.replace("{document_id}", doc)
    if "{bim_id}" in path:
        bim = client.post("/api/v1/bim-models", files={"file": ("m.ifc", b"IFC")}, headers=h).json()["id"]
        path = path.replace("{bim_id}", bim)
    if "{user_id}" in path:
        path = path.replace("{user_id}", str(world.member(owner.tenant, "viewer").user_id))
    path = path.replace("{house_id}", house)
    kwargs: dict = {}
    if key == ("POST", "/api/v1/houses"):
        kwargs = {"json": {"name": "new"}}
    elif key == ("PATCH", "/api/v1/houses/{house_id}"):
        kwargs = {"json": {"name": "renamed"}}
    elif method == "POST" and path in ("/api/v1/documents", "/api/v1/bim-models"):
        kwargs = {"files": {"file": ("f.bin", b"data")}, "data": {"house_id": house}}
    elif key == ("POST", "/api/v1/members"):
        kwargs = {"json": {"email": f"{uuid.uuid4().hex[:8]}@x.example", "role": "member", "password": "p" * 16}}
    elif key == ("PATCH", "/api/v1/members/{user_id}"):
        kwargs = {"json": {"role": "member"}}
    return path, kwargs


@pytest.mark.parametrize("role", ROLES)
def test_role_against_every_endpoint(client, world, role):
    owner = world.member("tenant-a", "owner")
    caller = world.member("tenant-a", role)
    for key, (_, roles, success) in EXPECTED.items():
        path, kwargs = _prepare(client, world, owner, key)
        res = client.request(key[0], path, headers=caller.headers, **kwargs)
        expected = success if role in roles else 403
        assert res.status_code == expected, (role, key, res.status_code, res.text)
    me = client.get("/api/v1/auth/me", headers=caller.headers).json()
    assert me["role"] == role and me["permissions"] == sorted(MATRIX[role])
