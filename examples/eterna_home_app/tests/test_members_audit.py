"""Membership rules (admin and the owner role, the last owner) and the audit trail."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def owner(world):
    return world.member("tenant-a", "owner")


@pytest.fixture
def admin(world):
    return world.member("tenant-a", "admin")


def test_add_list_and_role_change(client, world, owner):
    res = client.post(
        "/api/v1/members",
        json={"email": "New@A.example", "role": "viewer", "password": "a long password!"},
        headers=owner.headers,
    )
    assert res.status_code == 201, res.text
    new = res.json()
    assert (new["email"], new["role"]) == ("new@a.example", "viewer")
    assert "password" not in res.text
    login = client.post("/api/v1/auth/token", data={"username": "new@a.example", "password": "a long password!"})
    assert login.json()["role"] == "viewer"
    again = client.post("/api/v1/members", json={"email": "new@a.example", "role": "member"}, headers=owner.headers)
    assert again.status_code == 409
    changed = client.patch(f"/api/v1/members/{new['user_id']}", json={"role": "admin"}, headers=owner.headers)
    assert changed.json()["role"] == "admin"
    roles = {m["email"]: m["role"] for m in client.get("/api/v1/members", headers=owner.headers).json()}
    assert roles == {owner.email: "owner", "new@a.example": "admin"}
    [event] = world.audit("member_role_changed")
    assert json.loads(event.details) == {"from": "viewer", "to": "admin"}
    assert event.actor_user_id == owner.user_id and event.target_id == new["user_id"]
    assert [e.outcome for e in world.audit("member_added")] == ["success"]


def test_new_user_needs_a_password(client, owner):
    res = client.post("/api/v1/members", json={"email": "x@a.example", "role": "member"}, headers=owner.headers)
    assert res.status_code == 422


def test_existing_user_of_another_tenant_keeps_its_password(client, world, owner):
    world.user("shared@b.example", {"tenant-b": "owner"})
    res = client.post(
        "/api/v1/members",
        json={"email": "shared@b.example", "role": "member", "password": "attacker chosen pw"},
        headers=owner.headers,
    )
    assert res.status_code == 409
    bad = client.post("/api/v1/auth/token", data={"username": "shared@b.example", "password": "attacker chosen pw"})
    assert bad.status_code == 401
    [event] = world.audit("member_added")
    assert event.outcome == "denied" and json.loads(event.details)["reason"] == "existing_account"


def test_an_account_pre_created_by_another_tenant_cannot_be_taken_over(client, world, admin):
    # Red-team finding: an admin of tenant-a creates an account for tenant-b's future CEO with a password of
    # its choosing; when tenant-b's owner later adds that e-mail, the account must not silently join tenant-b.
    planted = {"email": "ceo@b.example", "role": "viewer", "password": "attacker chosen pw"}
    assert client.post("/api/v1/members", json=planted, headers=admin.headers).status_code == 201
    owner_b = world.member("tenant-b", "owner")
    real = {"email": "ceo@b.example", "role": "admin", "password": "the real ceo password"}  # pragma: allowlist secret
    assert client.post("/api/v1/members", json=real, headers=owner_b.headers).status_code == 409
    attacker = client.post(
        "/api/v1/auth/token", data={"username": "ceo@b.example", "password": "attacker chosen pw", "tenant": "tenant-b"}
    )
    assert attacker.status_code == 403, "the planted account never became a member of tenant-b"
    members = {m["email"] for m in client.get("/api/v1/members", headers=owner_b.headers).json()}
    assert "ceo@b.example" not in members


def test_admin_cannot_touch_the_owner_role(client, world, owner, admin):
    viewer = world.member("tenant-a", "viewer")
    grant = {"email": "boss@a.example", "role": "owner", "password": "a long password!"}
    assert client.post("/api/v1/members", json=grant, headers=admin.headers).status_code == 403
    assert (
        client.patch(f"/api/v1/members/{viewer.user_id}", json={"role": "owner"}, headers=admin.headers).status_code
        == 403
    )
    assert (
        client.patch(f"/api/v1/members/{owner.user_id}", json={"role": "viewer"}, headers=admin.headers).status_code
        == 403
    )
    assert client.delete(f"/api/v1/members/{owner.user_id}", headers=admin.headers).status_code == 403
    # Within its reach an admin manages members.
    assert (
        client.patch(f"/api/v1/members/{viewer.user_id}", json={"role": "member"}, headers=admin.headers).status_code
        == 200
    )
    roles = {m["email"]: m["role"] for m in client.get("/api/v1/members", headers=owner.headers).json()}
    assert roles[owner.email] == "owner" and roles[viewer.email] == "member" and "boss@a.example" not in roles


def test_a_tenant_keeps_an_owner(client, world, owner):
    assert (
        client.patch(f"/api/v1/members/{owner.user_id}", json={"role": "admin"}, headers=owner.headers).status_code
        == 409
    )
    assert client.delete(f"/api/v1/members/{owner.user_id}", headers=owner.headers).status_code == 409
    second = world.member("tenant-a", "owner")
    assert (
        client.patch(f"/api/v1/members/{owner.user_id}", json={"role": "admin"}, headers=second.headers).status_code
        == 200
    )
    assert client.delete(f"/api/v1/members/{second.user_id}", headers=second.headers).status_code == 409
    [event] = world.audit("member_role_changed")
    assert json.loads(event.details) == {"from": "owner", "to": "admin"}


def test_unknown_role_refused(client, world, owner):
    viewer = world.member("tenant-a", "viewer")
    res = client.patch(f"/api/v1/members/{viewer.user_id}", json={"role": "root"}, headers=owner.headers)
    assert res.status_code == 422


def test_member_removed_is_audited(client, world, owner):
    viewer = world.member("tenant-a", "viewer")
    assert client.delete(f"/api/v1/members/{viewer.user_id}", headers=owner.headers).status_code == 204
    [event] = world.audit("member_removed")
    assert (event.tenant_id, event.target_id, json.loads(event.details)) == (
        "tenant-a",
        str(viewer.user_id),
        {"role": "viewer"},
    )
    assert client.delete(f"/api/v1/members/{viewer.user_id}", headers=owner.headers).status_code == 404


def test_deletions_are_audited(client, world, owner):
    h = owner.headers
    house = client.post("/api/v1/houses", json={"name": "Gone"}, headers=h).json()["id"]
    doc = client.post("/api/v1/documents", files={"file": ("d.pdf", b"%PDF")}, headers=h).json()["id"]
    bim = client.post("/api/v1/bim-models", files={"file": ("m.ifc", b"IFC")}, headers=h).json()["id"]
    for path in (f"/api/v1/houses/{house}", f"/api/v1/documents/{doc}", f"/api/v1/bim-models/{bim}"):
        assert client.delete(path, headers=h).status_code == 204
    got = {
        (e.action, e.target_type, e.target_id, e.actor_user_id) for e in world.audit() if e.action.endswith("_deleted")
    }
    assert got == {
        ("house_deleted", "house", house, owner.user_id),
        ("document_deleted", "document", doc, owner.user_id),
        ("bim_model_deleted", "bim_model", bim, owner.user_id),
    }


def test_audit_events_are_tenant_scoped_newest_first_and_paged(client, world, owner):
    other = world.member("tenant-b", "owner")
    for name in ("one", "two", "three"):
        house = client.post("/api/v1/houses", json={"name": name}, headers=owner.headers).json()["id"]
        client.delete(f"/api/v1/houses/{house}", headers=owner.headers)
    house_b = client.post("/api/v1/houses", json={"name": "b"}, headers=other.headers).json()["id"]
    client.delete(f"/api/v1/houses/{house_b}", headers=other.headers)
    events = client.get("/api/v1/audit-events", headers=owner.headers).json()
    assert [e["details"]["name"] for e in events] == ["three", "two", "one"]
    assert {e["tenant_id"] for e in events} == {"tenant-a"}
    page = client.get("/api/v1/audit-events?limit=1&offset=1", headers=owner.headers).json()
    assert [e["details"]["name"] for e in page] == ["two"]
    assert client.get("/api/v1/audit-events?limit=0", headers=owner.headers).status_code == 422
    assert [e["details"]["name"] for e in client.get("/api/v1/audit-events", headers=other.headers).json()] == ["b"]


def test_audit_events_are_logged_as_json(client, world, owner):
    import io
    import logging

    from app.logging_setup import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("app.audit")
    logger.addHandler(handler)
    try:
        house = client.post("/api/v1/houses", json={"name": "logged"}, headers=owner.headers).json()["id"]
        client.delete(f"/api/v1/houses/{house}", headers=owner.headers)
    finally:
        logger.removeHandler(handler)
    [entry] = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert entry["audit"]["action"] == "house_deleted" and entry["audit"]["target_id"] == house
    assert entry["tenant_id"] == "tenant-a"


def test_demoted_admin_cannot_use_its_old_token_to_take_its_role_back(client, world, owner, admin):
    # The admin's access token still says "admin" until it expires; member management reads the role again.
    res = client.patch(f"/api/v1/members/{admin.user_id}", json={"role": "viewer"}, headers=owner.headers)
    assert res.json()["role"] == "viewer"
    back = client.patch(f"/api/v1/members/{admin.user_id}", json={"role": "admin"}, headers=admin.headers)
    assert back.status_code == 403, back.text
    assert client.get("/api/v1/audit-events", headers=admin.headers).status_code == 403
    roles = {m["email"]: m["role"] for m in client.get("/api/v1/members", headers=owner.headers).json()}
    assert roles[admin.email] == "viewer"


def test_removed_admin_cannot_use_its_old_token_to_come_back(client, world, owner, admin):
    assert client.delete(f"/api/v1/members/{admin.user_id}", headers=owner.headers).status_code == 204
    for method, path, body in [
        ("POST", "/api/v1/members", {"email": admin.email, "role": "admin"}),
        ("POST", "/api/v1/members", {"email": "backdoor@a.example", "role": "admin", "password": "a long password!"}),
        ("GET", "/api/v1/members", None),
        ("GET", "/api/v1/audit-events", None),
    ]:
        res = client.request(method, path, json=body, headers=admin.headers)
        assert res.status_code == 403, (method, path, res.text)
    emails = {m["email"] for m in client.get("/api/v1/members", headers=owner.headers).json()}
    assert emails == {owner.email}


def test_promoted_member_acts_with_its_token_role_until_the_next_token(client, world, owner):
    member = world.member("tenant-a", "member")
    client.patch(f"/api/v1/members/{member.user_id}", json={"role": "admin"}, headers=owner.headers)
    body = {"email": "y@a.example", "role": "viewer", "password": "a long password!"}
    res = client.post("/api/v1/members", json=body, headers=member.headers)
    assert res.status_code == 403
