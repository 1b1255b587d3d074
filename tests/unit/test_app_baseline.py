"""Issue #25, the baseline to monitor: the app's metrics, the app_baseline rules and the App dashboard agree.

- every eterna_* metric the app_baseline group reads is one the reference app defines (app/metrics.py), so a renamed
  metric cannot leave a rule that silently matches nothing;
- every recorded series a dashboard reads is recorded by a shipped rule file;
- every alert of the group has a panel of the App dashboard that draws the series it alerts on.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "roles" / "prometheus" / "files" / "rules"
APP_METRICS = ROOT / "examples" / "eterna_home_app" / "app" / "metrics.py"
APP_DASHBOARD = ROOT / "roles" / "grafana" / "files" / "dashboards" / "app.json"
NAME_RE = re.compile(r"\b[a-zA-Z_:][a-zA-Z0-9_:]*\b")
# Series names prometheus_client derives from a metric's name.
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def baseline_rules() -> list[dict]:
    doc = yaml.safe_load((RULES / "app.yml").read_text())
    (group,) = [g for g in doc["groups"] if g["name"] == "app_baseline"]
    return group["rules"]


def recorded_names() -> set[str]:
    return {
        rule["record"]
        for path in RULES.glob("*.yml")
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
        if "record" in rule
    }


def app_metric_names() -> set[str]:
    """Names of the Counter/Gauge/Histogram objects of app/metrics.py (their first string argument)."""
    return set(re.findall(r"(?:Counter|Gauge|Histogram)\(\s*\"([a-z_]+)\"", APP_METRICS.read_text()))


def base_name(series: str) -> str:
    for suffix in SUFFIXES:
        if series.endswith(suffix):
            return series[: -len(suffix)]
    return series


def test_the_app_defines_the_metrics_the_baseline_reads():
    defined = app_metric_names()
    assert {"eterna_http_requests", "eterna_http_requests_in_flight", "eterna_db_pool_connections_max"} <= {
        base_name(n) for n in defined
    }
    used = {n for rule in baseline_rules() for n in NAME_RE.findall(rule["expr"]) if n.startswith("eterna_")}
    assert used, "the app_baseline group reads no app metric"
    missing = sorted(n for n in used if n not in defined and base_name(n) not in {base_name(d) for d in defined})
    assert not missing, f"rules read metrics app/metrics.py does not define: {missing}"


def dashboard_exprs() -> dict[str, list[str]]:
    board = json.loads(APP_DASHBOARD.read_text())
    return {panel["title"]: [t["expr"] for t in panel["targets"]] for panel in board["panels"]}


def test_recorded_series_read_by_dashboards_exist():
    recorded = recorded_names()
    for path in (ROOT / "roles" / "grafana" / "files" / "dashboards").glob("*.json"):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                for name in NAME_RE.findall(target["expr"]):
                    if ":" in name:
                        assert name in recorded, f"{path.stem}/{panel['title']} reads {name}, recorded by no rule"


def test_every_baseline_alert_has_a_panel_drawing_its_series():
    panels = dashboard_exprs()
    recorded = {rule["record"]: rule["expr"] for rule in baseline_rules() if "record" in rule}
    for rule in baseline_rules():
        if "alert" not in rule:
            continue
        series = [n for n in NAME_RE.findall(rule["expr"]) if n in recorded]
        assert series, f"{rule['alert']} reads no recorded series"
        # The first recorded series of an alert is the one it compares with its threshold.
        drawn = [title for title, exprs in panels.items() if any(series[0] in e for e in exprs)]
        assert drawn, f"{rule['alert']}: no App panel draws {series[0]}"
