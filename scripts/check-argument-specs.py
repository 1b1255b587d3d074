#!/usr/bin/env python3
"""Every role has meta/argument_specs.yml, and its options match defaults/main.yml both ways.

Private roles (leading underscore) may spread their options over several entry points; the union
of all entry points is compared with the defaults.
"""

from __future__ import annotations

import sys
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


def main() -> int:
    problems = [p for role in sorted((ROOT / "roles").iterdir()) if role.is_dir() for p in check(role)]
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
