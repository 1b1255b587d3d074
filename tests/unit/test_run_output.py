"""What the scenarios read from an ansible-playbook run (molecule/eterna_testinfra.py ``play_recap`` and
``changed_results``), and the ``runs_first`` marker of molecule/conftest.py that puts the whole stack's verbose re-run
(its idempotence step) before the tests that restart services and move the database leader."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "molecule"))

from eterna_testinfra import changed_results, play_recap  # noqa: E402

# Shaped like a -vvv run of ansible-core 2.21 with callback_result_format = yaml (the scenarios' setting).
RUN = """\
PLAY [Base] ********************************************************************

TASK [base : Write the chrony drop-in] *****************************************
task path: /repo/roles/base/tasks/main.yml:12
ok: [db1] => changed=false
changed: [app1] => changed=true
  dest: /etc/systemd/system/chrony.service.d/50-eterna-restart.conf

TASK [base : Write the sysctl settings] ****************************************
changed: [db1] => (item=vm.swappiness) => changed=true
ok: [db1] => (item=net.core.somaxconn) => changed=false

RUNNING HANDLER [base : Reload systemd] ****************************************
changed: [app1] => changed=true

PLAY RECAP *********************************************************************
app1                       : ok=3    changed=2    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0
db1                        : ok=2    changed=1    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0

"""


def test_changed_results_name_host_and_task_of_every_change_loop_items_and_handlers_included():
    assert changed_results(RUN) == [
        "app1: base : Write the chrony drop-in",
        "db1: base : Write the sysctl settings",
        "app1: base : Reload systemd",
    ]


def test_no_changed_result_in_a_no_op_run():
    no_op = RUN.replace("changed: [", "ok: [").replace("changed=2", "changed=0").replace("changed=1", "changed=0")
    assert changed_results(no_op) == []
    assert {host: counts["changed"] for host, counts in play_recap(no_op).items()} == {"app1": 0, "db1": 0}


def test_play_recap_reads_every_counter_of_every_host():
    assert play_recap(RUN) == {
        "app1": {"ok": 3, "changed": 2, "unreachable": 0, "failed": 0, "skipped": 1, "rescued": 0, "ignored": 0},
        "db1": {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 0, "rescued": 0, "ignored": 0},
    }


def test_play_recap_is_the_last_one_of_several_runs():
    second = RUN.replace("changed=2", "changed=0").replace("changed=1", "changed=0")
    assert play_recap(RUN + second)["app1"]["changed"] == 0


@pytest.mark.parametrize("output", ["", RUN.split("PLAY RECAP")[0], "PLAY RECAP ****\n\nfatal: [x]: FAILED!\n"])
def test_a_run_without_a_recap_has_an_empty_recap(output):
    """A run that died before its recap must not look like a run with nothing changed on any host: callers compare
    the recap's hosts with the inventory."""
    assert play_recap(output) == {}


def test_runs_first_puts_the_marked_test_before_the_others_in_order(tmp_path):
    (tmp_path / "test_a.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    (tmp_path / "test_z.py").write_text(
        "import pytest\n\n\ndef test_three():\n    pass\n\n\n"
        "@pytest.mark.runs_first\ndef test_rerun():\n    pass\n\n\n"
        "@pytest.mark.runs_first\ndef test_rerun_after():\n    pass\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "molecule")}
    env.pop("MOLECULE_INVENTORY_FILE", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-v", "--strict-markers",
         "-c", os.devnull, "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, env=env, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    ran = [line.split("::")[1].split()[0] for line in result.stdout.splitlines() if "PASSED" in line]
    assert ran == ["test_rerun", "test_rerun_after", "test_one", "test_two", "test_three"]
