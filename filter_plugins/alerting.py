"""Alertmanager's routing built from the escalation policy (``prometheus_alertmanager_escalation``).

One level per severity, most urgent first: ``{severity, repeat_interval, email_to, webhook_urls}`` plus the
on-call facts the documentation shows (``response_time``, ``calls``). Each level becomes a route matching
``severity="<level>"`` and a receiver of the same name; alerts of any other severity stay with the root receiver.

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_DURATION_RE = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
# Receiver names the template uses itself.
RESERVED_NAMES = frozenset({"team"})


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise AnsibleFilterError(f"{what} must be a list of strings, got {type(value).__name__}")
    if not all(isinstance(item, str) and item for item in value):
        raise AnsibleFilterError(f"{what} must hold non-empty strings only")
    return list(value)


def escalation_levels(escalation: Any) -> list[dict[str, Any]]:
    """The escalation policy checked: a non-empty list of levels with unique, well-formed severities."""
    if isinstance(escalation, (str, Mapping)) or not isinstance(escalation, Sequence) or not escalation:
        raise AnsibleFilterError("prometheus_alertmanager_escalation must be a non-empty list of levels")
    levels = []
    seen: set[str] = set()
    for index, level in enumerate(escalation):
        if not isinstance(level, Mapping):
            raise AnsibleFilterError(f"escalation level {index} must be a mapping")
        severity = level.get("severity")
        if not isinstance(severity, str) or not _NAME_RE.match(severity) or severity in RESERVED_NAMES:
            raise AnsibleFilterError(
                f"escalation level {index}: severity {severity!r} must match [a-z][a-z0-9_]*, not 'team'"
            )
        if severity in seen:
            raise AnsibleFilterError(f"escalation level {index}: severity {severity!r} appears twice")
        seen.add(severity)
        repeat = level.get("repeat_interval")
        if repeat is not None and (not isinstance(repeat, str) or not _DURATION_RE.match(repeat)):
            raise AnsibleFilterError(
                f"escalation level {severity}: repeat_interval {repeat!r} is not a duration (e.g. 1h)"
            )
        levels.append(
            {
                "severity": severity,
                "repeat_interval": repeat,
                "email_to": _strings(level.get("email_to"), f"escalation level {severity}: email_to"),
                "webhook_urls": _strings(level.get("webhook_urls"), f"escalation level {severity}: webhook_urls"),
            }
        )
    return levels


def alertmanager_receiver(name: str, email_to: Any = None, webhook_urls: Any = None) -> dict[str, Any]:
    """One receiver: an email config per unique address and a webhook config per unique URL, resolved ones too."""
    receiver: dict[str, Any] = {"name": name}
    emails = list(dict.fromkeys(_strings(email_to, f"receiver {name}: email_to")))
    urls = list(dict.fromkeys(_strings(webhook_urls, f"receiver {name}: webhook_urls")))
    if emails:
        receiver["email_configs"] = [{"to": address, "send_resolved": True} for address in emails]
    if urls:
        receiver["webhook_configs"] = [{"url": url, "send_resolved": True} for url in urls]
    return receiver


def alertmanager_routes(escalation: Any) -> list[dict[str, Any]]:
    """A child route per level: its severity to the receiver of the same name, with the level's repeat interval."""
    routes = []
    for level in escalation_levels(escalation):
        route: dict[str, Any] = {"receiver": level["severity"], "matchers": [f'severity="{level["severity"]}"']}
        if level["repeat_interval"]:
            route["repeat_interval"] = level["repeat_interval"]
        routes.append(route)
    return routes


def alertmanager_receivers(escalation: Any) -> list[dict[str, Any]]:
    """The receiver of every level."""
    return [
        alertmanager_receiver(level["severity"], level["email_to"], level["webhook_urls"])
        for level in escalation_levels(escalation)
    ]


def alertmanager_emails(escalation: Any) -> list[str]:
    """Every email address of the policy (the template needs SMTP settings when there is one)."""
    return list(dict.fromkeys(address for level in escalation_levels(escalation) for address in level["email_to"]))


def alertmanager_webhook_urls(escalation: Any) -> list[str]:
    """Every webhook URL of the policy (the preflight checks they are http(s))."""
    return list(dict.fromkeys(url for level in escalation_levels(escalation) for url in level["webhook_urls"]))


class FilterModule:
    """Alertmanager routing filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "alertmanager_receiver": alertmanager_receiver,
            "alertmanager_routes": alertmanager_routes,
            "alertmanager_receivers": alertmanager_receivers,
            "alertmanager_emails": alertmanager_emails,
            "alertmanager_webhook_urls": alertmanager_webhook_urls,
        }
