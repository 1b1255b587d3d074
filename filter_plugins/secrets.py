"""Deterministic secret derivation and password-hash filters for Eterna Home.

Every service credential is derived from one vaulted master key (``vault_eterna_master_key``) with HKDF-SHA256,
so nothing but the master key has to be stored.  The hash filters turn such derived passwords into the verifier
formats that PostgreSQL, RabbitMQ and htpasswd files store.  Their salts are derived from the password itself so a
re-run of a play renders byte-identical files (no spurious "changed").

Security note: because the salts are an HMAC of the password, each verifier also exposes a *fast* HMAC-SHA256
oracle for its password.  That is harmless for the high-entropy passwords produced by ``derive_secret`` (which is
what these filters are for) but it removes the brute-force resistance of PBKDF2/bcrypt, so do not feed
human-chosen passwords to them.

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import string
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

import bcrypt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


HKDF_SALT = b"eterna-home/v1"
HASH_LEN = hashlib.sha256().digest_size  # 32
HKDF_MAX_OUTPUT = 255 * HASH_LEN

ALNUM_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits
FORMATS = ("alnum", "hex", "base64url")
MIN_LENGTH = 16
MIN_HEX_LENGTH = 32
MAX_LENGTH = 1024
MIN_KEY_BITS = 256

SCRAM_MIN_ITERATIONS = 4096
SCRAM_SALT_LEN = 16
RABBITMQ_SALT_LEN = 4
BCRYPT_MAX_PASSWORD_BYTES = 72

_PURPOSE_RE = re.compile(r"[a-z0-9_./-]+")
_HEX_CHARS = frozenset(string.hexdigits)
_DIGITS = frozenset(string.digits)
_LOWER = frozenset(string.ascii_lowercase)
_UPPER = frozenset(string.ascii_uppercase)
_B64_CHARS = frozenset(string.ascii_letters + string.digits + "+/-_")
_PUNCT_AND_SPACE = frozenset(string.punctuation + " ")
_STD_B64 = string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/"
_BCRYPT_B64 = "./" + string.ascii_uppercase + string.ascii_lowercase + string.digits
_TO_BCRYPT_B64 = str.maketrans(_STD_B64, _BCRYPT_B64)


# --------------------------------------------------------------------------------------------------------------
# argument helpers


def _fail(func: str, message: str) -> AnsibleFilterError:
    return AnsibleFilterError(f"{func}: {message}")


def _as_str(func: str, name: str, value: Any) -> str:
    """Return ``value`` as a plain ``str`` or raise naming the argument."""
    if value is None:
        raise _fail(func, f"{name} is missing (got None)")
    if isinstance(value, str):
        return str(value)
    if type(value).__name__ == "EncryptedString":  # ansible-core >= 2.19 vaulted value, decrypts on str()
        return str(value)
    raise _fail(func, f"{name} must be a string, got {type(value).__name__}")


def _as_int(func: str, name: str, value: Any) -> int:
    """Accept ints and decimal strings (extra-vars arrive as strings); refuse bools and anything else."""
    if isinstance(value, bool):
        raise _fail(func, f"{name} must be an integer, got bool")
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
        return int(value.strip())
    raise _fail(func, f"{name} must be an integer, got {value!r}")


def _require_password(func: str, password: Any, *, ascii_only: bool) -> str:
    text = _as_str(func, "password", password)
    if not text:
        raise _fail(func, "password is empty")
    if "\x00" in text:
        raise _fail(func, "password contains a NUL character")
    if ascii_only and not text.isascii():
        raise _fail(
            func,
            "password contains non-ASCII characters; SASLprep is not implemented here "
            "(derived secrets are ASCII, use derive_secret output)",
        )
    return text


# --------------------------------------------------------------------------------------------------------------
# HKDF (RFC 5869)


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    """HKDF-Extract with SHA-256 (RFC 5869 section 2.2): PRK = HMAC-SHA256(salt, IKM).

    :param salt: the salt; empty means HashLen (32) zero bytes, as the RFC says.
    :param ikm: the input keying material.
    :returns: the 32-byte pseudorandom key.
    """
    return hmac.new(salt or bytes(HASH_LEN), ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """HKDF-Expand with SHA-256 (RFC 5869 section 2.3), computed by ``cryptography``'s ``HKDFExpand``.

    The output for a length is a prefix of the output for any longer length (the RFC's T(1) | T(2) | ...).

    :param prk: the pseudorandom key from :func:`hkdf_extract` (at least 32 bytes).
    :param info: the context string.
    :param length: bytes wanted, 0..8160 (255 * 32).
    :returns: ``length`` bytes.
    :raises ValueError: when ``length`` is outside 0..8160.
    """
    if not 0 <= length <= HKDF_MAX_OUTPUT:
        raise ValueError(f"HKDF-SHA256 can produce at most {HKDF_MAX_OUTPUT} bytes, asked for {length}")
    if length == 0:
        return b""
    return HKDFExpand(algorithm=hashes.SHA256(), length=length, info=info).derive(prk)


def hkdf_sha256(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """Full HKDF-SHA256 (extract then expand); arguments and errors as :func:`hkdf_expand`."""
    return hkdf_expand(hkdf_extract(salt, ikm), info, length)


# --------------------------------------------------------------------------------------------------------------
# master key strength


def estimate_key_bits(key: str) -> float:
    """Estimate the entropy of ``key`` in bits as ``len(key) * log2(alphabet size)``.

    The alphabet is the smallest one that explains the whole string, tried in this order:

    * only decimal digits                          -> 10 symbols
    * only hex digits ``[0-9a-fA-F]``              -> 16 symbols (so a hex key needs >= 64 chars)
    * only base64/base64url symbols ``[A-Za-z0-9+/_-]`` (up to two trailing ``=`` ignored) and containing both
      upper- and lower-case letters               -> 64 symbols (so such a key needs >= 43 chars)
    * anything else: the sum of the sizes of the character classes that occur -- lower case 26, upper case 26,
      digits 10, ASCII punctuation and space 33, anything else (non-ASCII, control characters) 128.

    This is an upper bound that only looks at the alphabet, not at repetition: it rejects short and obviously
    narrow keys, it cannot prove that a key was generated randomly.
    """
    if not key:
        return 0.0
    chars = set(key)
    if chars <= _DIGITS:
        return len(key) * math.log2(10)
    if chars <= _HEX_CHARS:
        return len(key) * 4.0
    has_upper = bool(chars & _UPPER)
    has_lower = bool(chars & _LOWER)
    body = key[:-2] + key[-2:].rstrip("=")
    if body and set(body) <= _B64_CHARS and has_upper and has_lower:
        return len(body) * 6.0
    pool = 26 * has_lower + 26 * has_upper + 10 * bool(chars & _DIGITS) + 33 * bool(chars & _PUNCT_AND_SPACE)
    if chars - _LOWER - _UPPER - _DIGITS - _PUNCT_AND_SPACE:
        pool += 128
    return len(key) * math.log2(pool) if pool > 1 else 0.0


def _require_master_key(func: str, master_key: Any) -> bytes:
    key = _as_str(func, "master_key", master_key)
    if not key:
        raise _fail(func, "master_key is empty (is vault_eterna_master_key defined and decrypted?)")
    if key != key.strip():
        raise _fail(func, "master_key has leading/trailing whitespace; strip it so every host derives the same")
    bits = estimate_key_bits(key)
    if bits < MIN_KEY_BITS:
        raise _fail(
            func,
            f"master_key is too weak: about {bits:.0f} bits estimated, at least {MIN_KEY_BITS} required "
            "(use >= 64 hex chars, e.g. scripts/new-vault.sh)",
        )
    return key.encode("utf-8")


# --------------------------------------------------------------------------------------------------------------
# derive_secret


def _validate_length(func: str, length: int, fmt: str) -> None:
    if fmt == "hex":
        if length < MIN_HEX_LENGTH or length > MAX_LENGTH or length % 2:
            raise _fail(
                func, f"length must be an even number between {MIN_HEX_LENGTH} and {MAX_LENGTH} for hex, got {length}"
            )
    elif not MIN_LENGTH <= length <= MAX_LENGTH:
        raise _fail(func, f"length must be between {MIN_LENGTH} and {MAX_LENGTH} for {fmt}, got {length}")


def _alnum_from_hkdf(prk: bytes, info: bytes, length: int) -> str:
    """Map HKDF output bytes to [A-Za-z0-9] without modulo bias: bytes >= 248 (= 4 * 62) are rejected.

    About 3 % of the bytes are rejected, so ``length`` plus a margin usually suffices; when it does not, the longest
    output (8160 bytes) is taken. HKDF's output is prefix-stable, so the result does not depend on the first try's size.
    """
    limit = 256 - 256 % len(ALNUM_ALPHABET)
    for size in (min(length + length // 8 + 32, HKDF_MAX_OUTPUT), HKDF_MAX_OUTPUT):
        chars = [ALNUM_ALPHABET[byte % len(ALNUM_ALPHABET)] for byte in hkdf_expand(prk, info, size) if byte < limit]
        if len(chars) >= length:
            return "".join(chars[:length])
    # 8160 bytes with a 3% rejection rate cannot realistically fall short of 1024 characters.
    raise AnsibleFilterError("derive_secret: HKDF output exhausted while building an alnum secret")


def derive_secret(master_key: str, purpose: str, generation: int = 0, length: int = 32, fmt: str = "alnum") -> str:
    """Derive a stable secret for ``purpose`` from the master key with HKDF-SHA256 (RFC 5869).

    IKM is the UTF-8 master key, salt is ``b"eterna-home/v1"`` and info is ``f"{purpose}#{generation}"``
    (``#`` cannot occur in a purpose, so the encoding is unambiguous).  Bump ``generation`` to rotate one secret.

    ``length`` counts output characters.  Formats:

    * ``alnum`` (default): ``[A-Za-z0-9]`` by rejection sampling of the HKDF stream, 16..1024 chars;
    * ``hex``: lower-case hex, an even length of 32..1024 chars;
    * ``base64url``: URL-safe base64 without padding, 16..1024 chars.

    The master key must pass the strength rule documented in :func:`estimate_key_bits` (>= 256 bits), the purpose
    must match ``[a-z0-9_./-]+`` and the generation must be >= 0.
    """
    func = "derive_secret"
    key = _require_master_key(func, master_key)
    purpose_s = _as_str(func, "purpose", purpose)
    if not purpose_s:
        raise _fail(func, "purpose is empty")
    if not _PURPOSE_RE.fullmatch(purpose_s):
        raise _fail(func, f"purpose {purpose_s!r} is malformed; only [a-z0-9_./-] characters are allowed")
    gen = _as_int(func, "generation", generation)
    if gen < 0:
        raise _fail(func, f"generation must be >= 0, got {gen}")
    size = _as_int(func, "length", length)
    fmt_s = _as_str(func, "fmt", fmt)
    if fmt_s not in FORMATS:
        raise _fail(func, f"fmt {fmt_s!r} is unknown; use one of {', '.join(FORMATS)}")
    _validate_length(func, size, fmt_s)

    prk = hkdf_extract(HKDF_SALT, key)
    info = f"{purpose_s}#{gen}".encode()
    if fmt_s == "hex":
        return hkdf_expand(prk, info, size // 2).hex()
    if fmt_s == "base64url":
        raw = hkdf_expand(prk, info, math.ceil(size * 3 / 4))
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")[:size]
    return _alnum_from_hkdf(prk, info, size)


def app_secret_key(master_key: str, generation: int = 0) -> str:
    """256-bit application secret key as 64 lower-case hex characters (purpose ``app/secret_key``)."""
    return derive_secret(master_key, "app/secret_key", generation, 64, "hex")


_KEYRING_ENV_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,15}")
JWT_KEY_LENGTH = 64


def _epoch(func: str, value: Any) -> int:
    """Unix time (s) of an ``accept_until`` value: an int/float epoch or an ISO 8601 string with a zone."""
    if isinstance(value, bool):
        raise _fail(func, f"accept_until must be a time, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = _as_str(func, "accept_until", value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _fail(func, f"accept_until {text!r} is not an ISO 8601 time (e.g. 2026-12-31T00:00:00Z)") from exc
    if moment.tzinfo is None:
        raise _fail(func, f"accept_until {text!r} has no time zone; add Z or an offset")
    return int(moment.timestamp())


def jwt_keyring(master_key: str, environment: str, generation: int = 1, retired: Any = ()) -> str:
    """Signing keys of the API's access tokens, in the ``JWT_KEYS`` format the app and the edge both read.

    Returns ``kid:secret[,kid:secret:not_after...]``: the active key first, then each retired key with the Unix time
    (seconds) after which tokens signed with it are refused (the rotation grace period).  A key is
    ``derive_secret(master_key, f"jwt/{environment}/access", generation, 64)`` (HKDF-SHA256, RFC 5869), so keys
    differ per environment, purpose and generation; its key id is ``f"{environment}-g{generation}"``.

    ``retired`` is a list of ``{"generation": int, "accept_until": epoch or ISO 8601 time with zone}``.

    Raises AnsibleFilterError for a malformed environment (``[a-z0-9-]``, at most 16), a negative generation, a
    retired generation equal to the active one or listed twice, or an unreadable ``accept_until``.
    """
    func = "jwt_keyring"
    env = _as_str(func, "environment", environment)
    if not _KEYRING_ENV_RE.fullmatch(env):
        raise _fail(func, f"environment {env!r} must match [a-z0-9][a-z0-9-]{{0,15}}")
    active = _as_int(func, "generation", generation)
    if active < 0:
        raise _fail(func, f"generation must be >= 0, got {active}")
    purpose = f"jwt/{env}/access"
    entries = [f"{env}-g{active}:{derive_secret(master_key, purpose, active, JWT_KEY_LENGTH)}"]
    if retired is None or isinstance(retired, str | dict):
        raise _fail(func, "retired must be a list of {generation, accept_until} entries")
    seen = {active}
    for item in retired:
        if not isinstance(item, dict) or set(item) != {"generation", "accept_until"}:
            raise _fail(func, f"each retired key needs exactly generation and accept_until, got {item!r}")
        gen = _as_int(func, "retired generation", item["generation"])
        if gen < 0 or gen in seen:
            raise _fail(func, f"retired generation {gen} is negative, the active one or listed twice")
        seen.add(gen)
        until = _epoch(func, item["accept_until"])
        entries.append(f"{env}-g{gen}:{derive_secret(master_key, purpose, gen, JWT_KEY_LENGTH)}:{until}")
    return ",".join(entries)


# --------------------------------------------------------------------------------------------------------------
# PostgreSQL SCRAM-SHA-256


def scram_sha256_verifier(password: str, salt: bytes, iterations: int = SCRAM_MIN_ITERATIONS) -> str:
    """Return the PostgreSQL ``rolpassword`` string for ``password`` with an explicit salt (RFC 5802 / 7677).

    ``SCRAM-SHA-256$<iterations>:<b64 salt>$<b64 StoredKey>:<b64 ServerKey>``.  The password must be ASCII:
    PostgreSQL passes pure-ASCII passwords through SASLprep unchanged, which is the only case handled here.
    """
    func = "scram_sha256_verifier"
    text = _require_password(func, password, ascii_only=True)
    if not isinstance(salt, bytes) or not salt:
        raise _fail(func, "salt must be non-empty bytes")
    rounds = _as_int(func, "iterations", iterations)
    if rounds < 1:
        raise _fail(func, f"iterations must be positive, got {rounds}")
    salted = hashlib.pbkdf2_hmac("sha256", text.encode("ascii"), salt, rounds)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    return f"SCRAM-SHA-256${rounds}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def postgres_scram(password: str, salt_seed: str = "", iterations: int = SCRAM_MIN_ITERATIONS) -> str:
    """PostgreSQL SCRAM-SHA-256 verifier with a deterministic 16-byte salt.

    salt = HMAC-SHA256(key=password, msg="eterna-scram-salt:" + salt_seed)[:16], so re-rendering gives the same
    verifier.  Only for high-entropy (derived) ASCII passwords, see the module docstring.
    """
    func = "postgres_scram"
    text = _require_password(func, password, ascii_only=True)
    seed = _as_str(func, "salt_seed", salt_seed)
    rounds = _as_int(func, "iterations", iterations)
    if rounds < SCRAM_MIN_ITERATIONS:
        raise _fail(func, f"iterations must be >= {SCRAM_MIN_ITERATIONS}, got {rounds}")
    salt = hmac.new(text.encode("ascii"), f"eterna-scram-salt:{seed}".encode(), hashlib.sha256).digest()
    return scram_sha256_verifier(text, salt[:SCRAM_SALT_LEN], rounds)


# --------------------------------------------------------------------------------------------------------------
# RabbitMQ


def rabbitmq_hash_with_salt(password: str, salt: bytes) -> str:
    """``base64(salt + SHA256(salt + password))`` -- the rabbit_password_hashing_sha256 stored format."""
    func = "rabbitmq_hash"
    text = _require_password(func, password, ascii_only=False)
    if not isinstance(salt, bytes) or len(salt) != RABBITMQ_SALT_LEN:
        raise _fail(func, f"salt must be {RABBITMQ_SALT_LEN} bytes")
    digest = hashlib.sha256(salt + text.encode("utf-8")).digest()
    return base64.b64encode(salt + digest).decode("ascii")


def rabbitmq_hash(password: str, salt_seed: str = "") -> str:
    """RabbitMQ SHA-256 password hash with salt = HMAC-SHA256(password, "eterna-rabbitmq-salt:" + seed)[:4]."""
    func = "rabbitmq_hash"
    text = _require_password(func, password, ascii_only=False)
    seed = _as_str(func, "salt_seed", salt_seed)
    mac = hmac.new(text.encode("utf-8"), f"eterna-rabbitmq-salt:{seed}".encode(), hashlib.sha256).digest()
    return rabbitmq_hash_with_salt(text, mac[:RABBITMQ_SALT_LEN])


# --------------------------------------------------------------------------------------------------------------
# htpasswd (bcrypt)


def bcrypt_salt(password: str, user: str) -> str:
    """22-char bcrypt salt from HMAC-SHA256(password, "eterna-bcrypt-salt:" + user).

    16 bytes are encoded with bcrypt's base64 alphabet; the 4 unused padding bits are zero, so the last character
    is always one of ``.Oeu`` (the only values bcrypt implementations accept there).
    """
    mac = hmac.new(password.encode("utf-8"), f"eterna-bcrypt-salt:{user}".encode(), hashlib.sha256).digest()
    encoded = base64.b64encode(mac[:16]).decode("ascii").rstrip("=")
    return encoded.translate(_TO_BCRYPT_B64)


def htpasswd_bcrypt(password: str, user: str, rounds: int = 12) -> str:
    """Return an htpasswd line ``user:$2b$<rounds>$...``, hashed by the ``bcrypt`` package with a deterministic salt.

    :param password: at most 72 bytes in UTF-8 (bcrypt ignores the rest, so longer is refused).
    :param user: the htpasswd user name, without ``:`` or line breaks.
    :param rounds: bcrypt's cost factor, 4..31 (2**rounds iterations).
    :returns: the htpasswd line (the salt is :func:`bcrypt_salt`, so re-runs render the same line).
    :raises AnsibleFilterError: on any argument outside those bounds.
    """
    func = "htpasswd_bcrypt"
    text = _require_password(func, password, ascii_only=False)
    if len(text.encode("utf-8")) > BCRYPT_MAX_PASSWORD_BYTES:
        raise _fail(func, f"password is longer than {BCRYPT_MAX_PASSWORD_BYTES} bytes; bcrypt would ignore the rest")
    name = _as_str(func, "user", user)
    if not name:
        raise _fail(func, "user is empty")
    if ":" in name or any(c in name for c in "\r\n\x00"):
        raise _fail(func, f"user {name!r} must not contain ':' or line breaks")
    cost = _as_int(func, "rounds", rounds)
    if not 4 <= cost <= 31:
        raise _fail(func, f"rounds must be between 4 and 31, got {cost}")
    setting = f"$2b${cost:02d}${bcrypt_salt(text, name)}".encode("ascii")
    return f"{name}:{bcrypt.hashpw(text.encode('utf-8'), setting).decode('ascii')}"


# --------------------------------------------------------------------------------------------------------------
# the platform's credentials, named once


class Credential(NamedTuple):
    """One credential of the platform: how it is derived and who reads it.

    :ivar length: characters of the derived secret.
    :ivar fmt: ``derive_secret``'s format.
    :ivar used_by: the roles (and playbooks) that read it; the first one creates it on the service, when any does.
    :ivar meaning: what it is, for operators.
    """

    length: int
    fmt: str
    used_by: tuple[str, ...]
    meaning: str


def _c(meaning: str, *used_by: str, length: int = 32, fmt: str = "alnum") -> Credential:
    return Credential(length, fmt, used_by, meaning)


# Every credential derived from the master key, by name (the name is its HKDF purpose, so renaming one changes its
# value). Roles read them with ``eterna_master_key | credential('<name>')``; the length and format are set here only.
# tests/unit/test_credentials.py checks that each role reading a credential is listed in its ``used_by``, and
# scripts/leak_check.py searches run output for every one of them.
CREDENTIALS: dict[str, Credential] = {
    "postgres/eterna": _c("PostgreSQL login of the app (user eterna)", "postgres", "app"),
    "postgres/replicator": _c("PostgreSQL replication login (user replicator)", "postgres", "patroni"),
    "postgres/exporter": _c("PostgreSQL login of postgres_exporter (pg_monitor)", "postgres"),
    "postgres/superuser": _c("PostgreSQL superuser password under Patroni", "patroni"),
    "postgres/rewind": _c("pg_rewind's PostgreSQL login under Patroni (user rewind)", "patroni"),
    "patroni/restapi": _c("Patroni REST API basic authentication (user patroni)", "patroni"),
    "redis/eterna": _c("Redis ACL user of the app (eterna)", "redis", "app"),
    "redis/admin": _c("Redis ACL user of operators (admin)", "redis"),
    "redis/exporter": _c("Redis ACL user of redis_exporter", "redis"),
    "rabbitmq/eterna": _c("RabbitMQ user of the app (eterna, vhost eterna)", "rabbitmq", "app"),
    "rabbitmq/admin": _c("RabbitMQ administrator (management API)", "rabbitmq"),
    "rabbitmq/erlang_cookie": _c("Erlang distribution cookie of the RabbitMQ cluster", "rabbitmq"),
    "s3/eterna-access": _c("S3 access key of the app's buckets", "seaweedfs", "minio", "app", "backup", length=20),
    "s3/eterna-secret": _c("S3 secret key of the app's buckets", "seaweedfs", "minio", "app", "backup", length=40),
    "s3/admin-access": _c("S3 administrator access key", "seaweedfs", "minio", "app", length=20),
    "s3/admin-secret": _c("S3 administrator secret key", "seaweedfs", "minio", "app", length=40),
    "seaweedfs/jwt-volume": _c("SeaweedFS volume server write JWT signing key", "seaweedfs", length=40),
    "seaweedfs/jwt-filer": _c("SeaweedFS filer JWT signing key", "seaweedfs", length=40),
    "backup/pgbackrest": _c("pgBackRest repository cipher passphrase", "backup", length=64),
    "backup/repo2-access": _c("S3 access key of pgBackRest's second repository", "backup", length=20),
    "backup/repo2-secret": _c("S3 secret key of pgBackRest's second repository", "backup", length=40),
    "prometheus/admin": _c("Prometheus and Alertmanager UI basic authentication (admin)", "prometheus", "grafana"),
    "grafana/admin": _c("Grafana administrator", "grafana"),
    "grafana/secret_key": _c("Grafana's signing key of cookies and stored secrets", "grafana", length=40),
    "elasticsearch/elastic": _c("Elasticsearch built-in superuser elastic", "elasticsearch"),
    "elasticsearch/eterna_admin": _c("Elasticsearch administrator of the collection", "elasticsearch"),
    "elasticsearch/kibana_system": _c("Elasticsearch built-in user kibana_system", "elasticsearch", "kibana"),
    "elasticsearch/logstash_system": _c("Elasticsearch built-in user logstash_system", "elasticsearch"),
    "elasticsearch/beats_system": _c("Elasticsearch built-in user beats_system", "elasticsearch"),
    "elasticsearch/apm_system": _c("Elasticsearch built-in user apm_system", "elasticsearch"),
    "elasticsearch/remote_monitoring_user": _c("Elasticsearch built-in user remote_monitoring_user", "elasticsearch"),
    "elasticsearch/eterna_rsyslog": _c(
        "Search-store writer of the central rsyslog", "playbooks/services/logging.yml", "rsyslog"
    ),
    "elasticsearch/eterna_logstash": _c(
        "Search-store writer of Logstash", "playbooks/services/logging.yml", "logstash"
    ),
    "elasticsearch/eterna_operator": _c("Kibana login of operators", "playbooks/services/logging.yml", "kibana"),
    "kibana/encryption_key": _c("Kibana xpack.security.encryptionKey", "kibana", length=48),
    "kibana/saved_objects_key": _c("Kibana xpack.encryptedSavedObjects.encryptionKey", "kibana", length=48),
    "kibana/reporting_key": _c("Kibana xpack.reporting.encryptionKey", "kibana", length=48),
    "logging/tenant_pseudonym": _c("Key of the tenant pseudonyms in central logs", "rsyslog"),
}


def credential(master_key: str, name: str, generation: int = 0) -> str:
    """The credential ``name`` of :data:`CREDENTIALS`, derived from the master key with its length and format.

    :param master_key: the master key (``eterna_master_key``).
    :param name: a key of :data:`CREDENTIALS`, e.g. ``'postgres/eterna'``.
    :param generation: bump to rotate this one credential (see :func:`derive_secret`).
    :returns: the secret, ``CREDENTIALS[name].length`` characters.
    :raises AnsibleFilterError: ``name`` is not a credential of the platform (a typo would otherwise derive a
        valid but different password), or as :func:`derive_secret`.
    """
    entry = CREDENTIALS.get(_as_str("credential", "name", name))
    if entry is None:
        raise _fail(
            "credential", f"{name!r} is not a credential of the platform (filter_plugins/secrets.py CREDENTIALS)"
        )
    return derive_secret(master_key, name, generation, entry.length, entry.fmt)


# --------------------------------------------------------------------------------------------------------------


def master_key_bits(key: Any) -> int:
    """Estimated entropy of a master key in bits (0 for a missing or non-string key); see estimate_key_bits."""
    if not isinstance(key, str) or not key:
        return 0
    return int(estimate_key_bits(key))


def sha256_hex(value: Any) -> str:
    """SHA-256 of a string, hex: lets a preflight compare a secret with known public values without naming them."""
    return hashlib.sha256(_as_str("sha256_hex", "value", value).encode()).hexdigest()


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Callable[..., str]]:
        return {
            "derive_secret": derive_secret,
            "credential": credential,
            "postgres_scram": postgres_scram,
            "rabbitmq_hash": rabbitmq_hash,
            "htpasswd_bcrypt": htpasswd_bcrypt,
            "app_secret_key": app_secret_key,
            "jwt_keyring": jwt_keyring,
            "master_key_bits": master_key_bits,
            "sha256_hex": sha256_hex,
        }
