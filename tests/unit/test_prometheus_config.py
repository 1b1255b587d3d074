"""Prometheus's configuration as data (filter_plugins/prometheus.py) and the platform's address rule and backup
sources (filter_plugins/platform.py). The monitoring and ipv6 scenarios load the rendered file into Prometheus and check
that every target is scraped; these tests pin the shapes and the edge cases."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"eterna_filter_{name}", ROOT / "filter_plugins" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


platform = _load("platform")
prom = _load("prometheus")

HOSTVARS = {
    "explicit": {"eterna_private_ip": "10.0.0.5", "ansible_facts": {"default_ipv4": {"address": "192.0.2.5"}}},
    "facts": {"ansible_facts": {"default_ipv4": {"address": "192.0.2.6"}}, "ansible_host": "h.example"},
    "host_only": {"ansible_host": "h7.example"},
    "bare": {},
    "v6": {"eterna_private_ip": "fd24:e7e4:6::11"},
}


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("explicit", "10.0.0.5"),
        ("facts", "192.0.2.6"),
        ("host_only", "h7.example"),
        ("bare", "bare"),
        ("v6", "fd24:e7e4:6::11"),
    ],
)
def test_private_address_order_of_preference(host, expected) -> None:
    assert platform.private_address(host, HOSTVARS) == expected


@pytest.mark.parametrize("host", ["missing", "", None])
def test_private_address_refuses_unknown_hosts(host) -> None:
    with pytest.raises(AnsibleFilterError, match="private_address"):
        platform.private_address(host, HOSTVARS)


def test_private_addresses_maps_every_host() -> None:
    assert platform.private_addresses(["explicit", "v6"], HOSTVARS) == {
        "explicit": "10.0.0.5",
        "v6": "fd24:e7e4:6::11",
    }


def test_backup_sources_name_address_port_and_items() -> None:
    hostvars = {
        "data": {"eterna_private_ip": "10.0.0.7", "group_names": ["objectstore", "mq", "cache"], "base_ssh_port": "22"},
        "edge": {"ansible_host": "edge.example", "group_names": ["edge"]},
    }
    groups = {"cache": "redis", "mq": "rabbitmq"}
    assert platform.backup_sources(["data", "edge"], hostvars, True, groups) == [
        {"name": "data", "address": "10.0.0.7", "port": 22, "items": ["config", "redis", "rabbitmq"]},
        {"name": "edge", "address": "edge.example", "port": 22, "items": ["config"]},
    ]
    assert platform.backup_sources(["edge"], hostvars, False, groups)[0]["items"] == []
    with pytest.raises(AnsibleFilterError, match="base_ssh_port"):
        platform.backup_sources(["edge"], {"edge": {"base_ssh_port": "ssh"}}, True, groups)
    with pytest.raises(AnsibleFilterError, match="private_address"):
        platform.backup_sources(["gone"], hostvars, True, groups)


ADDRESSES = {"db2": "10.0.0.12", "db1": "10.0.0.11", "app1": "fd24:e7e4:6::21", "edge": "edge.example"}
GROUPS = {"all": ["db1", "db2", "app1", "edge"], "db": ["db2", "db1"], "app": ["app1"], "mq": []}


def test_scrape_configs_follow_the_groups() -> None:
    jobs = [
        {"name": "node", "group": "all", "port": 9100},
        {"name": "postgres", "group": "db", "port": 9187},
        {"name": "rabbitmq", "group": "mq", "port": 15692},  # empty group: no job
        {"name": "absent", "group": "nosuch", "port": 1},  # unknown group: no job
        {"name": "app", "group": "app", "port": 8000, "scheme": "https", "path": "/m", "params": {"a": ["b"]}},
    ]
    configs = prom.prometheus_scrape_configs(jobs, GROUPS, ADDRESSES, "/ca.crt")
    assert [c["job_name"] for c in configs] == ["node", "postgres", "app"]
    node, postgres, app = configs
    assert [s["targets"] for s in node["static_configs"]] == [
        ["[fd24:e7e4:6::21]:9100"],
        ["10.0.0.11:9100"],
        ["10.0.0.12:9100"],
        ["edge.example:9100"],
    ]
    assert postgres["static_configs"][0]["labels"] == {"host": "db1", "instance": "db1:9187"}
    assert (postgres["scheme"], postgres["metrics_path"]) == ("http", "/metrics")
    assert "tls_config" not in postgres and "params" not in postgres
    assert app["tls_config"] == {"ca_file": "/ca.crt"}
    assert (app["scheme"], app["metrics_path"], app["params"]) == ("https", "/m", {"a": ["b"]})


def test_a_listener_port_set_in_the_inventory_is_scraped() -> None:
    """An operator who moves an exporter writes its port once, for the listener's role: the job follows per host."""
    jobs = [
        {"name": "postgres", "group": "db", "port": 9187, "port_var": "postgres_exporter_port"},
        {"name": "nginx", "group": "all", "port": 9113, "port_var": "nginx_exporter_listen_address"},
    ]
    hostvars = {
        "db1": {"postgres_exporter_port": "9188"},
        "db2": {},
        "edge": {"nginx_exporter_listen_address": "[::1]:9114"},
    }
    postgres, nginx = prom.prometheus_scrape_configs(jobs, GROUPS, ADDRESSES, "/ca.crt", hostvars)
    assert [s["targets"] for s in postgres["static_configs"]] == [["10.0.0.11:9188"], ["10.0.0.12:9187"]]
    assert postgres["static_configs"][0]["labels"]["instance"] == "db1:9188"
    assert dict(zip(sorted(GROUPS["all"]), [s["targets"][0] for s in nginx["static_configs"]], strict=True)) == {
        "app1": "[fd24:e7e4:6::21]:9113",
        "db1": "10.0.0.11:9113",
        "db2": "10.0.0.12:9113",
        "edge": "edge.example:9114",
    }
    # Without hostvars (the filter used alone), every target uses the job's port.
    assert prom.prometheus_scrape_configs(jobs[:1], GROUPS, ADDRESSES, "/ca.crt")[0]["static_configs"][0][
        "targets"
    ] == ["10.0.0.11:9187"]


