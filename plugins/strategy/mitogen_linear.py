"""The ``mitogen_linear`` strategy, loaded from the installed Mitogen package, with the plugins loaded before the forks.

Ansible finds strategy plugins by file path (``strategy_plugins`` in ansible.cfg), while Mitogen is a pip
package whose path depends on the virtualenv's Python version. This file re-exports Mitogen's own plugin
so ansible.cfg can name a path inside the repository. Mitogen keeps one Python interpreter per host
and sends modules over it, instead of a new ``docker exec``/SSH round trip and a module upload per task.

Ansible forks a worker process for every task on every host, and a worker loads what it needs on first use: the
Jinja filter and test plugins (every file of them, on the first filter a task renders) and the action and lookup
plugins. The parent process never renders a filter itself, so before this change each worker loaded them again and
lost them when it exited. :func:`load_plugins_before_forking` loads them once in the parent; every worker inherits
them with its memory. Measured on the lab (README, Performance): the base play's no-op took 25.5-27.3 s before,
20.2-20.7 s after, and its controller CPU went from 14.1-14.9 s to 9.5 s.

Turn it off for one run with ``ANSIBLE_STRATEGY=linear`` (Ansible's own setting): nothing else changes,
because the connections are named ``docker``/``ssh``, which Mitogen redirects to its transports only
while its strategy is active.

Sources: https://mitogen.networkgenomics.com/ansible_detailed.html (installation, strategy_plugins);
ansible-core's ``ansible/plugins/loader.py`` (``Jinja2Loader._ensure_non_collection_wrappers``, ``PluginLoader.all``).
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.loader import action_loader, filter_loader, lookup_loader, test_loader
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule as MitogenLinearStrategy

__all__ = ["StrategyModule", "load_plugins_before_forking"]

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


class StrategyModule(MitogenLinearStrategy):
    """Mitogen's linear strategy, run after :func:`load_plugins_before_forking`."""

    def run(self, iterator: Any, play_context: Any) -> Any:
        """Run one play (Ansible calls it once per play).

        :param iterator: Ansible's PlayIterator of the play.
        :param play_context: Ansible's PlayContext.
        :returns: Ansible's result code of the play (an int, TaskQueueManager.RUN_*).
        :raises: whatever Mitogen's strategy raises; the preload raises nothing of its own.
        """
        load_plugins_before_forking()
        return super().run(iterator, play_context)
