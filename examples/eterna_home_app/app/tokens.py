"""Access tokens (JWT signed with a shared HMAC key chosen by ``kid``) and opaque refresh tokens.

Access token header: ``{"alg": JWT_ALGORITHM, "typ": "JWT", "kid": JWT_ACTIVE_KID}``; claims: ``iss``,
``aud``, ``sub`` (user UUID), ``tid`` (tenant id), ``role``, ``iat``, ``nbf``, ``exp`` (Unix seconds)
and ``jti``. The HMAC key is the ASCII bytes of the kid's secret in JWT_KEYS. The edge verifies the
same tokens with the same keys, so this format is a contract.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import jwt

from app.config import Settings
from app.rbac import ROLES
from app.tenancy import TENANT_RE

REQUIRED_CLAIMS = ("iss", "aud", "sub", "tid", "role", "iat", "nbf", "exp", "jti")


class TokenError(Exception):
    """The access token is not acceptable; the message says why (safe to log, no token content)."""


class SigningNotConfigured(RuntimeError):
    """JWT_KEYS / JWT_ACTIVE_KID are empty: this process cannot issue tokens."""


@dataclass(frozen=True)
class AccessClaims:
    """The verified claims the app uses."""

    user_id: uuid.UUID
    tenant: str
    role: str
    jti: str
    kid: str
    expires_at: int


def issue_access_token(
    settings: Settings, user_id: uuid.UUID, tenant: str, role: str, now: int | None = None
) -> tuple[str, int]:
    """Sign an access token for ``user_id`` acting in ``tenant`` as ``role``.

    ``now`` (Unix seconds) defaults to the current time. Returns (token, expires_in seconds).
    Raises SigningNotConfigured when no active key is configured.
    """
    key = settings.jwt_keys.get(settings.JWT_ACTIVE_KID)
    if key is None:
        raise SigningNotConfigured("JWT_KEYS/JWT_ACTIVE_KID are not set")
    issued = int(time.time()) if now is None else now
    claims = {
        "iss": settings.JWT_ISSUER,
        "aud": settings.JWT_AUDIENCE,
        "sub": str(user_id),
        "tid": tenant,
        "role": role,
        "iat": issued,
        "nbf": issued,
        "exp": issued + settings.JWT_ACCESS_TTL,
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(
        claims,
        key.secret.encode("ascii"),
        algorithm=settings.JWT_ALGORITHM,
        headers={"typ": "JWT", "kid": key.kid},
    )
    return token, settings.JWT_ACCESS_TTL


def verify_access_token(settings: Settings, token: str) -> AccessClaims:
    """Verify ``token`` and return its claims.

    Checks: header ``alg`` is exactly JWT_ALGORITHM (never ``none`` or another HMAC size), ``kid``
    names a key of JWT_KEYS whose not_after (if any) has not passed, the signature with that key,
    every claim of REQUIRED_CLAIMS present, ``exp``/``nbf``/``iat`` with JWT_LEEWAY seconds, ``iss``,
    ``aud``, ``sub`` a UUID, ``tid`` a well-formed tenant id and ``role`` a known role.
    Raises TokenError otherwise.

    A token that passed every check is remembered (``VerifiedTokens``, per ``settings``): presented again, only
    the checks that depend on the time are made again, with the same bounds, and it is refused from the same
    instant as the full verification would refuse it. A token that fails any check is never remembered.
    """
    cache = VerifiedTokens.of(settings)
    claims = cache.get(token, settings.JWT_LEEWAY)
    if claims is not None:
        return claims
    claims, valid_from, retires = _verify(settings, token)
    cache.put(token, claims, valid_from, retires)
    return claims


class VerifiedTokens:
    """Access tokens that passed ``verify_access_token``, for the settings they were verified with.

    At most MAX_ENTRIES tokens (the least recently used one goes); thread-safe. Each entry keeps the token's
    claims, the time it became valid (the later of ``nbf`` and ``iat``) and the time its signing key retires.
    """

    MAX_ENTRIES = 1024
    _current: VerifiedTokens | None = None
    _current_lock = threading.Lock()

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._entries: OrderedDict[str, tuple[AccessClaims, int, int | None]] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, settings: Settings) -> VerifiedTokens:
        """The cache of ``settings`` (a new, empty one when the settings object changed: keys may differ)."""
        current = cls._current
        if current is None or current.settings is not settings:
            with cls._current_lock:
                current = cls._current
                if current is None or current.settings is not settings:
                    current = cls._current = cls(settings)
        return current

    def get(self, token: str, leeway: int, now: float | None = None) -> AccessClaims | None:
        """The remembered claims of ``token`` when it is still acceptable at ``now`` (Unix seconds, default the
        current time) with ``leeway`` seconds, the bounds of PyJWT and ``verify_access_token``: ``exp > now -
        leeway``, valid-from ``<= now + leeway``, signing key not retired (``now <= not_after``).

        :returns: the claims, or None when the token is unknown or one of these checks fails now (the entry is
            dropped: the full verification then decides, and says why).
        """
        with self._lock:
            entry = self._entries.get(token)
            if entry is None:
                return None
            claims, valid_from, retires = entry
            at = time.time() if now is None else now
            if claims.expires_at <= at - leeway or valid_from > at + leeway or (retires is not None and at > retires):
                del self._entries[token]
                return None
            self._entries.move_to_end(token)
            return claims

    def put(self, token: str, claims: AccessClaims, valid_from: int, retires: int | None) -> None:
        """Remember ``token``, verified now: its ``claims``, ``valid_from`` (max of nbf and iat, Unix seconds) and
        ``retires`` (the signing key's not_after, or None)."""
        with self._lock:
            self._entries[token] = (claims, valid_from, retires)
            self._entries.move_to_end(token)
            while len(self._entries) > self.MAX_ENTRIES:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _verify(settings: Settings, token: str) -> tuple[AccessClaims, int, int | None]:
    """Every check of ``verify_access_token``, with no memory. Returns (claims, max(nbf, iat), the signing key's
    not_after or None). Raises TokenError."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenError(f"malformed token: {exc}") from None
    if header.get("alg") != settings.JWT_ALGORITHM:
        raise TokenError("algorithm not allowed")
    kid = header.get("kid")
    key = settings.jwt_keys.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise TokenError("unknown kid")
    if key.not_after is not None and time.time() > key.not_after:
        raise TokenError("signing key retired")
    try:
        claims = jwt.decode(
            token,
            key.secret.encode("ascii"),
            algorithms=[settings.JWT_ALGORITHM],
            audience=settings.JWT_AUDIENCE,
            issuer=settings.JWT_ISSUER,
            leeway=settings.JWT_LEEWAY,
            options={
                "require": list(REQUIRED_CLAIMS),
                "verify_signature": True,
                "verify_exp": True,
                "verify_nbf": True,
                "verify_iat": True,
                "verify_aud": True,
                "verify_iss": True,
                "enforce_minimum_key_length": True,
            },
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"{type(exc).__name__}: {exc}") from None
    try:
        user_id = uuid.UUID(claims["sub"])
    except (TypeError, ValueError):
        raise TokenError("sub is not a user id") from None
    tenant, role = claims["tid"], claims["role"]
    if not isinstance(tenant, str) or not TENANT_RE.fullmatch(tenant):
        raise TokenError("tid is not a tenant id")
    if role not in ROLES:
        raise TokenError("unknown role")
    access = AccessClaims(user_id, tenant, role, claims["jti"], key.kid, int(claims["exp"]))
    return access, max(int(claims["nbf"]), int(claims["iat"])), key.not_after


def new_refresh_token() -> tuple[str, str]:
    """A new opaque refresh token: (token to hand out, its SHA-256 hex digest to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    """SHA-256 (hex) of a refresh token, the only form stored."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
