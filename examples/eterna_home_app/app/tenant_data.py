"""Export and erasure of everything stored for one tenant: its rows in the database, its S3 objects (every
version and delete marker) and its Redis keys (``app.cache`` key scheme). ``app.manage`` runs them as
``export-tenant`` and ``erase-tenant``.

Which rows belong to a tenant is derived from the SQLAlchemy metadata, so a new table is covered without a
change here: every table with a foreign key to ``tenants.id`` or a ``tenant_id`` column holds the tenant's
rows where that column is the tenant. Three tables need more than that:

- ``tenants``: the tenant's own row.
- ``users``: the accounts that belong to the tenant only (a membership of it, or created in it, and no
  membership of any other tenant). An account that is also a member of another tenant is kept: only its
  membership goes, and when it was created in the tenant its ``tenant_id`` moves to its oldest remaining
  membership, so no row keeps the tenant's id.
- ``audit_events``: the tenant's trail, plus the events of its own accounts recorded in no tenant. Another
  tenant's trail is left whole, even where one of these accounts acted in it before leaving it.

``CREDENTIAL_COLUMNS`` are left out of exports: password and refresh-token hashes are credentials, not
data of the tenant.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import ColumnElement, Table, and_, delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from app.cache import tenant_key_pattern
from app.models import Base, BIMModel, UserTenantRole

CREDENTIAL_COLUMNS = frozenset({("users", "hashed_password"), ("refresh_tokens", "token_hash")})
CHUNK = 1024 * 1024


class NothingToErase(Exception):
    """No row, object or key of the tenant exists (a typing error, or erased already)."""


class ConversionsRunning(Exception):
    """A BIM conversion of the tenant is running: it could write an object after the erasure."""


def tenant_column(table: Table) -> Any | None:
    """The column that names a row's tenant: a foreign key to tenants.id, else a ``tenant_id`` column."""
    for column in table.columns:
        if any(fk.target_fullname == "tenants.id" for fk in column.foreign_keys):
            return column
    return table.columns.get("tenant_id")


def scoped_tables() -> list[Table]:
    """Every table that holds rows of a tenant, in foreign-key order (referenced tables first)."""
    return [
        table for table in Base.metadata.sorted_tables if table.name == "tenants" or tenant_column(table) is not None
    ]


@dataclass(frozen=True)
class Scope:
    """The rows of one tenant: its own accounts, and the accounts it shares with other tenants."""

    tenant: str
    own_users: frozenset[uuid.UUID]
    shared_users: frozenset[uuid.UUID]

    def where(self, table: Table) -> ColumnElement[bool]:
        """The WHERE clause selecting the tenant's rows of ``table``."""
        if table.name == "tenants":
            return table.c.id == self.tenant
        if table.name == "users":
            return table.c.id.in_(self.own_users) if self.own_users else false()
        column = tenant_column(table)
        clause = column == self.tenant
        if table.name == "audit_events" and self.own_users:
            ids = [str(user) for user in self.own_users]
            # Only events recorded in no tenant: another tenant's trail stays whole.
            clause = or_(
                clause,
                and_(
                    table.c.tenant_id.is_(None),
                    or_(
                        table.c.actor_user_id.in_(self.own_users),
                        and_(table.c.target_type == "user", table.c.target_id.in_(ids)),
                    ),
                ),
            )
        return clause


def tenant_scope(session: Session, tenant: str) -> Scope:
    """Find the tenant's own and shared accounts."""
    users = Base.metadata.tables["users"]
    roles = UserTenantRole.__table__
    members = set(session.scalars(select(roles.c.user_id).where(roles.c.tenant_id == tenant)))
    created_here = set(session.scalars(select(users.c.id).where(users.c.tenant_id == tenant)))
    candidates = members | created_here
    elsewhere = (
        set(
            session.scalars(select(roles.c.user_id).where(roles.c.tenant_id != tenant, roles.c.user_id.in_(candidates)))
        )
        if candidates
        else set()
    )
    return Scope(tenant, frozenset(candidates - elsewhere), frozenset(candidates & elsewhere))


