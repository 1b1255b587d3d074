"""Attacks on the access token: every check claimed by app.tokens must reject what it claims to."""

from __future__ import annotations

import base64
import json
import time
import uuid

import jwt
import pytest
from conftest import PASSWORD, SECRET_K1, SECRET_K2

URL = "/api/v1/houses"


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def owner(world):
    return world.member("tenant-a", "owner")


def claims(owner, **overrides) -> dict:
    now = int(time.time())
    base = {
        "iss": "eterna-home",
        "aud": "eterna-api",
        "sub": str(owner.user_id),
        "tid": owner.tenant,
        "role": owner.role,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(payload: dict, secret: str = SECRET_K2, kid: str | None = "k2", alg: str = "HS256") -> str:
    headers = {"typ": "JWT"}
    if kid is not None:
        headers["kid"] = kid
    return jwt.encode(payload, secret.encode(), algorithm=alg, headers=headers)


def call(client, token: str):
    return client.get(URL, headers={"Authorization": f"Bearer {token}"})


def assert_rejected(res) -> None:
    assert res.status_code == 401, res.text
    assert res.headers["WWW-Authenticate"].startswith("Bearer")


def test_minted_token_has_exactly_the_contract_format(client, owner):
    header = jwt.get_unverified_header(owner.token)
    assert header == {"alg": "HS256", "typ": "JWT", "kid": "k2"}
    payload = jwt.decode(owner.token, options={"verify_signature": False})
    assert set(payload) == {"iss", "aud", "sub", "tid", "role", "iat", "nbf", "exp", "jti"}
    assert payload["exp"] - payload["iat"] == 900
    assert payload["iss"] == "eterna-home" and payload["aud"] == "eterna-api"
    # The edge recomputes the signature with the raw secret bytes as the HMAC key.
    jwt.decode(owner.token, SECRET_K2.encode(), algorithms=["HS256"], audience="eterna-api")
    assert call(client, owner.token).status_code == 200


def test_hand_signed_valid_token_is_accepted(client, owner):
    assert call(client, sign(claims(owner))).status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c", "Bearer ....", "bearer x.y"],
)
def test_missing_or_malformed_token(client, header):
    assert_rejected(client.get(URL, headers={"Authorization": header} if header else {}))


def test_forged_signature_right_claims_wrong_key(client, owner):
    assert_rejected(call(client, sign(claims(owner, role="owner"), secret="F" * 64)))


def test_signature_of_another_kid_is_refused(client, owner):
    # Signed with k1's secret but claiming kid k2.
    assert_rejected(call(client, sign(claims(owner), secret=SECRET_K1, kid="k2")))


def test_alg_none_is_refused(client, owner):
    for alg in ("none", "None", "NONE"):
        token = f"{_b64({'alg': alg, 'typ': 'JWT', 'kid': 'k2'})}.{_b64(claims(owner))}."
        assert_rejected(call(client, token))


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_alg_switched_to_another_hmac_is_refused(client, owner, alg):
    assert_rejected(call(client, sign(claims(owner), alg=alg)))


def test_payload_tampering_is_refused(client, owner):
    header, _, signature = owner.token.split(".")
    tampered = f"{header}.{_b64(claims(owner, role='owner', tid='tenant-b'))}.{signature}"
    assert_rejected(call(client, tampered))


def test_expired_refused_but_leeway_honoured(client, owner):
    now = int(time.time())
    assert_rejected(call(client, sign(claims(owner, iat=now - 600, nbf=now - 600, exp=now - 60))))
    assert call(client, sign(claims(owner, iat=now - 600, nbf=now - 600, exp=now - 10))).status_code == 200


def test_not_yet_valid_refused(client, owner):
    now = int(time.time())
    assert_rejected(call(client, sign(claims(owner, nbf=now + 120))))
    assert_rejected(call(client, sign(claims(owner, iat=now + 120))))
    assert call(client, sign(claims(owner, nbf=now + 10, iat=now + 10))).status_code == 200


@pytest.mark.parametrize(
    "override",
    [
        {"aud": "other-api"},
        {"aud": ["other-api"]},
        {"iss": "someone-else"},
        {"sub": "not-a-uuid"},
        {"sub": 42},
        {"tid": "Tenant A"},
        {"tid": 7},
        {"tid": "tenant-a\n"},
        {"role": "superuser"},
        {"exp": "tomorrow"},
        {"jti": 5},
    ],
    ids=lambda o: next(iter(o.items()))[0] + "=" + repr(next(iter(o.values()))),
)
def test_bad_claim_refused(client, owner, override):
    assert_rejected(call(client, sign(claims(owner, **override))))


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "tid", "role", "iat", "nbf", "exp", "jti"])
def test_every_claim_is_required(client, owner, missing):
    assert_rejected(call(client, sign(claims(owner, **{missing: None}))))


def test_unknown_or_missing_kid_refused(client, owner):
    assert_rejected(call(client, sign(claims(owner), kid="k9")))
    assert_rejected(call(client, sign(claims(owner), kid=None)))


def test_retired_key_accepted_within_grace(client, owner):
    token = sign(claims(owner), secret=SECRET_K1, kid="k1")
    assert call(client, token).status_code == 200
    # New tokens are signed by the active key only.
    assert jwt.get_unverified_header(owner.token)["kid"] == "k2"


