"""The ``mitogen_linear`` strategy, loaded from the installed Mitogen package.

Ansible finds strategy plugins by file path (``strategy_plugins`` in ansible.cfg), while Mitogen is a pip
package whose path depends on the virtualenv's Python version. This file re-exports Mitogen's own plugin
so ansible.cfg can name a path inside the repository. Mitogen keeps one Python interpreter per host
and sends modules over it, instead of a new ``docker exec``/SSH round trip and a module upload per task.

Turn it off for one run with ``ANSIBLE_STRATEGY=linear`` (Ansible's own setting): nothing else changes,
because the connections are named ``docker``/``ssh``, which Mitogen redirects to its transports only
while its strategy is active.

Source: https://mitogen.networkgenomics.com/ansible_detailed.html (installation, strategy_plugins).
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]
