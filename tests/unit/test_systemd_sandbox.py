"""Issue #16 §6: one sandbox mechanism for every unit the collection confines (filter_plugins/systemd.py)."""

from __future__ import annotations

import re

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from module_loader import ROOT, load_file

SYSTEMD = load_file("filter_plugins/systemd.py", "eterna_filter_systemd")
systemd_sandbox = SYSTEMD.systemd_sandbox
BASELINE = SYSTEMD.SANDBOX_BASELINE


def lines(text: str) -> list[tuple[str, str]]:
    return [tuple(line.split("=", 1)) for line in text.split("\n")]


def test_the_baseline_alone():
    assert lines(systemd_sandbox()) == list(BASELINE.items())
    assert systemd_sandbox({}) == systemd_sandbox(None)


def test_a_unit_replaces_adds_and_removes_directives():
    out = dict(
        lines(
            systemd_sandbox(
                {
                    "ProtectSystem": "full",
                    "ReadWritePaths": "/var/lib/x",
                    "CapabilityBoundingSet": None,
                    "UMask": "0027",
                }
            )
        )
    )
    assert out["ProtectSystem"] == "full"
    assert out["ReadWritePaths"] == "/var/lib/x"
    assert out["UMask"] == "0027"
    assert "CapabilityBoundingSet" not in out
    assert set(out) == set(BASELINE) - {"CapabilityBoundingSet"} | {"ReadWritePaths", "UMask"}


def test_lists_repeat_the_directive_in_order_and_booleans_are_yes_no():
    out = systemd_sandbox({"SystemCallFilter": ["@system-service", "~@privileged"], "PrivateUsers": True})
    assert "SystemCallFilter=@system-service\nSystemCallFilter=~@privileged" in out
    assert "PrivateUsers=yes" in out.split("\n")
    assert "NoNewPrivileges=no" in systemd_sandbox({"NoNewPrivileges": False}).split("\n")


@pytest.mark.parametrize(
    "settings",
    [
        ["NoNewPrivileges"],
        {"no_new_privileges": "yes"},
        {"Protect System": "yes"},
        {"ReadWritePaths": "/a\nExecStart=/bin/sh"},
        {"UMask": {"nested": 1}},
    ],
)
def test_bad_settings_are_refused(settings):
    with pytest.raises(AnsibleFilterError, match="systemd_sandbox"):
        systemd_sandbox(settings)


# Baseline directives that only the sandbox filter may write: a template that spells one out copies the mechanism.
_LITERAL = re.compile(r"^(NoNewPrivileges|ProtectKernelTunables|ProtectKernelModules|RestrictNamespaces)=", re.M)


def test_no_template_writes_the_sandbox_by_hand():
    copies = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "roles").glob("*/templates/**/*.j2"))
        if _LITERAL.search(path.read_text())
    ]
    assert not copies, copies


def _role_sandboxes() -> list[tuple[str, str, dict]]:
    found = []
    for path in sorted((ROOT / "roles").glob("*/vars/main.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for name, value in data.items():
            if name.endswith("_sandbox") and isinstance(value, dict):
                units = value.values() if name == "_prometheus_sandbox" else [value]
                found += [(path.parts[-3], name, unit) for unit in units]
    return found


@pytest.mark.parametrize(("role", "name", "settings"), _role_sandboxes(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_role_sandbox_renders(role: str, name: str, settings: dict):
    """Each role's sandbox data is accepted by the filter and keeps the baseline's core (no new privileges, a
    read-only system outside the unit's paths)."""
    out = dict(lines(systemd_sandbox(settings)))
    assert out["NoNewPrivileges"] == "yes", (role, name)
    assert out["ProtectSystem"] in ("strict", "full"), (role, name)


def test_the_role_sandboxes_are_found():
    roles = {role for role, _, _ in _role_sandboxes()}
    expected = {"app", "backup", "etcd", "haproxy", "minio", "nginx", "patroni", "postgres", "prometheus"}
    assert expected | {"hardening", "node_exporter", "rabbitmq", "redis", "rsyslog", "seaweedfs"} <= roles, roles


def test_filter_module_exposes_it():
    assert SYSTEMD.FilterModule().filters()["systemd_sandbox"] is systemd_sandbox
