"""playbooks/preflight.yml refuses each bad production input before any change, naming the variable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = "9c1e7a54d2b08f36e4a1c97d05b3f8622d4e9a1f7c03b5e8a6d2f4c19b07e358"  # test-only
LAB_KEY = "ebed5e804fd6935305f7e91c8f1496f00bf032f27a4bb0df323ecf182ee85fcc"


PRODUCTION = {"eterna_env": "production"}
# Every playbook run of this module shares one fact cache (conftest.shared_fact_cache).
pytestmark = pytest.mark.usefixtures("shared_fact_cache")


def inventory(tmp_path: Path, group_vars: dict) -> Path:
    """The production inventory's group_vars with a fresh vault, on three hosts of this machine (local connection):
    h1 in every functional group, the backup repository and the logs on h2, a second Patroni member on h3 (production
    runs postgres_ha: patroni, whose preflight wants a member that is not synchronous), etcd on h1.
    ``group_vars`` override (a later file wins)."""
    inv = tmp_path / "inventory"
    (inv / "group_vars" / "all").mkdir(parents=True)
    for source in (ROOT / "inventories" / "production" / "group_vars" / "all").glob("*.yml"):
        shutil.copy(source, inv / "group_vars" / "all" / source.name)
    (inv / "group_vars" / "all" / "vault.yml").write_text(yaml.safe_dump({"vault_eterna_master_key": GOOD_KEY}))
    (inv / "group_vars" / "all" / "zz_test.yml").write_text(yaml.safe_dump(group_vars))
    host = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    groups = {g: {"hosts": {"h1": {}}} for g in ["db", "cache", "mq", "objectstore", "app", "edge", "monitoring"]}
    groups |= {"backup": {"hosts": {"h2": {}}}, "logging": {"hosts": {"h2": {}}}, "etcd": {"hosts": {"h1": {}}}}
    groups["db"]["hosts"]["h3"] = {}
    hosts = {f"h{i}": host | {"eterna_private_ip": f"10.0.0.1{i}"} for i in (1, 2, 3)}
    (inv / "hosts.yml").write_text(yaml.safe_dump({"all": {"hosts": hosts, "children": groups}}))
    return inv / "hosts.yml"


def run_playbook(
    tmp_path: Path, playbook: str, *args: str, _callback: str = "", **group_vars
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    if _callback:
        env["ANSIBLE_STDOUT_CALLBACK"] = _callback
    ansible = Path(sys.executable).with_name("ansible-playbook")
    return subprocess.run(
        [str(ansible), "-i", str(inventory(tmp_path, group_vars)), str(ROOT / "playbooks" / playbook), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def run_preflight(tmp_path: Path, **group_vars) -> subprocess.CompletedProcess[str]:
    return run_playbook(tmp_path, "preflight.yml", **group_vars)


def test_good_production_inventory_passes(tmp_path: Path) -> None:
    res = run_preflight(tmp_path, **PRODUCTION)
    assert res.returncode == 0, res.stdout + res.stderr


def test_lab_accepts_the_lab_key(tmp_path: Path) -> None:
    res = run_preflight(tmp_path, eterna_env="lab", eterna_master_key=LAB_KEY)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"eterna_master_key": ""}, "eterna_master_key is missing"),
        ({"vault_eterna_master_key": ""}, "eterna_master_key is missing"),
        ({"eterna_master_key": "ab" * 16}, "eterna_master_key is too short"),
        ({"eterna_master_key": LAB_KEY}, "eterna_master_key is a public key"),
        ({"eterna_master_key": GOOD_KEY, "minio_root_password": "minioadmin"}, "minio_root_password hold"),
        ({"eterna_master_key": GOOD_KEY, "grafana_admin_password": "changeme"}, "grafana_admin_password hold"),
        ({"eterna_master_key": GOOD_KEY, "app_s3_secret_key": "secret"}, "app_s3_secret_key hold"),
        ({"eterna_master_key": GOOD_KEY, "app_debug": True}, "app_debug is true"),
    ],
)
def test_production_refuses(tmp_path: Path, extra: dict, expected: str) -> None:
    res = run_preflight(tmp_path, **(PRODUCTION | extra))
    assert res.returncode != 0
    assert expected in res.stdout, res.stdout


def test_staging_is_as_strict_as_production(tmp_path: Path) -> None:
    res = run_preflight(tmp_path, eterna_env="staging", eterna_master_key=LAB_KEY)
    assert res.returncode != 0
    assert "eterna_master_key is a public key" in res.stdout


# The plays of playbooks/preflight.yml: the only ones a refused site run may start.
PREFLIGHT_PLAYS = [play["name"] for play in yaml.safe_load((ROOT / "playbooks" / "preflight.yml").read_text())]


def _results(play: dict):
    """(task name, host, result) for every host result of a play in ansible.posix.json's output, loop items too."""
    for task in play["tasks"]:
        for host, result in task["hosts"].items():
            yield task["task"]["name"], host, result
            for item in result.get("results", []) if isinstance(result.get("results"), list) else []:
                if isinstance(item, dict):
                    # ansible-core 2.21 leaves `failed` out of a failed loop item's result; the item still carries the
                    # exception placeholder (and, for assert, `evaluated_to: false`).
                    failed = item.get("failed", bool(result.get("failed")) and "exception" in item)
                    yield task["task"]["name"], host, item | {"failed": failed}


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        # Issue #24 section 8: each passed the site preflight and was refused (or not at all) after phase 0.
        ({"nginx_limit_tenant_rate": "lots"}, "nginx_limit_tenant_rate"),
        ({"postgres_port": 99999}, "postgres_port must be a port number between 1 and 65535 (got 99999)"),
        ({"grafana_admin_password": "Password1"}, "grafana_admin_password is weak"),
        ({"app_redis_password": "eterna2024!"}, "app_redis_password is weak"),
        ({"redis_port": "six"}, "argument 'redis_port' is of type str and we were unable to convert to int"),
        ({"base_ssh_allowed_sources": ["bastion"]}, "base_ssh_allowed_sources: 'bastion' is neither an IP address"),
        # The ones the site preflight already refused: placeholder secrets, debug switches, the public lab key.
        ({"grafana_admin_password": "changeme"}, "grafana_admin_password hold a placeholder value"),
        ({"app_s3_secret_key": "secret"}, "app_s3_secret_key hold a placeholder value"),
        ({"app_debug": True}, "app_debug is true"),
        ({"eterna_master_key": LAB_KEY}, "eterna_master_key is a public key"),
        # Strings the nginx and rsyslog templates quote (issue #24 section 1) and roles the preflight gained.
        ({"nginx_csp": "default-src 'self' $host"}, "nginx_csp contains '$'"),
        ({"rsyslog_environment": "prod\tx"}, "rsyslog_environment contains control characters (0x09)"),
        ({"patroni_namespace": "eterna ha"}, "patroni_namespace may hold letters"),
        ({"eterna_elk_enabled": True}, "elasticsearch_deb_sha256 must be the pinned SHA-256 of the package"),
        # Issue #24 section 3: limits that disagree across layers.
        (
            {"nginx_upload_max_body_size": "2g"},
            "nginx_upload_max_body_size of h1 (2g) differs from app_upload_max_bytes",
        ),
        (
            {"rabbitmq_consumer_timeout_ms": 600000},
            "rabbitmq_consumer_timeout_ms (600000) must be above the app's task",
        ),
        # Issue #25: the app's connections at peak (5 workers x 10 + 4 Celery + a candidate 10 + retention 1 + 8
        # others = 73 on the one app host) against the slots left by 60 minus the 3 reserved for superusers.
        (
            {"postgres_max_connections": 60},
            "The app may hold 73 connections on h1 at peak, more than the 57 that host leaves to ordinary roles",
        ),
        ({"backup_schedule_drill": "fortnightly"}, "Failed to parse calendar specification 'fortnightly'"),
        ({"app_database_pool_size": 0}, "app_database_pool_size of h1 must be at least 1 (got 0)"),
        ({"app_metrics_latency_tenants": ["acme", "Other Co"]}, "app_metrics_latency_tenants must be a list of tenant"),
    ],
)
def test_site_run_refuses_before_any_change(tmp_path: Path, extra: dict, expected: str) -> None:
    """The whole site run stops in the preflight with the variable named: no phase play starts, nothing changes.

    Run in check mode on this machine (a regression must not apply phase 0 to the test host), with the JSON callback,
    so the assertions read the plays and task results themselves rather than the screen.
    """
    res = run_playbook(tmp_path, "site.yml", "--check", _callback="ansible.posix.json", **(PRODUCTION | extra))
    assert res.returncode != 0, res.stdout[-3000:]
    out = json.loads(res.stdout)
    plays = [play["play"]["name"] for play in out["plays"]]
    assert plays and set(plays) <= set(PREFLIGHT_PLAYS), f"plays started besides the preflight: {plays}"
    results = [r for play in out["plays"] for r in _results(play)]
    failed = [(task, host, str(r.get("msg", ""))) for task, host, r in results if r.get("failed")]
    assert any(expected in msg for _, _, msg in failed), failed
    assert not [(task, host) for task, host, r in results if r.get("changed")]
    assert all(stats["changed"] == 0 for stats in out["stats"].values()), out["stats"]
    assert any(stats["failures"] > 0 for stats in out["stats"].values()), out["stats"]


