"""Login, refresh rotation and reuse detection, logout, /me, password storage."""

from __future__ import annotations

import json

import jwt
import pytest
from conftest import PASSWORD, SECRET_K2
from sqlalchemy import select

LOGIN_PATH = "/api/v1/auth/token"


def login(client, email, password=PASSWORD, tenant=None):
    data = {"username": email, "password": password, "grant_type": "password"}
    if tenant:
        data["tenant"] = tenant
    return client.post(LOGIN_PATH, data=data)


def test_login_single_tenant_returns_the_contract(client, world):
    user_id = world.user("Ann@A.example", {"tenant-a": "member"})
    res = login(client, "ann@a.example")
    assert res.status_code == 200, res.text
    body = res.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token", "tenant", "role"}
    assert (body["token_type"], body["expires_in"], body["tenant"], body["role"]) == (
        "bearer",
        900,
        "tenant-a",
        "member",
    )
    claims = jwt.decode(body["access_token"], SECRET_K2.encode(), algorithms=["HS256"], audience="eterna-api")
    assert (claims["sub"], claims["tid"], claims["role"]) == (str(user_id), "tenant-a", "member")
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["user_id"] == str(user_id) and me["email"] == "Ann@A.example" and me["tenant"] == "tenant-a"


def test_several_tenants_need_a_choice(client, world):
    world.user("multi@x.example", {"tenant-a": "viewer", "tenant-b": "admin"})
    res = login(client, "multi@x.example")
    assert res.status_code == 400
    assert "`tenant`" in res.json()["detail"]
    chosen = login(client, "multi@x.example", tenant="tenant-b").json()
    assert (chosen["tenant"], chosen["role"]) == ("tenant-b", "admin")
    assert login(client, "multi@x.example", tenant="tenant-c").status_code == 403
    assert login(client, "multi@x.example", tenant="Bad Tenant").status_code == 422


def test_bad_credentials_are_indistinguishable(client, world):
    world.user("known@a.example", {"tenant-a": "owner"})
    world.user("gone@a.example", {"tenant-a": "owner"}, active=False)
    answers = [
        login(client, "known@a.example", "wrong password"),
        login(client, "nobody@a.example", "wrong password"),
        login(client, "gone@a.example"),
    ]
    for res in answers:
        assert res.status_code == 401
        assert res.headers["WWW-Authenticate"] == "Bearer"
    assert len({r.text for r in answers}) == 1


def test_unknown_user_still_verifies_a_hash(client):
    from argon2 import PasswordHasher

    from app import passwords

    calls = []

    class Counting(PasswordHasher):
        def verify(self, hash, password):  # noqa: A002, ANN001, ANN202 - argon2's signature
            calls.append(hash)
            return super().verify(hash, password)

    passwords.set_hasher(Counting(time_cost=1, memory_cost=1024, parallelism=1))
    assert login(client, "nobody@a.example", "whatever").status_code == 401
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_login_audit_records_email_never_password(client, world):
    world.user("aud@a.example", {"tenant-a": "owner"})
    login(client, "aud@a.example", "s3cret-typo-password")
    login(client, "stranger@a.example", "another-s3cret")
    login(client, "aud@a.example")
    events = world.audit("login")
    assert [(e.outcome, json.loads(e.details)["email"]) for e in events] == [
        ("failure", "aud@a.example"),
        ("failure", "stranger@a.example"),
        ("success", "aud@a.example"),
    ]
    assert events[0].tenant_id == "tenant-a" and events[1].tenant_id is None
    assert events[2].client_ip == "127.0.0.1" and events[2].request_id
    for event in events:
        assert "s3cret" not in event.details and PASSWORD not in event.details


def test_password_is_argon2_rehashed_and_never_returned(client, world):
    from argon2 import PasswordHasher

    from app import passwords
    from app.models import User

    user_id = world.user("hash@a.example", {"tenant-a": "owner"})
    with world.session() as session:
        stored = session.get(User, user_id).hashed_password
    assert stored.startswith("$argon2id$") and "t=1" in stored
    passwords.set_hasher(PasswordHasher(time_cost=2, memory_cost=1024, parallelism=1))
    body = login(client, "hash@a.example").json()
    with world.session() as session:
        rehashed = session.get(User, user_id).hashed_password
    assert rehashed != stored and "t=2" in rehashed
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    for res in (client.get("/api/v1/auth/me", headers=headers), client.get("/api/v1/members", headers=headers)):
        assert "$argon2" not in res.text and "password" not in res.text


def test_refresh_rotates_and_rereads_the_role(client, world):
    from app.models import RefreshToken, UserTenantRole

    user_id = world.user("rot@a.example", {"tenant-a": "member"})
    first = login(client, "rot@a.example").json()
    with world.session() as session:
        session.execute(
            UserTenantRole.__table__.update().where(UserTenantRole.user_id == user_id).values(role="viewer")
        )
        session.commit()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert (second["tenant"], second["role"]) == ("tenant-a", "viewer")
    with world.session() as session:
        rows = session.scalars(select(RefreshToken)).all()
    assert len(rows) == 2 and len({r.family_id for r in rows}) == 1
    assert first["refresh_token"] not in {r.token_hash for r in rows}
    old = next(r for r in rows if r.revoked_at is not None)
    assert old.replaced_by == next(r.id for r in rows if r.revoked_at is None)


def test_reuse_of_a_rotated_token_revokes_the_family(client, world):
    world.user("theft@a.example", {"tenant-a": "member"})
    first = login(client, "theft@a.example").json()
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    stolen = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert stolen.status_code == 401
    assert stolen.headers["WWW-Authenticate"] == "Bearer"
    # The legitimate holder's newer token is dead too.
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).status_code == 401
    events = world.audit("refresh_reuse_detected")
    assert len(events) == 1 and events[0].outcome == "denied" and events[0].tenant_id == "tenant-a"
    assert json.loads(events[0].details)["family_revoked"] == 1
    # Another login session of the same user is untouched.
    other = login(client, "theft@a.example").json()
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code == 200


def test_logout_revokes(client, world):
    world.user("bye@a.example", {"tenant-a": "member"})
    tokens = login(client, "bye@a.example").json()
    assert client.post("/api/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]}).status_code == 204
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401
    assert [e.outcome for e in world.audit("logout")] == ["success"]
    assert client.post("/api/v1/auth/logout", json={"refresh_token": "unknown"}).status_code == 204


def test_expired_refresh_token_refused(client, world, monkeypatch):
    from app.config import get_settings

    world.user("old@a.example", {"tenant-a": "member"})
    monkeypatch.setenv("JWT_REFRESH_TTL", "1")
    get_settings.cache_clear()
    tokens = login(client, "old@a.example").json()
    from app.models import RefreshToken

    with world.session() as session:
        session.execute(RefreshToken.__table__.update().values(expires_at=RefreshToken.created_at))
        session.commit()
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


def test_removed_member_cannot_refresh(client, world):
    owner = world.member("tenant-a", "owner")
    user_id = world.user("leaver@a.example", {"tenant-a": "member"})
    tokens = login(client, "leaver@a.example").json()
    assert client.delete(f"/api/v1/members/{user_id}", headers=owner.headers).status_code == 204
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code == 401


@pytest.mark.parametrize("path", ["/api/v1/auth/me", "/api/v1/members", "/api/v1/audit-events"])
def test_identity_endpoints_need_a_token(client, path):
    assert client.get(path).status_code == 401
