"""The sandbox of every systemd unit the collection confines, written once (issue #16 §6).

``systemd_sandbox`` renders ``[Service]`` directives: :data:`SANDBOX_BASELINE`, which every confined unit shares,
merged with the unit's own settings. Drop-ins over Debian's units and the collection's own unit files use it alike,
so a directive added to the baseline reaches every unit, and a unit's difference from it is visible as data in its
role (``vars/main.yml``). Directive meanings: systemd.exec(5) and systemd.resource-control(5).

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


# What a confined service of this collection never needs: new privileges, capabilities, writes outside the paths
# its unit names (ProtectSystem=strict), home directories, devices, kernel tunables, modules and logs, the clock,
# the hostname, namespaces, realtime scheduling, set-uid files, other ABIs and other socket families than IP and
# Unix. A unit that needs one of them says so in its settings (a value of None removes the directive).
SANDBOX_BASELINE: dict[str, str] = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectHostname": "yes",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
}

_DIRECTIVE_RE = re.compile(r"^[A-Z][A-Za-z]+$")


def _value(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, str)):
        text = str(value)
        if "\n" in text:
            raise AnsibleFilterError(f"systemd_sandbox: {name}'s value holds a line break: {text!r}")
        return text
    raise AnsibleFilterError(f"systemd_sandbox: {name} must be a string, number, boolean or list (got {value!r})")


def systemd_sandbox(settings: Mapping[str, Any] | None = None) -> str:
    """``[Service]`` sandbox directives of one unit, one ``Name=value`` per line, without a trailing line break.

    :param settings: the unit's own directives over :data:`SANDBOX_BASELINE` (``{name: value}``): a string, number
        or boolean (``yes``/``no``) replaces the baseline's value, ``None`` removes the baseline's directive, a list
        writes the directive once per item in order (``SystemCallFilter``, which systemd accumulates). Baseline
        directives come first in their order, then the unit's others in the order given.
    :returns: the directive lines joined with ``\\n``.
    :raises AnsibleFilterError: settings that are not a mapping, a name that is not a systemd directive name
        (letters, starting with a capital), or a value with a line break or of another type.
    """
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise AnsibleFilterError(f"systemd_sandbox: the settings must be a mapping of directives (got {settings!r})")
    merged: dict[str, Any] = dict(SANDBOX_BASELINE)
    for name, value in settings.items():
        if not isinstance(name, str) or not _DIRECTIVE_RE.match(name):
            raise AnsibleFilterError(f"systemd_sandbox: {name!r} is not a systemd directive name")
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    lines = []
    for name, value in merged.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{name}={_value(name, item)}")
    return "\n".join(lines)


class FilterModule:
    """Ansible filter plugin: the units' sandbox."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"systemd_sandbox": systemd_sandbox}
