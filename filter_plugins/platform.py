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


def backup_sources(
    hosts: Iterable[str], hostvars: Mapping[str, Any], files_enabled: bool, export_groups: Mapping[str, str]
) -> list[dict[str, Any]]:
    """The hosts the backup host pulls nightly exports from over SSH, as the backup tool's settings list them.

    :param hosts: inventory host names, in the order the tool visits them.
    :param hostvars: Ansible's ``hostvars``.
    :param files_enabled: whether every host exports its configuration files (``backup_files_enabled``).
    :param export_groups: ``{inventory group: export item}``: a host in the group exports that item as well.
    :returns: ``[{name, address, port, items}]``: the host's private address (:func:`private_address`), its SSH port
        (``base_ssh_port``, 22 when unset) and its items (``config`` first, then the groups' items in the order of
        the host's sorted group names).
    :raises AnsibleFilterError: as :func:`private_address`; or when a host's SSH port is not a whole number.
    """
    sources = []
    for host in hosts:
        address = private_address(host, hostvars)
        port = hostvars[host].get("base_ssh_port", 22)
        if isinstance(port, bool) or not str(port).strip().isdigit():
            raise AnsibleFilterError(f"backup_sources: {host}'s base_ssh_port must be a port number, got {port!r}")
        groups = sorted(hostvars[host].get("group_names") or [])
        items = (["config"] if files_enabled else []) + [export_groups[g] for g in groups if g in export_groups]
        sources.append({"name": host, "address": address, "port": int(str(port).strip()), "items": items})
    return sources


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Any]:
        return {
            "private_address": private_address,
            "private_addresses": private_addresses,
            "backup_sources": backup_sources,
        }
