"""Limits that several layers must agree on (issue #24 §3), converted to one unit so preflights can compare them.

- ``nginx_size_bytes``: an nginx size (``client_max_body_size`` syntax: bytes, or a number with ``k``/``m``/``g``,
  case-insensitive, powers of 1024; nginx's documentation, "Syntax" of the core module) in bytes.
- ``consumer_timeout_ms``: RabbitMQ's ``consumer_timeout`` (ms) derived from the task time limit (s) with the margin
  the broker gives a task after Celery's hard limit has killed it.

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


_SIZE_RE = re.compile(r"^([0-9]+)([kKmMgG]?)$")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
# Seconds between Celery's hard time limit and RabbitMQ's consumer_timeout: the killed task's acknowledgement
# reaches the broker well before the broker would close the channel and redeliver.
CONSUMER_TIMEOUT_MARGIN_S = 300


def nginx_size_bytes(value: Any, what: str = "size") -> int:
    """Bytes of an nginx size such as ``512m``, ``2g``, ``10k`` or ``1048576``.

    ``value``: str or int (an int is bytes). Returns int bytes. Raises AnsibleFilterError naming ``what`` for
    anything else (a negative number, a fraction, an unknown unit, a bool).
    """
    if isinstance(value, bool):
        raise AnsibleFilterError(f"nginx_size_bytes: {what} must be an nginx size such as 512m (got {value!r})")
    match = _SIZE_RE.match(str(value).strip())
    if not match:
        raise AnsibleFilterError(f"nginx_size_bytes: {what} must be an nginx size such as 512m (got {value!r})")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def consumer_timeout_ms(task_time_limit: Any, what: str = "eterna_task_time_limit") -> int:
    """RabbitMQ consumer_timeout in milliseconds for a Celery hard time limit of ``task_time_limit`` seconds.

    Returns (limit + CONSUMER_TIMEOUT_MARGIN_S) * 1000. Raises AnsibleFilterError naming ``what`` unless the limit
    is a positive whole number of seconds.
    """
    if isinstance(value := task_time_limit, bool) or not re.fullmatch(r"[0-9]+", str(value).strip()):
        raise AnsibleFilterError(f"consumer_timeout_ms: {what} must be whole seconds (got {task_time_limit!r})")
    seconds = int(str(value).strip())
    if seconds <= 0:
        raise AnsibleFilterError(f"consumer_timeout_ms: {what} must be above 0 (got {seconds})")
    return (seconds + CONSUMER_TIMEOUT_MARGIN_S) * 1000


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"nginx_size_bytes": nginx_size_bytes, "consumer_timeout_ms": consumer_timeout_ms}
