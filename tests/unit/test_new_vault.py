"""Tests for scripts/new-vault.sh against a throw-away repository layout."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "scripts" / "new-vault.sh"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "repo"
    for env_name in ("staging", "lab"):
        (root / "inventories" / env_name).mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "ETERNA_REPO_ROOT": str(root),
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_CONFIG": str(tmp_path / "ansible.cfg"),
    }
    (tmp_path / "ansible.cfg").write_text("[defaults]\n")
    env.pop("ETERNA_VAULT_PASSWORD_FILE", None)
    return root, env


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _decrypt(vault: Path, password_file: Path, env: dict[str, str]) -> str:
    ansible_vault = VENV_BIN / "ansible-vault"
    result = subprocess.run(
        [str(ansible_vault), "view", "--vault-password-file", str(password_file), str(vault)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_encrypted_vault_and_refuses_second_run(layout: tuple[Path, dict[str, str]]) -> None:
    root, env = layout
    vault = root / "inventories" / "staging" / "group_vars" / "all" / "vault.yml"
    password_file = Path(env["HOME"]) / ".eterna" / "vault-pass-staging"

    first = _run(env, "staging")
    assert first.returncode == 0, first.stderr
    assert vault.read_text().startswith("$ANSIBLE_VAULT;")
    assert _mode(vault) == 0o600
    assert _mode(password_file) == 0o600
    assert _mode(password_file.parent) == 0o700
    assert str(password_file) in first.stderr
    assert len(password_file.read_text().strip()) == 64  # 48 bytes, base64

    plaintext = _decrypt(vault, password_file, env)
    match = re.search(r'^vault_eterna_master_key: "([0-9a-f]{64})"$', plaintext, re.MULTILINE)
    assert match, "vault does not hold a 64-hex master key"
    key = match[1]
    assert key not in first.stdout + first.stderr

    before = vault.read_bytes()
    second = _run(env, "staging")
    assert second.returncode != 0
    assert "already exists" in second.stderr
    assert vault.read_bytes() == before
    assert not list(vault.parent.glob(".vault.yml.*")), "temporary file left behind"


def test_uses_given_password_file(layout: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, env = layout
    password_file = tmp_path / "given-pass"
    password_file.write_text("correct-horse-battery-staple-but-longer\n")
    password_file.chmod(0o600)
    env = {**env, "ETERNA_VAULT_PASSWORD_FILE": str(password_file)}
    result = _run(env, "staging")
    assert result.returncode == 0, result.stderr
    vault = root / "inventories" / "staging" / "group_vars" / "all" / "vault.yml"
    assert "vault_eterna_master_key" in _decrypt(vault, password_file, env)
    assert password_file.read_text() == "correct-horse-battery-staple-but-longer\n"
    assert not (Path(env["HOME"]) / ".eterna").exists()


@pytest.mark.parametrize(("args", "message"), [(("lab",), "lab"), (("../x",), "must match"), ((), "usage")])
def test_refuses_bad_environment(layout: tuple[Path, dict[str, str]], args: tuple[str, ...], message: str) -> None:
    root, env = layout
    result = _run(env, *args)
    assert result.returncode != 0
    assert message in result.stderr
    assert not list(root.rglob("vault.yml"))
    assert not (Path(env["HOME"]) / ".eterna").exists()


def test_refuses_unknown_inventory(layout: tuple[Path, dict[str, str]]) -> None:
    _, env = layout
    result = _run(env, "prodution")
    assert result.returncode != 0
    assert "does not exist" in result.stderr