@pytest.mark.parametrize("value", ["nine", 0, 70000, "10.0.0.1:"])
def test_a_listener_port_that_is_no_port_names_the_host_and_variable(value: object) -> None:
    jobs = [{"name": "redis", "group": "db", "port": 9121, "port_var": "redis_exporter_port"}]
    with pytest.raises(AnsibleFilterError, match="redis_exporter_port of db1 holds no port between 1 and 65535"):
        prom.prometheus_scrape_configs(jobs, GROUPS, ADDRESSES, "/ca.crt", {"db1": {"redis_exporter_port": value}})


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())


# Scrape job -> (role, variable) of the port its targets listen on. Each role runs in its own play, so the prometheus
# role keeps its own copy of the port; this keeps the copies in line with the listeners.
LISTENERS = {
    "node": ("node_exporter", "node_exporter_port"),
    "postgres": ("postgres", "postgres_exporter_port"),
    "redis": ("redis", "redis_exporter_port"),
    "rabbitmq": ("rabbitmq", "rabbitmq_prometheus_port"),
    "rabbitmq_queues": ("rabbitmq", "rabbitmq_prometheus_port"),
    "objectstore": ("seaweedfs", "seaweedfs_metrics_port"),
    "app": ("app", "app_port"),
    "nginx": ("nginx", "nginx_exporter_listen_address"),
    "nginx_tenants": ("nginx", "nginx_tenant_metrics_port"),
    "patroni": ("patroni", "patroni_restapi_port"),
    "etcd": ("etcd", "etcd_metrics_port"),
}


def test_every_scrape_job_targets_the_port_its_exporter_listens_on() -> None:
    """The node job defaults to prometheus_node_exporter_port (the node_exporter role runs in another play); the others
    name their port; each equals the default of the role that opens the listener."""
    defaults = _defaults("prometheus")
    jobs = {job["name"]: job["port"] for job in defaults["prometheus_scrape_jobs"]}
    assert jobs["node"] == "{{ prometheus_node_exporter_port }}"
    jobs["node"] = defaults["prometheus_node_exporter_port"]
    assert sorted(jobs) == sorted(LISTENERS)
    listening = {}
    for job, (role, variable) in LISTENERS.items():
        value = _defaults(role)[variable]
        listening[job] = int(str(value).rpartition(":")[2])  # ":9113" (an address) or 9113
    assert jobs == listening
    # Each job reads its listener's variable on the target host, so an inventory override of it moves the scrape too.
    port_vars = {job["name"]: job.get("port_var") for job in defaults["prometheus_scrape_jobs"]}
    assert port_vars == {job: variable for job, (_, variable) in LISTENERS.items()}
    assert defaults["prometheus_app_probe_port"] == listening["app"] == _defaults("nginx")["nginx_upstream_port"]
    assert _defaults("haproxy")["haproxy_patroni_port"] == listening["patroni"]


def test_a_host_without_an_address_is_an_error() -> None:
    with pytest.raises(AnsibleFilterError, match="no address for 'db3'"):
        prom.prometheus_static_configs(["db3"], 9100, ADDRESSES)


def test_probe_configs_leave_out_probes_without_targets() -> None:
    probes = [
        {"name": "blackbox_public", "module": "https_public", "targets": []},
        {
            "name": "blackbox_app_ready",
            "module": "http_ready",
            "targets": prom.prometheus_url_targets(["app1"], ADDRESSES, "http", 8000, "/health/ready"),
        },
        {
            "name": "blackbox_tls",
            "module": "tls_connect",
            "targets": prom.prometheus_tls_targets(["db1.example:5432", "[fd24::9]:5671"]),
        },
    ]
    configs = prom.prometheus_probe_configs(probes, "127.0.0.1:9115")
    assert [c["job_name"] for c in configs] == ["blackbox_app_ready", "blackbox_tls"]
    ready, tls = configs
    assert ready["static_configs"] == [
        {"targets": ["http://[fd24:e7e4:6::21]:8000/health/ready"], "labels": {"host": "app1"}}
    ]
    assert ready["params"] == {"module": ["http_ready"]}
    assert [s["labels"]["host"] for s in tls["static_configs"]] == ["db1.example", "fd24::9"]
    assert ready["relabel_configs"][-1] == {"target_label": "__address__", "replacement": "127.0.0.1:9115"}
