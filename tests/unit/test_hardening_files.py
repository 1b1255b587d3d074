"""roles/hardening renders its files in one looped task; a file's change must call only its own handler.

ansible-core notifies the handler of every item of a loop as soon as one item changed (the strategy reads the task's
``changed``, not the item's), so each handler named in ``_hardening_files`` checks ``_hardening_changed_handlers``.
The first test runs the role's real file task on local hosts, with the files moved into a temporary directory and
handlers of the test's own; the second checks that every handler the role's files name is gated that way.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from module_loader import ROOT, run_local_playbook

ROLE = ROOT / "roles" / "hardening"


def _play(tmp_path: Path) -> str:
    files = [
        {
            "src": "etc/issue.j2",
            "dest": str(tmp_path / "changed"),
            "notify": "Handler of the changed file",
            "when": True,
        },
        {
            "src": "etc/issue.j2",
            "dest": str(tmp_path / "same"),
            "notify": "Handler of the unchanged file",
            "when": True,
        },
        {"src": "etc/issue.j2", "dest": str(tmp_path / "plain"), "when": True},
        {"src": "etc/issue.j2", "dest": str(tmp_path / "off"), "notify": "Handler of the file left out", "when": False},
    ]
    handlers = [
        {
            "name": name,
            "ansible.builtin.debug": {"msg": f"ran: {name}"},
            "when": f"'{name}' in _hardening_changed_handlers",
        }
        for name in ("Handler of the changed file", "Handler of the unchanged file", "Handler of the file left out")
    ]
    play = {
        "name": "The role's file task",
        "hosts": "h1",
        "gather_facts": False,
        "become": False,
        "vars": {"hardening_banner": "Authorised use only."},
        "tasks": [
            {
                "name": "Write the files",
                "ansible.builtin.include_role": {"name": "hardening", "tasks_from": "files", "public": True},
                "vars": {
                    "_hardening_files": files,
                    "_hardening_directories": [],
                    "_hardening_services": [],
                    "_hardening_login_defs": {},
                    "_hardening_fresh_check": False,
                    "_hardening_fail2ban": False,
                    "_hardening_debsums": False,
                    "_hardening_aide": False,
                },
            },
            {"name": "Show the handlers named", "ansible.builtin.debug": {"var": "_hardening_changed_handlers"}},
        ],
        "handlers": handlers,
    }
    return yaml.safe_dump([play], sort_keys=False)


def test_a_changed_file_calls_only_its_own_handler(tmp_path: Path) -> None:
    (tmp_path / "play.yml").write_text(_play(tmp_path))
    # "same" and "plain" already hold what the template renders; "changed" holds something else.
    for name in ("same", "plain"):
        (tmp_path / name).write_text("Authorised use only.\n")
    (tmp_path / "changed").write_text("an older banner\n")
    res = run_local_playbook(tmp_path, tmp_path / "play.yml", ROOT / "roles")
    out = res.stdout
    assert res.returncode == 0, out[-3000:] + res.stderr[-2000:]
    assert re.search(r"changed: \[h1\] => \(item=\S+/changed\)", out), out[-3000:]
    assert re.search(r"ok: \[h1\] => \(item=\S+/same\)", out), out[-3000:]
    assert "item=" + str(tmp_path / "off") not in out
    assert (tmp_path / "changed").read_text() == "Authorised use only.\n"
    assert "ran: Handler of the changed file" in out
    # ansible-core did notify it (the task changed); its condition kept it from running.
    assert "RUNNING HANDLER [Handler of the unchanged file]" in out, out[-3000:]
    assert "ran: Handler of the unchanged file" not in out
    assert "Handler of the file left out" not in out


def test_every_handler_the_files_name_checks_its_own_files() -> None:
    files = yaml.safe_load((ROLE / "vars" / "main.yml").read_text())["_hardening_files"]
    named = {item["notify"] for item in files if "notify" in item}
    assert named, "no file of the role names a handler"
    handlers = {h["name"]: h for h in yaml.safe_load((ROLE / "handlers" / "main.yml").read_text())}
    for name in named:
        assert name in handlers, f"{name}: no such handler"
        when = handlers[name].get("when", [])
        conditions = when if isinstance(when, list) else [when]
        assert f"'{name}' in _hardening_changed_handlers" in conditions, f"{name} runs whichever file changed"
