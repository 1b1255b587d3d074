"""Issue #24 section 6: `make test` installs what its tests need and reports every skipped test with its reason.

- Each program a unit or migration test skips without is installed by scripts/test-deps.sh (or is part of every
  Debian system), so a fresh machine runs those tests instead of skipping them.
- scripts/run-tests.sh's stage runner lists pytest's skip reasons in the stage's result and counts them in the
  summary: its own functions run here on a stage whose one test skips.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN_TESTS = (ROOT / "scripts" / "run-tests.sh").read_text()
TEST_DEPS = (ROOT / "scripts" / "test-deps.sh").read_text()
# Essential (or priority required) in Debian: on every system, nothing to install.
ESSENTIAL = {"logger": "bsdutils", "runuser": "util-linux", "dpkg-query": "dpkg"}
# Program a test looks for -> the Debian package that provides it.
PROVIDERS = {
    "nft": "nftables",
    "openssl": "openssl",
    "postgres": "postgresql",
    "initdb": "postgresql",
    "git": "git",
    "age": "age",
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "nginx": "nginx",
    "rsyslogd": "rsyslog",
}
# Not installed by scripts/test-deps.sh yet (reported to the lead, who owns the test runner); strict, so the mark
# must go once the package is added.
NOT_YET: set[str] = set()


def _packages() -> set[str]:
    match = re.search(r"^packages=\(([^)]*)\)", TEST_DEPS, re.M)
    assert match, "scripts/test-deps.sh has no packages=(...) list"
    return set(match.group(1).split())


def _programs_tests_look_for() -> set[str]:
    found = set()
    for path in [*(ROOT / "tests" / "unit").glob("*.py"), *(ROOT / "tests" / "migrations").glob("*.py")]:
        found |= set(re.findall(r"""shutil\.which\(["']([A-Za-z0-9_.-]+)["']\)""", path.read_text()))
    found |= {"initdb"} if "initdb" in (ROOT / "tests" / "migrations" / "conftest.py").read_text() else set()
    return found - {"ansible-playbook"}  # the virtualenv's own


def test_every_program_a_test_looks_for_has_a_provider_here():
    assert sorted(_programs_tests_look_for() - set(PROVIDERS) - set(ESSENTIAL)) == []


@pytest.mark.parametrize(
    "program",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=f"scripts/test-deps.sh does not install {p} yet"))
        if p in NOT_YET
        else p
        for p in sorted(PROVIDERS)
    ],
)
def test_test_deps_installs_the_program(program):
    if program not in _programs_tests_look_for():
        pytest.skip(f"no test looks for {program} any more")
    assert PROVIDERS[program] in _packages()


def _function(name: str) -> str:
    match = re.search(rf"^{name}\(\) {{.*?^}}$", RUN_TESTS, re.M | re.S)
    assert match, f"{name}() not found in scripts/run-tests.sh"
    return match.group(0)


def _run_stage(tmp_path: Path, stage: str, *after: str, timeout: int) -> subprocess.CompletedProcess:
    """Run scripts/run-tests.sh's own run_stage on ``stage`` ("name command...") with its logs in tmp_path/logs, then
    the shell lines ``after``. Returns bash's completed process; raises subprocess.TimeoutExpired after ``timeout``
    seconds."""
    logs = tmp_path / "logs"
    logs.mkdir()
    script = "\n".join(["set -uo pipefail", f"logs={logs}", _function("run_stage"), f"run_stage {stage}", *after])
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=timeout)


def _summary() -> str:
    return RUN_TESTS[RUN_TESTS.index('echo "=== summary"') :]


def test_run_tests_reports_each_skipped_test_with_its_reason(tmp_path: Path):
    demo = tmp_path / "test_demo.py"
    demo.write_text(
        "import pytest\n\n"
        "def test_runs():\n    assert True\n\n"
        "def test_needs_a_tool():\n    pytest.skip('frobnicate not installed (apt-get install frobnicate)')\n\n"
        "@pytest.mark.xfail(reason='known gap: the widget leaks')\n"
        "def test_known_gap():\n    assert False\n"
    )
    logs = tmp_path / "logs"
    out = _run_stage(
        tmp_path, f"unit {sys.executable} -m pytest -q -ra -p no:cacheprovider {demo}", _summary(), timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    result = (logs / "unit.result").read_text()
    assert result.startswith("passed")
    assert re.search(
        r"^skipped-test  unit: \[1\] .*frobnicate not installed \(apt-get install frobnicate\)$", result, re.M
    )
    assert re.search(r"^xfailed-test  unit: .*test_known_gap - known gap: the widget leaks$", result, re.M)
    assert "inside passing stages, tests skipped: 1, expected to fail (xfail): 1" in out.stdout


def test_run_tests_stamps_each_line_when_it_is_printed(tmp_path: Path):
    """A line printed before a quiet stretch carries the second it was printed, not the second the next line came.

    Debian's awk (mawk) reads a pipe in blocks unless told otherwise: both lines were stamped 3 before 3 Dec.
    """
    logs = tmp_path / "logs"
    out = _run_stage(tmp_path, "quiet bash -c 'echo first; sleep 3; echo second'", timeout=60)
    assert (logs / "quiet.result").read_text().startswith("passed"), out.stdout + out.stderr
    stamps = {line.split()[1]: int(line.split()[0]) for line in (logs / "quiet.log").read_text().splitlines()}
    assert stamps["first"] <= 1 and stamps["second"] >= 3, stamps
