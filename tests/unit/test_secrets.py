"""Unit tests for filter_plugins/secrets.py (secret derivation and password hashes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import json
import os
import re
import string
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import bcrypt
import pytest
from ansible.errors import AnsibleFilterError

REPO_ROOT = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO_ROOT / "filter_plugins"
PLUGIN_PATH = PLUGIN_DIR / "secrets.py"


def _load_plugin() -> ModuleType:
    # Loaded by path under a private name: "secrets" would shadow the standard library module on sys.path.
    spec = importlib.util.spec_from_file_location("eterna_filter_secrets", PLUGIN_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sec = _load_plugin()

KEY = "3f" * 32  # 64 hex chars = exactly 256 bits
OTHER_KEY = "a1" * 32
B64 = base64.b64decode


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def _split_verifier(verifier: str) -> tuple[int, bytes, bytes, bytes]:
    match = re.fullmatch(r"SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)", verifier)
    assert match, verifier
    return int(match[1]), B64(match[2]), B64(match[3]), B64(match[4])


# ---------------------------------------------------------------------------------------------------------------
# HKDF


def test_hkdf_rfc5869_test_case_1() -> None:
    ikm = bytes([0x0B] * 22)
    salt = bytes(range(0x00, 0x0D))
    info = bytes(range(0xF0, 0xFA))
    prk = sec.hkdf_extract(salt, ikm)
    assert prk.hex() == "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"
    okm = sec.hkdf_expand(prk, info, 42)
    assert okm.hex() == ("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865")
    assert sec.hkdf_sha256(ikm, salt, info, 42) == okm


def test_hkdf_rfc5869_test_case_3_empty_salt_and_info() -> None:
    okm = sec.hkdf_sha256(bytes([0x0B] * 22), b"", b"", 42)
    assert okm.hex() == ("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8")


def test_hkdf_expand_is_prefix_stable_and_bounded() -> None:
    prk = sec.hkdf_extract(b"s", b"k")
    assert sec.hkdf_expand(prk, b"i", 100)[:33] == sec.hkdf_expand(prk, b"i", 33)
    assert len(sec.hkdf_expand(prk, b"i", 255 * 32)) == 255 * 32
    with pytest.raises(ValueError):
        sec.hkdf_expand(prk, b"i", 255 * 32 + 1)


# ---------------------------------------------------------------------------------------------------------------
# derive_secret


# Known answers computed by the hand-written HKDF this module used before it called cryptography's HKDFExpand:
# every deployed credential depends on these staying the same.
@pytest.mark.parametrize(
    ("purpose", "generation", "length", "fmt", "sha256_prefix"),
    [
        ("app/secret_key", 0, 64, "hex", "4e5f4b4fc8ec553d"),
        ("postgres/eterna", 0, 32, "alnum", "1d4e2a385541cf4e"),
        ("postgres/eterna", 3, 1024, "alnum", "df0d23db086cff34"),
        ("svc/token", 0, 43, "base64url", "cd573e2e6421cb37"),
    ],
)
def test_derive_secret_known_answers(purpose, generation, length, fmt, sha256_prefix) -> None:
    value = sec.derive_secret("0123456789abcdef" * 4, purpose, generation, length, fmt)
    assert len(value) == length
    assert hashlib.sha256(value.encode()).hexdigest()[:16] == sha256_prefix


def test_htpasswd_bcrypt_known_answer() -> None:
    # As passlib 1.7.4 rendered it with the same salt before the filter moved to the bcrypt package.
    expected = "admin:$2b$04$4UvV4sPvx4uSNi.Xztb6KOUs.aoXcegwul1YkLxyug6gpljuSQAMq"
    assert sec.htpasswd_bcrypt("pw-one", "admin", rounds=4) == expected


def test_derive_secret_matches_hkdf_definition() -> None:
    expected = sec.hkdf_sha256(KEY.encode(), b"eterna-home/v1", b"app/secret_key#0", 32).hex()
    assert sec.derive_secret(KEY, "app/secret_key", 0, 64, "hex") == expected
    assert sec.app_secret_key(KEY) == expected


def test_derive_secret_alnum_is_rejection_sampled_from_hkdf_stream() -> None:
    stream = sec.hkdf_sha256(KEY.encode(), b"eterna-home/v1", b"postgres/app#0", 128)
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits
    expected = "".join(alphabet[b % 62] for b in stream if b < 248)[:40]
    assert sec.derive_secret(KEY, "postgres/app", length=40) == expected


def test_derive_secret_base64url() -> None:
    value = sec.derive_secret(KEY, "svc/token", length=43, fmt="base64url")
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", value)
    raw = sec.hkdf_sha256(KEY.encode(), b"eterna-home/v1", b"svc/token#0", 33)
    assert value == base64.urlsafe_b64encode(raw).decode()[:43]


@pytest.mark.parametrize("length", [16, 17, 32, 100, 1024])
def test_alnum_charset_and_length(length: int) -> None:
    value = sec.derive_secret(KEY, "charset/check", length=length)
    assert len(value) == length
    assert re.fullmatch(r"[A-Za-z0-9]+", value)


@pytest.mark.parametrize(("fmt", "length"), [("hex", 32), ("hex", 1024), ("base64url", 16), ("base64url", 1023)])
def test_other_formats_lengths(fmt: str, length: int) -> None:
    assert len(sec.derive_secret(KEY, "len/check", length=length, fmt=fmt)) == length


def test_alnum_uses_whole_alphabet_roughly_uniformly() -> None:
    sample = "".join(sec.derive_secret(KEY, f"uniform/{i}", length=1024) for i in range(20))
    counts = {c: sample.count(c) for c in string.ascii_letters + string.digits}
    expected = len(sample) / 62
    assert min(counts.values()) > expected * 0.7
    assert max(counts.values()) < expected * 1.3


def test_determinism_rotation_and_separation() -> None:
    first = sec.derive_secret(KEY, "postgres/app")
    assert first == sec.derive_secret(KEY, "postgres/app")
    assert first == sec.derive_secret(KEY, "postgres/app", 0, 32, "alnum")
    assert sec.derive_secret(KEY, "postgres/app", generation=1) != first
    assert sec.derive_secret(KEY, "postgres/app", generation=1) == sec.derive_secret(KEY, "postgres/app", 1)
    assert sec.derive_secret(KEY, "postgres/other") != first
    assert sec.derive_secret(OTHER_KEY, "postgres/app") != first
    assert sec.app_secret_key(KEY, 1) != sec.app_secret_key(KEY)
    # a longer output extends the shorter one (same HKDF stream)
    assert sec.derive_secret(KEY, "postgres/app", length=64).startswith(first)


def test_numeric_strings_are_accepted_for_generation_and_length() -> None:
    assert sec.derive_secret(KEY, "x/y", "1", "20") == sec.derive_secret(KEY, "x/y", 1, 20)


@pytest.mark.parametrize(
    "key",
    [
        "0123456789abcdef" * 4,  # 64 hex
        "A" * 64,  # 64 hex (upper case)
        "1" * 78,  # 78 decimal digits ~ 259 bits
        "x" * 64,  # 64 lower-case letters ~ 301 bits (alphabet estimate only)
        "Ab3_" * 10 + "xYz",  # 43 base64url chars
        "Ab3+" * 10 + "xYQ=",  # 43 base64 symbols plus padding
    ],
)
def test_master_key_strength_accepts(key: str) -> None:
    assert len(sec.derive_secret(key, "a")) == 32


@pytest.mark.parametrize(
    "key",
    [
        "f" * 63,  # 252 bits
        "1" * 77,
        "Ab3_" * 10 + "xY",  # 42 base64 chars = 252 bits
        "Ab3+" * 10 + "xY=",  # padding does not count
        "correct horse battery staple",
        "x" * 54,
    ],
)
def test_master_key_strength_rejects(key: str) -> None:
    with pytest.raises(AnsibleFilterError, match=r"master_key is too weak: about \d+ bits"):
        sec.derive_secret(key, "a")


def test_estimate_key_bits_rule() -> None:
    assert sec.estimate_key_bits("ab" * 32) == 256
    assert sec.estimate_key_bits("xY" * 21 + "z") == 43 * 6
    assert sec.estimate_key_bits("") == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"master_key": ""}, "master_key is empty"),
        ({"master_key": None}, "master_key is missing"),
        ({"master_key": 12345}, "master_key must be a string"),
        ({"master_key": "short"}, "master_key is too weak"),
        ({"master_key": " " + KEY}, "master_key has leading/trailing whitespace"),
        ({"purpose": ""}, "purpose is empty"),
        ({"purpose": "Postgres/App"}, "purpose 'Postgres/App' is malformed"),
        ({"purpose": "a#1"}, "purpose 'a#1' is malformed"),
        ({"purpose": "a b"}, "purpose 'a b' is malformed"),
        ({"generation": -1}, "generation must be >= 0"),
        ({"generation": True}, "generation must be an integer"),
        ({"generation": "one"}, "generation must be an integer"),
        ({"fmt": "base32"}, "fmt 'base32' is unknown"),
        ({"length": 15}, "length must be between 16 and 1024 for alnum"),
        ({"length": 1025}, "length must be between 16 and 1024 for alnum"),
        ({"length": 8, "fmt": "base64url"}, "length must be between 16 and 1024 for base64url"),
        ({"length": 30, "fmt": "hex"}, "length must be an even number between 32 and 1024 for hex"),
        ({"length": 33, "fmt": "hex"}, "length must be an even number"),
    ],
)
def test_derive_secret_bad_input(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"master_key": KEY, "purpose": "postgres/app"} | kwargs
    with pytest.raises(AnsibleFilterError) as excinfo:
        sec.derive_secret(**args)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("derive_secret: ")


def test_error_messages_never_contain_the_master_key() -> None:
    weak = "Zq9!" * 5
    with pytest.raises(AnsibleFilterError) as excinfo:
        sec.derive_secret(weak, "a")
    assert weak not in str(excinfo.value)


# ---------------------------------------------------------------------------------------------------------------
# PostgreSQL SCRAM-SHA-256

RFC7677_AUTH_MESSAGE = (
    b"n=user,r=rOprNGfwEbeRWgbNEkqO,"
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
)


def test_scram_rfc7677_example() -> None:
    verifier = sec.scram_sha256_verifier("pencil", B64("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096)
    iterations, salt, stored_key, server_key = _split_verifier(verifier)
    assert iterations == 4096
    assert salt == B64("W22ZaJ0SNY7soEsUEjb6gQ==")

    # Client side: ClientProof = ClientKey XOR HMAC(StoredKey, AuthMessage)
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    client_signature = hmac.new(stored_key, RFC7677_AUTH_MESSAGE, hashlib.sha256).digest()
    proof = _xor(client_key, client_signature)
    assert base64.b64encode(proof).decode() == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="

    # Server side, using only the stored verifier: recover ClientKey from the RFC's proof and check StoredKey.
    recovered = _xor(B64("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="), client_signature)
    assert hashlib.sha256(recovered).digest() == stored_key
    server_signature = hmac.new(server_key, RFC7677_AUTH_MESSAGE, hashlib.sha256).digest()
    assert base64.b64encode(server_signature).decode() == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


# Produced by PostgreSQL 15.x (Debian postgresql-15): SET password_encryption = 'scram-sha-256';
# CREATE ROLE eterna_vec LOGIN PASSWORD 'Tr1cky-vector_pass.42'; SELECT rolpassword FROM pg_authid ...
PG15_PASSWORD = "Tr1cky-vector_pass.42"  # noqa: S105 - public test vector, not a credential
PG15_VERIFIER = (
    "SCRAM-SHA-256$4096:oNZDat9fU8UkZlqNdlFRxA==$"
    "+HRUxELfhBYynh7iTb1yMb4RVsWGgTz9wuqZTJzktHQ=:OtisY2TmsbIqg/WmmxdqE+PiioybyDKZYlPIVaRBBtY="
)


def test_scram_matches_real_postgresql_verifier() -> None:
    iterations, salt, _, _ = _split_verifier(PG15_VERIFIER)
    assert sec.scram_sha256_verifier(PG15_PASSWORD, salt, iterations) == PG15_VERIFIER


def test_postgres_scram_deterministic_salt() -> None:
    password = sec.derive_secret(KEY, "postgres/app")
    verifier = sec.postgres_scram(password, "eterna_app")
    assert verifier == sec.postgres_scram(password, "eterna_app")
    iterations, salt, _, _ = _split_verifier(verifier)
    assert iterations == 4096
    assert salt == hmac.new(password.encode(), b"eterna-scram-salt:eterna_app", hashlib.sha256).digest()[:16]
    assert verifier == sec.scram_sha256_verifier(password, salt, 4096)
    assert sec.postgres_scram(password, "other") != verifier
    assert sec.postgres_scram(password) != verifier
    assert sec.postgres_scram(password, "eterna_app", 8192).startswith("SCRAM-SHA-256$8192:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("",), "password is empty"),
        ((None,), "password is missing"),
        (("pässword",), "SASLprep is not implemented"),
        (("a\x00b",), "password contains a NUL"),
        (("pw", "", 4095), "iterations must be >= 4096"),
        (("pw", 7), "salt_seed must be a string"),
    ],
)
def test_postgres_scram_bad_input(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(AnsibleFilterError) as excinfo:
        sec.postgres_scram(*args)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("postgres_scram: ")


# ---------------------------------------------------------------------------------------------------------------
# RabbitMQ


def test_rabbitmq_known_vector_and_round_trip() -> None:
    salt = bytes.fromhex("908dc60a")
    expected = base64.b64encode(salt + hashlib.sha256(salt + b"test12").digest()).decode()
    assert sec.rabbitmq_hash_with_salt("test12", salt) == expected
    decoded = B64(expected)
    assert len(decoded) == 36
    assert decoded[:4] == salt
    assert decoded[4:] == hashlib.sha256(salt + b"test12").digest()


def test_rabbitmq_hash_deterministic_salt() -> None:
    password = sec.derive_secret(KEY, "rabbitmq/app")
    value = sec.rabbitmq_hash(password, "app")
    assert value == sec.rabbitmq_hash(password, "app")
    salt = hmac.new(password.encode(), b"eterna-rabbitmq-salt:app", hashlib.sha256).digest()[:4]
    assert value == sec.rabbitmq_hash_with_salt(password, salt)
    decoded = B64(value)
    assert hashlib.sha256(decoded[:4] + password.encode()).digest() == decoded[4:]
    assert sec.rabbitmq_hash(password, "other") != value


def test_rabbitmq_hash_bad_input() -> None:
    with pytest.raises(AnsibleFilterError, match="rabbitmq_hash: password is empty"):
        sec.rabbitmq_hash("")


# ---------------------------------------------------------------------------------------------------------------
# htpasswd / bcrypt


def test_htpasswd_bcrypt_verifies_and_is_deterministic() -> None:
    password = sec.derive_secret(KEY, "traefik/admin")
    line = sec.htpasswd_bcrypt(password, "admin", rounds=4)
    assert line == sec.htpasswd_bcrypt(password, "admin", rounds=4)
    user, hashed = line.split(":", 1)
    assert user == "admin"
    assert re.fullmatch(r"\$2b\$04\$[./A-Za-z0-9]{21}[.Oeu][./A-Za-z0-9]{31}", hashed)
    assert bcrypt.checkpw(password.encode(), hashed.encode())
    assert not bcrypt.checkpw((password + "x").encode(), hashed.encode())
    assert hashed[7:29] == sec.bcrypt_salt(password, "admin")
    assert sec.htpasswd_bcrypt(password, "other", rounds=4).split(":", 1)[1] != hashed


def test_htpasswd_default_rounds_and_bcrypt_library_agrees() -> None:
    line = sec.htpasswd_bcrypt("s3cret-pass", "ops")
    hashed = line.split(":", 1)[1]
    assert hashed.startswith("$2b$12$")
    assert bcrypt.checkpw(b"s3cret-pass", hashed.encode())


def test_bcrypt_salt_last_char_is_valid() -> None:
    for i in range(200):
        salt = sec.bcrypt_salt(f"pw{i}", "u")
        assert len(salt) == 22
        assert salt[-1] in ".Oeu"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pw", "ad:min"), "user 'ad:min' must not contain ':'"),
        (("pw", ""), "user is empty"),
        (("pw", None), "user is missing"),
        (("", "admin"), "password is empty"),
        (("x" * 73, "admin"), "password is longer than 72 bytes"),
        (("pw", "admin", 3), "rounds must be between 4 and 31"),
    ],
)
def test_htpasswd_bad_input(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(AnsibleFilterError) as excinfo:
        sec.htpasswd_bcrypt(*args)
    assert message in str(excinfo.value)
    assert str(excinfo.value).startswith("htpasswd_bcrypt: ")


# ---------------------------------------------------------------------------------------------------------------
# FilterModule and Ansible integration


def test_filter_module_exposes_the_public_names() -> None:
    filters = sec.FilterModule().filters()
    assert set(filters) == {
        "derive_secret",
        "credential",
        "postgres_scram",
        "rabbitmq_hash",
        "htpasswd_bcrypt",
        "app_secret_key",
        "jwt_keyring",
        "master_key_bits",
        "sha256_hex",
    }
    assert filters["derive_secret"] is sec.derive_secret
    assert filters["credential"] is sec.credential
    assert all(callable(f) for f in filters.values())


def test_ansible_loads_the_plugin(tmp_path: Path) -> None:
    ansible_bin = Path(sys.executable).with_name("ansible-playbook")
    if not ansible_bin.exists():
        pytest.skip("ansible-playbook not installed next to the test interpreter")
    key = "ab" * 32
    expected = {
        "len": 32,
        "alnum": sec.derive_secret(key, "postgres/app"),
        "hex": sec.derive_secret(key, "app/secret_key", length=64, fmt="hex"),
        "rotated": sec.derive_secret(key, "postgres/app", generation=1),
        "app": sec.app_secret_key(key),
        "scram": sec.postgres_scram(sec.derive_secret(key, "postgres/app"), "app"),
        "rabbit": sec.rabbitmq_hash("pw", "s"),
        "htpasswd": sec.htpasswd_bcrypt("pw", "admin", rounds=4),
    }
    # Note the parentheses: a Jinja filter binds tighter than '*', so 'x' * 64 | f would filter the 64.
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        """\
- hosts: localhost
  gather_facts: false
  vars:
    key: "{{ 'ab' * 32 }}"
  tasks:
    - name: Smoke test the filters
      ansible.builtin.debug:
        msg: "{{ {'len': ('x' * 64) | derive_secret('t/x') | length,
                  'alnum': key | derive_secret('postgres/app'),
                  'hex': key | derive_secret('app/secret_key', length=64, fmt='hex'),
                  'rotated': key | derive_secret('postgres/app', generation=1),
                  'app': key | app_secret_key,
                  'scram': key | derive_secret('postgres/app') | postgres_scram('app'),
                  'rabbit': 'pw' | rabbitmq_hash('s'),
                  'htpasswd': 'pw' | htpasswd_bcrypt('admin', rounds=4)} | to_json }}"
