"""Unit tests for filter_plugins/validation.py (argument spec checks and password strength)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

REPO_ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("eterna_filter_validation", REPO_ROOT / "filter_plugins/validation.py")
assert _spec is not None and _spec.loader is not None
val = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(val)


def options(role: str) -> dict:
    text = (REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text()
    return yaml.safe_load(text)["argument_specs"].get("main", {}).get("options", {})


@pytest.mark.parametrize(
    "role", sorted(p.parent.parent.name for p in REPO_ROOT.glob("roles/*/meta/argument_specs.yml"))
)
def test_every_literal_default_passes_its_own_spec(role):
    """The check refuses nothing the roles ship (Jinja defaults are checked once templated, in the preflight)."""
    opts = options(role)
    literal = {k: o["default"] for k, o in opts.items() if "default" in o and "{{" not in str(o["default"])}
    assert val.argument_spec_errors(literal, opts, role) == []


@pytest.mark.parametrize(
    ("provided", "expected"),
    [
        ({"postgres_port": 99999}, "postgres: postgres_port must be a port number between 1 and 65535 (got 99999)"),
        ({"postgres_port": 0}, "postgres_port must be a port number between 1 and 65535 (got 0)"),
        ({"postgres_port": "lots"}, "argument 'postgres_port' is of type str and we were unable to convert to int"),
        ({"postgres_replication_role": "leader"}, "postgres_replication_role must be one of"),
    ],
)
def test_bad_values_are_named(provided, expected):
    errors = val.argument_spec_errors(provided, options("postgres"), "postgres")
    assert any(expected in e for e in errors), errors


def test_good_values_and_unknown_names_pass():
    assert val.argument_spec_errors({"postgres_port": "5433", "unrelated": 1}, options("postgres"), "postgres") == []


def test_bad_arguments():
    with pytest.raises(AnsibleFilterError, match="must be mappings"):
        val.argument_spec_errors(["postgres_port"], options("postgres"))


@pytest.mark.parametrize("weak", ["Password1", "changeme123", "eterna2024!", "qwertyuiop", "Tr0ub4dor&3"])
def test_weak_passwords(weak):
    reason = val.password_weakness(weak, "grafana_admin_password")
    assert reason.startswith("grafana_admin_password is weak: about 10^")
    assert weak not in reason


@pytest.mark.parametrize("strong", ["Kp9/Qz2+Lm7=vT4#wX8", "correct horse battery staple orbit", "x7$Lq!9zR@2mWv"])
def test_strong_passwords(strong):
    assert val.password_weakness(strong, "p") == ""


def test_non_string_is_weak():
    assert val.password_weakness(12345678, "p") == "p is not a string (int)"
