"""Shared settings and fixtures of the unit tests."""

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from module_loader import load_file


@pytest.fixture(scope="session")
def backup_tool() -> ModuleType:
    """The backup role's tool (roles/backup/files/eterna_backup.py) imported as a module."""
    return load_file("roles/backup/files/eterna_backup.py", "eterna_backup")


@pytest.fixture(scope="session")
def s3admin() -> ModuleType:
    """The SeaweedFS role's bucket helper (roles/seaweedfs/files/s3admin.py) imported as a module."""
    return load_file("roles/seaweedfs/files/s3admin.py", "s3admin")


@pytest.fixture(scope="module")
def shared_fact_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One Ansible fact cache for every playbook run of the requesting module.

    The preflight and inventory tests make every host this machine (``ansible_connection=local``), so the facts the
    first run gathers hold for the later ones (``gathering = smart``): a production preflight otherwise gathers 13
    hosts' facts, about 24 s, each time. Set as ``ANSIBLE_CACHE_PLUGIN_CONNECTION`` for the module's duration (one
    cache per xdist worker and module).

    :param tmp_path_factory: pytest's factory of temporary directories.
    :returns: (yields) the cache directory, removed with pytest's other temporary directories.
    :raises: nothing of its own; a failed ``mktemp`` propagates.
    """
    path = tmp_path_factory.mktemp("facts")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANSIBLE_CACHE_PLUGIN_CONNECTION", str(path))
        yield path


@pytest.fixture(autouse=True)
def _linear_strategy_for_local_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the tests' playbooks with Ansible's own ``linear`` strategy.

    They use the ``local`` connection on the controller. Under Mitogen (ansible.cfg's ``mitogen_linear``) a
    ``become: true`` play starts its interpreter through ``sudo`` even when the controller already runs as root,
    and a fresh CI machine has no sudo. The checks under test (preflight, argument specs, inventories) do not
    depend on the strategy; Mitogen itself is exercised by the Molecule scenarios over the docker connection.
    """
    monkeypatch.setenv("ANSIBLE_STRATEGY", "linear")