def test_retired_key_refused_after_not_after(client, owner, monkeypatch):
    from app.config import get_settings

    token = sign(claims(owner), secret=SECRET_K1, kid="k1")
    monkeypatch.setenv("JWT_KEYS", f"k2:{SECRET_K2},k1:{SECRET_K1}:{int(time.time()) - 1}")
    get_settings.cache_clear()
    assert_rejected(call(client, token))
    assert call(client, owner.token).status_code == 200


def test_key_removed_from_jwt_keys_refused(client, owner, monkeypatch):
    from app.config import get_settings

    token = sign(claims(owner), secret=SECRET_K1, kid="k1")
    monkeypatch.setenv("JWT_KEYS", f"k2:{SECRET_K2}")
    get_settings.cache_clear()
    assert_rejected(call(client, token))


def test_rotation_to_a_new_active_key(client, world, monkeypatch):
    """Operator rotation: k3 becomes active, k2 retires with a grace period; old tokens keep working,
    new logins get k3 tokens."""
    from app.config import get_settings

    world.user("rot@tenant-a.example", {"tenant-a": "member"})
    old = client.post("/api/v1/auth/token", data={"username": "rot@tenant-a.example", "password": PASSWORD})
    old_token = old.json()["access_token"]
    secret_k3 = "K3" * 32
    monkeypatch.setenv("JWT_KEYS", f"k3:{secret_k3},k2:{SECRET_K2}:{int(time.time()) + 600}")
    monkeypatch.setenv("JWT_ACTIVE_KID", "k3")
    get_settings.cache_clear()
    new = client.post("/api/v1/auth/refresh", json={"refresh_token": old.json()["refresh_token"]}).json()
    assert jwt.get_unverified_header(new["access_token"])["kid"] == "k3"
    assert call(client, old_token).status_code == 200
    assert call(client, new["access_token"]).status_code == 200


def test_hs512_deployment_refuses_hs256(client, owner, monkeypatch):
    from app.config import get_settings

    monkeypatch.setenv("JWT_ALGORITHM", "HS512")
    get_settings.cache_clear()
    assert_rejected(call(client, sign(claims(owner), alg="HS256")))
    assert call(client, sign(claims(owner), alg="HS512")).status_code == 200


# Verified tokens are remembered (app.tokens.VerifiedTokens); only the time checks are made again on reuse.


def test_a_token_used_before_is_refused_once_its_key_is_removed_or_retired(client, owner, monkeypatch):
    from app.config import get_settings

    token = sign(claims(owner), secret=SECRET_K1, kid="k1")
    assert call(client, token).status_code == 200
    assert call(client, token).status_code == 200
    monkeypatch.setenv("JWT_KEYS", f"k2:{SECRET_K2},k1:{SECRET_K1}:{int(time.time()) - 1}")
    get_settings.cache_clear()
    assert_rejected(call(client, token))
    monkeypatch.setenv("JWT_KEYS", f"k2:{SECRET_K2}")
    get_settings.cache_clear()
    assert_rejected(call(client, token))


def test_remembered_claims_answer_only_while_the_time_checks_pass():
    from app.tokens import AccessClaims, VerifiedTokens

    cache = VerifiedTokens(object())  # type: ignore[arg-type]
    access = AccessClaims(uuid.uuid4(), "tenant-a", "owner", "jti", "k2", expires_at=1000)
    cache.put("expiring", access, valid_from=900, retires=None)
    # The bounds of PyJWT with a leeway of 30 s: exp > now - 30 and max(nbf, iat) <= now + 30.
    assert cache.get("expiring", 30, now=1029) == access
    assert cache.get("expiring", 30, now=869) is None  # clock went back before nbf - leeway
    assert cache.get("expiring", 30, now=1029) is None  # dropped: the full verification decides again
    cache.put("expiring", access, valid_from=900, retires=None)
    assert cache.get("expiring", 30, now=1030) is None
    cache.put("retiring", access, valid_from=900, retires=950)
    assert cache.get("retiring", 30, now=950) == access
    assert cache.get("retiring", 30, now=951) is None
    assert cache.get("unknown", 30, now=950) is None
    assert len(cache) == 0


def test_refused_tokens_are_not_remembered_and_the_memory_is_bounded(client, owner, monkeypatch):
    from app.config import get_settings
    from app.tokens import TokenError, VerifiedTokens, verify_access_token

    monkeypatch.setattr(VerifiedTokens, "MAX_ENTRIES", 3)
    settings = get_settings()
    forged = sign(claims(owner), secret="F" * 64)
    for _ in range(2):
        with pytest.raises(TokenError):
            verify_access_token(settings, forged)
    assert len(VerifiedTokens.of(settings)) == 0
    tokens = [sign(claims(owner, jti=f"jti-{n}")) for n in range(5)]
    for token in tokens:
        verify_access_token(settings, token)
    assert len(VerifiedTokens.of(settings)) == 3
    assert VerifiedTokens.of(settings).get(tokens[-1], 30) is not None
    assert VerifiedTokens.of(settings).get(tokens[0], 30) is None
