"""Static checks of the alert rules shipped by the prometheus role and of their promtool unit tests.

Every alert carries a severity and a runbook link that resolves to a section of monitoring/runbooks.md, and
every alert has a promtool test that sees it fire and then resolve. When ``promtool`` is on PATH (or named by
$PROMTOOL) the files also go through ``promtool check rules`` and ``promtool test rules``; the monitoring
Molecule scenario runs the latter on the Prometheus host in any case.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "roles" / "prometheus" / "files" / "rules"
TESTS_DIR = ROOT / "monitoring" / "rule_tests"
RUNBOOKS = ROOT / "monitoring" / "runbooks.md"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*_test.yml"))


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def alerts() -> list[tuple[str, dict]]:
    """(file stem, rule) for every alerting rule."""
    return [
        (path.stem, rule)
        for path in RULE_FILES
        for group in load(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def runbook_anchors() -> set[str]:
    """GitHub-style anchors of the second-level headings of the runbooks."""
    headings = re.findall(r"^## (.+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_rule_files_exist_and_match_the_role_defaults():
    assert RULE_FILES, "no rule file found"
    defaults = load(ROOT / "roles" / "prometheus" / "defaults" / "main.yml")
    assert sorted(defaults["prometheus_rule_files"]) == sorted(p.stem for p in RULE_FILES)


@pytest.mark.parametrize(("stem", "rule"), alerts(), ids=lambda v: v if isinstance(v, str) else v["alert"])
def test_alert_has_severity_annotations_and_runbook(stem, rule):
    assert rule["labels"]["severity"] in {"critical", "warning"}
    for key in ("summary", "description", "runbook_url"):
        assert rule["annotations"].get(key), f"{rule['alert']} in {stem}.yml lacks annotation {key}"
    url = rule["annotations"]["runbook_url"]
    assert url.startswith("monitoring/runbooks.md#"), url
    assert url.split("#", 1)[1] in runbook_anchors(), f"{url}: no such section in monitoring/runbooks.md"
    assert re.fullmatch(r"[0-9]+[smh]", str(rule.get("for", "0s"))), rule.get("for")


def test_same_name_alerts_differ_by_severity():
    seen: dict[str, set[str]] = {}
    for _, rule in alerts():
        severities = seen.setdefault(rule["alert"], set())
        assert rule["labels"]["severity"] not in severities, f"{rule['alert']} repeats a severity"
        severities.add(rule["labels"]["severity"])


def unit_test_outcomes() -> dict[str, dict[str, list[int]]]:
    """alertname -> {'fires': [eval minutes with alerts], 'quiet': [eval minutes without]} over all test files."""
    out: dict[str, dict[str, list[int]]] = {}
    for path in TEST_FILES:
        for case in load(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                minutes = int(re.fullmatch(r"([0-9]+)m", str(check["eval_time"])).group(1))
                entry = out.setdefault(check["alertname"], {"fires": [], "quiet": []})
                entry["fires" if check.get("exp_alerts") else "quiet"].append(minutes)
    return out


def test_every_rule_file_has_a_unit_test_file():
    referenced = {(path.parent / ref).resolve() for path in TEST_FILES for ref in load(path)["rule_files"]}
    assert {p.resolve() for p in RULE_FILES} <= referenced


@pytest.mark.parametrize("name", sorted({rule["alert"] for _, rule in alerts()}))
def test_every_alert_is_tested_firing_then_resolving(name):
    outcome = unit_test_outcomes().get(name)
    assert outcome, f"no promtool unit test evaluates {name}"
    assert outcome["fires"], f"no unit test sees {name} fire"
    assert any(q > min(outcome["fires"]) for q in outcome["quiet"]), f"no unit test sees {name} resolve after firing"
    assert any(q < min(outcome["fires"]) for q in outcome["quiet"]), f"no unit test sees {name} quiet before it fires"


def promtool() -> str | None:
    return os.environ.get("PROMTOOL") or shutil.which("promtool")


@pytest.mark.skipif(promtool() is None, reason="promtool not installed here; the monitoring scenario runs it")
def test_promtool_check_rules():
    res = subprocess.run([promtool(), "check", "rules", *map(str, RULE_FILES)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.skipif(promtool() is None, reason="promtool not installed here; the monitoring scenario runs it")
def test_promtool_unit_tests_pass():
    res = subprocess.run(
        [promtool(), "test", "rules", *(p.name for p in TEST_FILES)], cwd=TESTS_DIR, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
