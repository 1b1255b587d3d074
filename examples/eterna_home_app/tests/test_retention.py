"""python -m app.manage enforce-retention: the audit trail pruned after its period, and the tenants whose contract
ended erased after the grace period, each with its erasure record (issue #20, retention enforced)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import test_tenant_data
from test_tenant_data import A, B, manage, rows_of

# Both tenants in every store (the erasure tests' fixture).
stores = test_tenant_data.stores


def test_due_contracts():
    from app.retention import due_contracts

    today = date(2026, 11, 30)
    contracts = [
        {"tenant": "old", "ended_on": "2026-10-01"},
        {"tenant": "recent", "ended_on": "2026-11-15"},
        {"tenant": "edge", "ended_on": "2026-10-31"},  # 30 days ago: not yet more than 30
        {"tenant": "old", "ended_on": "2026-09-01"},
    ]
    assert due_contracts(contracts, 30, today) == ["old"]
    assert due_contracts(contracts, 0, today) == ["old", "recent", "edge"]


@pytest.mark.parametrize(
    "entry", [{"tenant": "Bad Name", "ended_on": "2026-01-01"}, {"tenant": "ok", "ended_on": "31/01/2026"}, {}]
)
def test_bad_contract_entries_are_refused(entry):
    from app.retention import BadContracts, due_contracts

    with pytest.raises(BadContracts, match="ended contract 1"):
        due_contracts([entry], 30, date(2026, 1, 1))


def test_prune_audit_keeps_the_period(world):
    from app.models import AuditEvent
    from app.retention import prune_audit

    now = datetime.now(UTC)
    with world.session() as session:
        for age in (400, 366, 364, 1):
            session.add(
                AuditEvent(
                    id=uuid.uuid4(),
                    tenant_id="t",
                    action=f"age-{age}",
                    outcome="success",
                    created_at=now - timedelta(days=age),
                )
            )
        session.commit()
        result = prune_audit(session, 365, now)
        assert result["deleted"] == 2
        assert sorted(e.action for e in session.query(AuditEvent)) == ["age-1", "age-364"]
    with pytest.raises(ValueError):
        prune_audit(world.session(), 0)


def test_enforce_retention_erases_ended_contracts_only(stores, world, monkeypatch, capsys, tmp_path):
    contracts = tmp_path / "contracts.json"
    ended = (datetime.now(UTC).date() - timedelta(days=31)).isoformat()
    contracts.write_text(
        json.dumps([{"tenant": A, "ended_on": ended}, {"tenant": B, "ended_on": datetime.now(UTC).date().isoformat()}])
    )
    records = tmp_path / "records"
    records.mkdir()
    before_b = rows_of(world, B)
    enforce = ["enforce-retention", "--audit-days", "365", "--contracts", str(contracts)]
    enforce += ["--after-contract-days", "30", "--records", str(records)]
    code, out, err = manage(monkeypatch, capsys, *enforce)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ended_contracts"] == {A: "erased"}
    assert not any(rows_of(world, A).values())
    # B's rows are all there; the account created in A that is also B's member moved to B (as erase-tenant does).
    after_b = rows_of(world, B)
    assert {k: len(v) for k, v in after_b.items() if k not in ("audit_events", "users")} == {
        k: len(v) for k, v in before_b.items() if k not in ("audit_events", "users")
    }
    assert len(after_b["users"]) == len(before_b["users"]) + 1
    (record,) = records.iterdir()
    assert record.stat().st_mode & 0o777 == 0o600
    assert json.loads(record.read_text())["tenant"] == A
    assert [e.action for e in world.audit("retention_enforced")] == ["retention_enforced"]
    # A second run finds nothing more to do.
    code, out, _ = manage(monkeypatch, capsys, *enforce)
    assert code == 0 and json.loads(out)["ended_contracts"] == {A: "nothing stored"}


def test_enforce_retention_refuses_a_bad_contracts_file(stores, monkeypatch, capsys, tmp_path):
    bad = tmp_path / "contracts.json"
    bad.write_text('{"tenant": "x"}')
    code, _, err = manage(monkeypatch, capsys, "enforce-retention", "--audit-days", "365", "--contracts", str(bad))
    assert code == 2 and "JSON list" in err
