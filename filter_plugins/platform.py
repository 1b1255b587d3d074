"""Facts about the platform's hosts, worked out in one place.

``private_address`` is the address other hosts of the platform reach a host on. Every role that names a peer
(scrape targets, firewall sources, replication and backup endpoints) reads it through this filter, so the order of
preference is written once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


def private_address(host: Any, hostvars: Mapping[str, Any]) -> str:
    """The address the platform's other hosts reach ``host`` on.

    In order: the inventory's ``eterna_private_ip`` (required where hosts have several networks), the default IPv4
    address from the host's gathered facts, ``ansible_host``, and the inventory name itself (resolved by DNS).

    :param host: an inventory host name.
    :param hostvars: Ansible's ``hostvars``.
    :returns: an IPv4 or IPv6 address, or a DNS name, without brackets.
    :raises AnsibleFilterError: when ``host`` is not a non-empty string or is not in the inventory.
    """
    if not isinstance(host, str) or not host:
        raise AnsibleFilterError(f"private_address: host must be an inventory host name, got {host!r}")
    if host not in hostvars:
        raise AnsibleFilterError(f"private_address: {host!r} is not a host of the inventory")
    hv = hostvars[host]
    explicit = hv.get("eterna_private_ip")
    if explicit:
        return str(explicit)
    facts = hv.get("ansible_facts") or {}
    address = (facts.get("default_ipv4") or {}).get("address")
    if address:
        return str(address)
    return str(hv.get("ansible_host") or host)


def private_addresses(hosts: Iterable[str], hostvars: Mapping[str, Any]) -> dict[str, str]:
    """``{host: private_address(host)}`` for each of ``hosts``; errors as :func:`private_address`."""
    return {host: private_address(host, hostvars) for host in hosts}


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Any]:
        return {"private_address": private_address, "private_addresses": private_addresses}
