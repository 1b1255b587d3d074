"""Management commands: ``python -m app.manage create-owner --tenant TENANT --email EMAIL``.

create-owner reads the password from standard input (one line) and makes EMAIL an owner of TENANT,
creating the tenant and the user when missing. It prints exactly ``created`` when it changed anything
(tenant, user or owner membership) and ``exists`` when all of it was already there; an existing user
keeps its password (the line read is then ignored). An account that exists but is not yet a member of
TENANT is refused unless ``--existing-user`` says the operator checked who holds it (e-mail addresses are
not verified: anyone may have created that account first). Bad input: a message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import re
import sys
import uuid

from sqlalchemy import func, select

from app.db import session_scope
from app.models import Tenant, User, UserTenantRole
from app.passwords import hash_password
from app.tenancy import TENANT_RE

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


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (0 done, 2 bad input)."""
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
    args = parser.parse_args(argv)
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        result = create_owner(args.tenant, args.email, password, existing_user=args.existing_user)
    except BadInput as exc:
        print(f"create-owner: {exc}", file=sys.stderr)
        return 2
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
