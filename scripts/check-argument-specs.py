#!/usr/bin/env python3
"""Every role has meta/argument_specs.yml, and its options match defaults/main.yml both ways.

Private roles (leading underscore) may spread their options over several entry points; the union
of all entry points is compared with the defaults.

The roles call the helpers of ``_common`` (config_apply, firewall, tls_cert...) with ``rolespec_validate: false``:
their inputs come from the collection's own code, the operator's values behind them are checked against the calling
role's own spec by the site preflight, and Ansible's validation task cost one worker per call and host (169 of the
lab's 2661 task executions in a no-op run). :func:`check_common_calls` checks those calls here instead, statically:
every ``_common_*`` variable a call passes is an option of its entry point, and every required option is passed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def check(role: Path) -> list[str]:
    spec_file = role / "meta" / "argument_specs.yml"
    if not spec_file.exists():
        return [f"{role.name}: meta/argument_specs.yml is missing"]
    specs = (yaml.safe_load(spec_file.read_text()) or {}).get("argument_specs", {})
    if "main" not in specs and not role.name.startswith("_"):
        return [f"{role.name}: argument_specs has no 'main' entry point"]
    documented: set[str] = set()
    for entry in specs.values():
        documented |= set((entry or {}).get("options", {}) or {})
    defaults_file = role / "defaults" / "main.yml"
    defaults = set((yaml.safe_load(defaults_file.read_text()) or {}) if defaults_file.exists() else {})
    problems = [f"{role.name}: default '{name}' is not in argument_specs" for name in sorted(defaults - documented)]
    prefix = "eterna_" if role.name.startswith("_") else f"{role.name}_"
    unprefixed = sorted(name for name in defaults if not name.startswith(prefix))
    problems += [f"{role.name}: default '{name}' lacks the prefix '{prefix}'" for name in unprefixed]
    for name, entry in specs.items():
        for opt, spec in ((entry or {}).get("options", {}) or {}).items():
            if not spec.get("required") and opt not in defaults and "default" not in spec:
                problems.append(f"{role.name}/{name}: option '{opt}' is neither required nor in defaults/main.yml")
    return problems


def _tasks(node: object) -> list[dict]:
    """Every task in a parsed task file or play list, blocks, rescues, handlers and plays' task lists included.

    :param node: what ``yaml.safe_load`` returned for the file.
    :returns: the task mappings, outermost first.
    """
    found: list[dict] = []
    if isinstance(node, list):
        for item in node:
            found += _tasks(item)
    elif isinstance(node, dict):
        found.append(node)
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            found += _tasks(node.get(key))
    return found


def common_calls(root: Path = ROOT) -> Iterator[tuple[Path, dict, dict]]:
    """Every call of ``_common`` (import_role or include_role) in the roles' tasks and handlers and the playbooks.

    :param root: the repository.
    :returns: (file, task, the task's import_role/include_role arguments) per call, files in sorted order.
    :raises yaml.YAMLError: on a file that is not YAML.
    """
    for path in sorted(
        [*root.glob("roles/*/tasks/*.yml"), *root.glob("roles/*/handlers/*.yml"), *root.glob("playbooks/**/*.yml")]
    ):
        for task in _tasks(yaml.safe_load(path.read_text())):
            call = task.get("ansible.builtin.import_role") or task.get("ansible.builtin.include_role")
            if isinstance(call, dict) and call.get("name") == "_common":
                yield path, task, call


def check_common_calls(root: Path = ROOT) -> list[str]:
    """The calls of ``_common``'s entry points against its argument specs, as Ansible's validation would check names.

    :param root: the repository (its ``roles/`` and ``playbooks/`` are read).
    :returns: one message per unknown ``_common_*`` variable, missing required option or unknown entry point, naming
        the file; empty when every call fits. Types are not checked: the values are templates until the run.
    :raises yaml.YAMLError: on a file that is not YAML.
    """
    specs = yaml.safe_load((root / "roles/_common/meta/argument_specs.yml").read_text())["argument_specs"]
    problems = []
    for path, task, call in common_calls(root):
        entry = call.get("tasks_from", "main")
        where = f"{path.relative_to(root)}: {task.get('name', '?')}"
        if entry not in specs:
            problems.append(f"{where}: _common has no entry point '{entry}' in its argument specs")
            continue
        options = specs[entry].get("options", {})
        given = {name for name in (task.get("vars") or {}) if name.startswith("_common_")}
        problems += [f"{where}: '{name}' is not an option of _common/{entry}" for name in sorted(given - set(options))]
        required = {name for name, spec in options.items() if spec.get("required")}
        problems += [f"{where}: _common/{entry} needs '{name}'" for name in sorted(required - given)]
    return problems


def main() -> int:
    problems = [p for role in sorted((ROOT / "roles").iterdir()) if role.is_dir() for p in check(role)]
    problems += check_common_calls()
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
