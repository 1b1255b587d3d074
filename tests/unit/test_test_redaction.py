"""The scenarios' pytest hook (molecule/conftest.py) keeps secrets the tests derived out of failure reports: run a
failing test that puts a derived password into its assertion message and its captured output, and read pytest's
whole terminal output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
MASTER_KEY = "k" * 64

FAILING_TEST = f'''
from eterna_testinfra import secrets


def test_a_command_with_a_password_fails():
    password = secrets().derive_secret("{MASTER_KEY}", "rabbitmq/admin")
    print("captured:", password)
    assert False, f"curl -u admin:{{password}} http://127.0.0.1:15672/api failed with the key {MASTER_KEY}"
'''


def test_failure_output_carries_no_derived_secret(tmp_path):
    secrets = __import__("module_loader").load_file("filter_plugins/secrets.py", "eterna_secrets_redaction")
    password = secrets.derive_secret(MASTER_KEY, "rabbitmq/admin")
    (tmp_path / "test_leak.py").write_text(FAILING_TEST)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "molecule")}
    env.pop("MOLECULE_INVENTORY_FILE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-rA", "-c", os.devnull,
         "--rootdir", str(tmp_path), str(tmp_path / "test_leak.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 1, output  # the test ran and failed
    assert "test_a_command_with_a_password_fails" in output and "curl -u admin:<redacted>" in output, output
    assert "captured: <redacted>" in output, output
    assert password not in output and MASTER_KEY not in output
