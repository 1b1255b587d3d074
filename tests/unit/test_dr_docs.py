"""The disaster-recovery procedure in docs/operations-backup.md matches the DR playbook and its test step for step
(issue #20): the numbered list between the dr-tasks markers names, in order, every task the playbook runs (its
plays' include_role entry points, blocks flattened), and every check the table between the dr-test markers quotes
is in the Molecule test that runs the playbook."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations-backup.md"
PLAYBOOK = ROOT / "playbooks" / "disaster_recovery.yml"
TEST = ROOT / "molecule" / "backup" / "tests" / "test_backup.py"
TEST_FUNCTION = "test_disaster_recovery_brings_back_every_committed_row"


def _section(marker: str) -> str:
    text = DOC.read_text()
    match = re.search(rf"<!-- {marker}:start -->\n(.*?)<!-- {marker}:end -->", text, re.S)
    assert match, f"{DOC.name} lacks the {marker} markers"
    return match.group(1)


def _flatten(tasks: list[dict], role: str) -> list[str]:
    names: list[str] = []
    for task in tasks:
        if "block" in task:
            names += _flatten(task["block"] + task.get("rescue", []) + task.get("always", []), role)
        else:
            names.append(task["name"])
    return names


def playbook_steps() -> list[str]:
    """Task names of the DR playbook, in the order they run (per play, then per included task file)."""
    steps = []
    for play in yaml.safe_load(PLAYBOOK.read_text()):
        for task in play["tasks"]:
            include = task.get("ansible.builtin.include_role")
            assert include, f"{PLAYBOOK.name}: {task['name']} is not an include_role (extend this test)"
            path = ROOT / "roles" / include["name"] / "tasks" / f"{include['tasks_from']}.yml"
            steps += _flatten(yaml.safe_load(path.read_text()), include["name"])
    return steps


def documented_steps() -> list[tuple[int, str]]:
    return [(int(n), name) for n, name in re.findall(r"^([0-9]+)\. \*\*(.+?)\*\*", _section("dr-tasks"), re.M)]


def test_the_documented_steps_are_the_playbook_tasks_in_order():
    documented = documented_steps()
    assert [n for n, _ in documented] == list(range(1, len(documented) + 1)), "the list must be numbered 1, 2, 3..."
    assert [name.rstrip(".") for _, name in documented] == playbook_steps()


def test_every_check_the_page_quotes_is_in_the_dr_test():
    source = TEST.read_text()
    match = re.search(rf"^def {TEST_FUNCTION}\(.*?(?=^def |\Z)", source, re.S | re.M)
    assert match, f"{TEST.name} has no {TEST_FUNCTION}"
    body = match.group(0)
    quoted = re.findall(r"^\|[^|]+\| `(.+)` \|$", _section("dr-test"), re.M)
    assert len(quoted) >= 8, quoted
    missing = [q for q in quoted if q not in body]
    assert not missing, f"checks the page quotes but {TEST_FUNCTION} does not make: {missing}"


def test_the_comparison_notices_a_renamed_task():
    steps = playbook_steps()
    assert "Restore the latest backup and replay the archived WAL" in steps
    renamed = [s if s != "Start PostgreSQL" else "Start the server" for s in steps]
    assert renamed != [name.rstrip(".") for _, name in documented_steps()]