"""
    )
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\n")
    env = {
        **os.environ,
        "ANSIBLE_FILTER_PLUGINS": str(PLUGIN_DIR),
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_NOCOLOR": "1",
    }
    result = subprocess.run(
        [str(ansible_bin), "-i", "localhost,", "-c", "local", str(playbook)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    msg = report["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert (json.loads(msg) if isinstance(msg, str) else msg) == expected


def test_master_key_bits_for_the_preflight() -> None:
    assert sec.master_key_bits("ab" * 32) >= 256
    assert sec.master_key_bits("ab" * 16) < 256
    assert sec.master_key_bits("") == 0
    assert sec.master_key_bits(None) == 0


def test_sha256_hex_matches_hashlib() -> None:
    assert sec.sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


# --------------------------------------------------------------------------------------------------------------
# jwt_keyring: the JWT_KEYS value the app and the edge read


def test_jwt_keyring_active_key_is_the_derived_secret_with_an_environment_kid():
    ring = sec.jwt_keyring(KEY, "lab", 2)
    assert ring == "lab-g2:" + sec.derive_secret(KEY, "jwt/lab/access", 2, 64)
    assert re.fullmatch(r"lab-g2:[A-Za-z0-9]{64}", ring)


def test_jwt_keyring_keys_differ_per_environment_and_generation():
    secrets = {sec.jwt_keyring(KEY, env, gen).split(":")[1] for env in ("lab", "staging") for gen in (0, 1)}
    assert len(secrets) == 4


def test_jwt_keyring_retired_keys_carry_their_grace_deadline():
    ring = sec.jwt_keyring(
        KEY,
        "production",
        3,
        [{"generation": 2, "accept_until": "2026-12-31T00:00:00Z"}, {"generation": 1, "accept_until": 1700000000}],
    )
    active, second, first = ring.split(",")
    assert active.startswith("production-g3:")
    kid, secret, until = second.split(":")
    expected_secret = sec.derive_secret(KEY, "jwt/production/access", 2, 64)
    assert (kid, secret, until) == ("production-g2", expected_secret, "1798675200")
    assert first.split(":")[0::2] == ["production-g1", "1700000000"]


@pytest.mark.parametrize(
    ("env", "gen", "retired", "message"),
    [
        ("Lab", 1, [], "environment"),
        ("lab,x", 1, [], "environment"),
        ("lab", -1, [], "generation must be >= 0"),
        ("lab", 1, [{"generation": 1, "accept_until": 1}], "active one"),
        ("lab", 1, [{"generation": 0, "accept_until": 1}, {"generation": 0, "accept_until": 2}], "listed twice"),
        ("lab", 1, [{"generation": 0}], "exactly generation and accept_until"),
        ("lab", 1, [{"generation": 0, "accept_until": "2026-12-31T00:00:00"}], "no time zone"),
        ("lab", 1, [{"generation": 0, "accept_until": "soon"}], "not an ISO 8601 time"),
        ("lab", 1, "lab-g0", "must be a list"),
    ],
)
def test_jwt_keyring_refuses_bad_input_naming_it(env, gen, retired, message):
    with pytest.raises(AnsibleFilterError, match=message):
        sec.jwt_keyring(KEY, env, gen, retired)


def test_jwt_keyring_refuses_a_weak_master_key():
    with pytest.raises(AnsibleFilterError, match="jwt_keyring|derive_secret|master"):
        sec.jwt_keyring("short", "lab", 1)
