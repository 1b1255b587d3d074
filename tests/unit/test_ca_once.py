"""roles/_common/tasks/ca.yml makes or checks the controller's internal CA once per run and PKI directory.

A real run on two local hosts, in check mode (the CA's controller tasks run in check mode too; the hosts' trust
store is only compared, never written): three plays include the CA, the third with another PKI directory.
"""

from __future__ import annotations

import re
from pathlib import Path

from module_loader import ROOT, run_local_playbook

KEY_TASK = "TASK [_common : Create the internal CA key]"


def _play(name: str, pki: Path) -> str:
    return (
        f"- name: {name}\n  hosts: all\n  gather_facts: false\n"
        f"  vars: {{eterna_pki_dir: '{pki}', eterna_env: lab}}\n"
        "  tasks:\n    - name: Include the CA\n"
        "      ansible.builtin.include_role: {name: _common, tasks_from: ca}\n"
    )


def _results(log: str, header: str) -> list[str]:
    """The result lines (ok/changed/skipping...) of every occurrence of a task header, one string per occurrence."""
    out = []
    for block in log.split(header)[1:]:
        lines = block.split("\nTASK [", 1)[0].splitlines()
        out.append(" ".join(sorted(m.group(1) for line in lines if (m := re.match(r"^(\w+): \[", line)))))
    return out


def test_the_ca_is_made_once_per_run_and_pki_directory(tmp_path: Path) -> None:
    first, other = tmp_path / "pki-a", tmp_path / "pki-b"
    (tmp_path / "play.yml").write_text(_play("One", first) + _play("Two", first) + _play("Three", other))
    res = run_local_playbook(tmp_path, tmp_path / "play.yml", ROOT / "roles", "--check")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    # run_once: one result per play. Made in the first play, skipped in the second, made again for the other directory.
    assert _results(res.stdout, KEY_TASK) == ["changed", "skipping", "changed"], res.stdout
    for pki in (first, other):
        assert (pki / "ca.key").stat().st_mode & 0o777 == 0o600
        assert "BEGIN CERTIFICATE" in (pki / "ca.crt").read_text()
    # Every play still compares each host's trusted copy with the CA (a host of a later play may be new).
    assert len(_results(res.stdout, "TASK [_common : Trust the internal CA on the host]")) == 3
