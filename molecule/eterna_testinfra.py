"""Shared testinfra helpers for every scenario in molecule/<scenario>/tests.

``node(name)`` returns a testinfra host for another container of the running scenario, so a test
acts from a client host against a server host. ``journal(host, units)`` reads recent journal lines.
"""

from __future__ import annotations

import functools
import os

import testinfra


@functools.cache
def node(name: str):
    """A testinfra host for container ``name`` of the running scenario."""
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={inventory}")


def journal(host_name: str, units: list[str]) -> str:
    """The last journal lines of ``units`` on ``host_name`` (every failed unit when empty)."""
    host = node(host_name)
    if not units:
        units = host.run("systemctl --failed --no-legend --plain | awk '{print $1}'").stdout.split()
    out = []
    for unit in units:
        res = host.run(f"journalctl -u {unit} -n 60 --no-pager")
        out.append(f"--- {host_name}: journalctl -u {unit} ---\n{res.stdout}{res.stderr}")
    return "\n".join(out)
