"""Issue #24 §3: limits several layers read from one variable (filter_plugins/limits.py and the roles' defaults)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError

ROOT = Path(__file__).resolve().parents[2]
_SPEC = importlib.util.spec_from_file_location("eterna_filter_limits", ROOT / "filter_plugins" / "limits.py")
LIMITS = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(LIMITS)
nginx_size_bytes = LIMITS.nginx_size_bytes
consumer_timeout_ms = LIMITS.consumer_timeout_ms


def defaults(role: str) -> dict:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("512m", 512 * 1024**2),
        ("2g", 2 * 1024**3),
        ("2G", 2 * 1024**3),
        ("10k", 10240),
        (536870912, 536870912),
        ("0", 0),
    ],
)
def test_nginx_size_bytes(value, expected):
    assert nginx_size_bytes(value) == expected


@pytest.mark.parametrize("value", ["1.5g", "-1", "10mb", "", "g", True, None, "1 g"])
def test_nginx_size_bytes_refuses_what_nginx_refuses(value):
    with pytest.raises(AnsibleFilterError, match="nginx_upload_max_body_size"):
        nginx_size_bytes(value, "nginx_upload_max_body_size")


def test_consumer_timeout_outlasts_the_task_limit():
    assert consumer_timeout_ms(1500) == 1_800_000  # RabbitMQ's own default, 30 min, for the default 25 min limit
    assert consumer_timeout_ms("20") == 320_000
    for bad in (0, -5, "1.5", True, "x"):
        with pytest.raises(AnsibleFilterError, match="eterna_task_time_limit"):
            consumer_timeout_ms(bad)


def _fallback(text: str, variable: str) -> str:
    match = re.search(r"\{\{ " + variable + r" \| default\(([0-9]+)\)", text)
    assert match, f"{variable} has no literal fallback in {text!r}"
    return match.group(1)


def test_roles_fall_back_to_the_same_limits():
    """The app and the edge (upload size), the app and the broker (task time limit) read one variable each; when an
    inventory does not set it, their fallbacks must still agree."""
    app, nginx, rabbitmq = defaults("app"), defaults("nginx"), defaults("rabbitmq")
    upload = _fallback(app["app_upload_max_bytes"], "eterna_upload_max_bytes")
    assert _fallback(nginx["nginx_upload_max_body_size"], "eterna_upload_max_bytes") == upload
    limit = _fallback(app["app_celery_time_limit"], "eterna_task_time_limit")
    assert _fallback(rabbitmq["rabbitmq_consumer_timeout_ms"], "eterna_task_time_limit") == limit
    assert "consumer_timeout_ms" in rabbitmq["rabbitmq_consumer_timeout_ms"]


def test_app_env_and_units_carry_the_limits():
    env = (ROOT / "roles/app/templates/etc/eterna-app/app.env.j2").read_text()
    for name in ("MAX_UPLOAD_BYTES", "CELERY_TASK_TIME_LIMIT", "CELERY_TASK_SOFT_TIME_LIMIT", "DEPENDENCY_RETRY_AFTER"):
        assert re.search(rf"^{name}=", env, re.M), name
    unit = (ROOT / "roles/app/templates/etc/systemd/system/eterna-api.service.j2").read_text()
    assert "--timeout-graceful-shutdown {{ _app_graceful_stop }}" in unit
    assert "TimeoutStopSec={{ _app_graceful_stop | int + 15 }}" in unit
