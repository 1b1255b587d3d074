"""The staging and production example inventories are complete and valid.

Each inventory is copied without a vault.yml (an operator's encrypted vault would need its password) and
run with a throwaway master key given as the vault variable. The role checks here (assert, set_fact,
validate_argument_spec) run on the controller; playbooks/preflight.yml also gathers facts and runs each role's
preflight on its hosts, so its runs here make every host this machine (LOCAL).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROOT = Path(__file__).resolve().parents[2]
ENVS = ("staging", "production")
BIN = Path(sys.executable).parent
SITE_GROUPS = ("edge", "app", "db", "cache", "mq", "objectstore", "monitoring", "logging", "backup")
# (inventory group, role, argument_specs entry point) as playbooks/services/*.yml run them. The backup role
# runs on every host (services/backup.yml: each host serves its exports), a superset of backup and db.
ROLE_PLAYS = (
    ("all", "base", "main"),
    ("all", "node_exporter", "main"),
    ("all", "backup", "main"),
    ("edge", "nginx", "main"),
    ("app", "app", "main"),
    ("db", "postgres", "main"),
    ("cache", "redis", "main"),
    ("mq", "rabbitmq", "main"),
    ("objectstore", "seaweedfs", "main"),
    ("monitoring", "prometheus", "main"),
    ("monitoring", "grafana", "main"),
)
# Roles whose tasks/preflight.yml only asserts on variables: run on the controller, without facts. The others
# look at the host (postgres: existing clusters, backup: systemd-analyze, rabbitmq: the node name from facts).
PURE_PREFLIGHTS = {"base", "node_exporter", "nginx", "app", "redis", "seaweedfs", "prometheus", "grafana"}
# (target group, tcp port, source group or None for the internet) each environment's firewall must allow.
FLOWS = (
    [("edge", 443, None), ("edge", 80, None), ("app", 8000, "edge"), ("all", 22, "backup")]
    + [("db", 5432, src) for src in ("app", "db", "backup")]
    + [("cache", 6379, "app"), ("cache", 6380, "app"), ("mq", 5671, "app"), ("mq", 4369, "mq"), ("mq", 25672, "mq")]
    + [("objectstore", 8333, "app"), ("objectstore", 8333, "backup"), ("db", 8432, "backup"), ("backup", 8432, "db")]
    + [(group, port, "monitoring") for group, port in (("all", 9100), ("edge", 9113), ("app", 8000), ("db", 9187))]
    + [(group, port, "monitoring") for group, port in (("cache", 9121), ("mq", 15692), ("objectstore", 9327))]
    + [("db", 8008, src) for src in ("app", "db", "monitoring")]
    + [("etcd", 2379, "db"), ("etcd", 2380, "etcd"), ("etcd", 2381, "monitoring")]
)


def lab_key() -> str:
    return yaml.safe_load((ROOT / "inventories/lab/group_vars/all/main.yml").read_text())["eterna_master_key"]


def copy_inventory(env: str, dest: Path) -> Path:
    inv = dest / env
    shutil.copytree(ROOT / "inventories" / env, inv, ignore=shutil.ignore_patterns("vault.yml"))
    return inv


# Every playbook run of this module shares one fact cache (conftest.shared_fact_cache).
pytestmark = pytest.mark.usefixtures("shared_fact_cache")


def ansible(tool: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(BIN / tool), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False
    )


# Every inventory host is this machine, reached without SSH (the preflight gathers facts and asks the hosts).
LOCAL = ["-e", "ansible_connection=local", "-e", f"ansible_python_interpreter={sys.executable}"]


def with_key(key: str | None = None) -> list[str]:
    return ["-e", f"vault_eterna_master_key={key or secrets.token_hex(32)}"]


def role_check_playbook(path: Path) -> Path:
    """Validate each host's variables against the real argument spec of every role it runs, then run the
    role's own preflight where it needs no host but its release facts (gathered from this machine: LOCAL). One play
    on all hosts, so a failure on one group does not hide the others."""
    runs = "item.group == 'all' or item.group in group_names"
    play = {
        "name": "Check the inventory against the roles",
        "hosts": "all",
        "gather_facts": True,
        "gather_subset": ["min"],
        "tasks": [
            {
                "name": "Validate the variables of each role this host runs",
                "ansible.builtin.validate_argument_spec": {
                    "argument_spec": "{{ _spec }}",
                    "provided_arguments": "{{ dict(_names | zip(query('ansible.builtin.vars', *_names))) }}",
                },
                "loop": [{"group": g, "role": r, "entry": e} for g, r, e in ROLE_PLAYS],
                "loop_control": {"label": "{{ item.role }} {{ item.entry }}"},
                "when": runs,
                "vars": {
                    "_spec": f"{{{{ (lookup('ansible.builtin.file', '{ROOT}/roles/' ~ item.role ~ "
                    "'/meta/argument_specs.yml') | from_yaml).argument_specs[item.entry].options }}",
                    # The options this host defines (no role is loaded, so no role default is among them).
                    "_names": "{{ query('ansible.builtin.varnames', '^(' ~ (_spec.keys() "
                    "| map('regex_escape') | join('|')) ~ ')$') }}",
                },
            },
            {
                "name": "Run the preflight of each role this host runs",
                "ansible.builtin.include_role": {"name": "{{ item.role }}", "tasks_from": "preflight"},
                "loop": [{"group": g, "role": r} for g, r, e in ROLE_PLAYS if e == "main" and r in PURE_PREFLIGHTS],
                "loop_control": {"label": "{{ item.role }}"},
                "when": runs,
            },
        ],
    }
    path.write_text(yaml.safe_dump([play], sort_keys=False, width=200))
    return path


def inventory_list(env: str, tmp_path: Path) -> dict:
    res = ansible("ansible-inventory", "-i", str(copy_inventory(env, tmp_path)), "--list", *with_key())
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


@pytest.fixture(scope="module")
def listed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """`ansible-inventory --list` of each environment, run once for the module."""
    return {env: inventory_list(env, tmp_path_factory.mktemp(env)) for env in ENVS}


def group_hosts(data: dict, group: str) -> set[str]:
    entry = data.get(group, {})
    hosts = set(entry.get("hosts", []))
    for child in entry.get("children", []):
        hosts |= group_hosts(data, child)
    return hosts


def all_vars(data: dict) -> dict:
    """Every variable the inventory sets, as written (untemplated), from any host."""
    merged: dict = {}
    for hostvars in data["_meta"]["hostvars"].values():
        merged.update(hostvars)
    return merged


def env_vars(env: str) -> dict:
    merged: dict = {}
    for path in sorted((ROOT / "inventories" / env / "group_vars" / "all").glob("*.yml")):
        merged.update(yaml.safe_load(path.read_text()) or {})
    return merged


def per_second(rate: str) -> float:
    number, unit = re.fullmatch(r"(\d+)r/([sm])", rate).groups()
    return int(number) / (60 if unit == "m" else 1)


@pytest.mark.parametrize("env", ENVS)
def test_every_site_group_has_hosts(env: str, listed: dict[str, dict]) -> None:
    empty = [group for group in SITE_GROUPS if not group_hosts(listed[env], group)]
    assert not empty, f"{env}: groups without hosts: {empty}"


@pytest.mark.parametrize("env", ENVS)
def test_preflight_passes(env: str, tmp_path: Path) -> None:
    inv = copy_inventory(env, tmp_path)
    res = ansible("ansible-playbook", "-i", str(inv), "playbooks/preflight.yml", *LOCAL, *with_key())
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize("env", ENVS)
def test_roles_accept_the_inventory(env: str, tmp_path: Path) -> None:
    inv = copy_inventory(env, tmp_path)
    playbook = role_check_playbook(tmp_path / "check_roles.yml")
    res = ansible("ansible-playbook", "-i", str(inv), str(playbook), *LOCAL, *with_key())
    assert res.returncode == 0, res.stdout + res.stderr
    # Every role was checked on some host (a misspelt group would silently match nothing).
    for _, role, entry in ROLE_PLAYS:
        assert f"(item={role} {entry})" in res.stdout, f"{role} {entry} was validated on no host"


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        # One value the argument spec refuses, one the spec allows but the role's preflight refuses in production.
        (
            "app_workers: many\nnginx_tls_source: internal\n",
            [
                "argument 'app_workers' is of type str and we were unable to convert to int",
                "production (eterna_env) needs nginx_tls_source files or acme",
            ],
        ),
        # A name the node exporter had inside the prometheus role is refused by name, not ignored.
        (
            "prometheus_node_exporter_textfile_dir: /srv/metrics\n",
            ["prometheus_node_exporter_textfile_dir: the node exporter is the node_exporter role now"],
        ),
        # The port Prometheus scrapes differs from the one the exporter listens on (every host would be NodeDown).
        (
            "prometheus_node_exporter_port: 9200\n",
            ["prometheus_node_exporter_port (9200) is the port Prometheus scrapes and node_exporter_port (9100)"],
        ),
    ],
    ids=["spec-and-preflight", "node-exporter-old-name", "node-exporter-port-mismatch"],
)
def test_role_check_fails_on_bad_values(tmp_path: Path, broken: str, expected: list[str]) -> None:
    inv = copy_inventory("production", tmp_path)
    (inv / "group_vars" / "all" / "zz_broken.yml").write_text("---\n" + broken)
    playbook = role_check_playbook(tmp_path / "check_roles.yml")
    res = ansible("ansible-playbook", "-i", str(inv), str(playbook), "--limit", "edge:app", *LOCAL, *with_key())
    assert res.returncode != 0
    output = " ".join(res.stdout.split())
    for message in expected:
        assert message in output, res.stdout


@pytest.mark.parametrize("env", ENVS)
def test_inventory_sets_only_variables_the_roles_read(env: str, listed: dict[str, dict]) -> None:
    known: dict[str, set[str]] = {}
    for spec_file in (ROOT / "roles").glob("*/meta/argument_specs.yml"):
        role = spec_file.parent.parent.name
        entries = yaml.safe_load(spec_file.read_text())["argument_specs"].values()
        known[role] = {name for entry in entries for name in (entry.get("options") or {})}
    unknown = sorted(
        name
        for name in all_vars(listed[env])
        for role, options in known.items()
        if name.startswith(f"{role}_") and name not in options
    )
    assert not unknown, f"{env}: variables no role reads (typo?): {unknown}"


def test_production_preflight_refuses_the_lab_key(tmp_path: Path) -> None:
    inv = copy_inventory("production", tmp_path)
    res = ansible("ansible-playbook", "-i", str(inv), "playbooks/preflight.yml", *LOCAL, *with_key(lab_key()))
    assert res.returncode != 0
    assert "eterna_master_key is a public key" in res.stdout, res.stdout


@pytest.mark.parametrize("env", ENVS)
def test_vault_example_documents_every_vault_key(env: str) -> None:
    group_vars = ROOT / "inventories" / env / "group_vars" / "all"
    used = set()
    for path in group_vars.glob("*.yml"):
        used |= set(re.findall(r"\bvault_[a-z0-9_]+", path.read_text()))
    documented = set(yaml.safe_load((group_vars / "vault.yml.example").read_text()))
    assert used == documented


def test_environments_differ_as_intended() -> None:
    lab, staging, production = env_vars("lab"), env_vars("staging"), env_vars("production")
    for name in ("nginx_limit_ip_rate", "nginx_limit_tenant_rate", "nginx_limit_auth_rate"):
        assert per_second(lab[name]) > per_second(staging[name]) > per_second(production[name]), name
    counts = ("nginx_limit_ip_burst", "nginx_limit_tenant_burst", "nginx_limit_auth_burst", "nginx_limit_conn_per_ip")
    for name in counts:
        assert lab[name] > staging[name] > production[name], name
    assert production["backup_retention_full"] > staging["backup_retention_full"]
    for env, values in (("staging", staging), ("production", production)):
        assert values["app_debug"] is False, env
        assert values["app_cors_origins"], env
        assert all(re.fullmatch(r"https://[a-z0-9.-]+(:\d+)?", o) for o in values["app_cors_origins"]), env
        assert values["app_source_type"] == "git" and values["app_source_git_repo"], env
        assert re.fullmatch(r"v\d+\.\d+\.\d+(-[a-z0-9.]+)?", values["app_source_git_version"]), env
        assert values["nginx_tls_source"] in ("acme", "files"), env
        assert values["redis_tls_enabled"] and values["app_redis_tls"], env


def role_rules(role: str, variable: str) -> list[dict]:
    """A role's firewall rules from its defaults, templated by Ansible with those defaults (ports from its port
    variables); ``variable`` may name a key below the variable (``backup_firewall_rules.db``)."""
    name, *keys = variable.split(".")
    defaults = trusted(yaml.safe_load((ROOT / "roles" / role / "defaults/main.yml").read_text()))
    value = Templar(loader=DataLoader(), variables=defaults).template(defaults[name])
    for key in keys:
        value = value[key]
    return value


def trusted(value):
    """``value`` with its strings marked as templates (ansible-core >= 2.19 renders only trusted strings)."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(item) for item in value]
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    return value


