#!/usr/bin/env python3
"""Write the Grafana dashboards of roles/grafana/files/dashboards/ from their data in monitoring/dashboards.yml.

The JSON files are committed (Grafana provisions them as they are); run this script after editing the data.
tests/unit/test_grafana_dashboards.py fails when the committed files and the data disagree.

    python3 monitoring/build_dashboards.py          # rewrite the JSON files
    python3 monitoring/build_dashboards.py --check  # exit 1 when a file is out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DATA = HERE / "dashboards.yml"
OUT = HERE.parent / "roles" / "grafana" / "files" / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "eterna-prometheus"}
# The $host variable of dashboards with host_variable: true.
HOST_VAR = {
    "name": "host",
    "label": "Host",
    "type": "query",
    "datasource": DATASOURCE,
    "definition": "label_values(node_uname_info, host)",
    "query": {"query": "label_values(node_uname_info, host)", "refId": "host"},
    "includeAll": True,
    "multi": True,
    "allValue": ".*",
    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
    "refresh": 2,
    "sort": 1,
}
PANEL_KEYS = {"title", "kind", "unit", "expr", "legend", "queries", "description"}


def panel_json(index: int, panel: dict[str, Any]) -> dict[str, Any]:
    """Grafana's JSON of one panel of monitoring/dashboards.yml.

    :param index: the panel's position on its dashboard (0 first): its id and place in the grid.
    :param panel: title, description, kind (default timeseries), unit (default none), and expr with legend or
        queries [{expr, legend}].
    :returns: the panel, querying the provisioned Prometheus datasource.
    :raises KeyError: a panel without title, description or any query.
    :raises ValueError: a key the format does not know (a misspelt one would be dropped silently).
    """
    unknown = sorted(set(panel) - PANEL_KEYS)
    if unknown:
        raise ValueError(f"panel {panel.get('title')!r}: unknown keys {unknown} (known: {sorted(PANEL_KEYS)})")
    kind = panel.get("kind", "timeseries")
    queries = panel.get("queries") or [{"expr": panel["expr"], "legend": panel["legend"]}]
    width = 6 if kind == "stat" else 12
    per_row = 24 // width
    return {
        "id": index + 1,
        "type": kind,
        "title": panel["title"],
        "description": panel["description"],
        "datasource": DATASOURCE,
        "gridPos": {"h": 4 if kind == "stat" else 8, "w": width, "x": (index % per_row) * width, "y": index * 8},
        "fieldConfig": {"defaults": {"unit": panel.get("unit", "none")}, "overrides": []},
        "options": {},
        "targets": [
            {"refId": chr(ord("A") + n), "datasource": DATASOURCE, "expr": q["expr"], "legendFormat": q["legend"]}
            for n, q in enumerate(queries)
        ],
    }


def dashboard_json(spec: dict[str, Any]) -> dict[str, Any]:
    """Grafana's JSON of one dashboard of monitoring/dashboards.yml (uid, title, host_variable, panels)."""
    return {
        "uid": spec["uid"],
        "title": spec["title"],
        "tags": ["eterna"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "annotations": {"list": []},
        "templating": {"list": [HOST_VAR] if spec.get("host_variable") else []},
        "panels": [panel_json(i, p) for i, p in enumerate(spec["panels"])],
    }


def render(data: Path = DATA) -> dict[str, str]:
    """File name -> JSON text of every dashboard in ``data``.

    :raises OSError: ``data`` cannot be read; yaml.YAMLError: it is not YAML; KeyError: a field is missing.
    """
    dashboards = yaml.safe_load(data.read_text(encoding="utf-8"))
    return {f"{name}.json": json.dumps(dashboard_json(spec), indent=2) + "\n" for name, spec in dashboards.items()}


def main(argv: list[str]) -> int:
    """Rewrite the JSON files, or with ``--check`` list the stale ones and exit 1."""
    stale = []
    for name, text in render().items():
        path = OUT / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    for name in stale:
        print(f"{name} is out of date: run monitoring/build_dashboards.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
