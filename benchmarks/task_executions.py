"""Count the task executions of a playbook run by role, from the log of Ansible's default callback.

The controller forks one worker per task and host, whether the task runs or its condition skips it, so the number
of those executions (not the number of tasks, nor of loop items) is what a no-op run's time follows
(docs/performance-converge.md). ``benchmarks/lab_converge.sh`` prints this for its no-op run::

    python benchmarks/task_executions.py build/bench/lab_converge.noop.log [N]

Prints the total, then the N roles (default 12) with the most executions: executions, those in which the host
only skipped, and the tasks behind them. Tasks outside a role are counted under ``(play)``.
"""

from __future__ import annotations

import collections
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

# "TASK [role : name] ****" or "TASK [name] ****"; handlers likewise.
_HEADER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?:(?P<role>[^ \]]+) : )?(?P<name>.*)\] \*+$")
# "ok: [host]", "skipping: [host] => (item=...)", "fatal: [host -> delegate]: FAILED! ..."
_RESULT = re.compile(r"^(?P<status>ok|changed|skipping|failed|fatal|unreachable): \[(?P<host>[^\]\s]+)")
# "included: /path/to/file.yml for host1, host2"
_INCLUDED = re.compile(r"^included: \S+ for (?P<hosts>.+)$")


@dataclass
class RoleCount:
    """Executions of one role's tasks in a run."""

    executions: int = 0  # (task, host) pairs that reported any result
    skipped: int = 0  # of those, pairs whose every result was "skipping"
    tasks: int = 0  # task headers printed
    hosts_by_task: list[dict[str, set[str]]] = field(default_factory=list, repr=False)


def count(lines: Iterable[str]) -> dict[str, RoleCount]:
    """Task executions per role.

    :param lines: the run's output with the default (or yaml-format default) callback, one line per item; the
        leading stamp ``run-tests.sh`` adds (spaces and a number) is tolerated.
    :returns: role name (``(play)`` for play-level tasks) to its counts. A loop's items on one host count once: they
        run in one worker.
    """
    roles: dict[str, RoleCount] = collections.defaultdict(RoleCount)
    current: dict[str, set[str]] | None = None
    for raw in lines:
        line = re.sub(r"^\s*\d+ ", "", raw.rstrip("\n"))
        header = _HEADER.match(line)
        if header:
            role = roles[header["role"] or "(play)"]
            role.tasks += 1
            current = {}
            role.hosts_by_task.append(current)
            continue
        if current is None:
            continue
        result = _RESULT.match(line)
        if result:
            current.setdefault(result["host"], set()).add(result["status"])
            continue
        included = _INCLUDED.match(line)
        if included:
            for host in included["hosts"].split(", "):
                current.setdefault(host.strip(), set()).add("included")
    for role in roles.values():
        for hosts in role.hosts_by_task:
            role.executions += len(hosts)
            role.skipped += sum(1 for statuses in hosts.values() if statuses == {"skipping"})
    return dict(roles)


def report(roles: dict[str, RoleCount], top: int = 12) -> str:
    """The text the benchmark prints: a total line, then one line per role, most executions first.

    :param roles: from :func:`count`.
    :param top: how many roles to list.
    """
    total = sum(r.executions for r in roles.values())
    skipped = sum(r.skipped for r in roles.values())
    tasks = sum(r.tasks for r in roles.values())
    lines = [f"task executions (task x host): {total}, of which only skipped: {skipped}; tasks: {tasks}"]
    for name, role in sorted(roles.items(), key=lambda kv: (-kv[1].executions, kv[0]))[:top]:
        lines.append(f"    {name:<16} {role.executions:5}  skipped {role.skipped:4}  tasks {role.tasks:4}")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1], encoding="utf-8", errors="replace") as log:
        print(report(count(log), int(sys.argv[2]) if len(sys.argv) > 2 else 12))