def test_strong_operator_password_passes(tmp_path: Path) -> None:
    res = run_preflight(tmp_path, **(PRODUCTION | {"grafana_admin_password": "Kp9/Qz2+Lm7=vT4#wX8"}))
    assert res.returncode == 0, res.stdout[-3000:]


def test_lab_does_not_score_passwords(tmp_path: Path) -> None:
    weak = {"grafana_admin_password": "Password1"}
    res = run_preflight(tmp_path, eterna_env="lab", eterna_master_key=LAB_KEY, **weak)
    assert res.returncode == 0, res.stdout[-3000:]


def test_preflight_covers_every_role() -> None:
    """Every role a service play runs has its argument spec (and preflight tasks) checked by the site preflight."""
    play = next(
        p
        for p in yaml.safe_load((ROOT / "playbooks" / "preflight.yml").read_text())
        if "vars" in p and "_preflight_group_roles" in p["vars"]
    )
    listed = json.dumps(play["vars"]["_preflight_group_roles"])
    roles = {
        p.parent.parent.name
        for p in (ROOT / "roles").glob("*/meta/argument_specs.yml")
        if not p.parent.parent.name.startswith("_") and p.parent.parent.name != "lab_container"
    }
    # The object store is chosen by objectstore_backend (seaweedfs or minio).
    if "objectstore_backend" in listed:
        roles -= {"minio"}
    assert (
        sorted(r for r in roles if f"'{r}'" not in listed and f'"{r}"' not in listed and r not in listed.split()) == []
    )


