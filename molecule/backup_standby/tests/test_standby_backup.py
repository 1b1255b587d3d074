"""backup_from_standby against a real streaming replica (issue #24 section 4, issue #22).

The repository host's pgBackRest names the primary and the standby. While the standby is healthy a full backup
copies its files from the standby; while the standby's PostgreSQL is stopped the same job still succeeds, from the
primary, and says so (the backup tool's retry on Debian 12's pgBackRest 2.45, pgBackRest 2.55's own
backup-standby=prefer on Debian 13). The standby catches up once it is back. The tests run in file order.
"""

from __future__ import annotations

import json
import re
import shlex

from eterna_testinfra import node, pg_cluster, wait_until

PRIMARY, STANDBY, REPO = "backup_standby-primary", "backup_standby-standby", "backup_standby-repo"
JOURNAL_HOSTS = [REPO, STANDBY]
JOURNAL_UNITS = ["eterna-backup-full", "pgbackrest", "postgresql@*-main.service"]
CONF = "/etc/pgbackrest/pgbackrest.conf"


def repo_conf() -> dict[str, str]:
    """The [eterna] and [global] settings of the repository host's pgbackrest.conf (later keys win)."""
    pairs = re.findall(r"^([a-z0-9-]+)=(.*)$", node(REPO).file(CONF).content_string, re.M)
    return dict(pairs)


def labels() -> list[str]:
    """Labels of the stanza's backups, oldest first."""
    out = node(REPO).check_output("cd /tmp && runuser -u pgbackrest -- pgbackrest --stanza=eterna --output=json info")
    return [b["label"] for b in json.loads(out)[0]["backup"]]


def run_full_backup() -> tuple[list[str], str, str]:
    """Start the full-backup job (a oneshot: returns when it ends) and return the new labels, the job's journal and
    the lines pgBackRest's backup log gained."""
    repo = node(REPO)
    log = f"{repo_conf()['log-path']}/eterna-backup.log"
    before_lines = int(repo.check_output(f"cat {shlex.quote(log)} 2>/dev/null | wc -l") or 0)
    since = repo.check_output("date +%s")
    before = labels()
    started = repo.run("systemctl start eterna-backup-full.service")
    journal = repo.check_output(f"journalctl -u eterna-backup-full.service --since @{since} -o cat --no-pager")
    assert started.rc == 0, f"the full backup failed:\n{journal}"
    added = repo.check_output(f"tail -n +{before_lines + 1} {shlex.quote(log)}")
    return [label for label in labels() if label not in before], journal, added


def streaming() -> bool:
    """Whether the primary streams WAL to the standby."""
    sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    return node(PRIMARY).check_output(f"cd /tmp && runuser -u postgres -- psql -XAtc {shlex.quote(sql)}") == "1"


def test_repository_names_the_primary_and_the_standby():
    conf = repo_conf()
    assert (conf["pg1-host"], conf["pg2-host"]) == (PRIMARY, STANDBY)
    expected = {"12": "y", "13": "prefer"}[node(REPO).system_info.release.split(".")[0]]
    assert conf["backup-standby"] == expected
    assert streaming()


def test_a_backup_copies_from_the_healthy_standby():
    new, journal, pgbackrest_log = run_full_backup()
    assert len(new) == 1, journal
    assert "replay on the standby" in pgbackrest_log, pgbackrest_log
    assert "from the primary" not in journal and "using primary instead" not in journal, journal


def test_with_the_standby_down_the_backup_runs_from_the_primary_and_says_so():
    standby = node(STANDBY)
    unit = pg_cluster(STANDBY)["unit"]
    standby.check_output(f"systemctl stop {unit}")
    try:
        new, journal, _ = run_full_backup()
        assert len(new) == 1, journal
        # Debian 12: the tool's own retry; Debian 13: pgBackRest's prefer, whose WARN line the tool repeats.
        assert re.search(
            r"WARNING: (no healthy standby: backing up from the primary|.*using primary instead)", journal
        ), journal
    finally:
        standby.check_output(f"systemctl start {unit}")
    assert wait_until(streaming, timeout=120), "the standby did not stream again after its restart"


def test_the_next_backup_uses_the_standby_again():
    new, journal, pgbackrest_log = run_full_backup()
    assert len(new) == 1, journal
    assert "replay on the standby" in pgbackrest_log, pgbackrest_log
