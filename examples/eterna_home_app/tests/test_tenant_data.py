"""python -m app.manage export-tenant / erase-tenant: two tenants whose ids share a prefix (acme, acme-2),
rows in every tenant-scoped table, a versioned and an unversioned bucket, Redis keys of both, and an account
that belongs to both tenants."""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from conftest import PASSWORD
from sqlalchemy import select

A, B = "acme", "acme-2"
DOCS, BIM = "documents", "bim-models"


class VersionedS3:
    """S3 with versioning per bucket, paginated listings (two entries a page) and optional locked versions."""

    PAGE = 2

    def __init__(self, versioned: set[str]) -> None:
        self.versioned = versioned
        self.store: dict[tuple[str, str], list[dict]] = {}  # newest first
        self.locked: set[str] = set()
        self.serial = 0

    def get_bucket_versioning(self, Bucket: str) -> dict:  # noqa: N803 - boto3 names
        return {"Status": "Enabled"} if Bucket in self.versioned else {}

    def put_object(self, Bucket: str, Key: str, Body: bytes, **_: object) -> dict:  # noqa: N803
        self.serial += 1
        version = {"VersionId": f"v{self.serial:04d}", "Body": Body, "LastModified": datetime.now(UTC)}
        if Bucket in self.versioned:
            self.store.setdefault((Bucket, Key), []).insert(0, version)
        else:
            self.store[(Bucket, Key)] = [version | {"VersionId": "null"}]
        return {"VersionId": version["VersionId"]}

    def delete_object(self, Bucket: str, Key: str, VersionId: str | None = None) -> None:  # noqa: N803
        versions = self.store.get((Bucket, Key), [])
        if VersionId in self.locked:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "object locked"}}, "DeleteObject")
        if VersionId is not None:
            versions[:] = [v for v in versions if v["VersionId"] != VersionId]
        elif Bucket in self.versioned:
            self.serial += 1
            versions.insert(0, {"VersionId": f"m{self.serial:04d}", "Body": None, "LastModified": datetime.now(UTC)})
        else:
            versions.clear()
        if not versions:
            self.store.pop((Bucket, Key), None)

    def get_object(self, Bucket: str, Key: str, VersionId: str | None = None) -> dict:  # noqa: N803
        versions = self.store[(Bucket, Key)]
        version = versions[0] if VersionId is None else next(v for v in versions if v["VersionId"] == VersionId)
        assert version["Body"] is not None, "a delete marker has no body"
        return {"Body": io.BytesIO(version["Body"])}

    def _entries(self, bucket: str, prefix: str) -> list[tuple[str, dict, bool]]:
        return [
            (key, version, index == 0)
            for (b, key), versions in sorted(self.store.items())
            if b == bucket and key.startswith(prefix)
            for index, version in enumerate(versions)
        ]

    def list_object_versions(self, Bucket: str, Prefix: str, KeyMarker: str = "", VersionIdMarker: str = "") -> dict:  # noqa: N803
        entries = self._entries(Bucket, Prefix)
        start = 0
        if KeyMarker:
            start = (
                next(i for i, (k, v, _) in enumerate(entries) if (k, v["VersionId"]) == (KeyMarker, VersionIdMarker))
                + 1
            )
        page = entries[start : start + self.PAGE]
        out: dict = {"Versions": [], "DeleteMarkers": [], "IsTruncated": start + self.PAGE < len(entries)}
        for key, version, latest in page:
            item = {
                "Key": key,
                "VersionId": version["VersionId"],
                "IsLatest": latest,
                "LastModified": version["LastModified"],
            }
            if version["Body"] is None:
                out["DeleteMarkers"].append(item)
            else:
                out["Versions"].append(item | {"Size": len(version["Body"])})
        if out["IsTruncated"]:
            out["NextKeyMarker"], out["NextVersionIdMarker"] = page[-1][0], page[-1][1]["VersionId"]
        return out

    def list_objects_v2(self, Bucket: str, Prefix: str, ContinuationToken: str = "0") -> dict:  # noqa: N803
        entries = [(k, v) for k, v, latest in self._entries(Bucket, Prefix) if latest]
        start = int(ContinuationToken)
        out = {
            "Contents": [{"Key": k, "Size": len(v["Body"])} for k, v in entries[start : start + self.PAGE]],
            "IsTruncated": start + self.PAGE < len(entries),
        }
        if out["IsTruncated"]:
            out["NextContinuationToken"] = str(start + self.PAGE)
        return out

    def snapshot(self, prefix: str) -> dict:
        return {
            (bucket, key): [(v["VersionId"], v["Body"]) for v in versions]
            for (bucket, key), versions in self.store.items()
            if key.startswith(prefix)
        }


