#!/usr/bin/env python3
"""Fail when the master key or any secret derived from it appears in run output or logs.

Every credential of the platform is named in ``CREDENTIALS`` (filter_plugins/secrets.py), which this script reads,
generations 0-9 of each (a rotation raises one); it also finds the literal ``derive_secret('lab/demo-owner')``-style
calls of inventories and scenarios. It derives each value from the master key and searches the given files.
Not searched: login roles an operator adds to ``postgres_users`` with a purpose of their own.
The access-token signing keys of every environment and generation 0-9 (``jwt_keyring``) are searched too, and
anything shaped like an issued credential: a JWT, an argon2 or bcrypt password hash.
Leaks are reported by purpose name, never by value.

    scripts/leak_check.py --key "$KEY" converge-vvv.log ansible.log
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CALL = re.compile(r"derive_secret\(\s*['\"]([a-z0-9_./-]+)['\"]([^)]*)\)")
_KWARG = re.compile(r"(length|fmt|generation)\s*=\s*['\"]?([A-Za-z0-9_]+)['\"]?")
# Environments and key generations whose JWT signing keys are searched.
JWT_ENVIRONMENTS = ("lab", "staging", "production")
JWT_GENERATIONS = range(10)
# Generations of the platform credentials searched (rotation raises one: README "Rotation").
CREDENTIAL_GENERATIONS = range(10)
# Credentials issued at run time: never derivable, recognisable by their shape.
SHAPES = {
    "a JWT (access token)": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{20,}"),
    "an argon2 password hash": re.compile(r"\$argon2(?:id|i|d)\$v=\d+\$"),
    "a bcrypt password hash": re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}"),
}


def _secrets_module():
    spec = importlib.util.spec_from_file_location("eterna_secrets", ROOT / "filter_plugins" / "secrets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def derivations(root: Path = ROOT) -> set[tuple[str, int, str, int]]:
    """(purpose, length, fmt, generation) of every credential of CREDENTIALS and every literal derive_secret call
    under root."""
    table = _secrets_module().CREDENTIALS
    found = {(name, c.length, c.fmt, generation) for name, c in table.items() for generation in CREDENTIAL_GENERATIONS}
    for top in ("roles", "playbooks", "inventories", "molecule", "examples"):
        for path in (root / top).rglob("*"):
            if path.suffix not in {".yml", ".yaml", ".j2", ".py"} or not path.is_file():
                continue
            for purpose, rest in _CALL.findall(path.read_text(errors="replace")):
                kwargs = dict(_KWARG.findall(rest))
                positional = [a.strip() for a in rest.split(",") if a.strip() and "=" not in a]
                generation = int(kwargs.get("generation", positional[0] if positional else 0) or 0)
                if not str(generation).isdigit():
                    generation = 0
                found.add((purpose, int(kwargs.get("length", 32)), kwargs.get("fmt", "alnum"), generation))
    return found


def secrets_for(master_key: str, root: Path = ROOT) -> dict[str, str]:
    """Name -> value of the master key and every derived secret."""
    sec = _secrets_module()
    values = {"eterna_master_key": master_key, "app_secret_key": sec.app_secret_key(master_key)}
    for purpose, length, fmt, generation in sorted(derivations(root)):
        name = f"{purpose} (length={length}, fmt={fmt}, generation={generation})"
        values[name] = sec.derive_secret(master_key, purpose, generation=generation, length=length, fmt=fmt)
    for env in JWT_ENVIRONMENTS:
        for generation in JWT_GENERATIONS:
            ring = sec.jwt_keyring(master_key, env, generation)
            values[f"JWT signing key {env}-g{generation}"] = ring.split(":")[1]
    return values


def find_leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Names of the secrets whose value occurs in ``text``, then the kinds of issued credentials (SHAPES) seen."""
    leaks = sorted(name for name, value in secrets.items() if value and value in text)
    return leaks + [kind for kind, shape in SHAPES.items() if shape.search(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, help="the master key of the run")
    parser.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    secrets = secrets_for(args.key)
    text = "\n".join(f.read_text(errors="replace") for f in args.files if f.exists())
    leaks = find_leaks(text, secrets)
    print(f"leak check: {len(secrets)} secrets searched in {len(args.files)} file(s), {len(text)} bytes")
    for name in leaks:
        print(f"LEAK: {name}")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
