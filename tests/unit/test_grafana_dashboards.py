"""Static validation of the Grafana role's dashboards and provisioning files (no Grafana needed).

The monitoring Molecule scenario sends every dashboard expression to a running Prometheus; here the structure is
checked: unique uids, every panel queries the provisioned datasource with PromQL targets, template variables are
defined, the provisioning templates render to what Grafana expects, and the JSON matches its generator.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import jinja2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "grafana"
DASHBOARD_FILES = sorted((ROLE / "files" / "dashboards").glob("*.json"))
ROLE_VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
DATASOURCE_UID = ROLE_VARS["_grafana_datasource_uid"]
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range", "__all"}


def dashboards() -> list[tuple[str, dict]]:
    return [(path.stem, json.loads(path.read_text())) for path in DASHBOARD_FILES]


def panels() -> list[tuple[str, dict]]:
    return [(f"{name}/{panel['title']}", panel) for name, board in dashboards() for panel in board["panels"]]


def render(template: Path, **variables) -> dict:
    """Render a role template with stand-ins for the Ansible filters it uses, then parse it as YAML."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)  # noqa: S701 - YAML, not HTML
    env.filters["to_json"] = json.dumps
    context = {"ansible_managed": "Ansible managed", **ROLE_VARS, **variables}
    return yaml.safe_load(env.from_string(template.read_text()).render(**context))


def test_the_role_ships_exactly_the_dashboards_it_provisions():
    assert sorted(p.stem for p in DASHBOARD_FILES) == sorted(DEFAULTS["grafana_dashboards"])
    assert {"overview", "app", "postgres", "redis", "rabbitmq-celery", "nginx", "hosts"} <= {
        p.stem for p in DASHBOARD_FILES
    }


def test_uids_and_titles_are_unique():
    boards = [b for _, b in dashboards()]
    uids = [b["uid"] for b in boards]
    assert len(set(uids)) == len(uids)
    assert all(re.fullmatch(r"[a-z0-9-]{1,40}", uid) for uid in uids), uids
    assert len({b["title"] for b in boards}) == len(boards)


@pytest.mark.parametrize(("name", "board"), dashboards(), ids=lambda v: v if isinstance(v, str) else "")
def test_dashboard_structure(name, board):
    assert board["panels"], f"{name} has no panel"
    assert board.get("id") is None, "provisioned dashboards carry no numeric id"
    ids = [p["id"] for p in board["panels"]]
    assert len(set(ids)) == len(ids), f"{name}: duplicate panel ids"
    for var in board["templating"]["list"]:
        assert var["datasource"]["uid"] == DATASOURCE_UID


@pytest.mark.parametrize(("where", "panel"), panels(), ids=lambda v: v if isinstance(v, str) else "")
def test_panel_queries_the_provisioned_datasource_with_promql(where, panel):
    assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}, where
    assert panel["targets"], f"{where} has no target"
    ref_ids = [t["refId"] for t in panel["targets"]]
    assert len(set(ref_ids)) == len(ref_ids), f"{where}: duplicate refId"
    for target in panel["targets"]:
        assert target["datasource"]["uid"] == DATASOURCE_UID, where
        expr = target["expr"].strip()
        assert expr, f"{where}: empty expr"
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), f"{where}: unbalanced {expr}"
        assert expr.count('"') % 2 == 0, f"{where}: unbalanced quotes in {expr}"


@pytest.mark.parametrize(("name", "board"), dashboards(), ids=lambda v: v if isinstance(v, str) else "")
def test_template_variables_are_defined(name, board):
    defined = {v["name"] for v in board["templating"]["list"]} | BUILTIN_VARIABLES
    used = {m for p in board["panels"] for t in p["targets"] for m in re.findall(r"\$(\w+)", t["expr"])}
    assert used <= defined, f"{name} uses undefined variables {used - defined}"


def test_datasource_provisioning_uses_the_uid_the_panels_reference():
    doc = render(
        ROLE / "templates/etc/grafana/provisioning/datasources/eterna.yml.j2",
        grafana_prometheus_url="https://mon1:9090",
        grafana_prometheus_user="admin",
        grafana_prometheus_password="not-a-real-secret-0123456789",  # noqa: S106 - test value
    )
    assert doc["apiVersion"] == 1
    (source,) = doc["datasources"]
    assert source["uid"] == DATASOURCE_UID
    assert source["type"] == "prometheus"
    assert source["url"].startswith("https://")
    assert source["basicAuth"] is True
    assert source["secureJsonData"]["basicAuthPassword"] == "not-a-real-secret-0123456789"
    assert "basicAuthPassword" not in source.get("jsonData", {})


def test_dashboard_provisioning_points_at_the_copied_files():
    doc = render(ROLE / "templates/etc/grafana/provisioning/dashboards/eterna.yml.j2")
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == ROLE_VARS["_grafana_dashboards_dir"]
    assert provider["allowUiUpdates"] is False


def _syntax_filters() -> dict:
    spec = importlib.util.spec_from_file_location("eterna_filter_syntax_grafana", ROOT / "filter_plugins/syntax.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FilterModule().filters()


def test_grafana_ini_disables_anonymous_access_and_sign_up():
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)  # noqa: S701 - INI, not HTML
    env.filters.update(_syntax_filters())  # host_port builds root_url
    text = env.from_string((ROLE / "templates/etc/grafana/grafana.ini.j2").read_text()).render(
        ansible_managed="Ansible managed",
        grafana_listen_address="10.0.0.9",
        grafana_port=3000,
        grafana_root_url="",
        grafana_admin_user="admin",
        grafana_secret_key="k" * 40,
        **ROLE_VARS,
    )
    sections: dict[str, dict[str, str]] = {}
    current = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
        elif "=" in line and not line.startswith(";"):
            key, value = (s.strip() for s in line.split("=", 1))
            sections.setdefault(current, {})[key] = value
    assert sections["auth.anonymous"]["enabled"] == "false"
    assert sections["users"]["allow_sign_up"] == "false"
    assert sections["server"]["protocol"] == "https"
    assert sections["server"]["root_url"] == "https://10.0.0.9:3000/"
    assert sections["security"]["admin_password"] == "$__file{" + ROLE_VARS["_grafana_admin_password_file"] + "}"


def test_committed_json_matches_the_generator():
    spec = importlib.util.spec_from_file_location("build_dashboards", ROOT / "monitoring" / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rendered = module.render()
    assert sorted(rendered) == sorted(p.name for p in DASHBOARD_FILES)
    for path in DASHBOARD_FILES:
        assert path.read_text() == rendered[path.name], f"{path.name} is stale: run monitoring/build_dashboards.py"


def test_a_misspelt_panel_key_fails_the_build(tmp_path):
    spec = importlib.util.spec_from_file_location("build_dashboards", ROOT / "monitoring" / "build_dashboards.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = tmp_path / "dashboards.yml"
    data.write_text("x:\n  uid: x\n  title: X\n  panels:\n    - {title: P, expr: up, legnd: l, description: d}\n")
    with pytest.raises(ValueError, match=r"panel 'P': unknown keys \['legnd'\]"):
        module.render(data)