class FakeRedis:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def scan_iter(self, match: str = "*", count: int = 10):  # noqa: ARG002 - redis-py's signature
        return iter([key for key in list(self.data) if fnmatch.fnmatchcase(key, match)])

    def unlink(self, *keys: str) -> int:
        return sum(self.data.pop(key, None) is not None for key in keys)


@pytest.fixture
def stores(client, world, monkeypatch):
    """Both tenants filled in every store; returns (s3, redis, people)."""
    from app import manage, models
    from app.cache import tenant_key

    s3, redis = VersionedS3({DOCS}), FakeRedis()
    monkeypatch.setattr(manage, "s3_client", lambda: s3)
    monkeypatch.setattr(manage, "redis_client", lambda: redis)
    people = {
        "a_only": world.user("only@acme.example", {A: "owner"}),
        "b_only": world.user("only@acme-2.example", {B: "owner"}),
        # Created in A, also a member of B: kept, moved to B.
        "shared": world.user("both@acme.example", {A: "admin", B: "member"}),
        # Created in B, also a member of A: kept as it is.
        "shared_b": world.user("both@acme-2.example", {B: "admin", A: "viewer"}),
    }
    now = datetime.now(UTC)
    with world.session() as session:
        for tenant, owner in ((A, people["a_only"]), (B, people["b_only"])):
            house = models.House(id=uuid.uuid4(), tenant_id=tenant, name=f"house of {tenant}", owner_id=owner)
            node = models.Node(
                id=uuid.uuid4(), tenant_id=tenant, house_id=house.id, kind="sensor", serial=f"{tenant}-1"
            )
            room = models.Room(id=uuid.uuid4(), tenant_id=tenant, house_id=house.id, name="kitchen", area_m2=12.5)
            doc_id, bim_id = uuid.uuid4(), uuid.uuid4()
            session.add_all([house, node, room])
            session.flush()
            session.add_all(
                [
                    models.Booking(
                        id=uuid.uuid4(), tenant_id=tenant, room_id=room.id, user_id=owner, starts_at=now, ends_at=now
                    ),
                    models.MaintenanceRecord(id=uuid.uuid4(), tenant_id=tenant, house_id=house.id, description="leak"),
                    models.AudioLog(id=uuid.uuid4(), tenant_id=tenant, node_id=node.id, transcript=f"hello {tenant}"),
                    models.Document(
                        id=doc_id,
                        tenant_id=tenant,
                        house_id=house.id,
                        filename="plan.pdf",
                        object_key=f"{tenant}/{doc_id}",
                    ),
                    models.BIMModel(
                        id=bim_id, tenant_id=tenant, filename="m.ifc", object_key=f"{tenant}/{bim_id}/m.ifc"
                    ),
                    models.AIAssistantInteraction(id=uuid.uuid4(), tenant_id=tenant, user_id=owner, prompt="hi"),
                    models.RefreshToken(
                        id=uuid.uuid4(),
                        token_hash=hashlib.sha256(f"token-{tenant}".encode()).hexdigest(),
                        user_id=owner,
                        tenant_id=tenant,
                        family_id=uuid.uuid4(),
                        expires_at=now + timedelta(days=1),
                    ),
                    models.AuditEvent(id=uuid.uuid4(), tenant_id=tenant, action="login", outcome="success"),
                ]
            )
            # Two versions of the document and a deleted draft (a delete marker over one version).
            s3.put_object(Bucket=DOCS, Key=f"{tenant}/{doc_id}", Body=f"plan v1 of {tenant}".encode())
            s3.put_object(Bucket=DOCS, Key=f"{tenant}/{doc_id}", Body=f"plan v2 of {tenant}".encode())
            s3.put_object(Bucket=DOCS, Key=f"{tenant}/draft", Body=f"draft of {tenant}".encode())
            s3.delete_object(Bucket=DOCS, Key=f"{tenant}/draft")
            s3.put_object(Bucket=BIM, Key=f"{tenant}/{bim_id}/m.ifc", Body=f"IFC of {tenant}\n".encode())
            s3.put_object(Bucket=BIM, Key=f"{tenant}/{bim_id}/m.ifc.converted.json", Body=b"{}")
            redis.data[tenant_key(tenant, "house", str(house.id))] = b"cached"
        # An event of A's own account recorded in no tenant (erased with A), and one in B's trail (kept).
        session.add(
            models.AuditEvent(
                id=uuid.uuid4(), tenant_id=None, actor_user_id=people["a_only"], action="login", outcome="failure"
            )
        )
        session.add(
            models.AuditEvent(
                id=uuid.uuid4(), tenant_id=B, actor_user_id=people["a_only"], action="house_deleted", outcome="success"
            )
        )
        session.commit()
    redis.data["celery"] = b"unrelated"
    return s3, redis, people