@pytest.mark.parametrize(
    ("playbook", "extra", "expected"),
    [
        # Checks only the roles' own preflight tasks make (their argument specs accept these values).
        ("postgres.yml", {"postgres_ha": "none", "postgres_replication_role": "replica"}, "a replica needs a primary"),
        ("patroni.yml", {"patroni_namespace": "eterna ha"}, "patroni_namespace may hold letters"),
        ("objectstore.yml", {"seaweedfs_version": "latest"}, "seaweedfs_version must be a release number"),
        # The two roles whose checks the site preflight records as passed (their plays skip them in a site run).
        (
            "backup.yml",
            {"backup_schedule_drill": "fortnightly"},
            "Failed to parse calendar specification 'fortnightly'",
        ),
        ("logging.yml", {"rsyslog_environment": "prod\tx"}, "rsyslog_environment contains control characters (0x09)"),
    ],
)
def test_a_service_play_limited_to_preflight_runs_the_roles_checks(
    tmp_path: Path, playbook: str, extra: dict, expected: str
) -> None:
    """``--tags preflight`` on a service play that includes its roles by a task still reaches the roles' preflight.

    The include carries ``tags: [always]``: with only the play's tags, ``--tags preflight`` left it out, and the run
    passed without checking anything (the postgres scenario's refusal tests failed that way on 3 Dec).
    """
    res = run_playbook(
        tmp_path,
        f"services/{playbook}",
        "--check",
        "--tags",
        "preflight",
        _callback="ansible.posix.json",
        **(PRODUCTION | extra),
    )
    assert res.returncode != 0, res.stdout[-3000:]
    out = json.loads(res.stdout)
    failed = [str(r.get("msg", "")) for play in out["plays"] for _, _, r in _results(play) if r.get("failed")]
    assert any(expected in msg for msg in failed), failed
