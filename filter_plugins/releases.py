"""The Debian releases the collection supports, and what a role reads for the release a host runs.

One table (``SUPPORTED_RELEASES``) names the supported releases for every role; a role's preflight asks
``unsupported_release`` and fails with the message it returns. A role whose packages differ between releases keeps
a table keyed by the major version in its ``vars/main.yml`` (``_<role>_releases``) and reads its row with
``for_release``; tests/unit/test_releases.py checks that every such table has exactly the supported releases.

Sources: Debian's release table (https://www.debian.org/releases/): 12 "bookworm" (oldstable since August 2025),
13 "trixie" (stable since 9 August 2025).

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

# Major version -> codename.
SUPPORTED_RELEASES: dict[str, str] = {"12": "bookworm", "13": "trixie"}


def _major(facts: Mapping[str, Any] | None) -> str:
    return str((facts or {}).get("distribution_major_version", ""))


def unsupported_release(facts: Mapping[str, Any] | None, role: str) -> str:
    """Say why a host's release is refused, or return '' when the collection supports it.

    :param facts: the host's ``ansible_facts`` (``distribution``, ``distribution_major_version``,
        ``distribution_release``); empty or None when facts were not gathered.
    :param role: the role's name, which starts the message.
    :returns: '' for Debian 12 or 13; otherwise one sentence naming the host's release and the supported ones.
    :raises: nothing.
    """
    facts = facts or {}
    supported = ", ".join(f"Debian {v} ({n})" for v, n in SUPPORTED_RELEASES.items())
    if "distribution" not in facts:
        return f"{role}: the host's facts were not gathered, so its release is unknown; supported: {supported}"
    if facts["distribution"] == "Debian" and _major(facts) in SUPPORTED_RELEASES:
        return ""
    found = f"{facts['distribution']} {_major(facts)} ({facts.get('distribution_release', '?')})"
    return f"{role}: {found} is not supported; supported: {supported}"


def for_release(table: Mapping[str, Mapping[str, Any]], facts: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return a role's row for the host's release: ``table[major version]``, or {} on another release.

    :param table: major version ('12', '13') -> that release's values (a role's ``_<role>_releases``).
    :param facts: the host's ``ansible_facts``; empty or None when facts were not gathered.
    :returns: a copy of the row; {} when the release has none (the role's preflight refuses that release).
    :raises: nothing.
    """
    return dict(table.get(_major(facts), {}))


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"unsupported_release": unsupported_release, "for_release": for_release}