def count_rows(session: Session, scope: Scope) -> dict[str, int]:
    """Rows of the tenant per scoped table, plus ``users.tenant_id``: shared accounts created in the tenant
    (kept, their ``tenant_id`` moved elsewhere by the erasure)."""
    counts = {
        table.name: session.scalar(select(func.count()).select_from(table).where(scope.where(table)))
        for table in scoped_tables()
    }
    users = Base.metadata.tables["users"]
    counts["users.tenant_id"] = session.scalar(
        select(func.count())
        .select_from(users)
        .where(users.c.tenant_id == scope.tenant, users.c.id.notin_(scope.own_users))
    )
    return counts


def _json_value(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot export a {type(value).__name__}")


# S3 ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectVersion:
    """One object version or delete marker (``version_id`` None: the bucket is not versioned)."""

    bucket: str
    key: str
    version_id: str | None
    delete_marker: bool = False
    is_latest: bool = True
    size: int = 0
    last_modified: str = ""


def bucket_versioned(s3: Any, bucket: str) -> bool:
    """True when the bucket keeps versions (Enabled, or Suspended with older versions). A store that
    refuses GetBucketVersioning to this identity is listed with ListObjectVersions, which also answers
    for unversioned buckets."""
    try:
        return s3.get_bucket_versioning(Bucket=bucket).get("Status") in ("Enabled", "Suspended")
    except ClientError:
        return True


def list_objects(s3: Any, bucket: str, prefix: str) -> list[ObjectVersion]:
    """Every object under ``prefix`` in ``bucket``: all versions and delete markers when versioned."""
    found: list[ObjectVersion] = []
    if bucket_versioned(s3, bucket):
        kwargs: dict[str, str] = {}
        while True:
            page = s3.list_object_versions(Bucket=bucket, Prefix=prefix, **kwargs)
            for kind, marker in (("Versions", False), ("DeleteMarkers", True)):
                for item in page.get(kind, []):
                    found.append(
                        ObjectVersion(
                            bucket,
                            item["Key"],
                            item.get("VersionId") or "null",
                            marker,
                            bool(item.get("IsLatest", True)),
                            0 if marker else int(item.get("Size", 0)),
                            _stamp(item.get("LastModified")),
                        )
                    )
            if not page.get("IsTruncated"):
                return found
            kwargs = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page.get("NextVersionIdMarker", "")}
    token: dict[str, str] = {}
    while True:
        page = s3.list_objects_v2(Bucket=bucket, Prefix=prefix, **token)
        for item in page.get("Contents", []):
            found.append(
                ObjectVersion(
                    bucket, item["Key"], None, False, True, int(item.get("Size", 0)), _stamp(item.get("LastModified"))
                )
            )
        if not page.get("IsTruncated"):
            return found
        token = {"ContinuationToken": page["NextContinuationToken"]}


def _stamp(value: Any) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value or "")


def object_counts(objects: list[ObjectVersion], buckets: list[str]) -> dict[str, dict[str, int]]:
    """Per bucket: object versions and delete markers."""
    return {
        bucket: {
            "versions": sum(1 for o in objects if o.bucket == bucket and not o.delete_marker),
            "delete_markers": sum(1 for o in objects if o.bucket == bucket and o.delete_marker),
        }
        for bucket in buckets
    }


def tenant_objects(s3: Any, buckets: list[str], tenant: str) -> list[ObjectVersion]:
    """The tenant's objects in every bucket: the app writes them all under ``<tenant>/``."""
    return [version for bucket in buckets for version in list_objects(s3, bucket, f"{tenant}/")]


# Export ------------------------------------------------------------------------------------------------


