"""Shared settings of the unit tests that run ansible-playbook on the controller."""

import pytest


@pytest.fixture(autouse=True)
def _linear_strategy_for_local_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the tests' playbooks with Ansible's own ``linear`` strategy.

    They use the ``local`` connection on the controller. Under Mitogen (ansible.cfg's ``mitogen_linear``) a
    ``become: true`` play starts its interpreter through ``sudo`` even when the controller already runs as root,
    and a fresh CI machine has no sudo. The checks under test (preflight, argument specs, inventories) do not
    depend on the strategy; Mitogen itself is exercised by the Molecule scenarios over the docker connection.
    """
    monkeypatch.setenv("ANSIBLE_STRATEGY", "linear")
