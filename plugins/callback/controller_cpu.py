"""The ``controller_cpu`` callback: where the controller's CPU went in one ``ansible-playbook`` run.

Ansible's main process dispatches every task on every host one after the other (it computes the task's variables,
forks a worker, reads its result), while the forked workers run side by side. A no-op run that takes a while is
either waiting on the hosts or burning CPU here; this callback tells which, with the kernel's own accounting
(``getrusage(2)``):

- the main process: user and system CPU seconds and its minor page faults. Each fork makes the main process's
  memory copy-on-write, so the pages it writes afterwards fault and are copied again: with thousands of forks this
  system time is a large share of the total.
- its finished children: the workers (and Mitogen's connection multiplexer once it has exited), the same figures.

It prints one line at the end of the run, ``controller CPU: ...``; it changes nothing. ``benchmarks/lab_converge.sh``
enables it (``ANSIBLE_CALLBACK_PLUGINS=plugins/callback``, ``ANSIBLE_CALLBACKS_ENABLED=controller_cpu``).

Sources: getrusage(2) (``RUSAGE_SELF``, ``RUSAGE_CHILDREN``: children that have terminated and been waited for);
ansible-core's ``ansible/plugins/strategy/linear.py`` (the main process's loop over hosts and tasks).
"""

from __future__ import annotations

import resource
import time
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: controller_cpu
type: aggregate
short_description: Print the CPU time of Ansible's main process and of its workers at the end of a run
description:
  - One line at the end of the run with the wall time since the callback loaded, and the user and system CPU seconds
    and minor page faults of the main process and of its finished children (getrusage).
requirements:
  - enabled with ANSIBLE_CALLBACKS_ENABLED=controller_cpu (or callbacks_enabled in ansible.cfg)
"""

__all__ = ["CallbackModule", "format_usage"]


def format_usage(wall: float, main: Any, children: Any) -> str:
    """Format the run's figures as one line.

    :param wall: seconds since the callback loaded (a float, monotonic clock).
    :param main: ``resource.getrusage(resource.RUSAGE_SELF)`` of the main process (``ru_utime``/``ru_stime`` in
        seconds, ``ru_minflt`` a count).
    :param children: ``resource.getrusage(resource.RUSAGE_CHILDREN)``, the same fields for the finished children.
    :returns: ``controller CPU: wall 12.3 s; main process user 1.2 s, system 0.8 s, 45000 minor faults; workers
        user 3.4 s, system 2.1 s, 90000 minor faults; total 7.5 s``.
    :raises AttributeError: when ``main`` or ``children`` lacks one of those fields.
    """
    total = main.ru_utime + main.ru_stime + children.ru_utime + children.ru_stime
    return (
        f"controller CPU: wall {wall:.1f} s; main process user {main.ru_utime:.1f} s, system {main.ru_stime:.1f} s, "
        f"{main.ru_minflt} minor faults; workers user {children.ru_utime:.1f} s, system {children.ru_stime:.1f} s, "
        f"{children.ru_minflt} minor faults; total {total:.1f} s"
    )


class CallbackModule(CallbackBase):
    """Print :func:`format_usage` of this run when the playbook ends."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "controller_cpu"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        """Start the wall clock (Ansible loads the callback before the first play)."""
        super().__init__()
        self._started = time.monotonic()

    def v2_playbook_on_stats(self, stats: Any) -> None:
        """Print the figures once the run's recap is known.

        :param stats: Ansible's AggregateStats (unused).
        :returns: None.
        """
        self._display.display(
            format_usage(
                time.monotonic() - self._started,
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
        )
