"""plugins/callback/controller_cpu.py: the line the lab benchmark prints about the controller's CPU."""

from __future__ import annotations

import re
import resource
from pathlib import Path
from types import SimpleNamespace

import pytest
from module_loader import ROOT, load_file, run_local_playbook

controller_cpu = load_file("plugins/callback/controller_cpu.py", "controller_cpu")

LINE = re.compile(
    r"^controller CPU: wall (?P<wall>[\d.]+) s; main process user (?P<mu>[\d.]+) s, system (?P<ms>[\d.]+) s, "
    r"(?P<mf>\d+) minor faults; workers user (?P<wu>[\d.]+) s, system (?P<ws>[\d.]+) s, (?P<wf>\d+) minor faults; "
    r"total (?P<total>[\d.]+) s$",
    re.MULTILINE,
)


def test_the_line_adds_both_processes() -> None:
    main = SimpleNamespace(ru_utime=1.25, ru_stime=0.5, ru_minflt=100)
    children = SimpleNamespace(ru_utime=3.0, ru_stime=2.0, ru_minflt=7)
    line = controller_cpu.format_usage(12.34, main, children)
    match = LINE.match(line)
    assert match, line
    assert match["wall"] == "12.3"
    assert (match["mu"], match["ms"], match["mf"]) == ("1.2", "0.5", "100")
    assert (match["wu"], match["ws"], match["wf"]) == ("3.0", "2.0", "7")
    assert match["total"] == "6.8"


def test_a_run_reports_the_workers_it_forked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A real run: each task on each host is a forked worker, so the workers' CPU is above zero.

    The tasks compute something (a sorted range) so that the workers' CPU time is measurable at the clock's
    resolution; the run must also report the main process's own faults, which every Python process has.
    """
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: h1,h2\n  gather_facts: false\n  tasks:\n"
        + "".join(
            f'    - ansible.builtin.set_fact:\n        n{i}: "{{{{ range(20000) | sort(reverse=true) | sum }}}}"\n'
            for i in range(6)
        )
    )
    monkeypatch.setenv("ANSIBLE_CALLBACK_PLUGINS", str(ROOT / "plugins" / "callback"))
    monkeypatch.setenv("ANSIBLE_CALLBACKS_ENABLED", "controller_cpu")
    monkeypatch.setenv("ANSIBLE_STRATEGY", "linear")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    res = run_local_playbook(tmp_path, playbook, ROOT / "roles")
    spent = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    match = LINE.search(res.stdout)
    assert match, res.stdout[-2000:]
    workers = float(match["wu"]) + float(match["ws"])
    main = float(match["mu"]) + float(match["ms"])
    assert workers > 0, match.group(0)
    assert int(match["mf"]) > 0 and int(match["wf"]) > 0, match.group(0)
    # What the callback reports cannot exceed what the kernel charged this test for the whole ansible-playbook run.
    charged = (spent.ru_utime - before.ru_utime) + (spent.ru_stime - before.ru_stime)
    assert main + workers <= charged + 0.2, (match.group(0), charged)