# The rules a host of each group gets: the service roles' own declarations, as playbooks/services applies them
# (the object store's backend is seaweedfs by default; every host but the backup host is exported over SSH).
SERVICE_RULES = {
    "edge": [("nginx", "nginx_firewall_rules")],
    "app": [("app", "app_firewall_rules")],
    "db": [("postgres", "postgres_firewall_rules"), ("patroni", "patroni_firewall_rules"),
           ("backup", "backup_firewall_rules.db")],
    "etcd": [("etcd", "etcd_firewall_rules")],
    "cache": [("redis", "redis_firewall_rules")],
    "mq": [("rabbitmq", "rabbitmq_firewall_rules")],
    "objectstore": [("seaweedfs", "seaweedfs_firewall_rules")],
    "backup": [("backup", "backup_firewall_rules.repository")],
    "monitoring": [("prometheus", "prometheus_firewall_rules"), ("grafana", "grafana_firewall_rules")],
    "logging": [("rsyslog", "rsyslog_firewall_rules")],
    "all": [("node_exporter", "node_exporter_firewall_rules"), ("backup", "backup_firewall_rules.exported")],
}  # fmt: skip


def test_the_service_roles_open_the_platform_flows() -> None:
    """Every flow the platform needs is opened by the role of the service it reaches, from the right groups only."""

    def allowed(group: str, port: int, source: str | None) -> bool:
        for role, variable in SERVICE_RULES[group] + SERVICE_RULES["all"]:
            for rule in role_rules(role, variable):
                if int(rule["port"]) != port or rule.get("proto", "tcp") != "tcp":
                    continue
                if "from_groups" not in rule and "from" not in rule:
                    return True
                if source in rule.get("from_groups", []):
                    return True
        return False

    missing = [flow for flow in FLOWS if not allowed(*flow)]
    assert not missing, f"no role opens {missing}"
    # A flow the platform does not need stays closed: the database is not reachable from the edge.
    assert not allowed("db", 5432, "edge") and not allowed("cache", 6379, "edge") and not allowed("mq", 5671, "db")


def test_every_service_role_writes_its_rules_and_no_inventory_copies_them() -> None:
    roles = {role for entries in SERVICE_RULES.values() for role, _ in entries} | {"minio"}
    for role in sorted(roles):
        tasks = "".join(p.read_text() for p in (ROOT / "roles" / role / "tasks").glob("*.yml"))
        assert "tasks_from: firewall\n" in tasks, f"{role} does not call _common's firewall helper"
    for env in ("lab", *ENVS):
        assert "base_firewall_rules" not in env_vars(env), f"{env} copies the platform's flows into its inventory"