def read_snapshot(session: Session) -> None:
    """Make the session's next transaction read one snapshot (PostgreSQL REPEATABLE READ, read only), so an
    export is consistent while the app keeps writing. Call it before the session's first query."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ", "postgresql_readonly": True})


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(partial(handle.read, CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _create_private(path: Path) -> Any:
    """Open a new file readable by its owner only."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def export_tenant(session: Session, s3: Any, buckets: list[str], tenant: str, out: Path) -> dict:
    """Write the tenant's rows (``tables/<table>.jsonl``), its object versions (``objects/<bucket>/<n>``)
    and ``manifest.json`` (row counts, sizes, SHA-256 of every file) into ``out``, a new or empty
    directory made 0700. Reads in one transaction. Returns the manifest."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)
    (out / "tables").mkdir(mode=0o700)
    scope = tenant_scope(session, tenant)
    manifest: dict[str, Any] = {
        "format": 1,
        "tenant": tenant,
        "created_at": datetime.now(UTC).isoformat(),
        "left_out_columns": sorted(f"{t}.{c}" for t, c in CREDENTIAL_COLUMNS),
        "shared_users_left_out": len(scope.shared_users),
        "tables": {},
        "objects": [],
    }
    for table in scoped_tables():
        path = out / "tables" / f"{table.name}.jsonl"
        columns = [c for c in table.columns if (table.name, c.name) not in CREDENTIAL_COLUMNS]
        rows = 0
        with _create_private(path) as handle:
            for row in session.execute(select(*columns).where(scope.where(table))).mappings():
                handle.write(json.dumps(dict(row), default=_json_value, sort_keys=True).encode() + b"\n")
                rows += 1
        manifest["tables"][table.name] = {
            "rows": rows,
            "file": f"tables/{table.name}.jsonl",
            "sha256": _sha256_file(path),
        }
    for number, version in enumerate(tenant_objects(s3, buckets, tenant), start=1):
        entry: dict[str, Any] = {
            "bucket": version.bucket,
            "key": version.key,
            "version_id": version.version_id,
            "is_latest": version.is_latest,
            "delete_marker": version.delete_marker,
            "last_modified": version.last_modified,
        }
        if not version.delete_marker:
            # Numbered files: object keys may hold anything, so they never become paths.
            (out / "objects" / version.bucket).mkdir(mode=0o700, parents=True, exist_ok=True)
            relative = f"objects/{version.bucket}/{number:06d}"
            extra = {"VersionId": version.version_id} if version.version_id else {}
            body = s3.get_object(Bucket=version.bucket, Key=version.key, **extra)["Body"]
            digest, size = hashlib.sha256(), 0
            with _create_private(out / relative) as handle:
                for block in iter(partial(body.read, CHUNK), b""):
                    digest.update(block)
                    size += len(block)
                    handle.write(block)
            entry |= {"file": relative, "size": size, "sha256": digest.hexdigest()}
        manifest["objects"].append(entry)
    with _create_private(out / "manifest.json") as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n")
    return manifest


# Erasure -----------------------------------------------------------------------------------------------


def cache_keys(redis: Any, tenant: str) -> list[bytes | str]:
    return list(redis.scan_iter(match=tenant_key_pattern(tenant), count=1000))


def erase_rows(session: Session, tenant: str) -> tuple[dict[str, int], dict[str, int], int]:
    """Delete the tenant's rows in one transaction, dependants first; move the ``tenant_id`` of shared
    accounts created in the tenant to their oldest other membership. Refuses (ConversionsRunning) while
    a conversion of the tenant runs, after locking its BIM rows so that none starts meanwhile.
    Returns (counts before, counts after, queued conversions that will find no row)."""
    bims = session.execute(
        select(BIMModel.id, BIMModel.conversion_status).where(BIMModel.tenant_id == tenant).with_for_update()
    ).all()
    running = sum(1 for _, status in bims if status == "processing")
    if running:
        session.rollback()
        raise ConversionsRunning(f"{running} BIM conversion(s) of {tenant} are running: erase again when they end")
    queued = sum(1 for _, status in bims if status == "queued")
    scope = tenant_scope(session, tenant)
    before = count_rows(session, scope)
    users = Base.metadata.tables["users"]
    roles = UserTenantRole.__table__
    for user_id in scope.shared_users:
        home = session.scalar(
            select(roles.c.tenant_id)
            .where(roles.c.user_id == user_id, roles.c.tenant_id != tenant)
            .order_by(roles.c.created_at, roles.c.tenant_id)
            .limit(1)
        )
        session.execute(update(users).where(users.c.id == user_id, users.c.tenant_id == tenant).values(tenant_id=home))
    for table in reversed(scoped_tables()):
        session.execute(delete(table).where(scope.where(table)))
    after = count_rows(session, scope)
    session.commit()
    return before, after, queued


def erase_objects(s3: Any, objects: list[ObjectVersion]) -> list[str]:
    """Delete every listed version and delete marker (each by its version id, so versioned buckets keep
    nothing). Returns the errors, one line each."""
    errors = []
    for version in objects:
        extra = {"VersionId": version.version_id} if version.version_id else {}
        try:
            s3.delete_object(Bucket=version.bucket, Key=version.key, **extra)
        except (ClientError, BotoCoreError) as exc:  # refused, or the store unreachable: the record says what remains
            errors.append(f"s3://{version.bucket}/{version.key} {version.version_id}: {exc}")
    return errors


def erase_cache(redis: Any, tenant: str) -> int:
    """Delete the tenant's Redis keys (UNLINK, 500 at a time). Returns how many were found."""
    keys = cache_keys(redis, tenant)
    for start in range(0, len(keys), 500):
        redis.unlink(*keys[start : start + 500])
    return len(keys)


