"""pytest hooks shared by every scenario: tests marked ``runs_first`` run first; on a failed test, print the journal
of the units the test module names in ``JOURNAL_UNITS`` (every failed unit when absent) from the hosts in
``JOURNAL_HOSTS``; and keep every secret the tests derived out of each report (``eterna_testinfra.redact``).
"""

from __future__ import annotations

import os

import pytest
from eterna_testinfra import journal, redact


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "runs_first: run before the scenario's other tests, on the hosts as the converge left them (a test that "
        "stands in for a Molecule step, e.g. the whole stack's verbose re-run in place of its idempotence step)",
    )


def pytest_collection_modifyitems(items):
    """Move the tests marked ``runs_first`` to the front, in their collected order (the sort is stable)."""
    items.sort(key=lambda item: item.get_closest_marker("runs_first") is None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    try:
        add_journals(item, report)
    finally:
        # A failed command's message (testinfra prints the command line), captured output and journals can carry a
        # password or the master key the test derived: the report keeps none of them.
        if report.failed and report.longrepr is not None:
            report.longrepr = redact(str(report.longrepr))
        report.sections = [(title, redact(content)) for title, content in report.sections]


def add_journals(item, report) -> None:
    if report.when != "call" or not report.failed or "MOLECULE_INVENTORY_FILE" not in os.environ:
        return
    units = list(getattr(item.module, "JOURNAL_UNITS", []))
    for name in getattr(item.module, "JOURNAL_HOSTS", []):
        try:
            report.sections.append((f"journal {name}", journal(name, units)))
        except Exception as exc:  # noqa: BLE001 - diagnostics must never hide the real failure
            report.sections.append((f"journal {name}", f"could not read the journal: {exc}"))
