"""Prometheus scrape configurations built as data from the inventory.

The prometheus role renders ``prometheus.yml`` with ``to_nice_yaml`` from a mapping; these filters build its
``scrape_configs`` entries (one per exporter job over an inventory group, and blackbox probe jobs), with targets
spelled ``host:port`` and IPv6 addresses in brackets as Go's ``net.SplitHostPort`` requires. Field names follow
Prometheus's configuration reference (``scrape_config``, ``static_config``, ``relabel_config``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


def _endpoint(address: str, port: int) -> str:
    try:
        bracket = ipaddress.ip_address(address).version == 6
    except ValueError:
        bracket = False
    return f"[{address}]:{port}" if bracket else f"{address}:{port}"


def prometheus_static_configs(
    hosts: Iterable[str], port: int, addresses: Mapping[str, str], ports: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """One ``static_config`` per host (sorted), labelled with the inventory name.

    :param hosts: inventory host names.
    :param port: the exporter's TCP port.
    :param addresses: ``{host: address}`` (see the ``private_addresses`` filter).
    :param ports: optional ``{host: port}`` for hosts whose exporter listens elsewhere than ``port``.
    :returns: ``[{"targets": ["<address>:<port>"], "labels": {"host": h, "instance": "<h>:<port>"}}, ...]``;
        the ``instance`` label carries the inventory name so alerts name hosts, not addresses.
    :raises AnsibleFilterError: when a host has no address in ``addresses``.
    """
    configs = []
    for host in sorted(hosts):
        if host not in addresses:
            raise AnsibleFilterError(f"prometheus_static_configs: no address for {host!r}")
        host_port = int((ports or {}).get(host, port))
        configs.append(
            {
                "targets": [_endpoint(addresses[host], host_port)],
                "labels": {"host": host, "instance": f"{host}:{host_port}"},
            }
        )
    return configs


def prometheus_target_ports(
    hosts: Iterable[str], variable: str, hostvars: Mapping[str, Mapping[str, Any]]
) -> dict[str, int]:
    """The ports that hosts' inventories give an exporter's listener variable, so a scrape follows an override.

    The listener's role reads ``variable`` on the target host (``postgres_exporter_port``, or an address such as
    ``nginx_exporter_listen_address: ":9113"``); the prometheus role runs in another play and sees only what the
    inventory sets (``hostvars``), never the other role's defaults. Hosts that do not set it are left out: the job's
    own ``port`` (kept equal to the role's default by a unit test) applies to them.

    :param hosts: inventory host names.
    :param variable: the listener's variable name.
    :param hostvars: Ansible's ``hostvars``.
    :returns: ``{host: port}`` for the hosts whose inventory sets ``variable``.
    :raises AnsibleFilterError: when a value holds no port between 1 and 65535 (naming the host and variable).
    """
    ports = {}
    for host in hosts:
        values = hostvars.get(host, {})
        if variable not in values:
            continue
        text = str(values[variable]).rpartition(":")[2]  # 9187, "9187" or an address ":9113" / "[::1]:9113"
        if not text.isdigit() or not 1 <= int(text) <= 65535:
            raise AnsibleFilterError(
                f"prometheus_target_ports: {variable} of {host} holds no port between 1 and 65535 "
                f"(got {values[variable]!r})"
            )
        ports[host] = int(text)
    return ports


def prometheus_scrape_configs(
    jobs: Iterable[Mapping[str, Any]],
    groups: Mapping[str, list[str]],
    addresses: Mapping[str, str],
    ca_file: str,
    hostvars: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """``scrape_configs`` entries for exporter jobs over inventory groups.

    :param jobs: ``prometheus_scrape_jobs`` items ``{name, group, port, port_var?, path?, scheme?, params?}``; group
        ``all`` means every host. A job whose group is absent or empty yields nothing. ``port_var`` names the
        listener's variable: a host whose inventory sets it is scraped on that port (:func:`prometheus_target_ports`).
    :param groups: Ansible's ``groups``.
    :param addresses: ``{host: address}`` for every host the jobs name.
    :param ca_file: CA bundle path on the Prometheus host, for ``https`` jobs.
    :param hostvars: Ansible's ``hostvars``, read for the jobs' ``port_var``; without it every target uses ``port``.
    :returns: the scrape configurations, in the jobs' order.
    :raises AnsibleFilterError: as :func:`prometheus_static_configs` and :func:`prometheus_target_ports`.
    """
    configs = []
    for job in jobs:
        members = groups.get("all", []) if job["group"] == "all" else groups.get(job["group"], [])
        if not members:
            continue
        scheme = job.get("scheme", "http")
        config: dict[str, Any] = {
            "job_name": job["name"],
            "scheme": scheme,
            "metrics_path": job.get("path", "/metrics"),
        }
        if job.get("params"):
            config["params"] = dict(job["params"])
        if scheme == "https":
            config["tls_config"] = {"ca_file": ca_file}
        ports = prometheus_target_ports(members, job["port_var"], hostvars) if job.get("port_var") and hostvars else {}
        config["static_configs"] = prometheus_static_configs(members, job["port"], addresses, ports)
        configs.append(config)
    return configs


def prometheus_probe_config(
    name: str, module: str, targets: Iterable[Mapping[str, str]], blackbox_address: str
) -> dict[str, Any]:
    """A blackbox exporter probe job: each target URL becomes ``?target=``, scraped through the exporter.

    :param name: the job name.
    :param module: the blackbox module (``http_ready``, ``tls_connect``...).
    :param targets: ``[{"url": ..., "host": ...}]``; ``host`` becomes the ``host`` label.
    :param blackbox_address: the exporter's ``host:port``.
    :returns: the scrape configuration, with ``instance`` relabelled to the probed URL.
    """
    return {
        "job_name": name,
        "metrics_path": "/probe",
        "params": {"module": [module]},
        "static_configs": [{"targets": [t["url"]], "labels": {"host": t["host"]}} for t in targets],
        "relabel_configs": [
            {"source_labels": ["__address__"], "target_label": "__param_target"},
            {"source_labels": ["__param_target"], "target_label": "instance"},
            {"target_label": "__address__", "replacement": blackbox_address},
        ],
    }


def prometheus_probe_configs(probes: Iterable[Mapping[str, Any]], blackbox_address: str) -> list[dict[str, Any]]:
    """Probe jobs for ``[{name, module, targets}]``; probes without targets are left out."""
    return [
        prometheus_probe_config(p["name"], p["module"], p["targets"], blackbox_address) for p in probes if p["targets"]
    ]


def prometheus_url_targets(
    hosts: Iterable[str], addresses: Mapping[str, str], scheme: str, port: int, path: str
) -> list[dict[str, str]]:
    """Probe targets ``{"url": "<scheme>://<address>:<port><path>", "host": h}`` for each host (sorted)."""
    return [{"url": f"{scheme}://{_endpoint(addresses[h], int(port))}{path}", "host": h} for h in sorted(hosts)]


def prometheus_tls_targets(endpoints: Iterable[str]) -> list[dict[str, str]]:
    """Probe targets for ``host:port`` endpoints (IPv6 in brackets); the ``host`` label is the host without port."""
    return [{"url": e, "host": e.rsplit(":", 1)[0].strip("[]")} for e in endpoints]


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Any]:
        return {
            "prometheus_static_configs": prometheus_static_configs,
            "prometheus_scrape_configs": prometheus_scrape_configs,
            "prometheus_probe_config": prometheus_probe_config,
            "prometheus_probe_configs": prometheus_probe_configs,
            "prometheus_url_targets": prometheus_url_targets,
            "prometheus_tls_targets": prometheus_tls_targets,
        }
