"""benchmarks/task_executions.py counts the executions of a real run's log, as Ansible's default callback prints it."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

from module_loader import run_local_playbook

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("task_executions", ROOT / "benchmarks" / "task_executions.py")
task_executions = importlib.util.module_from_spec(_spec)
sys.modules["task_executions"] = task_executions  # dataclasses resolve their annotations through sys.modules
_spec.loader.exec_module(task_executions)


def _run(tmp_path: Path) -> str:
    """Run a play on two local hosts: a role with a loop, a task skipped on one host and on both, an include."""
    tasks = tmp_path / "roles" / "demo" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(
        textwrap.dedent(
            """\
            - name: Loop of three items
              ansible.builtin.debug: {msg: "{{ item }}"}
              loop: [1, 2, 3]
            - name: Skipped on h2
              ansible.builtin.debug: {msg: here}
              when: inventory_hostname == 'h1'
            - name: Skipped everywhere
              ansible.builtin.debug: {msg: never}
              when: false
            - name: Include a part
              ansible.builtin.include_tasks: part.yml
            """
        )
    )
    (tasks / "part.yml").write_text("- name: Part\n  ansible.builtin.debug: {msg: part}\n")
    (tmp_path / "play.yml").write_text(
        "- hosts: all\n  gather_facts: false\n  roles: [demo]\n"
        "  tasks:\n    - name: Play task\n      ansible.builtin.debug: {msg: play}\n"
    )
    res = run_local_playbook(tmp_path, tmp_path / "play.yml", tmp_path / "roles")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    return res.stdout


def test_counts_one_execution_per_task_and_host(tmp_path: Path) -> None:
    roles = task_executions.count(_run(tmp_path).splitlines())
    demo = roles["demo"]
    # Five task headers: the loop, the two conditional tasks, the include and the included task.
    assert demo.tasks == 5
    # Each header ran on both hosts; the loop's three items count once per host.
    assert demo.executions == 10
    # "Skipped everywhere" on both hosts, "Skipped on h2" on one.
    assert demo.skipped == 3
    assert (roles["(play)"].tasks, roles["(play)"].executions, roles["(play)"].skipped) == (1, 2, 0)


def test_report_lists_the_busiest_role_first(tmp_path: Path) -> None:
    text = task_executions.report(task_executions.count(_run(tmp_path).splitlines()), top=1)
    lines = text.splitlines()
    assert lines[0] == "task executions (task x host): 12, of which only skipped: 3; tasks: 6"
    assert lines[1].split() == ["demo", "10", "skipped", "3", "tasks", "5"]
    assert len(lines) == 2


def test_tolerates_the_stamps_of_run_tests() -> None:
    log = ["    3 TASK [r : t] ****\n", "    4 ok: [h1]\n", "    4 skipping: [h2]\n"]
    r = task_executions.count(log)["r"]
    assert (r.tasks, r.executions, r.skipped) == (1, 2, 1)