def manage(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from app import manage as command

    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = command.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def rows_of(world, tenant: str) -> dict[str, list[dict]]:
    """Every row whose tenant column is ``tenant``, per table, plus the tenant's members' accounts."""
    from app.models import Base
    from app.tenant_data import tenant_column

    out = {}
    with world.session() as session:
        for table in Base.metadata.sorted_tables:
            column = table.c.id if table.name == "tenants" else tenant_column(table)
            out[table.name] = sorted(
                (dict(r) for r in session.execute(select(table).where(column == tenant)).mappings()), key=str
            )
    return out


def test_every_table_is_tenant_scoped():
    # A new table must name its tenant (a tenant_id column or a foreign key to tenants) or erasure would
    # miss it: app.tenant_data derives what it exports and erases from this.
    from app.models import Base
    from app.tenant_data import scoped_tables

    assert {t.name for t in scoped_tables()} == set(Base.metadata.tables)


def test_export_holds_exactly_the_tenant(stores, world, monkeypatch, capsys, tmp_path):
    s3, _, people = stores
    out = tmp_path / "export"
    code, stdout, err = manage(monkeypatch, capsys, "export-tenant", "--tenant", A, "--out", str(out), "--actor", "ops")
    assert code == 0, err
    summary = json.loads(stdout)
    manifest = json.loads((out / "manifest.json").read_text())
    assert summary["rows"] == {name: entry["rows"] for name, entry in manifest["tables"].items()}

    exported = {
        name: [json.loads(line) for line in (out / entry["file"]).read_text().splitlines()]
        for name, entry in manifest["tables"].items()
    }
    expected = rows_of(world, A)
    for name, rows in exported.items():
        assert len(rows) == manifest["tables"][name]["rows"]
        if name not in ("users", "audit_events", "tenants"):
            assert all(row["tenant_id"] == A for row in rows), name
            assert sorted(r["id"] for r in rows) == sorted(str(r["id"]) for r in expected[name]), name
    # Only the account that belongs to A alone; the shared ones appear as A's memberships only.
    assert [u["email"] for u in exported["users"]] == ["only@acme.example"]
    assert {r["user_id"] for r in exported["user_tenant_roles"]} == {
        str(people[k]) for k in ("a_only", "shared", "shared_b")
    }
    # A's trail, and the event of A's own account recorded outside any tenant.
    assert len(exported["audit_events"]) == 2
    assert all(row["tenant_id"] in (A, None) for row in exported["audit_events"])
    assert manifest["tables"]["tenants"]["rows"] == 1

    # Every version and the delete marker of A's objects; none of B's (the prefix acme/ is not acme-2/).
    objects = manifest["objects"]
    assert all(o["key"].startswith(f"{A}/") for o in objects)
    assert sum(o["bucket"] == DOCS and not o["delete_marker"] for o in objects) == 3
    assert sum(o["delete_marker"] for o in objects) == 1
    assert sum(o["bucket"] == BIM for o in objects) == 2
    for entry in [o for o in objects if not o["delete_marker"]]:
        data = (out / entry["file"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])
    bodies = b"".join((out / o["file"]).read_bytes() for o in objects if not o["delete_marker"])
    assert b"plan v1 of acme" in bodies and b"plan v2 of acme" in bodies and b"draft of acme" in bodies
    for entry in manifest["tables"].values():
        assert hashlib.sha256((out / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]

    # Nothing of B anywhere, no credential, and private modes.
    everything = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for marker in (B.encode(), str(people["b_only"]).encode(), b"only@acme-2.example", b"$argon2"):
        assert marker not in everything, marker
    assert hashlib.sha256(b"token-acme").hexdigest().encode() not in everything
    assert oct(out.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in out.rglob("*") if p.is_file()} == {"0o600"}

    exported_events = world.audit("tenant_exported")
    assert [(e.tenant_id, json.loads(e.details)["actor"]) for e in exported_events] == [(A, "ops")]


def test_export_refuses_a_used_directory_and_an_unknown_tenant(stores, monkeypatch, capsys, tmp_path):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "file").write_text("x")
    code, _, err = manage(monkeypatch, capsys, "export-tenant", "--tenant", A, "--out", str(tmp_path / "used"))
    assert code == 2 and "not empty" in err
    code, _, err = manage(monkeypatch, capsys, "export-tenant", "--tenant", "nobody", "--out", str(tmp_path / "n"))
    assert code == 3 and not (tmp_path / "n").exists()


@pytest.mark.parametrize("confirm", [[], ["--confirm", B], ["--confirm", "ACME"], ["--confirm", "acme "]])
def test_erase_refuses_without_the_tenant_as_confirmation(stores, world, monkeypatch, capsys, confirm):
    s3, redis, _ = stores
    before = (rows_of(world, A), s3.snapshot(""), dict(redis.data))
    code, out, err = manage(monkeypatch, capsys, "erase-tenant", "--tenant", A, *confirm)
    assert (code, out) == (2, "") and "--confirm" in err
    assert (rows_of(world, A), s3.snapshot(""), dict(redis.data)) == before
    assert world.audit("tenant_erased") == []


def test_erase_removes_the_tenant_from_every_store_and_nothing_else(client, stores, world, monkeypatch, capsys):
    from app import tasks
    from app.models import BIMModel, User, UserTenantRole

    s3, redis, people = stores
    b_rows, b_objects = rows_of(world, B), s3.snapshot(f"{B}/")
    b_keys = sorted(key for key in redis.data if not key.startswith(f"eterna:tenant:{A}:"))
    with world.session() as session:
        queued = session.scalar(select(BIMModel).where(BIMModel.tenant_id == A))
        queued.conversion_status = "queued"
        queued_id = str(queued.id)
        session.commit()

    code, out, err = manage(
        monkeypatch,
        capsys,
        "erase-tenant",
        "--tenant",
        A,
        "--confirm",
        A,
        "--actor",
        "ops",
        "--backups-gone-by",
        "2027-01-01",
    )
    assert code == 0, err
    record = json.loads(out)
    assert record["complete"] is True and record["actor"] == "ops" and record["backups_gone_by"] == "2027-01-01"
    assert record["database"]["before"]["houses"] == 1 and record["database"]["before"]["users"] == 1
    assert (
        record["database"]["before"]["user_tenant_roles"] == 3 and record["database"]["before"]["users.tenant_id"] == 1
    )
    assert not any(record["database"]["after"].values())
    assert record["objects"]["before"] == {
        DOCS: {"versions": 3, "delete_markers": 1},
        BIM: {"versions": 2, "delete_markers": 0},
    }
    assert record["objects"]["after"] == {b: {"versions": 0, "delete_markers": 0} for b in (DOCS, BIM)}
    assert (record["cache"]["before"], record["cache"]["after"]) == (1, 0)
    assert record["tasks"]["queued_conversions"] == 1

    # No row, object version, delete marker or key of A; B's exactly as they were.
    assert not any(rows_of(world, A).values())
    b_after = rows_of(world, B)
    assert {k: v for k, v in b_after.items() if k != "users"} == {k: v for k, v in b_rows.items() if k != "users"}
    assert (
        all(user in b_after["users"] for user in b_rows["users"]) and len(b_after["users"]) == len(b_rows["users"]) + 1
    )
    assert s3.snapshot(f"{A}/") == {} and s3.snapshot(f"{B}/") == b_objects
    assert sorted(redis.data) == b_keys

    # The account of A alone is gone; the shared ones keep B (and their B role), and the one created in A moved.
    with world.session() as session:
        assert session.get(User, people["a_only"]) is None
        for key in ("shared", "shared_b"):
            user = session.get(User, people[key])
            assert user.tenant_id == B
            roles = session.scalars(select(UserTenantRole).where(UserTenantRole.user_id == user.id)).all()
            assert [(r.tenant_id, r.role) for r in roles] == [(B, "member" if key == "shared" else "admin")]
    login = {"username": "both@acme.example", "password": PASSWORD}
    assert client.post("/api/v1/auth/token", data=login | {"tenant": B}).json()["role"] == "member"
    assert client.post("/api/v1/auth/token", data=login | {"tenant": A}).status_code == 403

    # The conversion still queued in the broker finds no row and writes nothing.
    assert tasks.convert_bim(queued_id, A) == "missing"

    # On record in no tenant, without the tenant's name or anyone's e-mail.
    (event,) = world.audit("tenant_erased")
    assert (event.tenant_id, event.outcome, event.target_id) == (None, "success", record["record_id"])
    details = json.loads(event.details)
    assert details["tenant_sha256"] == hashlib.sha256(A.encode()).hexdigest()
    assert details["rows"]["after"] == 0 and details["objects"]["before"] == 6
    assert A not in event.details and "@" not in event.details

    code, _, err = manage(monkeypatch, capsys, "erase-tenant", "--tenant", A, "--confirm", A)
    assert code == 3 and "nothing erased" in err


def test_erase_waits_for_a_running_conversion(stores, world, monkeypatch, capsys):
    from app.models import BIMModel

    with world.session() as session:
        session.scalar(select(BIMModel).where(BIMModel.tenant_id == A)).conversion_status = "processing"
        session.commit()
    before = rows_of(world, A)
    code, out, err = manage(monkeypatch, capsys, "erase-tenant", "--tenant", A, "--confirm", A)
    assert (code, out) == (4, "") and "running" in err
    assert rows_of(world, A) == before


def test_erase_reports_a_version_the_store_keeps(stores, world, monkeypatch, capsys):
    # Object lock (or a policy without s3:DeleteObjectVersion) keeps a version: the record says so and the
    # command fails; everything else is erased, and running it again finishes once the store allows it.
    s3, _, _ = stores
    locked = s3.store[next(k for k in s3.store if k[0] == DOCS and k[1].startswith(f"{A}/") and k[1] != f"{A}/draft")]
    s3.locked.add(locked[-1]["VersionId"])
    code, out, _ = manage(monkeypatch, capsys, "erase-tenant", "--tenant", A, "--confirm", A)
    record = json.loads(out)
    assert code == 1 and record["complete"] is False and len(record["errors"]) == 1
    assert record["objects"]["after"][DOCS] == {"versions": 1, "delete_markers": 0}
    assert not any(rows_of(world, A).values())
    assert [e.outcome for e in world.audit("tenant_erased")] == ["failure"]
    s3.locked.clear()
    code, out, _ = manage(monkeypatch, capsys, "erase-tenant", "--tenant", A, "--confirm", A)
    assert code == 0 and json.loads(out)["objects"]["before"][DOCS]["versions"] == 1
    assert s3.snapshot(f"{A}/") == {}


def test_cache_keys_follow_the_tenant_scheme():
    from app.cache import tenant_key, tenant_key_pattern

    assert tenant_key(A, "house", "1") == "eterna:tenant:acme:house:1"
    assert fnmatch.fnmatchcase(tenant_key(A, "x"), tenant_key_pattern(A))
    assert not fnmatch.fnmatchcase(tenant_key(B, "x"), tenant_key_pattern(A))
    with pytest.raises(ValueError, match="tenant"):
        tenant_key("a*", "x")


def test_export_files_are_never_named_after_keys(stores, monkeypatch, capsys, tmp_path):
    s3, _, _ = stores
    s3.put_object(Bucket=BIM, Key=f"{A}/../../escape", Body=b"x")
    code, _, err = manage(monkeypatch, capsys, "export-tenant", "--tenant", A, "--out", str(tmp_path / "e"))
    assert code == 0, err
    assert not list(tmp_path.rglob("escape")) and Path(tmp_path / "e" / "manifest.json").exists()


def test_erase_with_foreign_keys_enforced(stores, engine, world, monkeypatch, capsys):
    # SQLite enforces foreign keys (and runs their ON DELETE actions) only when asked; PostgreSQL always does.
    # The erasure must pass there too, and no cascade may reach the other tenant.
    from sqlalchemy import text

    with engine.connect() as conn:
        conn.execute(text("PRAGMA foreign_keys=ON"))
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    b_rows = rows_of(world, B)
    code, out, err = manage(monkeypatch, capsys, "erase-tenant", "--tenant", A, "--confirm", A)
    assert code == 0, err
    assert json.loads(out)["complete"] is True
    assert not any(rows_of(world, A).values())
    b_after = rows_of(world, B)
    assert {k: v for k, v in b_after.items() if k != "users"} == {k: v for k, v in b_rows.items() if k != "users"}
