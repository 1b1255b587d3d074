"""The backup backup_tool's pure parts (roles/backup/files/eterna_backup.py): manifest comparison, the SSH gate's
validation and the command it builds, job state and metrics, configuration loading. The backup scenario runs the
tool for real (backups, point-in-time drills, the mirror restore); these tests pin the decisions it makes."""

from __future__ import annotations

import argparse
import json
import os
import stat

import pytest

MANIFEST = {
    "eterna": {
        "alembic_revision": "0007",
        "tables": {"public.houses": {"rows": 3, "checksum": "12"}, "public.users": {"rows": 2, "checksum": "5"}},
    }
}


def test_compare_accepts_an_identical_restore(backup_tool) -> None:
    assert backup_tool.compare(MANIFEST, json.loads(json.dumps(MANIFEST))) == []


def test_compare_names_every_difference(backup_tool) -> None:
    got = {
        "eterna": {
            "alembic_revision": "0006",
            "tables": {"public.houses": {"rows": 2, "checksum": "9"}, "public.extra": {"rows": 1, "checksum": "1"}},
        }
    }
    problems = backup_tool.compare({**MANIFEST, "audit": {"alembic_revision": None, "tables": {}}}, got)
    assert problems == [
        "eterna: alembic 0006 != 0007",
        "eterna.public.extra: restored {'rows': 1, 'checksum': '1'} != recorded None",
        "eterna.public.houses: restored {'rows': 2, 'checksum': '9'} != recorded {'rows': 3, 'checksum': '12'}",
        "eterna.public.users: restored None != recorded {'rows': 2, 'checksum': '5'}",
        "audit: database missing",
    ]


@pytest.mark.parametrize(
    ("command", "argv"),
    [
        ("export config", ["export", "config"]),
        ("export redis", ["export", "redis"]),
        ("pg-manifest eterna-20261130-120000F", ["export", "pg-manifest", "eterna-20261130-120000F"]),
    ],
)
def test_ssh_gate_runs_only_validated_exports(backup_tool, monkeypatch, command, argv) -> None:
    calls = []
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", command)
    monkeypatch.setattr(backup_tool.os, "execv", lambda path, args: calls.append((path, args)))
    backup_tool.cmd_ssh_gate({}, argparse.Namespace())
    assert calls == [("/usr/bin/sudo", ["sudo", "-n", "/usr/local/sbin/eterna-backup", *argv])]


@pytest.mark.parametrize(
    "command",
    [
        "",
        "export",
        "rm -rf /",
        "export shadow",
        "export config extra",
        "pg-manifest",
        "pg-manifest 'x; reboot'",
        "pg-manifest eterna-2026-bad",
        "export config; id",
    ],
)
def test_ssh_gate_refuses_anything_else(backup_tool, monkeypatch, command) -> None:
    monkeypatch.setenv("SSH_ORIGINAL_COMMAND", command)
    monkeypatch.setattr(backup_tool.os, "execv", lambda *_: pytest.fail("execv reached"))
    with pytest.raises(backup_tool.JobError, match="refused"):
        backup_tool.cmd_ssh_gate({}, argparse.Namespace())


def test_job_records_success_and_failure_and_metrics_render_them(backup_tool, tmp_path, monkeypatch) -> None:
    cfg = {"state_dir": str(tmp_path / "state"), "metrics_file": str(tmp_path / "m.prom")}
    clock = iter([100.0, 130.0, 200.0, 205.0])
    monkeypatch.setattr(backup_tool, "now", lambda: next(clock))
    with backup_tool.Job(cfg, "pg-full"):
        pass
    with pytest.raises(backup_tool.JobError), backup_tool.Job(cfg, "files"):
        raise backup_tool.JobError("ssh to db1 failed\nmore detail")
    full = json.loads((tmp_path / "state" / "pg-full.json").read_text())
    files = json.loads((tmp_path / "state" / "files.json").read_text())
    assert (full["last_status"], full["last_duration"], full["last_success"]) == (1, 30.0, 130.0)
    assert (files["last_status"], files["last_message"]) == (0, "ssh to db1 failed")
    assert "last_success" not in files and "running_since" not in files
    backup_tool.cmd_metrics(cfg, argparse.Namespace(job=None))
    text = (tmp_path / "m.prom").read_text()
    assert 'eterna_backup_last_status{type="pg-full"} 1\n' in text
    assert 'eterna_backup_last_status{type="files"} 0\n' in text
    assert 'eterna_backup_last_duration_seconds{type="pg-full"} 30\n' in text
    assert text.count("# TYPE eterna_backup_last_status gauge") == 1
    assert stat.S_IMODE(os.stat(tmp_path / "m.prom").st_mode) == 0o644


def test_metrics_record_a_killed_unit_as_failed(backup_tool, tmp_path, monkeypatch) -> None:
    cfg = {"state_dir": str(tmp_path), "metrics_file": str(tmp_path / "m.prom")}
    (tmp_path / "pg-diff.json").write_text(json.dumps({"job": "pg-diff", "running_since": 10.0}))
    monkeypatch.setattr(backup_tool, "now", lambda: 70.0)
    monkeypatch.setenv("SERVICE_RESULT", "timeout")
    backup_tool.cmd_metrics(cfg, argparse.Namespace(job="pg-diff"))
    state = json.loads((tmp_path / "pg-diff.json").read_text())
    assert (state["last_status"], state["last_message"], state["last_duration"]) == (0, "unit result timeout", 60.0)
    assert 'eterna_backup_last_status{type="pg-diff"} 0\n' in (tmp_path / "m.prom").read_text()


def test_missing_configuration_is_a_job_error(backup_tool, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(backup_tool, "CONFIG_FILE", tmp_path / "absent.json")
    with pytest.raises(backup_tool.JobError, match="converge the backup role first"):
        backup_tool.load_config()


def test_restore_point_names(backup_tool) -> None:
    assert backup_tool.POINT_RE.match("eterna-20261130-120000")
    assert backup_tool.POINT_RE.match("eterna-20261130-120000I")
    for bad in ("eterna-20261130-1200", "x-20261130-120000", "eterna-20261130-120000F;", "eterna-20261130-120000X"):
        assert not backup_tool.POINT_RE.match(bad)


def test_redis_snapshot_path_prefers_configuration_then_the_active_unit(backup_tool, monkeypatch) -> None:
    assert backup_tool.redis_rdb_path({"redis_rdb_path": "/srv/dump.rdb"}) == "/srv/dump.rdb"
    active = {"redis-server.service"}

    def systemctl(cmd, check):
        return argparse.Namespace(returncode=0 if cmd[-1] in active else 3)

    monkeypatch.setattr(backup_tool.subprocess, "run", systemctl)
    assert backup_tool.redis_rdb_path({}) == "/var/lib/redis/dump.rdb"
    active.clear()
    with pytest.raises(backup_tool.JobError, match="backup_redis_rdb_path"):
        backup_tool.redis_rdb_path({})
