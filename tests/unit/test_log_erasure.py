"""GDPR erasure of one tenant's log lines (issue #20): ``eterna_log_retention.py erase-tenant`` on a temporary archive
and against a fake store that analyses text the way Elasticsearch's standard analyser does (``demo-b`` matches the
phrase ``demo``), so a deletion that trusted the search alone would take another tenant's documents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.util
import io
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[2] / "roles" / "rsyslog" / "files"
CLASSES = {"access": 14, "application": 30, "audit": 365, "security": 180}
KEY = b"k" * 32
TODAY = dt.date(2026, 3, 1)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, FILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


retention = _load("eterna_log_retention")


@pytest.fixture(autouse=True)
def no_signals(monkeypatch):
    """Never signal a real rsyslogd (the test machine sees the Molecule containers' processes)."""
    monkeypatch.setattr(retention, "release_files", lambda inodes: True)


def doc(text: str, **json_fields) -> str:
    body = {"@timestamp": "2026-03-01T10:00:00Z", "message": text, "host": {"name": "app1"}}
    if json_fields:
        body["json"] = json_fields
    return json.dumps(body)


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Two hosts' days: tenant demo's lines beside demo-b's and neutral lines; one sealed day."""
    app = tmp_path / "application" / "app1"
    access = tmp_path / "access" / "edge1"
    app.mkdir(parents=True)
    access.mkdir(parents=True)
    (app / "2026-02-20.jsonl").write_text(
        "\n".join(
            [
                doc('{"tenant_id": "demo", "message": "booked"}', tenant_id="demo", message="booked"),
                doc("worker started for tenant demo\nnext line"),
                doc("tenant demo-b renamed", tenant_id="demo-b"),
                doc("demonstration mode on"),
            ]
        )
        + "\n"
    )
    (access / "2026-03-01.jsonl").write_text(
        doc("GET /api/v1/houses", tenant="demo", uri="/t/demo/x") + "\n" + doc("GET /", tenant="demo-b") + "\n"
    )
    # Seal the older day as the retention job does.
    retention.archive_pass(tmp_path, CLASSES, TODAY, seal_after=2)
    assert (app / "SHA256SUMS").exists()
    return tmp_path


def test_tenant_pattern_is_a_whole_id_and_refuses_bad_ids():
    pattern = retention.tenant_pattern("demo")
    assert pattern.search('"tenant": "demo"') and pattern.search("/t/demo/x") and pattern.search("tenant demo\n")
    for other in ["demo-b", "demo2", "a-demo", "demo_x", "demonstration"]:
        assert not pattern.search(other), other
    for bad in ["", "Demo", "../x", "a b", "x" * 64, None]:
        with pytest.raises(ValueError, match="tenant"):
            retention.tenant_pattern(bad)


def test_pseudonym_is_keyed_stable_and_needs_a_key():
    first = retention.pseudonym("demo", KEY)
    assert first == retention.pseudonym("demo", KEY) and re.fullmatch(r"tenant-[0-9a-f]{16}", first)
    assert first != retention.pseudonym("demo", b"x" * 32) and first != retention.pseudonym("demo-b", KEY)
    # Not a plain hash of the id anyone could recompute.
    assert hashlib.sha256(b"demo").hexdigest()[:16] not in first
    with pytest.raises(ValueError, match="key"):
        retention.pseudonym("demo", b"")


def test_archive_lines_of_the_tenant_are_pseudonymised_and_resealed(archive: Path):
    name = retention.pseudonym("demo", KEY)
    changes, problems = retention.erase_archive(archive, CLASSES, "demo", KEY, TODAY)
    assert problems == []
    assert sorted((c["class"], c["lines"], c["sealed"]) for c in changes) == [
        ("access", 1, False),
        ("application", 2, True),
    ]
    text = "".join(p.read_text() for p in archive.rglob("*.jsonl"))
    assert not retention.tenant_pattern("demo").search(text.replace("\\n", "\n"))
    assert text.count(name) == 5  # tenant_id twice (field and the message's JSON), the text line, tenant and uri
    # The other tenant and neutral lines are untouched, byte for byte.
    assert text.count('"demo-b"') == 2 and "tenant demo-b renamed" in text and "demonstration mode on" in text
    # Every line is still one JSON document.
    for path in archive.rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            json.loads(line)
    # The seal verifies and the rewrite is recorded without the tenant id.
    app = archive / "application" / "app1"
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=app, check=False).returncode == 0
    assert retention.archive_pass(archive, CLASSES, TODAY, seal_after=2) == ([], [])
    log = (archive / "RETENTION.log").read_text().splitlines()
    records = [json.loads(line) for line in log]
    assert {r["action"] for r in records} == {"pseudonymise"} and len(records) == 2
    assert all(r["pseudonym"] == name and r["sha256_before"] != r["sha256_after"] for r in records)
    assert not retention.tenant_pattern("demo").search("\n".join(log))
    # A second erasure finds nothing.
    assert retention.erase_archive(archive, CLASSES, "demo", KEY, TODAY) == ([], [])


def test_a_tampered_sealed_file_is_not_blessed(archive: Path):
    day = archive / "application" / "app1" / "2026-02-20.jsonl"
    day.write_text(day.read_text() + doc("forged line for demo") + "\n")
    changes, problems = retention.erase_archive(archive, CLASSES, "demo", KEY, TODAY)
    assert [c["class"] for c in changes] == ["access"]
    assert len(problems) == 1 and "differs from the sealed" in problems[0] and "2026-02-20" in problems[0]
    assert "forged line for demo" in day.read_text()
    # The retention job still reports it.
    assert retention.archive_pass(archive, CLASSES, TODAY, seal_after=2)[1]


