"""The rsyslog role's programs: the redaction filter, the retention job and the impstats exporter.

Known vectors for what must be masked (and what must stay readable), the retention arithmetic at its boundary,
the archive's sealing and expiry on a temporary directory, and the exporter's text format.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import random
from pathlib import Path

import pytest

FILES = Path(__file__).resolve().parents[2] / "roles" / "rsyslog" / "files"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, FILES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


redact = _load("eterna_log_redact")
retention = _load("eterna_log_retention")
exporter = _load("eterna_rsyslog_exporter")


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ("Authorization: Bearer abc.def-ghi", "abc.def-ghi", "Authorization: Bearer [REDACTED]"),
        ('{"http_authorization": "Basic dXNlcjpwYXNz"}', "dXNlcjpwYXNz", "Basic [REDACTED]"),
        ("Proxy-Authorization: Digest username=x", "username=x", "Proxy-Authorization: Digest [REDACTED]"),
        ("Cookie: session=s3cr3t; theme=dark", "s3cr3t", "Cookie: [REDACTED]"),
        ("set-cookie: sid=abc123; HttpOnly", "abc123", "set-cookie: [REDACTED]"),
        ("GET /login?user=bob&password=hunter2&next=/", "hunter2", "user=bob&password=[REDACTED]&next=/"),
        ("/api?access_token=tok123&x=1", "tok123", "access_token=[REDACTED]&x=1"),
        ('{"password": "pw1", "n": 1}', "pw1", '"password": "[REDACTED]", "n": 1'),
        ("X-Api-Key: k-123", "k-123", "X-Api-Key: [REDACTED]"),
        ("postgres://eterna:dbpass@db1:5432/eterna", "dbpass", "postgres://eterna:[REDACTED]@db1"),
        ("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln issued", "eyJzdWIiOiJ4In0", "token"),
        ("curl -H 'Authorization: Bearer xyz123456'", "xyz123456", "Bearer [REDACTED]"),
    ],
)
def test_credentials_in_text_are_masked(text, secret, kept):
    out = redact.redact_text(text)
    assert secret not in out
    assert kept in out


@pytest.mark.parametrize(
    "text",
    [
        "Failed password for invalid user bob from 192.0.2.1 port 22 ssh2",
        "basic authentication enabled for 3 users",
        "GET /api/v1/houses?page=2 200",
        "checkpoint complete: wrote 12 buffers",
    ],
)
def test_ordinary_text_is_unchanged(text):
    assert redact.redact_text(text) == text


def test_redaction_is_idempotent():
    once = redact.redact_text("Authorization: Bearer abcdefgh password=x https://u:p@h/")
    assert redact.redact_text(once) == once


# Pieces of log lines around every pattern's literal: credentials in headers, pairs, URLs and tokens, in other
# cases and with the separators and quotes the patterns look at.
_PIECES = (  # noqa: SIM905 - a list literal of 50 one-piece lines reads worse
    "Authorization|proxy-AUTHORIZATION|Cookie|set-cookie|Bearer|basic|token|TOKEN|password|PassWord|pwd|api_key|"
    "x-api-key|secret|session|sessionid|private_key|credential|passphrase|https://|postgres://|u:p@h|user:pw@db1|"
    'eyJhbGciOiJIUzI1NiJ9|.|eyJ|abc|12345678|=|:|: |\\"|"|\'|&|;|,| |/|?|{|}|-|_|[REDACTED]|houses|'
    "GET /api/v1/houses|status|tenant_id|request_id"
).split("|")


def test_the_literal_shortcut_gives_the_every_pattern_result():
    """redact_text skips a pattern whose literal is absent: on thousands of lines made of the patterns' pieces it
    gives exactly what running every pattern gives."""
    rng = random.Random(25)  # noqa: S311 - reproducible test lines, not a secret
    lines = ["".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 12))) for _ in range(4000)]
    masked = 0
    for line in lines:
        expected = redact.redact_text_every_pattern(line)
        assert redact.redact_text(line) == expected, line
        masked += expected != line
    # The lines exercise the patterns (about a quarter is masked), not only the shortcut.
    assert masked > len(lines) // 5


def test_text_beyond_ascii_runs_every_pattern():
    # Python's case-insensitive match takes the long s for an s: "paſſword" names a credential.
    assert redact.redact_text("paſſword=hunter2 é") == "paſſword=[REDACTED] é"
    assert redact.redact_text("café Authorization: Bearer abcdefgh") == "café Authorization: Bearer [REDACTED]"


def test_sensitive_keys_mask_whole_values_at_any_depth():
    tree = {
        "json": {"headers": {"Authorization": "Bearer t", "X-Request-Id": "r1"}, "session_id": "s", "n": 3},
        "list": [{"refresh_token": "rt"}],
        "password": None,
    }
    out = redact.redact(tree)
    assert out["json"]["headers"] == {"Authorization": "[REDACTED]", "X-Request-Id": "r1"}
    assert out["json"]["session_id"] == "[REDACTED]" and out["json"]["n"] == 3
    assert out["list"] == [{"refresh_token": "[REDACTED]"}]
    assert out["password"] is None  # nothing to hide


def test_answer_marks_the_tree_and_fails_closed():
    line = json.dumps({"msg": "x", "$!": {"message": "password=pw", "host": {"name": "h"}}})
    out = redact.answer(line)
    assert out["$!"]["message"] == "password=[REDACTED]"
    assert out["$!"]["eterna"]["redacted"] == "1"
    bad = redact.answer("not json")
    assert bad["$!"]["eterna"]["redacted"] == "0" and "withheld" in bad["$!"]["message"]


CLASSES = {"access": 14, "application": 30, "audit": 365, "security": 180}


def test_index_names_and_the_retention_boundary():
    assert retention.index_date("eterna-logs-access-2026.01.31", "eterna-logs", CLASSES) == (
        "access",
        dt.date(2026, 1, 31),
    )
    for name in [
        "eterna-logs-other-2026.01.31",
        "eterna-logs-access-2026.02.30",
        "logs-access-2026.01.31",
        "eterna-logs-access-2026.01.31-x",
    ]:
        assert retention.index_date(name, "eterna-logs", CLASSES) is None, name
    today = dt.date(2026, 3, 1)
    assert not retention.expired(today - dt.timedelta(days=14), 14, today)  # the 14th day back is kept
    assert retention.expired(today - dt.timedelta(days=15), 14, today)


def test_archive_pass_seals_expires_and_detects_changes(tmp_path):
    today = dt.date(2026, 3, 1)
    host = tmp_path / "access" / "web1"
    host.mkdir(parents=True)
    old, kept, fresh = (today - dt.timedelta(days=d) for d in (15, 5, 0))
    for day in (old, kept, fresh):
        (host / f"{day}.jsonl").write_text(f'{{"day": "{day}"}}\n')
    changes, problems = retention.archive_pass(tmp_path, CLASSES, today, seal_after=2)
    assert problems == []
    assert {c["action"] for c in changes} == {"delete_file", "seal"}
    assert not (host / f"{old}.jsonl").exists() and (host / f"{kept}.jsonl").exists()
    manifest = retention.read_manifest(host / "SHA256SUMS")
    assert set(manifest) == {f"{kept}.jsonl"}  # today's file is still open: not sealed
    assert manifest[f"{kept}.jsonl"] == retention.sha256_file(host / f"{kept}.jsonl")
    # A second run changes nothing; a changed sealed file is reported.
    assert retention.archive_pass(tmp_path, CLASSES, today, seal_after=2) == ([], [])
    (host / f"{kept}.jsonl").write_text("tampered\n")
    _, problems = retention.archive_pass(tmp_path, CLASSES, today, seal_after=2)
    assert len(problems) == 1 and "differs from the sealed" in problems[0]


class FakeStore:
    """Answers like an OpenSearch server without ILM; records the requests."""

    def __init__(self, indices):
        self.indices = list(indices)
        self.templates = {}
        self.calls = []

    def request(self, method, path, body=None):
        self.calls.append((method, path))
        if path.startswith("/_cat/indices"):
            return 200, [{"index": name} for name in self.indices]
        if path == "/_ilm/status":
            return 400, {"error": "no handler"}
        if path.startswith("/_index_template/"):
            name = path.rsplit("/", 1)[1]
            if method == "PUT":
                self.templates[name] = body
                return 200, {"acknowledged": True}
            found = [{"name": name, "index_template": self.templates[name]}] if name in self.templates else []
            return (200 if found else 404), {"index_templates": found}
        if method == "DELETE":
            self.indices.remove(path[1:])
            return 200, {"acknowledged": True}
        raise AssertionError(f"unexpected {method} {path}")


def test_index_pass_deletes_only_expired_indices_of_our_prefix():
    today = dt.date(2026, 3, 1)
    store = FakeStore(
        [
            "eterna-logs-access-2026.02.10",
            "eterna-logs-access-2026.02.20",
            "eterna-logs-audit-2026.02.10",
            "other-2020.01.01",
            "eterna-logs-unknown-2020.01.01",
        ]
    )
    changes = retention.index_pass(store, "eterna-logs", CLASSES, today)
    assert [c["index"] for c in changes] == ["eterna-logs-access-2026.02.10"]
    assert "eterna-logs-access-2026.02.10" not in store.indices and len(store.indices) == 4


def test_setup_writes_templates_once_and_skips_ilm_without_it():
    store = FakeStore([])
    first = retention.setup(store, "eterna-logs", CLASSES, "auto")
    assert sorted(c["name"] for c in first) == [f"eterna-logs-{c}" for c in sorted(CLASSES)]
    assert all(c["action"] == "index_template" for c in first)
    assert retention.setup(store, "eterna-logs", CLASSES, "auto") == []
    template = store.templates["eterna-logs-access"]
    assert template["index_patterns"] == ["eterna-logs-access-*"]
    assert "lifecycle" not in template["template"]["settings"]["index"]


def test_ilm_policy_deletes_after_the_class_retention():
    assert retention.ilm_policy(14)["policy"]["phases"]["delete"]["min_age"] == "14d"


def test_config_errors_name_the_setting(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"classes": {"access": 0}}))
    with pytest.raises(ValueError, match="classes.access"):
        retention.load_config(path)
    assert retention.main(["run", "--config", str(path)]) == 1


def test_exporter_renders_numeric_counters_with_escaped_labels():
    values = exporter.samples({"name": 'fwd "a"', "origin": "core.action", "processed": 5, "flag": True, "x": "s"})
    assert values == {("core.action", 'fwd "a"', "processed"): 5.0}
    text = exporter.render(values, 1700000000)
    assert 'rsyslog_stat{origin="core.action",name="fwd \\"a\\"",counter="processed"} 5' in text
    assert "rsyslog_stats_last_update_timestamp_seconds 1700000000" in text
