"""The supported Debian releases are named once (filter_plugins/releases.py) and every role follows that table."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("releases", ROOT / "filter_plugins" / "releases.py")
assert _spec is not None and _spec.loader is not None
releases = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(releases)
SUPPORTED_RELEASES, for_release, unsupported_release = (
    releases.SUPPORTED_RELEASES,
    releases.for_release,
    releases.unsupported_release,
)

ROLES = sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "tasks" / "main.yml").exists())
DEBIAN_13 = {"distribution": "Debian", "distribution_major_version": "13", "distribution_release": "trixie"}


def _vars(role: str) -> dict:
    path = ROOT / "roles" / role / "vars" / "main.yml"
    return yaml.safe_load(path.read_text()) or {} if path.exists() else {}


def test_supported_releases_pass_and_others_are_refused_by_name() -> None:
    assert unsupported_release(DEBIAN_13, "postgres") == ""
    assert unsupported_release({**DEBIAN_13, "distribution_major_version": "12"}, "postgres") == ""
    old = {"distribution": "Debian", "distribution_major_version": "11", "distribution_release": "bullseye"}
    assert unsupported_release(old, "postgres") == (
        "postgres: Debian 11 (bullseye) is not supported; supported: Debian 12 (bookworm), Debian 13 (trixie)"
    )
    ubuntu = {"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_release": "noble"}
    assert unsupported_release(ubuntu, "redis").startswith("redis: Ubuntu 24 (noble) is not supported")
    assert "facts were not gathered" in unsupported_release({}, "nginx")
    assert "facts were not gathered" in unsupported_release(None, "nginx")


def test_for_release_reads_the_hosts_row_and_nothing_elsewhere() -> None:
    table = {"12": {"version": 15}, "13": {"version": 17}}
    assert for_release(table, DEBIAN_13) == {"version": 17}
    assert for_release(table, {**DEBIAN_13, "distribution_major_version": "11"}) == {}
    assert for_release(table, None) == {}
    row = for_release(table, DEBIAN_13)
    row["version"] = 0
    assert table["13"]["version"] == 17, "the caller gets a copy"


@pytest.mark.parametrize("role", [r for r in ROLES if f"_{r}_releases" in _vars(r)])
def test_every_release_table_has_exactly_the_supported_releases(role: str) -> None:
    table = _vars(role)[f"_{role}_releases"]
    assert sorted(table) == sorted(SUPPORTED_RELEASES), f"{role}: _{role}_releases has {sorted(table)}"
    keys = {frozenset(row) for row in table.values()}
    assert len(keys) == 1, f"{role}: every release's row sets the same keys"


@pytest.mark.parametrize("role", [r for r in ROLES if r not in ("_common", "lab_container")])
def test_every_role_refuses_an_unsupported_release_and_lists_both_in_its_metadata(role: str) -> None:
    tasks = "".join(p.read_text() for p in (ROOT / "roles" / role / "tasks").glob("*.yml"))
    assert f"unsupported_release('{role}')" in tasks, f"{role}: no release check"
    meta = yaml.safe_load((ROOT / "roles" / role / "meta" / "main.yml").read_text())
    debian = [p for p in meta["galaxy_info"]["platforms"] if p["name"] == "Debian"]
    assert sorted(debian[0]["versions"]) == sorted(SUPPORTED_RELEASES.values())
