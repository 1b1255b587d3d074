"""The retention table of each inventory agrees with the settings that enforce it, and the documents with the table.

``eterna_retention`` (inventories/<env>/group_vars/all/retention.yml) names, per data class, the period and the
settings that enforce it. For every setting that applies (``only_if``), its value in that inventory (else the role's
default) converted to days must equal the period. A class nothing enforces must say why (``gap``) and be listed in
EXPECTED_GAPS below: a new gap fails, and so does a closed one still listed, so the list stays the truth.
"""

from __future__ import annotations

import importlib.util
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("lab", "staging", "production")
CATALOGUE = yaml.safe_load((ROOT / "docs" / "compliance" / "data_classes.yml").read_text())

# Classes no job enforces yet, and what is missing. Empty since issue #20: application data at contract end (the app's
# enforce-retention job), access logs (the nginx role's logrotate file) and the audit trail (enforce-retention).
# Add an entry (class: reason) only with its gap stated in every inventory's table.
EXPECTED_GAPS: dict[str, str] = {}

# systemd time spans (journald.conf) and Prometheus durations, in days; systemd's month and year are 30.44 and
# 365.25 days. A period is the whole number of days the data is surely kept (rounded down).
_SPAN_UNITS = {"d": 1, "day": 1, "days": 1, "w": 7, "week": 7, "weeks": 7, "month": 30.44, "months": 30.44, "y": 365.25}
_SPAN_RE = re.compile(r"^\s*([0-9]+)\s*([a-z]+)\s*$")
_WEEKLY_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \*-\*-\* [0-9:]+$")
_DAILY_RE = re.compile(r"^\*-\*-\* [0-9:]+$")
# The only templated values the check renders: one class's period read from the table (with an optional default).
_TABLE_REF = re.compile(r"\{\{ eterna_retention\.[a-z_]+\.days( \| default\([0-9]+\))? \}\}")