def test_file_owner_and_mode_are_kept(archive: Path):
    day = archive / "access" / "edge1" / "2026-03-01.jsonl"
    day.chmod(0o640)
    retention.erase_archive(archive, CLASSES, "demo", KEY, TODAY)
    assert day.stat().st_mode & 0o777 == 0o640
    assert not list(archive.rglob("*.erase-tmp"))


class AnalysingStore:
    """Documents per index; _search matches the phrase the way an analysed text field does (lowercase words split on
    anything but letters and digits); _delete_by_query takes an ids query."""

    def __init__(self, docs: dict[str, dict[str, dict]]):
        self.docs = docs
        self.calls: list[tuple[str, str]] = []

    @staticmethod
    def words(value) -> list[str]:
        return re.findall(r"[a-z0-9]+", json.dumps(value).lower())

    def request(self, method, path, body=None):
        self.calls.append((method, path))
        if path.startswith("/eterna-logs-*/_search"):
            phrase = self.words(json.loads(body["query"]["query_string"]["query"]))
            hits = []
            for index, docs in sorted(self.docs.items()):
                for doc_id, source in sorted(docs.items()):
                    words = self.words(source)
                    if any(words[i : i + len(phrase)] == phrase for i in range(len(words))):
                        hits.append({"_index": index, "_id": doc_id, "_source": source})
            page = hits[body["from"] : body["from"] + body["size"]]
            return 200, {"hits": {"total": {"value": len(hits)}, "hits": page}}
        if "/_delete_by_query" in path:
            index = path.split("/")[1]
            ids = body["query"]["ids"]["values"]
            for doc_id in ids:
                del self.docs[index][doc_id]
            return 200, {"deleted": len(ids)}
        raise AssertionError(f"unexpected {method} {path}")


def test_index_deletes_only_documents_naming_the_tenant():
    store = AnalysingStore(
        {
            "eterna-logs-access-2026.03.01": {
                "a1": {"message": "GET /", "json": {"tenant": "demo"}},
                "a2": {"message": "GET /", "json": {"tenant": "demo-b"}},
            },
            "eterna-logs-application-2026.03.01": {
                "b1": {"message": "started for tenant demo"},
                "b2": {"message": "Tenant DEMO-B said demo-b"},
                "b3": {"message": "unrelated"},
            },
        }
    )
    changes = retention.erase_index(store, "eterna-logs", "demo")
    assert changes == [
        {"action": "delete_documents", "index": "eterna-logs-access-2026.03.01", "deleted": 1},
        {"action": "delete_documents", "index": "eterna-logs-application-2026.03.01", "deleted": 1},
    ]
    assert set(store.docs["eterna-logs-access-2026.03.01"]) == {"a2"}
    assert set(store.docs["eterna-logs-application-2026.03.01"]) == {"b2", "b3"}
    assert retention.erase_index(store, "eterna-logs", "demo") == []


def test_index_pages_through_many_hits_of_other_tenants():
    others = {f"o{i}": {"message": f"demo-b event {i}"} for i in range(2500)}
    others["mine"] = {"message": "demo event"}
    store = AnalysingStore({"eterna-logs-application-2026.03.01": others})
    changes = retention.erase_index(store, "eterna-logs", "demo")
    assert changes == [{"action": "delete_documents", "index": "eterna-logs-application-2026.03.01", "deleted": 1}]
    assert len(store.docs["eterna-logs-application-2026.03.01"]) == 2500


def test_command_reads_the_key_from_stdin_and_prints_a_summary(archive: Path, tmp_path: Path, monkeypatch, capsys):
    config = tmp_path / "c.json"
    config.write_text(json.dumps({"archive_dir": str(archive), "classes": CLASSES}))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(KEY + b"\n")))
    assert retention.main(["erase-tenant", "--tenant", "demo", "--config", str(config), "--today", "2026-03-01"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["changed"] is True and summary["archive_lines"] == 3 and summary["store"] is False
    assert summary["pseudonym"] == retention.pseudonym("demo", KEY)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(KEY)))
    assert retention.main(["erase-tenant", "--tenant", "../etc", "--config", str(config)]) == 1


def test_lines_written_to_the_replaced_file_until_rsyslog_lets_go_are_kept(archive: Path):
    """rsyslog still holds the old file after the rename: what it appends before closing it is carried over."""
    day = archive / "access" / "edge1" / "2026-03-01.jsonl"
    old = day.open("ab")  # rsyslog's open handle on the file being replaced
    released = []

    def release(inodes):
        assert (day.stat().st_ino, day.stat().st_dev) != (os.fstat(old.fileno()).st_ino, os.fstat(old.fileno()).st_dev)
        old.write(
            (doc("late line of demo", tenant="demo") + "\n" + doc("late demo-b", tenant="demo-b") + "\n").encode()
        )
        old.close()
        released.append(inodes)
        return True

    changes, problems = retention.erase_archive(archive, CLASSES, "demo", KEY, TODAY, release=release)
    assert problems == [] and len(released) == 1
    text = day.read_text()
    assert "late line of " + retention.pseudonym("demo", KEY) in text and "late demo-b" in text
    assert not retention.tenant_pattern("demo").search(text)
    assert [c["lines"] for c in changes if c["class"] == "access"] == [2]
    assert changes[0]["sha256_after"] == retention.sha256_file(Path(changes[0]["file"]))


def test_a_release_that_times_out_is_reported(archive: Path):
    _, problems = retention.erase_archive(archive, CLASSES, "demo", KEY, TODAY, release=lambda inodes: False)
    assert problems and "did not release" in problems[0]
