"""scripts/leak_check.py finds every derived secret the repository uses and reports leaks by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "9c1e7a54d2b08f36e4a1c97d05b3f8622d4e9a1f7c03b5e8a6d2f4c19b07e358"  # test-only


def _load():
    spec = importlib.util.spec_from_file_location("leak_check", ROOT / "scripts" / "leak_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finds_literal_derivations(tmp_path: Path) -> None:
    lc = _load()
    (tmp_path / "roles" / "r" / "defaults").mkdir(parents=True)
    (tmp_path / "roles" / "r" / "defaults" / "main.yml").write_text(
        "a: \"{{ eterna_master_key | derive_secret('svc/a') }}\"\n"
        "b: \"{{ eterna_master_key | derive_secret('svc/b', length=40, fmt='hex') }}\"\n"
    )
    table = {(name, c.length, c.fmt, g) for name, c in lc._secrets_module().CREDENTIALS.items() for g in range(10)}
    assert lc.derivations(tmp_path) == table | {("svc/a", 32, "alnum", 0), ("svc/b", 40, "hex", 0)}


def test_reports_leaks_by_name_only(tmp_path: Path, capsys) -> None:
    lc = _load()
    secrets = lc.secrets_for(KEY)
    assert "eterna_master_key" in secrets
    log = tmp_path / "run.log"
    log.write_text(f"ok: [host] => {{'msg': 'nothing here'}}\nleaked {secrets['app_secret_key']}\n")
    assert lc.main(["--key", KEY, str(log)]) == 1
    out = capsys.readouterr().out
    assert "LEAK: app_secret_key" in out
    assert secrets["app_secret_key"] not in out


def test_clean_log_passes(tmp_path: Path) -> None:
    lc = _load()
    log = tmp_path / "run.log"
    log.write_text("PLAY RECAP\nhost : ok=3 changed=0\n")
    assert lc.main(["--key", KEY, str(log)]) == 0


@pytest.mark.parametrize(
    ("name", "value_of", "line"),
    [
        # Every platform credential, with the length of CREDENTIALS (40 here, not derive_secret's default 32).
        (
            "s3/eterna-secret (length=40, fmt=alnum, generation=0)",
            lambda sec: sec.credential(KEY, "s3/eterna-secret"),
            "AWS_SECRET_ACCESS_KEY={}",
        ),
        # A rotated credential (generation 3).
        (
            "redis/eterna (length=32, fmt=alnum, generation=3)",
            lambda sec: sec.credential(KEY, "redis/eterna", 3),
            "REDISCLI_AUTH={}",
        ),
        # The JWT signing keys of every environment and generation.
        (
            "JWT signing key production-g4",
            lambda sec: sec.jwt_keyring(KEY, "production", 4).split(":")[1],
            "js_var $eterna_jwt_keys {}",
        ),
    ],
)
def test_a_leaked_secret_is_named_and_not_shown(tmp_path: Path, capsys, name, value_of, line) -> None:
    lc = _load()
    value = value_of(lc._secrets_module())
    log = tmp_path / "run.log"
    log.write_text(line.format(value) + "\n")
    assert lc.main(["--key", KEY, str(log)]) == 1
    out = capsys.readouterr().out
    assert f"LEAK: {name}" in out
    assert value not in out


def test_issued_tokens_and_password_hashes_are_leaks(tmp_path: Path, capsys) -> None:
    lc = _load()
    log = tmp_path / "run.log"
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhYmMiLCJ0aWQiOiJkZW1vIn0.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"  # noqa: S105 - a made-up token
    log.write_text(f"Authorization: Bearer {token}\nhash $argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA\n")
    assert lc.main(["--key", KEY, str(log)]) == 1
    out = capsys.readouterr().out
    assert "LEAK: a JWT (access token)" in out
    assert "LEAK: an argon2 password hash" in out
    assert token not in out
