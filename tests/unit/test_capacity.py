"""Issue #25: the database connection arithmetic of the app preflight (filter_plugins/capacity.py), checked against
hand-computed sums, the inventories this repository ships, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from module_loader import load_file

ROOT = Path(__file__).resolve().parents[2]
CAPACITY = load_file("filter_plugins/capacity.py", "eterna_filter_capacity")
app_api_workers = CAPACITY.app_api_workers
app_celery_processes = CAPACITY.app_celery_processes
pg_connection_slots = CAPACITY.pg_connection_slots
app_db_peak = CAPACITY.app_db_peak

ROLE_DEFAULTS = yaml.safe_load((ROOT / "roles" / "app" / "defaults" / "main.yml").read_text())
DEFAULTS = {name: ROLE_DEFAULTS[name] for name in CAPACITY.HOST_SETTINGS} | {"cpus": 2}
OTHERS = {"postgres_exporter": 1, "backup": 3, "patroni": 0, "operators": 2}


@pytest.mark.parametrize(
    ("workers", "cpus", "expected"),
    [(4, 16, 4), (0, 1, 3), (0, 2, 5), (0, 4, 9), (0, 64, 9), ("0", "3", 7), ("12", 1, 12)],
)
def test_api_workers(workers, cpus, expected):
    assert app_api_workers(workers, cpus) == expected


@pytest.mark.parametrize(("concurrency", "cpus", "expected"), [(3, 8, 3), (0, 8, 8), ("0", "2", 2)])
def test_celery_processes(concurrency, cpus, expected):
    assert app_celery_processes(concurrency, cpus) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 2), "app_workers must be at least 0"),
        (("two", 2), "app_workers must be a whole number"),
        ((True, 2), "app_workers must be a whole number"),
        ((0, 0), "the vCPU count must be at least 1"),
        ((1.5, 2), "app_workers must be a whole number"),
    ],
)
def test_api_workers_refuses(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        app_api_workers(*args)


def test_the_role_derives_its_process_counts_with_these_filters():
    """One rule for the units and the preflight: vars/main.yml calls the filters, not a copy of the formula."""
    role_vars = yaml.safe_load((ROOT / "roles" / "app" / "vars" / "main.yml").read_text())
    assert role_vars["_app_workers"] == "{{ app_workers | app_api_workers(_app_cpus) }}"
    assert role_vars["_app_celery_concurrency"] == "{{ app_celery_concurrency | app_celery_processes(_app_cpus) }}"


@pytest.mark.parametrize(
    ("args", "expected"),
    [((100,), 97), ((100, 3, 0), 97), ((200, 5, 2), 193), (("50", "0"), 50), ((4, 3), 1)],
)
def test_slots_left_to_ordinary_roles(args, expected):
    assert pg_connection_slots(*args) == expected


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0,), "postgres_max_connections of db1 must be at least 1"),
        ((3, 3), r"superuser_reserved_connections \(3\) \+ reserved_connections \(0\) of db1 must be below"),
        ((10, 5, 5), "must be below postgres_max_connections"),
        ((100, -1), "superuser_reserved_connections of db1 must be at least 0"),
        (("100 connections",), "postgres_max_connections of db1 must be a whole number"),
    ],
)
def test_slots_refuses(args, message):
    with pytest.raises(AnsibleFilterError, match=message):
        pg_connection_slots(*args, host="db1")


def test_peak_of_two_hosts_by_hand():
    hostvars = {
        "app1": {"app_workers": 5, "app_celery_concurrency": 4, "ansible_facts": {"processor_vcpus": 4}},
        "app2": {"app_workers": 0, "app_database_pool_size": "3", "ansible_facts": {"processor_vcpus": 1}},
    }
    peak = app_db_peak(["app1", "app2"], hostvars, DEFAULTS, OTHERS, serial=1)
    # app1: 5 API x (5 + 5) + 4 Celery x 1 = 54. app2: 3 API (2 x 1 + 1) x (3 + 5) + 1 Celery (its vCPU) x 1 = 25.
    assert peak["hosts"]["app1"] == {
        "api_workers": 5,
        "celery_processes": 4,
        "per_api_worker": 10,
        "per_celery_process": 1,
        "connections": 54,
    }
    assert peak["hosts"]["app2"]["connections"] == 25
    assert (peak["api"], peak["celery"]) == (50 + 24, 4 + 1)
    # One candidate worker of the largest pool (10), the retention job (1), the others (6).
    assert (peak["candidates"], peak["retention"], peak["others"]) == (10, 1, 6)
    assert peak["total"] == 54 + 25 + 10 + 1 + 6
    for words in (
        "app1 5 x 10 + 4 x 1",
        "app2 3 x 8 + 1 x 1",
        "= 79",
        "candidate releases 1 x 1 worker = 10",
        "backup 3",
        "total 96",
        "app_database_pool_size",
        "app_celery_database_connections",
    ):
        assert words in peak["summary"], peak["summary"]


def test_hosts_without_their_own_settings_or_facts_use_the_defaults():
    peak = app_db_peak(["a", "b"], {}, DEFAULTS | {"app_workers": 0, "app_celery_concurrency": 0, "cpus": 3}, {})
    # 7 API workers (2 x 3 + 1) x 10 + 3 Celery x 1 on each host.
    assert [h["connections"] for h in peak["hosts"].values()] == [73, 73]
    assert peak["total"] == 146 + 10 + 1


@pytest.mark.parametrize(
    ("serial", "batch"), [(1, 1), ("2", 2), (0, 4), ("50%", 2), ("10%", 1), ([1, "100%"], 4), (9, 4)]
)
def test_candidate_releases_follow_the_serial_batch(serial, batch):
    peak = app_db_peak(["a", "b", "c", "d"], {}, DEFAULTS, {}, serial=serial)
    assert peak["candidates"] == batch * 10


def test_no_app_host_needs_only_the_others():
    peak = app_db_peak([], {}, DEFAULTS, OTHERS)
    assert peak["total"] == 6 and peak["candidates"] == 0 and peak["retention"] == 0


@pytest.mark.parametrize(
    ("hostvars", "others", "serial", "message"),
    [
        ({"a": {"app_database_pool_size": 0}}, {}, 1, "app_database_pool_size of a must be at least 1"),
        ({"a": {"app_database_max_overflow": -2}}, {}, 1, "app_database_max_overflow of a must be at least 0"),
        ({"a": {"app_workers": "many"}}, {}, 1, "app_workers must be a whole number"),
        ({"a": {"app_celery_database_connections": -1}}, {}, 1, "app_celery_database_connections of a"),
        ({}, {"backup": "three"}, 1, r"app_database_other_connections\.backup must be a whole number"),
        ({}, {"backup": -3}, 1, r"app_database_other_connections\.backup must be at least 0"),
        ({}, {}, "half", "app_serial must be a number of hosts or a percentage"),
    ],
)
def test_peak_refuses_bad_input_naming_the_variable(hostvars, others, serial, message):
    with pytest.raises(AnsibleFilterError, match=message):
        app_db_peak(["a"], hostvars, DEFAULTS, others, serial=serial)


def test_peak_needs_a_default_for_a_host_without_a_value():
    with pytest.raises(AnsibleFilterError, match="no value of app_workers for a"):
        app_db_peak(["a"], {}, {"cpus": 1}, {})


def inventory_vars(env: str) -> dict:
    merged: dict = {}
    for path in sorted((ROOT / "inventories" / env / "group_vars" / "all").glob("*.yml")):
        merged |= yaml.safe_load(path.read_text()) or {}
    return merged


@pytest.mark.parametrize(("env", "app_hosts"), [("lab", 2), ("staging", 1), ("production", 2)])
def test_the_shipped_inventories_fit_their_max_connections(env, app_hosts):
    """The sizes each inventory sets pass the preflight's sum, with the role's other clients (Patroni counted)."""
    values = inventory_vars(env)
    defaults = DEFAULTS | {name: values[name] for name in CAPACITY.HOST_SETTINGS if name in values}
    hosts = [f"app{i}" for i in range(1, app_hosts + 1)]
    peak = app_db_peak(hosts, {}, defaults | {"cpus": 4}, OTHERS | {"patroni": 2})
    slots = pg_connection_slots(values.get("postgres_max_connections", 100))
    assert peak["total"] <= slots, peak["summary"]


def test_default_pool_is_refused_by_a_small_server():
    """The default sizes on two 4-vCPU hosts with automatic workers (9 x 10 each) do not fit PostgreSQL's default
    100 connections: the check the preflight makes fails, as it must."""
    peak = app_db_peak(["a", "b"], {}, DEFAULTS | {"app_workers": 0, "app_celery_concurrency": 0, "cpus": 4}, OTHERS)
    assert peak["total"] == 2 * (9 * 10 + 4) + 10 + 1 + 6
    assert peak["total"] > pg_connection_slots(100)
