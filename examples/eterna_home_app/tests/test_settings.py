"""Token and network settings are parsed strictly and never echo a secret."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

GOOD = "S" * 64


def build(monkeypatch, **env):
    from app.config import Settings

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


@pytest.mark.parametrize(
    ("keys", "active", "message"),
    [
        (f"k1-{GOOD}", "k1", "expected kid:secret"),
        (f"k1:{GOOD}:soon", "k1", "not_after"),
        (f"k1:{GOOD}:1:2", "k1", "expected kid:secret"),
        (f"bad kid:{GOOD}", "bad kid", "kid must match"),
        (f"{'k' * 33}:{GOOD}", "k", "kid must match"),
        (f"k1:{GOOD[:31]}", "k1", "at least 32"),
        (f"k1:{GOOD[:40]}!", "k1", "at least 32"),
        (f"k1:{GOOD},k1:{GOOD}", "k1", "appears twice"),
        (f"k1:{GOOD}", "k9", "JWT_ACTIVE_KID"),
        (f"k1:{GOOD}:1700000000,k2:{GOOD}", "k1", "retired"),
    ],
)
def test_bad_jwt_settings(monkeypatch, keys, active, message):
    with pytest.raises(ValidationError) as exc:
        build(monkeypatch, JWT_KEYS=keys, JWT_ACTIVE_KID=active)
    text = str(exc.value)
    assert message in text
    assert "JWT_KEYS" in text or "JWT_ACTIVE_KID" in text
    assert GOOD[:31] not in text


def test_algorithm_allow_list_and_key_length(monkeypatch):
    with pytest.raises(ValidationError, match="JWT_ALGORITHM"):
        build(monkeypatch, JWT_ALGORITHM="none")
    with pytest.raises(ValidationError, match="JWT_ALGORITHM"):
        build(monkeypatch, JWT_ALGORITHM="RS256")
    with pytest.raises(ValidationError, match="at least 64"):
        build(monkeypatch, JWT_ALGORITHM="HS512", JWT_KEYS=f"k1:{'s' * 40}", JWT_ACTIVE_KID="k1")
    settings = build(monkeypatch, JWT_ALGORITHM="HS512", JWT_KEYS=f"k1:{GOOD}", JWT_ACTIVE_KID="k1")
    assert settings.JWT_ALGORITHM == "HS512"


def test_good_keys_parse(monkeypatch):
    settings = build(monkeypatch, JWT_KEYS=f" new:{GOOD} , old:{'o' * 32}:1900000000 ", JWT_ACTIVE_KID="new")
    keys = settings.jwt_keys
    assert [(k.kid, k.secret, k.not_after) for k in keys.values()] == [
        ("new", GOOD, None),
        ("old", "o" * 32, 1900000000),
    ]
    assert GOOD not in repr(settings) and GOOD not in repr(keys)


def test_defaults(monkeypatch):
    for key in ("JWT_ALGORITHM", "JWT_ISSUER", "JWT_AUDIENCE", "JWT_ACCESS_TTL", "JWT_REFRESH_TTL", "JWT_LEEWAY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("READY_CACHE_SECONDS", raising=False)
    monkeypatch.delenv("INTERNAL_NETWORKS", raising=False)
    s = build(monkeypatch)
    assert (s.JWT_ALGORITHM, s.JWT_ISSUER, s.JWT_AUDIENCE) == ("HS256", "eterna-home", "eterna-api")
    assert (s.JWT_ACCESS_TTL, s.JWT_REFRESH_TTL, s.JWT_LEEWAY, s.READY_CACHE_SECONDS) == (900, 1209600, 30, 5.0)
    assert [str(n) for n in s.internal_networks] == [
        "127.0.0.0/8",
        "::1/128",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
    ]


def test_bad_internal_networks(monkeypatch):
    with pytest.raises(ValidationError, match="INTERNAL_NETWORKS"):
        build(monkeypatch, INTERNAL_NETWORKS="10.0.0.0/8,not-a-net")
