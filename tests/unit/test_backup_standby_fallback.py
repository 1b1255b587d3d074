"""eterna-backup's standby fallback (#24 section 4): with backup_from_standby and no healthy standby, a backup runs
from the primary with a warning instead of failing; other failures still fail."""

from __future__ import annotations

import pytest


def fake_pgbackrest(backup_tool, outcomes):
    calls = []

    def run(cfg, *args, **kw):
        calls.append(args)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return run, calls


# pgBackRest 2.45's message when backup-standby=y finds no standby.
NO_STANDBY = (
    "pgbackrest backup --type=full failed (exit 56):\nERROR: [056]: unable to find standby cluster - cannot proceed"
)


def test_no_standby_falls_back_to_the_primary_with_a_warning(backup_tool, monkeypatch, capsys):
    run, calls = fake_pgbackrest(
        backup_tool, [backup_tool.JobError(NO_STANDBY), "INFO: backup command end: completed\n"]
    )
    monkeypatch.setattr(backup_tool, "pgbackrest", run)
    warnings = backup_tool.backup_with_standby_fallback({"backup_standby": True}, "full")
    assert calls == [("backup", "--type=full"), ("backup", "--type=full", "--backup-standby=n")]
    assert warnings and "from the primary" in warnings[0]
    assert "WARNING" in capsys.readouterr().out


def test_pgbackrest_prefer_warning_is_reported(backup_tool, monkeypatch):
    out = "P00   WARN: unable to find a standby to perform the backup, using primary instead\n"
    run, calls = fake_pgbackrest(backup_tool, [out])
    monkeypatch.setattr(backup_tool, "pgbackrest", run)
    warnings = backup_tool.backup_with_standby_fallback({"backup_standby": True}, "incr")
    assert len(calls) == 1
    assert warnings == ["unable to find a standby to perform the backup, using primary instead"]


def test_other_failures_still_fail(backup_tool, monkeypatch):
    run, calls = fake_pgbackrest(
        backup_tool, [backup_tool.JobError("ERROR: [082]: WAL segment was not archived before timeout")]
    )
    monkeypatch.setattr(backup_tool, "pgbackrest", run)
    with pytest.raises(backup_tool.JobError, match="not archived"):
        backup_tool.backup_with_standby_fallback({"backup_standby": True}, "full")
    assert len(calls) == 1


def test_without_a_configured_standby_nothing_is_retried(backup_tool, monkeypatch):
    run, calls = fake_pgbackrest(backup_tool, [backup_tool.JobError(NO_STANDBY)])
    monkeypatch.setattr(backup_tool, "pgbackrest", run)
    with pytest.raises(backup_tool.JobError):
        backup_tool.backup_with_standby_fallback({"backup_standby": False}, "full")
    assert len(calls) == 1


def test_a_failing_primary_fails_the_backup(backup_tool, monkeypatch):
    run, calls = fake_pgbackrest(
        backup_tool, [backup_tool.JobError(NO_STANDBY), backup_tool.JobError("ERROR: [056]: unable to find primary")]
    )
    monkeypatch.setattr(backup_tool, "pgbackrest", run)
    with pytest.raises(backup_tool.JobError, match="unable to find primary"):
        backup_tool.backup_with_standby_fallback({"backup_standby": True}, "full")
    assert len(calls) == 2
