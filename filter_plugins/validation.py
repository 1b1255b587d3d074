"""Input checks the site preflight runs for every host before phase 0 (playbooks/preflight.yml).

- ``argument_spec_errors``: the variables an inventory sets for a role, checked against the role's
  ``meta/argument_specs.yml`` (types, choices, list elements) with ansible-core's own validator, plus the ranges
  the spec format cannot express (ansible-lint's schema forbids extra keys in an option): an ``int`` option named
  ``*_port`` is a port (1-65535), one named ``*_generation`` or ``*_keep``/``*_days``/``*_seconds`` is >= 0.
- ``password_weakness``: a strength estimate of an operator-set password with zxcvbn (Dropbox's estimator: the
  guesses an attacker with dictionaries, keyboard patterns, dates and l33t substitutions needs).

All logic lives in plain, typed functions; ``FilterModule`` only maps the public names.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - exercised only when ansible is absent

    class AnsibleFilterError(ValueError):  # type: ignore[no-redef]
        """Stand-in used when ansible-core is not importable."""


# zxcvbn's guesses_log10 below which a password is refused: 10^12 guesses, about 40 bits; "Password1" is 10^2.6.
MIN_GUESSES_LOG10 = 12.0
# Keys of an argument_specs option that ansible-core's validator understands (the rest is documentation).
_VALIDATOR_KEYS = ("type", "choices", "elements", "options", "no_log")
_NON_NEGATIVE_RE = re.compile(r".*_(generation|keep|days|seconds|timeout|count|size_mb|workers|concurrency)$")


def _native(value: Any) -> Any:
    """``value`` rebuilt from plain dicts, lists and strs.

    Ansible hands a filter its arguments as lazy, tagged containers. ansible-core's validator deep-copies what it
    checks, and a deep copy of a lazy container copies its templar and every variable behind it: 63 s of a 101 s
    ``site.yml --check`` with 3 hosts (py-spy), against 4 s with plain values (1 Dec 2026, 2 cores, load 5).
    Raises nothing; values of other types are returned as they are.
    """
    if isinstance(value, Mapping):
        return {_native(key): _native(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_native(item) for item in value]
    if isinstance(value, str):
        return str(value)
    return value


def _plain_spec(options: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The spec without defaults or required flags: only what the inventory sets is checked, as it is given."""
    plain = {}
    for name, option in options.items():
        entry = {key: option[key] for key in _VALIDATOR_KEYS if key in option}
        if isinstance(entry.get("options"), Mapping):
            entry["options"] = _plain_spec(entry["options"])
        plain[name] = entry
    return plain


def _range_error(name: str, option: Mapping[str, Any], value: Any) -> str | None:
    if option.get("type") != "int" or isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None  # the type check reports it
    if name.endswith("_port") and not 1 <= number <= 65535:
        return f"{name} must be a port number between 1 and 65535 (got {value})"
    if _NON_NEGATIVE_RE.fullmatch(name) and number < 0:
        return f"{name} must be >= 0 (got {value})"
    return None


def argument_spec_errors(provided: Any, options: Any, role: str = "role") -> list[str]:
    """Messages for each variable of ``provided`` that ``options`` (an argument_specs entry point's options) refuses.

    ``provided`` holds only the variables the inventory sets (names not in the spec are ignored). Returns an empty
    list when everything passes.  Raises AnsibleFilterError if the arguments are not mappings.
    """
    if not isinstance(provided, Mapping) or not isinstance(options, Mapping):
        raise AnsibleFilterError(f"argument_spec_errors: {role}: provided values and options must be mappings")
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    given = {name: _native(provided[name]) for name in options if name in provided}
    result = ArgumentSpecValidator(_native(_plain_spec(options))).validate(given)
    errors = [f"{role}: {message}" for message in result.error_messages]
    for name, value in given.items():
        message = _range_error(name, options[name], value)
        if message:
            errors.append(f"{role}: {message}")
    return errors


def password_weakness(value: Any, name: str = "password") -> str:
    """Why ``value`` is a weak password ('' when it is not), by zxcvbn's estimate of the guesses needed.

    Only the first 100 characters are scored (zxcvbn's cost grows with length; longer secrets are derived ones).
    Non-strings are reported as weak rather than scored.  Raises AnsibleFilterError if zxcvbn is not installed
    on the controller (it is pinned in pyproject.toml).
    """
    if not isinstance(value, str) and type(value).__name__ != "EncryptedString":
        return f"{name} is not a string ({type(value).__name__})"
    text = str(value)
    try:
        from zxcvbn import zxcvbn
    except ImportError as exc:
        raise AnsibleFilterError(
            "password_weakness: zxcvbn is required on the controller (pip install zxcvbn)"
        ) from exc
    result = zxcvbn(text[:100])
    if result["guesses_log10"] >= MIN_GUESSES_LOG10:
        return ""
    warning = result["feedback"].get("warning") or "easy to guess"
    return (
        f"{name} is weak: about 10^{result['guesses_log10']:.1f} guesses (10^{MIN_GUESSES_LOG10:.0f} needed); "
        f"{warning.rstrip('.')}"
    )


class FilterModule:
    """Ansible filter entry point."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"argument_spec_errors": argument_spec_errors, "password_weakness": password_weakness}