def _load_generator():
    spec = importlib.util.spec_from_file_location("eterna_generate_docs", ROOT / "scripts" / "generate_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()


def role_default(name: str) -> Any:
    """The default of a role variable: the role whose name prefixes it (longest match)."""
    roles = sorted((p.name for p in (ROOT / "roles").iterdir() if name.startswith(p.name + "_")), key=len)
    if not roles:
        raise KeyError(f"no role owns {name}")
    defaults = yaml.safe_load((ROOT / "roles" / roles[-1] / "defaults" / "main.yml").read_text()) or {}
    if name not in defaults:
        raise KeyError(f"{name} is neither in the inventory nor in roles/{roles[-1]}/defaults/main.yml")
    return defaults[name]


def span_days(value: Any) -> int:
    match = _SPAN_RE.match(str(value))
    if not match or match.group(2) not in _SPAN_UNITS:
        raise ValueError(f"unsupported time span {value!r}")
    return math.floor(int(match.group(1)) * _SPAN_UNITS[match.group(2)])


def days_of(unit: str, value: Any, lookup: Callable[[str], Any]) -> int:
    """What a setting's value means in days of retention."""
    if isinstance(value, str) and "{{" in value:
        raise ValueError(f"templated value {value!r}: give the enforcing setting a literal value")
    if unit in ("days", "days_after_contract"):
        return int(value)
    if unit == "timespan":
        return span_days(value)
    if unit == "weekly_fulls":
        schedule = lookup("backup_schedule_full")
        if not _WEEKLY_RE.match(schedule):
            raise ValueError(f"backup_schedule_full {schedule!r} is not weekly: weekly_fulls cannot be converted")
        return int(value) * 7
    if unit == "daily_exports":
        schedule = lookup("backup_schedule_files")
        if not _DAILY_RE.match(schedule):
            raise ValueError(f"backup_schedule_files {schedule!r} is not daily: daily_exports cannot be converted")
        return int(value)
    raise ValueError(f"unknown unit {unit!r}")


def problems(table: Mapping[str, Any], lookup: Callable[[str], Any]) -> tuple[list[str], set[str]]:
    """(disagreements, classes without enforcement) of one environment's table."""
    found: list[str] = []
    gaps: set[str] = set()
    for name, entry in table.items():
        enforcers = entry.get("enforced_by") or []
        if not enforcers:
            gaps.add(name)
            if not entry.get("gap"):
                found.append(f"{name}: nothing enforces it and no gap says why")
            continue
        if entry.get("gap"):
            found.append(f"{name}: enforced, yet it still states a gap")
        applied = [e for e in enforcers if all(lookup(k) == v for k, v in (e.get("only_if") or {}).items())]
        if not applied:
            found.append(f"{name}: no enforcing setting applies (only_if)")
        for enforcer in applied:
            try:
                value = lookup(enforcer["setting"])
                # A mapping setting (rsyslog_retention_days): the entry of this class.
                if "key" in enforcer:
                    value = value[enforcer["key"]]
                got = days_of(enforcer["unit"], value, lookup)
            except (KeyError, ValueError) as exc:
                found.append(f"{name}: {enforcer['setting']}: {exc}")
                continue
            # Data kept while a contract runs has no period of its own: the setting counts the days after the end.
            want = entry.get("after_contract_days") if enforcer["unit"] == "days_after_contract" else entry["days"]
            if got != want:
                found.append(f"{name}: table says {want} days, {enforcer['setting']}={value!r} keeps {got}")
    return found, gaps


def env_lookup(env: str) -> Callable[[str], Any]:
    """Values of one environment's inventory, else the role default. A value templated from the retention table
    itself (``{{ eterna_retention.<class>.days }}``: the job reads the table) is rendered against the inventory, so
    the check still catches a setting that reads another class's period."""
    env_vars = GEN.inventory_vars(env)
    jinja = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)  # noqa: S701 - no HTML

    def render(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        if isinstance(value, str) and _TABLE_REF.fullmatch(value):
            return jinja.from_string(value).render(env_vars)
        return value

    def lookup(name: str) -> Any:
        return render(env_vars[name]) if name in env_vars else role_default(name)

    return lookup


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_table_has_every_class_of_the_catalogue(env):
    table = GEN.inventory_vars(env)["eterna_retention"]
    assert list(table) == list(CATALOGUE), f"{env}: classes differ from docs/compliance/data_classes.yml"
    for name, entry in table.items():
        assert entry["days"] is None or (isinstance(entry["days"], int) and entry["days"] > 0), name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_period_equals_the_setting_that_enforces_it(env):
    found, _ = problems(GEN.inventory_vars(env)["eterna_retention"], env_lookup(env))
    assert not found, f"{env}: " + "; ".join(found)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_unenforced_classes_are_the_known_gaps(env):
    _, gaps = problems(GEN.inventory_vars(env)["eterna_retention"], env_lookup(env))
    assert not gaps - set(EXPECTED_GAPS), f"{env}: new unenforced classes {sorted(gaps - set(EXPECTED_GAPS))}"
    assert not set(EXPECTED_GAPS) - gaps, (
        f"{env}: {sorted(set(EXPECTED_GAPS) - gaps)} are enforced now: remove them from EXPECTED_GAPS"
    )


def test_known_gaps_are_reported():
    """Not a silent pass: any gap is visible in the test output (pytest -rx) as an expected failure."""
    if EXPECTED_GAPS:
        pytest.xfail("retention not enforced yet: " + "; ".join(f"{k}: {v}" for k, v in EXPECTED_GAPS.items()))


def _enforcing_settings() -> set[str]:
    return {
        enforcer["setting"]
        for env in ENVIRONMENTS
        for entry in GEN.inventory_vars(env)["eterna_retention"].values()
        for enforcer in entry.get("enforced_by") or []
    }


@pytest.mark.parametrize("setting", sorted(_enforcing_settings()))
def test_each_enforcing_setting_drives_a_job(setting):
    """A setting the table names is read by a template or task of its role (the job), or by the data its vars hand
    to a template (the backup tool's settings), not only declared."""
    role = max((p.name for p in (ROOT / "roles").iterdir() if setting.startswith(p.name + "_")), key=len)
    users = [
        path
        for folder in ("templates", "tasks", "vars")
        for path in (ROOT / "roles" / role / folder).rglob("*")
        if path.is_file() and setting in path.read_text(errors="replace")
    ]
    assert users, f"{setting}: no template, task or vars file of roles/{role} reads it"


def test_contract_end_erasure_and_audit_pruning_are_scheduled():
    """The app's retention job: a daily timer running enforce-retention with the two settings."""
    unit = (ROOT / "roles/app/templates/etc/systemd/system/eterna-retention.service.j2").read_text()
    assert "-m app.manage enforce-retention --audit-days {{ app_retention_audit_days | int }}" in unit
    assert "--after-contract-days {{ app_retention_after_contract_days | int }}" in unit
    timer = (ROOT / "roles/app/templates/etc/systemd/system/eterna-retention.timer.j2").read_text()
    assert "OnCalendar={{ app_retention_schedule }}" in timer and "Persistent=true" in timer
    rotate = (ROOT / "roles/nginx/templates/etc/logrotate.d/nginx.j2").read_text()
    assert "rotate {{ nginx_access_log_keep_days }}" in rotate and "daily" in rotate


def test_the_check_catches_a_disagreement_and_a_missing_reason():
    defaults = {
        "backup_retention_full": 5,
        "backup_schedule_full": "Sun *-*-* 01:30:00",
        "base_journal_max_retention": "1month",
    }
    table = {
        "database_backups": {"days": 14, "enforced_by": [{"setting": "backup_retention_full", "unit": "weekly_fulls"}]},
        "application_logs": {
            "days": 30,
            "enforced_by": [{"setting": "base_journal_max_retention", "unit": "timespan"}],
        },
        "audit_trail": {"days": 365, "enforced_by": []},
    }
    found, gaps = problems(table, defaults.__getitem__)
    assert found == [
        "database_backups: table says 14 days, backup_retention_full=5 keeps 35",
        "audit_trail: nothing enforces it and no gap says why",
    ]
    assert gaps == {"audit_trail"}


@pytest.mark.parametrize(
    ("unit", "value", "days"),
    [
        ("days", 90, 90),
        ("days_after_contract", 30, 30),
        ("timespan", "1month", 30),
        ("timespan", "2w", 14),
        ("timespan", "90d", 90),
        ("timespan", "1y", 365),
    ],
)
def test_conversions(unit, value, days):
    assert days_of(unit, value, {}.__getitem__) == days


def test_a_schedule_that_is_not_weekly_cannot_be_converted():
    with pytest.raises(ValueError, match="not weekly"):
        days_of("weekly_fulls", 2, {"backup_schedule_full": "*-*-* 01:30:00"}.__getitem__)


def test_compliance_documents_are_generated_from_the_data():
    for path, text in GEN.documents().items():
        if "compliance" in path.parts:
            assert path.exists() and path.read_text() == text, f"{path} is stale: run python3 scripts/generate_docs.py"


def test_erasure_horizon_is_the_longest_copy():
    tables = {env: GEN.inventory_vars(env)["eterna_retention"] for env in ENVIRONMENTS}
    for env, table in tables.items():
        copies = [table[name]["days"] for name, meta in CATALOGUE.items() if meta.get("copy")]
        assert GEN.erasure_horizon(CATALOGUE, table) == max(copies)
        assert f"{env} {max(copies)} days" in (ROOT / "docs" / "compliance" / "records-of-processing.md").read_text()


def test_a_vaulted_file_is_skipped(tmp_path):
    group_vars = tmp_path / "inventories" / "production" / "group_vars" / "all"
    group_vars.mkdir(parents=True)
    (group_vars / "retention.yml").write_text("---\neterna_retention: {metrics: {days: 1}}\n")
    (group_vars / "vault.yml").write_text("$ANSIBLE_VAULT;1.1;AES256\n6162636465\n")
    assert GEN.inventory_vars("production", tmp_path) == {"eterna_retention": {"metrics": {"days": 1}}}


def test_the_check_compares_days_after_a_contract():
    table = {
        "application_data": {
            "days": None,
            "after_contract_days": 30,
            "enforced_by": [{"setting": "app_retention_after_contract_days", "unit": "days_after_contract"}],
        }
    }
    assert problems(table, {"app_retention_after_contract_days": 30}.__getitem__) == ([], set())
    found, _ = problems(table, {"app_retention_after_contract_days": 45}.__getitem__)
    assert found == ["application_data: table says 30 days, app_retention_after_contract_days=45 keeps 45"]


def test_a_mapping_setting_is_read_by_its_key_and_a_wrong_class_is_caught():
    table = {
        "access_logs": {
            "days": 14,
            "enforced_by": [{"setting": "rsyslog_retention_days", "key": "access", "unit": "days"}],
        },
        "security_logs": {
            "days": 30,
            "enforced_by": [{"setting": "rsyslog_retention_days", "key": "security", "unit": "days"}],
        },
    }
    settings = {"rsyslog_retention_days": {"access": 14, "security": 14}}
    found, _ = problems(table, settings.__getitem__)
    assert found == ["security_logs: table says 30 days, rsyslog_retention_days=14 keeps 14"]


def test_the_log_archive_reads_each_class_period_from_the_table():
    for env in ENVIRONMENTS:
        days = env_lookup(env)("rsyslog_retention_days")
        table = GEN.inventory_vars(env)["eterna_retention"]
        for data_class, entry in [("access", "access_logs"), ("application", "application_logs"),
                                  ("audit", "audit_trail"), ("security", "security_logs")]:  # fmt: skip
            assert int(days[data_class]) == table[entry]["days"], (env, data_class)
