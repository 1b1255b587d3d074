"""plugins/strategy/mitogen_linear.py: Mitogen's CPU pinning only where it gives the workers CPUs of their own."""

from __future__ import annotations

import os

import ansible_mitogen.affinity
import pytest
from ansible.errors import AnsibleError
from module_loader import load_file

# The strategy plugin is a file Ansible loads by path, not a package.
mitogen_linear = load_file("plugins/strategy/mitogen_linear.py", "mitogen_linear")


@pytest.mark.parametrize(
    ("cpus", "setting", "keep"),
    [
        (2, None, False),
        (2, "", False),
        (3, "auto", False),
        (4, None, True),
        (16, "auto", True),
        (2, "on", True),
        (2, " ON ", True),
        (16, "off", False),
    ],
)
def test_the_choice_follows_the_cpu_count_unless_overridden(cpus, setting, keep):
    assert mitogen_linear.mitogen_cpu_pinning(cpus, setting) is keep


def test_a_bad_setting_is_refused_naming_the_variable():
    with pytest.raises(AnsibleError, match=r"ETERNA_MITOGEN_CPU_PINNING must be auto, on or off, not 'yes'"):
        mitogen_linear.mitogen_cpu_pinning(2, "yes")


def worker_cpus() -> set[int]:
    """Fork a child that takes Mitogen's current worker policy, as its WorkerProcess.run does, and report its CPUs.

    :returns: the CPU numbers the child may run on (``os.sched_getaffinity``) after ``assign_worker()``.
    :raises AssertionError: when the child fails.
    """
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            ansible_mitogen.affinity.policy.assign_worker()
            os.write(write, " ".join(map(str, sorted(os.sched_getaffinity(0)))).encode())
        finally:
            os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    out = os.read(read, 4096).decode()
    os.close(read)
    assert status == 0 and out, "the child did not report its CPUs"
    return {int(cpu) for cpu in out.split()}


@pytest.fixture
def two_cpu_policy(monkeypatch):
    """Mitogen's Linux policy as it is built on a 2-CPU controller."""
    assert len(os.sched_getaffinity(0)) >= 2, "this test pins to CPU 1: it needs a machine with 2 CPUs or more"
    monkeypatch.setattr(ansible_mitogen.affinity, "policy", ansible_mitogen.affinity.LinuxPolicy(cpu_count=2))
    monkeypatch.delenv(mitogen_linear.CPU_PINNING_SETTING, raising=False)


def test_on_two_cpus_mitogen_would_pin_every_worker_to_cpu_1(two_cpu_policy, monkeypatch):
    monkeypatch.setenv(mitogen_linear.CPU_PINNING_SETTING, "on")
    mitogen_linear.apply_cpu_pinning_setting()
    assert worker_cpus() == {1}


def test_on_two_cpus_the_strategy_lets_the_workers_run_on_any_cpu(two_cpu_policy):
    mitogen_linear.apply_cpu_pinning_setting()
    assert type(ansible_mitogen.affinity.policy) is ansible_mitogen.affinity.Policy
    assert worker_cpus() == os.sched_getaffinity(0)


def test_from_four_cpus_mitogen_keeps_its_own_pinning(monkeypatch):
    big = ansible_mitogen.affinity.LinuxPolicy(cpu_count=16)
    monkeypatch.setattr(ansible_mitogen.affinity, "policy", big)
    monkeypatch.delenv(mitogen_linear.CPU_PINNING_SETTING, raising=False)
    mitogen_linear.apply_cpu_pinning_setting()
    assert ansible_mitogen.affinity.policy is big