def erase_tenant(
    session: Session,
    s3: Any,
    redis: Any,
    buckets: list[str],
    tenant: str,
    actor: str,
    backups_gone_by: str | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict:
    """Erase the tenant from the database, S3 and Redis and return the erasure record (counts before and
    after per store). Raises NothingToErase when no store holds anything of the tenant, and
    ConversionsRunning (nothing changed) while one of its conversions runs. The record's ``complete`` is
    false when anything remains (an object version the store refused to delete: run again)."""
    started = now()
    objects_before = tenant_objects(s3, buckets, tenant)
    keys_before = len(cache_keys(redis, tenant))
    rows_before, rows_after, queued = erase_rows(session, tenant)
    if not any(rows_before.values()) and not objects_before and not keys_before:
        raise NothingToErase(f"no row, object or cache key of tenant {tenant}: nothing erased")
    errors = erase_objects(s3, objects_before)
    erase_cache(redis, tenant)
    objects_after = tenant_objects(s3, buckets, tenant)
    keys_after = len(cache_keys(redis, tenant))
    remaining = sum(rows_after.values()) + len(objects_after) + keys_after
    return {
        "record_id": str(uuid.uuid4()),
        "action": "tenant_erased",
        "tenant": tenant,
        "actor": actor,
        "started_at": started.isoformat(),
        "finished_at": now().isoformat(),
        "complete": remaining == 0,
        "database": {"before": rows_before, "after": rows_after},
        "objects": {"before": object_counts(objects_before, buckets), "after": object_counts(objects_after, buckets)},
        "cache": {"pattern": tenant_key_pattern(tenant), "before": keys_before, "after": keys_after},
        "tasks": {
            "queued_conversions": queued,
            "note": "queued BIM conversions stay in the broker until a worker takes them, find no row, do nothing",
        },
        "backups_gone_by": backups_gone_by,
        "errors": errors,
    }


def audit_details(record: dict) -> dict:
    """The erasure record without personal data, for the audit event (tenant_id empty): the tenant only
    as its SHA-256, counts as totals per store."""

    def total(counts: dict) -> int:
        return sum(total(v) if isinstance(v, dict) else int(v) for v in counts.values())

    return {
        "record_id": record["record_id"],
        "tenant_sha256": hashlib.sha256(record["tenant"].encode()).hexdigest(),
        "actor": record["actor"],
        "complete": record["complete"],
        "rows": {"before": total(record["database"]["before"]), "after": total(record["database"]["after"])},
        "objects": {"before": total(record["objects"]["before"]), "after": total(record["objects"]["after"])},
        "cache_keys": {"before": record["cache"]["before"], "after": record["cache"]["after"]},
        "backups_gone_by": record["backups_gone_by"],
    }
