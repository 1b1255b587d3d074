"""roles/_common/tasks/ca.yml makes or checks the controller's internal CA once per run and PKI directory.

A real run on two local hosts, in check mode (the CA's controller tasks run in check mode too; the hosts' trust
store is only compared, never written): three plays include the CA, the third with another PKI directory.
"""

from __future__ import annotations

import re
import subprocess
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
    # run_once: one result per play. Made in the first play and again for the other directory; the second play skips
    # the controller's tasks in one step (the include), on both hosts.
    assert _results(res.stdout, KEY_TASK) == ["changed", "changed"], res.stdout
    include = "TASK [_common : Create or check the internal CA on the controller]"
    assert _results(res.stdout, include) == ["", "skipping skipping", ""], res.stdout  # "included: ..." has no [host]
    for pki in (first, other):
        assert (pki / "ca.key").stat().st_mode & 0o777 == 0o600
        assert "BEGIN CERTIFICATE" in (pki / "ca.crt").read_text()
    # Every play still compares each host's trusted copy with the CA (a host of a later play may be new).
    assert len(_results(res.stdout, "TASK [_common : Trust the internal CA on the host]")) == 3


def test_a_run_without_the_hosts_ca_is_refused_before_a_new_ca_is_made(tmp_path: Path) -> None:
    """A second clone (or an emptied PKI directory) must not replace the CA the hosts trust."""
    trusted = tmp_path / "trusted.crt"  # the hosts' copy (both local hosts read the same file)
    built, other = tmp_path / "pki-built", tmp_path / "pki-other"

    def run(pki: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        play = tmp_path / f"play-{pki.name}.yml"
        play.write_text(
            _play("Issue", pki).replace("eterna_env: lab", f"eterna_env: lab, eterna_ca_trust_file: '{trusted}'")
        )
        return run_local_playbook(tmp_path, play, ROOT / "roles", "--check", *extra)

    # A fresh environment: the hosts trust no internal CA yet, so the CA is made.
    first = run(built)
    assert first.returncode == 0, first.stdout[-3000:]
    trusted.write_bytes((built / "ca.crt").read_bytes())
    # The clone that built it runs again: the same CA, accepted.
    again = run(built)
    assert again.returncode == 0, again.stdout[-3000:]
    # Another clone: no CA in its directory. Refused, naming the hosts and the way out, and nothing is made.
    refused = run(other)
    assert refused.returncode != 0
    assert "These hosts trust another internal CA than" in refused.stdout + refused.stderr
    assert "(absent: this run would make a new CA): h1, h2." in refused.stdout + refused.stderr
    assert "eterna_pki_replace_ca=true" in refused.stdout + refused.stderr
    assert not other.exists()
    # On purpose: a new CA is made; without the switch, the next run with it is still refused (a different CA).
    replaced = run(other, "-e", "eterna_pki_replace_ca=true")
    assert replaced.returncode == 0, replaced.stdout[-3000:]
    assert (other / "ca.crt").read_bytes() != trusted.read_bytes()
    differs = run(other)
    assert differs.returncode != 0
    assert f"than {other}/ca.crt: h1, h2." in differs.stdout + differs.stderr
