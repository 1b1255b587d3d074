"""The ``mitogen_linear`` strategy, loaded from the installed Mitogen package, with the plugins loaded before the forks.

Ansible finds strategy plugins by file path (``strategy_plugins`` in ansible.cfg), while Mitogen is a pip
package whose path depends on the virtualenv's Python version. This file re-exports Mitogen's own plugin
so ansible.cfg can name a path inside the repository. Mitogen keeps one Python interpreter per host
and sends modules over it, instead of a new ``docker exec``/SSH round trip and a module upload per task.

Ansible forks a worker process for every task on every host, and a worker loads what it needs on first use: the
Jinja filter and test plugins (every file of them, on the first filter a task renders) and the action and lookup
plugins. The parent process never renders a filter itself, so before this change each worker loaded them again and
lost them when it exited. :func:`load_plugins_before_forking` loads them once in the parent; every worker inherits
them with its memory. Measured on the lab (docs/performance-converge.md): the base play's no-op took 25.5-27.3 s before,
20.2-20.7 s after, and its controller CPU went from 14.1-14.9 s to 9.5 s.

Mitogen also pins its processes to CPUs (``ansible_mitogen/affinity.py``, tuned on a 16-thread machine): the
connection multiplexer on CPU 0 and, on a machine with 2 or 3 CPUs, the top-level process and every worker together
on CPU 1. Our controller's work is in those workers, so on a 2-CPU machine a run used one CPU for it while the
other served the multiplexer. :func:`mitogen_cpu_pinning` keeps Mitogen's pinning only from 4 CPUs on, where it
gives the top-level process and the workers CPUs of their own (``ETERNA_MITOGEN_CPU_PINNING`` overrides it).
Measured on 2 CPUs (docs/performance-converge.md): 60 tasks (stat, skipped, assert) on the seven lab hosts took
17.9-20.2 s pinned and 12.8-15.3 s unpinned; the lab's no-op ``site.yml`` 200-212 s pinned and 153-173 s unpinned.

Turn it off for one run with ``ANSIBLE_STRATEGY=linear`` (Ansible's own setting): nothing else changes,
because the connections are named ``docker``/``ssh``, which Mitogen redirects to its transports only
while its strategy is active.

Sources: https://mitogen.networkgenomics.com/ansible_detailed.html (installation, strategy_plugins);
Mitogen's commits 152effc and bd4b04a (the pinning scheme and its figures: 8 cores, 64 containers);
ansible-core's ``ansible/plugins/loader.py`` (``Jinja2Loader._ensure_non_collection_wrappers``, ``PluginLoader.all``).
"""

from __future__ import annotations

import os
from typing import Any

import ansible_mitogen.affinity
from ansible.errors import AnsibleError
from ansible.plugins.loader import action_loader, filter_loader, lookup_loader, test_loader
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as MitogenLinearStrategy

__all__ = ["StrategyModule", "load_plugins_before_forking", "mitogen_cpu_pinning"]

#: Overrides :func:`mitogen_cpu_pinning`'s choice: ``auto`` (the default), ``on`` or ``off``.
CPU_PINNING_SETTING = "ETERNA_MITOGEN_CPU_PINNING"

_LOADED = False


def load_plugins_before_forking() -> None:
    """Load the Jinja filter and test plugins and import the action and lookup plugins in this process, once.

    Collection plugins named by their full name (``community.general.keep_keys``) are still loaded on first use.

    :returns: None. Takes about 0.36 s and 471 modules on the first call here (3 Dec 2026), nothing afterwards.
    :raises: nothing of its own: a plugin file that fails to load is skipped by Ansible's loader (with a message at
        -vvvv), as it would be in a worker.
    """
    global _LOADED  # noqa: PLW0603 - one load per controller process, whatever the number of plays
    if _LOADED:
        return
    for jinja_loader in (filter_loader, test_loader):
        for _ in jinja_loader.all():
            pass
    for plugin_loader in (action_loader, lookup_loader):
        for _ in plugin_loader.all(class_only=True):
            pass
    _LOADED = True


def mitogen_cpu_pinning(cpu_count: int, setting: str | None) -> bool:
    """Whether to keep Mitogen's CPU pinning (its ``FixedPolicy``) for this controller.

    With fewer than 4 CPUs Mitogen reserves CPU 0 for its multiplexer and pins the top-level process and every
    worker to the rest: on 2 CPUs, all of them to CPU 1. From 4 CPUs on they get CPUs of their own.

    :param cpu_count: the CPUs Mitogen counts (``multiprocessing.cpu_count()``, as its policy does).
    :param setting: the value of ``ETERNA_MITOGEN_CPU_PINNING``: None, ``""`` or ``auto`` (pin from 4 CPUs on), ``on``
        (always Mitogen's pinning), ``off`` (never; the kernel schedules every process on any CPU).
    :returns: True to keep Mitogen's pinning, False to replace it by no pinning.
    :raises AnsibleError: for any other setting, naming the variable.
    """
    choice = (setting or "auto").strip().lower()
    if choice == "auto":
        return cpu_count >= 4
    if choice in ("on", "off"):
        return choice == "on"
    raise AnsibleError(f"{CPU_PINNING_SETTING} must be auto, on or off, not {setting!r}")


def apply_cpu_pinning_setting() -> None:
    """Replace Mitogen's CPU pinning by none when :func:`mitogen_cpu_pinning` says so.

    Must run before Mitogen starts its multiplexer (the first play's ``run``): its processes read the policy then.

    :returns: None.
    :raises AnsibleError: from :func:`mitogen_cpu_pinning` for a bad ``ETERNA_MITOGEN_CPU_PINNING``.
    """
    policy = ansible_mitogen.affinity.policy
    # Checked on every platform, so a bad value stops the run even where Mitogen pins nothing.
    keep = mitogen_cpu_pinning(getattr(policy, "cpu_count", os.cpu_count() or 1), os.environ.get(CPU_PINNING_SETTING))
    if isinstance(policy, ansible_mitogen.affinity.FixedPolicy) and not keep:
        ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()


class StrategyModule(MitogenLinearStrategy):
    """Mitogen's linear strategy, after :func:`apply_cpu_pinning_setting` and :func:`load_plugins_before_forking`."""

    def run(self, iterator: Any, play_context: Any) -> Any:
        """Run one play (Ansible calls it once per play).

        :param iterator: Ansible's PlayIterator of the play.
        :param play_context: Ansible's PlayContext.
        :returns: Ansible's result code of the play (an int, TaskQueueManager.RUN_*).
        :raises AnsibleError: for a bad ``ETERNA_MITOGEN_CPU_PINNING``; and whatever Mitogen's strategy raises.
        """
        apply_cpu_pinning_setting()
        load_plugins_before_forking()
        return super().run(iterator, play_context)
