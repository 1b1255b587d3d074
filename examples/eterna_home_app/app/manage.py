"""Management commands: ``python -m app.manage create-owner --tenant TENANT --email EMAIL``.

create-owner reads the password from standard input (one line) and makes EMAIL an owner of TENANT,
creating the tenant and the user when missing. It prints exactly ``created`` when it changed anything
(tenant, user or owner membership) and ``exists`` when all of it was already there; an existing user
keeps its password (the line read is then ignored). An account that exists but is not yet a member of
TENANT is refused unless ``--existing-user`` says the operator checked who holds it (e-mail addresses are
not verified: anyone may have created that account first). Bad input: a message on stderr and exit status 2.

``export-tenant --tenant TENANT --out DIR`` writes everything stored for TENANT into DIR (new or empty, made
0700): its rows per table, every version of its S3 objects and manifest.json with row counts, sizes and
SHA-256 checksums (``app.tenant_data``); it prints a summary (JSON) and records a ``tenant_exported`` audit
event in the tenant. ``erase-tenant --tenant TENANT --confirm TENANT`` removes TENANT's rows (one transaction),
S3 object versions and delete markers and Redis keys, prints the erasure record (JSON, counts before and after
per store) and records a ``tenant_erased`` audit event in no tenant that names it only by its SHA-256. Exit
status: 0 done, 1 something remains (see ``errors``; run again), 2 bad input or no confirmation, 3 nothing
stored for TENANT, 4 a BIM conversion of TENANT is running (nothing changed; run again when it ends).

``enforce-retention --audit-days N [--contracts FILE --after-contract-days D --records DIR]`` (a daily timer of the
app role): deletes audit events older than N days and erases every tenant whose contract ended more than D days
ago (``app.retention``), keeping each erasure record in DIR (0600); it prints a summary and audits the run.

Both erasing commands take ``--s3-identity FILE`` ("-" for stdin): a JSON object with ``access_key_id`` and
``secret_access_key`` of the identity that lists and deletes the tenant's object versions. The object store's bucket
policy denies version deletes to the application's own identity, so the playbook passes the administrator identity.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app import audit, retention, tenant_data
from app.cache import redis_client
from app.config import get_settings
from app.db import session_scope
from app.models import Tenant, User, UserTenantRole
from app.passwords import hash_password
from app.storage import BadIdentity, identity_client, s3_client
from app.tenancy import TENANT_RE

_S3_IDENTITY_HELP = (
    'JSON {"access_key_id": ..., "secret_access_key": ...} ("-": stdin) of the identity that lists and deletes the '
    "tenant's object versions (the app's own identity by default)"
)
EMAIL_RE = re.compile(r"^[^@\s]{1,128}@[^@\s]{1,126}$")
MIN_PASSWORD = 12


class BadInput(Exception):
    """Invalid command-line input or password; the message is shown to the operator."""


def create_owner(tenant: str, email: str, password: str, existing_user: bool = False) -> str:
    """Ensure ``email`` is an owner of ``tenant``. ``password`` is used only when the user is created
    (at least MIN_PASSWORD characters, no control characters). Returns ``created`` or ``exists``.
    Raises BadInput for a malformed tenant id, e-mail or password, and for an existing account that is not
    a member of ``tenant`` yet unless ``existing_user`` (bool) is true."""
    if not TENANT_RE.fullmatch(tenant):
        raise BadInput(f"--tenant must match {TENANT_RE.pattern}")
    email = email.strip().lower()
    if not EMAIL_RE.match(email):
        raise BadInput("--email is not an e-mail address")
    changed = False
    with session_scope() as session:
        if session.get(Tenant, tenant) is None:
            session.add(Tenant(id=tenant, name=tenant))
            session.flush()
            changed = True
        user = session.scalar(select(User).where(func.lower(User.email) == email))
        user_created = user is None
        if user is None:
            if len(password) < MIN_PASSWORD or any(ord(c) < 32 for c in password):
                raise BadInput(f"the password (standard input, one line) needs at least {MIN_PASSWORD} characters")
            user = User(id=uuid.uuid4(), tenant_id=tenant, email=email, hashed_password=hash_password(password))
            session.add(user)
            session.flush()
            changed = True
        membership = session.scalar(
            select(UserTenantRole).where(UserTenantRole.user_id == user.id, UserTenantRole.tenant_id == tenant)
        )
        if membership is None:
            if not user_created and not existing_user:
                raise BadInput(
                    f"an account {email} exists already and is not a member of {tenant}: check who holds it, "
                    "then run again with --existing-user"
                )
            session.add(UserTenantRole(id=uuid.uuid4(), user_id=user.id, tenant_id=tenant, role="owner"))
            changed = True
        elif membership.role != "owner":
            membership.role = "owner"
            changed = True
        session.commit()
    return "created" if changed else "exists"


def _buckets() -> list[str]:
    settings = get_settings()
    return [settings.S3_BUCKET_DOCUMENTS, settings.S3_BUCKET_BIM]


def export_command(tenant: str, out: str, actor: str) -> int:
    """export-tenant: write the export, print its summary; 2 bad input, 3 unknown tenant."""
    if not TENANT_RE.fullmatch(tenant):
        raise BadInput(f"--tenant must match {TENANT_RE.pattern}")
    with session_scope() as session:
        tenant_data.read_snapshot(session)
        scope = tenant_data.tenant_scope(session, tenant)
        if session.get(Tenant, tenant) is None and not any(tenant_data.count_rows(session, scope).values()):
            print(f"export-tenant: no row of tenant {tenant}", file=sys.stderr)
            return 3
        try:
            manifest = tenant_data.export_tenant(session, s3_client(), _buckets(), tenant, Path(out))
        except FileExistsError as exc:
            raise BadInput(f"--out: {exc}") from None
    summary = {
        "tenant": tenant,
        "out": str(Path(out).resolve()),
        "rows": {name: entry["rows"] for name, entry in manifest["tables"].items()},
        "object_versions": sum(1 for o in manifest["objects"] if not o["delete_marker"]),
        "delete_markers": sum(1 for o in manifest["objects"] if o["delete_marker"]),
        "object_bytes": sum(o.get("size", 0) for o in manifest["objects"]),
    }
    with session_scope() as session:
        audit.record(
            session,
            None,
            action="tenant_exported",
            outcome="success",
            tenant_id=tenant,
            target_type="tenant",
            target_id=tenant,
            details={"actor": actor, **{k: v for k, v in summary.items() if k not in ("tenant", "out")}},
        )
        session.commit()
    print(json.dumps(summary, sort_keys=True))
    return 0


def _erasure_s3(s3_identity: str | None) -> Any:
    """The S3 client erasure works with: the identity in the file ``s3_identity`` ("-": stdin), else the app's.
    Raises BadInput when that file is unusable (its content is never shown)."""
    if s3_identity is None:
        return s3_client()
    try:
        return identity_client(s3_identity)
    except BadIdentity as exc:
        raise BadInput(str(exc)) from None


def erase_command(
    tenant: str, confirm: str | None, actor: str, backups_gone_by: str | None, s3_identity: str | None = None
) -> int:
    """erase-tenant: refuse without confirmation, erase, print the record, audit it."""
    if not TENANT_RE.fullmatch(tenant):
        raise BadInput(f"--tenant must match {TENANT_RE.pattern}")
    if confirm != tenant:
        raise BadInput("--confirm must repeat the tenant id exactly: nothing erased")
    status, record = _erase(tenant, actor, backups_gone_by, _erasure_s3(s3_identity))
    if record is not None:
        print(json.dumps(record, indent=2, sort_keys=True))
    return status


def _erase(tenant: str, actor: str, backups_gone_by: str | None, s3: Any) -> tuple[int, dict | None]:
    """Erase ``tenant`` (its objects through the client ``s3``) and audit the record: (exit status as
    erase-tenant's, the record or None)."""
    with session_scope() as session:
        try:
            record = tenant_data.erase_tenant(session, s3, redis_client(), _buckets(), tenant, actor, backups_gone_by)
        except tenant_data.NothingToErase as exc:
            print(f"erase-tenant: {exc}", file=sys.stderr)
            return 3, None
        except tenant_data.ConversionsRunning as exc:
            print(f"erase-tenant: {exc}; nothing erased", file=sys.stderr)
            return 4, None
    with session_scope() as session:
        audit.record(
            session,
            None,
            action="tenant_erased",
            outcome="success" if record["complete"] else "failure",
            target_type="tenant_erasure",
            target_id=record["record_id"],
            details=tenant_data.audit_details(record),
        )
        session.commit()
    return (0 if record["complete"] else 1), record


def retention_command(
    audit_days: int,
    contracts_file: str | None,
    after_contract_days: int,
    records: str | None,
    backups_gone_by: str | None,
    s3_identity: str | None = None,
) -> int:
    """enforce-retention: prune the audit trail, erase the tenants whose contract ended more than
    ``after_contract_days`` ago (records kept in ``records``, 0600), print a summary. 0 done, 1 an erasure is
    incomplete or waits for a running conversion (the next run retries), 2 bad input."""
    contracts: list = []
    if contracts_file:
        try:
            contracts = json.loads(Path(contracts_file).read_text())
        except (OSError, ValueError) as exc:
            raise BadInput(f"--contracts: {exc}") from None
        if not isinstance(contracts, list):
            raise BadInput("--contracts must hold a JSON list of {tenant, ended_on}")
    try:
        due = retention.due_contracts(contracts, after_contract_days, datetime.now(UTC).date())
    except retention.BadContracts as exc:
        raise BadInput(f"--contracts: {exc}") from None
    with session_scope() as session:
        pruned = retention.prune_audit(session, audit_days)
    summary: dict = {"audit_events": pruned, "ended_contracts": {}}
    status = 0
    s3 = _erasure_s3(s3_identity) if due else None
    for tenant in due:
        code, record = _erase(tenant, "retention", backups_gone_by, s3)
        summary["ended_contracts"][tenant] = {
            0: "erased",
            1: "incomplete",
            3: "nothing stored",
            4: "conversion running",
        }[code]
        if record is not None and records:
            path = Path(records) / f"{tenant}-erasure-{record['record_id']}.json"
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as fh:
                json.dump(record, fh, indent=2, sort_keys=True)
        if code in (1, 4):
            status = 1
    with session_scope() as session:
        audit.record(
            session,
            None,
            action="retention_enforced",
            outcome="success" if status == 0 else "failure",
            target_type="retention",
            details={
                "audit_events_deleted": pruned["deleted"],
                "tenants_erased": sum(1 for v in summary["ended_contracts"].values() if v == "erased"),
            },
        )
        session.commit()
    print(json.dumps(summary, sort_keys=True))
    return status


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 done, 2 bad input; see the module's doc)."""
    parser = argparse.ArgumentParser(prog="python -m app.manage")
    commands = parser.add_subparsers(dest="command", required=True)
    owner = commands.add_parser("create-owner", help="make EMAIL an owner of TENANT (password on stdin)")
    owner.add_argument("--tenant", required=True)
    owner.add_argument("--email", required=True)
    owner.add_argument(
        "--existing-user",
        action="store_true",
        help="attach an account that exists already (after checking who holds it)",
    )
    export = commands.add_parser("export-tenant", help="export everything stored for TENANT into DIR")
    export.add_argument("--tenant", required=True)
    export.add_argument("--out", required=True, metavar="DIR")
    export.add_argument("--actor", default=None, help="who asked (for the audit trail; default: the OS user)")
    erase = commands.add_parser("erase-tenant", help="erase everything stored for TENANT")
    erase.add_argument("--tenant", required=True)
    erase.add_argument("--confirm", default=None, help="the tenant id again")
    erase.add_argument("--actor", default=None, help="who asked (for the erasure record; default: the OS user)")
    erase.add_argument("--backups-gone-by", default=None, metavar="DATE", help="stated in the erasure record")
    erase.add_argument("--s3-identity", default=None, metavar="FILE", help=_S3_IDENTITY_HELP)
    keep = commands.add_parser("enforce-retention", help="prune the audit trail, erase tenants whose contract ended")
    keep.add_argument("--audit-days", type=int, required=True, help="days audit events are kept")
    keep.add_argument(
        "--contracts", default=None, metavar="FILE", help='JSON [{"tenant": T, "ended_on": "YYYY-MM-DD"}]'
    )
    keep.add_argument("--after-contract-days", type=int, default=30, help="days a tenant's data outlives its contract")
    keep.add_argument("--records", default=None, metavar="DIR", help="where the erasure records are written")
    keep.add_argument(
        "--backups-gone-by-days", type=int, default=0, help="stated in the records: days until backups expire"
    )
    keep.add_argument("--s3-identity", default=None, metavar="FILE", help=_S3_IDENTITY_HELP)
    args = parser.parse_args(argv)
    try:
        if args.command == "enforce-retention":
            gone_by = (datetime.now(UTC) + timedelta(days=args.backups_gone_by_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
            return retention_command(
                args.audit_days, args.contracts, args.after_contract_days, args.records, gone_by, args.s3_identity
            )
        if args.command == "export-tenant":
            return export_command(args.tenant, args.out, args.actor or getpass.getuser())
        if args.command == "erase-tenant":
            actor = args.actor or getpass.getuser()
            return erase_command(args.tenant, args.confirm, actor, args.backups_gone_by, args.s3_identity)
        password = sys.stdin.readline().rstrip("\r\n")
        result = create_owner(args.tenant, args.email, password, existing_user=args.existing_user)
    except BadInput as exc:
        print(f"{args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an exit code of its own: 1 means "erased, something remains" to erase-tenant's callers
        print(f"{args.command}: failed: {exc!r}", file=sys.stderr)
        return 5
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
