"""Shared settings and fixtures of the unit tests."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_file(relative: str, name: str) -> ModuleType:
    """Import the Python file at ``relative`` (from the repository root) as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, ROOT / relative)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def backup_tool() -> ModuleType:
    """The backup role's tool (roles/backup/files/eterna_backup.py) imported as a module."""
    return load_file("roles/backup/files/eterna_backup.py", "eterna_backup")


@pytest.fixture(scope="session")
def s3admin() -> ModuleType:
    """The SeaweedFS role's bucket helper (roles/seaweedfs/files/s3admin.py) imported as a module."""
    return load_file("roles/seaweedfs/files/s3admin.py", "s3admin")


@pytest.fixture(autouse=True)
def _linear_strategy_for_local_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the tests' playbooks with Ansible's own ``linear`` strategy.

    They use the ``local`` connection on the controller. Under Mitogen (ansible.cfg's ``mitogen_linear``) a
    ``become: true`` play starts its interpreter through ``sudo`` even when the controller already runs as root,
    and a fresh CI machine has no sudo. The checks under test (preflight, argument specs, inventories) do not
    depend on the strategy; Mitogen itself is exercised by the Molecule scenarios over the docker connection.
    """
    monkeypatch.setenv("ANSIBLE_STRATEGY", "linear")
