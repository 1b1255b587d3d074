"""playbooks/preflight.yml refuses each bad production input before any change, naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "9c1e7a54d2b08f36e4a1c97d05b3f8622d4e9a1f7c03b5e8a6d2f4c19b07e358"  # test-only
LAB_KEY = "ebed5e804fd6935305f7e91c8f1496f00bf032f27a4bb0df323ecf182ee85fcc"


def run_preflight(tmp_path: Path, **group_vars) -> subprocess.CompletedProcess[str]:
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": {"h1": {"ansible_connection": "local"}}}}))
    (inv / "group_vars" / "all" / "main.yml").write_text(yaml.safe_dump(group_vars))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["ANSIBLE_CACHE_PLUGIN_CONNECTION"] = str(tmp_path / "facts")
    ansible = Path(sys.executable).with_name("ansible-playbook")
    return subprocess.run(
        [str(ansible), "-i", str(inv / "hosts.yml"), str(ROOT / "playbooks" / "preflight.yml")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_good_production_inventory_passes(tmp_path: Path) -> None:
    res = run_preflight(tmp_path, eterna_env="production", eterna_master_key=GOOD_KEY, app_debug=False)
    assert res.returncode == 0, res.stdout + res.stderr


def test_lab_accepts_the_lab_key(tmp_path: Path) -> None:
    res = run_preflight(tmp_path, eterna_env="lab", eterna_master_key=LAB_KEY)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"eterna_master_key": ""}, "eterna_master_key is missing"),
        ({"eterna_master_key": "{{ vault_eterna_master_key }}"}, "eterna_master_key is missing"),
        ({"eterna_master_key": "ab" * 16}, "eterna_master_key is too short"),
        ({"eterna_master_key": LAB_KEY}, "eterna_master_key is a public key"),
        ({"eterna_master_key": GOOD_KEY, "minio_root_password": "minioadmin"}, "minio_root_password hold"),
        ({"eterna_master_key": GOOD_KEY, "grafana_admin_password": "changeme"}, "grafana_admin_password hold"),
        ({"eterna_master_key": GOOD_KEY, "app_s3_secret_key": "secret"}, "app_s3_secret_key hold"),
        ({"eterna_master_key": GOOD_KEY, "app_debug": True}, "app_debug is true"),
    ],
)
def test_production_refuses(tmp_path: Path, extra: dict, expected: str) -> None:
    res = run_preflight(tmp_path, eterna_env="production", **extra)
    assert res.returncode != 0
    assert expected in res.stdout, res.stdout


def test_staging_is_as_strict_as_production(tmp_path: Path) -> None:
    res = run_preflight(tmp_path, eterna_env="staging", eterna_master_key=LAB_KEY)
    assert res.returncode != 0
    assert "eterna_master_key is a public key" in res.stdout
