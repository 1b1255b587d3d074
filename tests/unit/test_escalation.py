"""Escalation policy: the inventories, Alertmanager's routes, the alert rules and docs/operations/escalation.md agree.

- filter_plugins/alerting.py: known vectors and bad input;
- every severity an alert uses has a level in every environment, and the role's default policy covers them too;
- the Alertmanager configuration rendered by the role's template (ansible-playbook on localhost, no host touched)
  routes each level's severity to a receiver that notifies exactly that level's addresses; ``amtool check-config``
  accepts it when amtool is on PATH (or named by $AMTOOL);
- the escalation page is what scripts/generate_docs.py makes of the data.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("lab", "staging", "production")


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ALERTING = _load("eterna_filter_alerting", ROOT / "filter_plugins" / "alerting.py")
GEN = _load("eterna_generate_docs", ROOT / "scripts" / "generate_docs.py")
POLICIES = {env: GEN.inventory_vars(env)["prometheus_alertmanager_escalation"] for env in ENVIRONMENTS}
RULE_SEVERITIES = set(GEN.alerts_by_severity())

POLICY = [
    {
        "severity": "critical",
        "repeat_interval": "1h",
        "email_to": ["a@x.org", "b@x.org", "a@x.org"],
        "webhook_urls": [],
    },
    {"severity": "warning", "email_to": ["a@x.org"], "webhook_urls": ["https://hook/w"], "response_time": "4h"},
]


def test_routes_and_receivers_of_a_policy():
    assert ALERTING.alertmanager_routes(POLICY) == [
        {"receiver": "critical", "matchers": ['severity="critical"'], "repeat_interval": "1h"},
        {"receiver": "warning", "matchers": ['severity="warning"']},
    ]
    assert ALERTING.alertmanager_receivers(POLICY) == [
        {
            "name": "critical",
            "email_configs": [{"to": "a@x.org", "send_resolved": True}, {"to": "b@x.org", "send_resolved": True}],
        },
        {
            "name": "warning",
            "email_configs": [{"to": "a@x.org", "send_resolved": True}],
            "webhook_configs": [{"url": "https://hook/w", "send_resolved": True}],
        },
    ]
    assert ALERTING.alertmanager_emails(POLICY) == ["a@x.org", "b@x.org"]
    assert ALERTING.alertmanager_webhook_urls(POLICY) == ["https://hook/w"]
    assert ALERTING.alertmanager_receiver("team") == {"name": "team"}
    assert set(ALERTING.FilterModule().filters()) == {
        "alertmanager_receiver",
        "alertmanager_routes",
        "alertmanager_receivers",
        "alertmanager_emails",
        "alertmanager_webhook_urls",
    }


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ([], "non-empty list"),
        ({"severity": "critical"}, "non-empty list"),
        (["critical"], "must be a mapping"),
        ([{"severity": "Critical"}], "must match"),
        ([{"severity": "team"}], "not 'team'"),
        ([{"severity": "critical"}, {"severity": "critical"}], "appears twice"),
        ([{"severity": "critical", "repeat_interval": "one hour"}], "not a duration"),
        ([{"severity": "critical", "email_to": "a@x.org"}], "list of strings"),
        ([{"severity": "critical", "webhook_urls": [""]}], "non-empty strings"),
    ],
)
def test_bad_policies_are_refused(policy, message):
    with pytest.raises(AnsibleFilterError, match=message):
        ALERTING.alertmanager_routes(policy)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_rule_severity_has_a_level(env):
    levels = [level["severity"] for level in POLICIES[env]]
    assert set(levels) >= RULE_SEVERITIES, f"{env}: no level for {sorted(RULE_SEVERITIES - set(levels))}"
    assert levels == [level["severity"] for level in POLICIES["production"]], "every environment has the same levels"
    for level in POLICIES[env]:
        assert level.get("response_time"), f"{env}/{level['severity']}: response_time is missing"
        assert isinstance(level.get("calls"), list), f"{env}/{level['severity']}: calls is missing"


def test_production_calls_someone_for_every_rule_severity():
    for level in POLICIES["production"]:
        if level["severity"] in RULE_SEVERITIES:
            assert level["calls"] and (level["email_to"] or level["webhook_urls"]), level["severity"]


def test_role_default_policy_covers_the_rule_severities():
    defaults = yaml.safe_load((ROOT / "roles" / "prometheus" / "defaults" / "main.yml").read_text())
    assert {level["severity"] for level in defaults["prometheus_alertmanager_escalation"]} >= RULE_SEVERITIES


def test_escalation_page_is_generated_from_the_data():
    for path, text in GEN.documents().items():
        if path.name == "escalation.md":
            assert path.exists() and path.read_text() == text, f"{path} is stale: run python3 scripts/generate_docs.py"


PLAY = """
- hosts: localhost
  gather_facts: false
  vars_files: [{defaults}, {inventory}]
  tasks:
    - ansible.builtin.template:
        src: {template}
        dest: {dest}
        mode: "0600"
"""


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """alertmanager.yml as the role's template renders it with each inventory's monitoring variables."""
    playbook_bin = Path(sys.executable).parent / "ansible-playbook"
    if not playbook_bin.exists():
        pytest.skip("ansible-playbook is not installed next to this Python")
    tmp = tmp_path_factory.mktemp("alertmanager")
    out = {env: tmp / f"alertmanager-{env}.yml" for env in ENVIRONMENTS}
    play = tmp / "render.yml"
    play.write_text(
        "".join(
            PLAY.format(
                defaults=ROOT / "roles/prometheus/defaults/main.yml",
                inventory=ROOT / f"inventories/{env}/group_vars/all/monitoring.yml",
                template=ROOT / "roles/prometheus/templates/etc/prometheus/alertmanager.yml.j2",
                dest=out[env],
            )
            for env in ENVIRONMENTS
        )
    )
    env_vars = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    extra = json.dumps(
        {"eterna_env": "lab", "eterna_master_key": "0" * 64, "ansible_python_interpreter": sys.executable}
    )
    result = subprocess.run(
        [str(playbook_bin), "-i", "localhost,", "-c", "local", str(play), "-e", extra],
        cwd=ROOT,
        env=env_vars,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alertmanager_routes_follow_the_policy(rendered, env):
    config = yaml.safe_load(rendered[env].read_text())
    policy = POLICIES[env]
    routes = config["route"]["routes"]
    assert [r["matchers"] for r in routes] == [[f'severity="{level["severity"]}"'] for level in policy]
    receivers = {r["name"]: r for r in config["receivers"]}
    for route, level in zip(routes, policy, strict=True):
        receiver = receivers[route["receiver"]]
        assert [c["to"] for c in receiver.get("email_configs", [])] == list(dict.fromkeys(level["email_to"]))
        assert [c["url"] for c in receiver.get("webhook_configs", [])] == list(dict.fromkeys(level["webhook_urls"]))
        assert route.get("repeat_interval") == level.get("repeat_interval")
    assert config["route"]["receiver"] == "team"
    if any(level["email_to"] for level in policy):
        assert config["global"]["smtp_smarthost"]


def test_amtool_accepts_the_rendered_configuration(rendered):
    amtool = os.environ.get("AMTOOL") or shutil.which("amtool")
    if not amtool:
        pytest.skip("amtool not found (set $AMTOOL); the monitoring scenario runs it on the host")
    for env, path in rendered.items():
        result = subprocess.run([amtool, "check-config", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, f"{env}: {result.stdout}{result.stderr}"
