"""The reference app's Alembic chain on a real PostgreSQL 15 with multi-tenant seed data.

Rows seeded before the tenant migration survive upgrade, downgrade to the pre-tenant revision and
upgrade again with identical values, and get the default tenant; every revision downgrades; a
migration that damages data is caught by the verification of playbooks/migrate.yml and the backup
is restored (the same dbcheck script the playbook runs).
"""

from __future__ import annotations

import importlib.util
import json
import os
import textwrap
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples" / "eterna_home_app"
PRE_TENANT = "0001_initial_schema"
HEAD = "0007_add_tenant_listing_indexes"
BEFORE_IDENTITY = "0005_add_bim_conversion_fields"
TENANTS = ("acme", "globex", "initech")
EXPECTED_CHAIN = [
    "0001_initial_schema",
    "0002_add_tenant_id_to_all_models",
    "0003_add_user_tenant_role_table",
    "0004_add_ai_interaction_table",
    "0005_add_bim_conversion_fields",
    "0006_add_identity_tables",
    "0007_add_tenant_listing_indexes",
]
TENANT_TABLES = (
    "users",
    "houses",
    "rooms",
    "bookings",
    "maintenance_records",
    "nodes",
    "audio_logs",
    "documents",
    "bim_models",
)


def _load_dbcheck():
    spec = importlib.util.spec_from_file_location("dbcheck", ROOT / "roles" / "app" / "files" / "dbcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


dbcheck = _load_dbcheck()


def alembic_cfg(extra_versions: Path | None = None) -> Config:
    cfg = Config(str(APP_DIR / "alembic.ini"))
    cfg.attributes["configure_logger"] = False
    if extra_versions is not None:
        cfg.set_main_option(
            "version_locations", os.pathsep.join([str(APP_DIR / "migrations" / "versions"), str(extra_versions)])
        )
    return cfg


def current(url: str) -> str | None:
    engine = create_engine(url)
    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
    engine.dispose()
    return rev


def seed(url: str, per_tenant: int = 400) -> None:
    """Several tenants' worth of rows at the pre-tenant revision (tenants told apart by e-mail domain)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        for n, tenant in enumerate(TENANTS):
            params = {"t": tenant, "n": per_tenant, "seed": n}
            conn.execute(
                text(
                    "INSERT INTO users (id, email, full_name, created_at) SELECT gen_random_uuid(), "
                    "'user' || i || '@' || :t || '.example', 'User ' || i, "
                    "timestamptz '2024-01-01' + i * interval '1 minute' FROM generate_series(1, :n / 8) i"
                ),
                params,
            )
            conn.execute(
                text(
                    "INSERT INTO houses (id, name, address, owner_id) SELECT gen_random_uuid(), "
                    ":t || ' house ' || i, md5(i::text || :t), "
                    "(SELECT id FROM users WHERE email = 'user' || (1 + i % (:n / 8)) || '@' || :t || '.example') "
                    "FROM generate_series(1, :n) i"
                ),
                params,
            )
            conn.execute(
                text(
                    "INSERT INTO rooms (id, house_id, name, area_m2) SELECT gen_random_uuid(), h.id, "
                    "'room ' || r, (10 + r * 3.25)::numeric(8,2) FROM houses h, generate_series(1, 2) r "
                    "WHERE h.name LIKE :t || ' house %'"
                ),
                params,
            )
        conn.execute(
            text(
                "INSERT INTO bookings (id, room_id, user_id, starts_at, ends_at) SELECT gen_random_uuid(), r.id, "
                "h.owner_id, timestamptz '2024-06-01' + (row_number() over (order by r.id)) * interval '1 hour', "
                "timestamptz '2024-06-01' + (row_number() over (order by r.id) + 2) * interval '1 hour' "
                "FROM rooms r JOIN houses h ON h.id = r.house_id"
            )
        )
        conn.execute(
            text(
                "INSERT INTO maintenance_records (id, house_id, description, status) "
                "SELECT gen_random_uuid(), id, 'check boiler of ' || name, 'open' FROM houses"
            )
        )
        conn.execute(
            text(
                "INSERT INTO nodes (id, house_id, kind, serial) "
                "SELECT gen_random_uuid(), id, 'thermostat', md5(name) FROM houses"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audio_logs (id, node_id, transcript, duration_ms) "
                "SELECT gen_random_uuid(), id, 'turn heating to 21 ' || serial, length(serial) * 100 FROM nodes"
            )
        )
        conn.execute(
            text(
                "INSERT INTO documents (id, house_id, filename, size_bytes, sha256, object_key) "
                "SELECT gen_random_uuid(), id, name || '.pdf', 1024, md5(name), 'docs/' || id FROM houses"
            )
        )
        conn.execute(
            text(
                "INSERT INTO bim_models (id, house_id, filename, object_key, size_bytes) "
                "SELECT gen_random_uuid(), id, name || '.ifc', 'bim/' || id, 2048 FROM houses"
            )
        )
    engine.dispose()


def rows(url: str, table: str, columns: list[str]) -> list[tuple]:
    engine = create_engine(url)
    cols = ", ".join(f'"{c}"' for c in columns)
    with engine.connect() as conn:
        result = sorted(map(tuple, conn.execute(text(f"SELECT {cols} FROM {table}"))), key=repr)  # noqa: S608
    engine.dispose()
    return result


def test_chain_is_linear_and_named_as_specified():
    script = ScriptDirectory.from_config(alembic_cfg())
    assert script.get_heads() == [HEAD]
    chain = [rev.revision for rev in script.walk_revisions("base", "heads")]
    assert list(reversed(chain)) == EXPECTED_CHAIN


def test_every_revision_downgrades_and_head_matches_models(database_url):
    from app.models import Base

    cfg = alembic_cfg()
    command.upgrade(cfg, "head")
    for rev in reversed(EXPECTED_CHAIN[:-1]):
        command.downgrade(cfg, "-1")
        assert current(database_url) == rev
    command.downgrade(cfg, "base")
    assert current(database_url) is None
    command.upgrade(cfg, "head")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diffs == [], f"models and migrations disagree: {diffs}"


def test_seeded_rows_survive_upgrade_downgrade_upgrade(database_url):
    cfg = alembic_cfg()
    command.upgrade(cfg, PRE_TENANT)
    seed(database_url)
    before = dbcheck.snapshot(dbcheck.pg_env(database_url))
    assert sum(t["count"] for t in before.values()) > 10_000, "the seed must hold thousands of rows"
    full_rows = {table: rows(database_url, table, before[table]["columns"]) for table in before}

    command.upgrade(cfg, "head")
    assert current(database_url) == HEAD
    assert dbcheck.verify(dbcheck.pg_env(database_url), before) == []
    for table, data in full_rows.items():
        assert rows(database_url, table, before[table]["columns"]) == data, f"{table} changed"
    engine = create_engine(database_url)
    with engine.connect() as conn:
        for table in TENANT_TABLES:
            tenants = conn.execute(text(f"SELECT DISTINCT tenant_id FROM {table}")).scalars().all()  # noqa: S608
            assert tenants == ["default"], f"{table}: tenant_id not backfilled ({tenants})"
            nullable = conn.execute(
                text(
                    "SELECT is_nullable FROM information_schema.columns "
                    "WHERE table_name = :t AND column_name = 'tenant_id'"
                ),
                {"t": table},
            ).scalar_one()
            assert nullable == "NO"
        status = conn.execute(text("SELECT DISTINCT conversion_status FROM bim_models")).scalars().all()
        assert status == ["none"]
    engine.dispose()

    command.downgrade(cfg, PRE_TENANT)
    assert current(database_url) == PRE_TENANT
    assert dbcheck.verify(dbcheck.pg_env(database_url), before) == []
    command.upgrade(cfg, "head")
    assert dbcheck.verify(dbcheck.pg_env(database_url), before) == []
    for table, data in full_rows.items():
        assert rows(database_url, table, before[table]["columns"]) == data, f"{table} changed after the round trip"


def test_identity_revision_backfills_tenants_and_downgrades(database_url):
    """0006: tenants backfilled from users and memberships, memberships must name a tenant, users stay
    active, refresh tokens and audit events are stored; downgrading to 0005 keeps users and
    memberships exactly and drops what 0006 added; upgrading again works."""
    cfg = alembic_cfg()
    command.upgrade(cfg, BEFORE_IDENTITY)
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for n, tenant in enumerate(TENANTS):
            conn.execute(
                text(
                    "INSERT INTO users (id, email, tenant_id) "
                    "VALUES (gen_random_uuid(), 'u' || :n || '@' || :t || '.example', :t)"
                ),
                {"t": tenant, "n": n},
            )
        # A membership in a tenant no user was created in ("umbrella"), and one per home tenant.
        conn.execute(
            text(
                "INSERT INTO user_tenant_roles (id, user_id, tenant_id, role) "
                "SELECT gen_random_uuid(), id, tenant_id, 'owner' FROM users "
                "UNION ALL SELECT gen_random_uuid(), id, 'umbrella', 'viewer' FROM users WHERE tenant_id = 'acme'"
            )
        )
    users_before = rows(database_url, "users", ["id", "email", "tenant_id"])
    roles_before = rows(database_url, "user_tenant_roles", ["id", "user_id", "tenant_id", "role"])

    command.upgrade(cfg, "0006_add_identity_tables")
    with engine.begin() as conn:
        tenants = conn.execute(text("SELECT id FROM tenants ORDER BY id")).scalars().all()
        assert tenants == sorted([*TENANTS, "umbrella"])
        assert conn.execute(text("SELECT DISTINCT is_active FROM users")).scalars().all() == [True]
        user_id = conn.execute(text("SELECT id FROM users WHERE tenant_id = 'acme'")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO refresh_tokens (id, token_hash, user_id, tenant_id, family_id, expires_at) "
                "VALUES (gen_random_uuid(), repeat('a', 64), :u, 'acme', gen_random_uuid(), now())"
            ),
            {"u": user_id},
        )
        conn.execute(
            text(
                "INSERT INTO audit_events (id, tenant_id, action, outcome) "
                "VALUES (gen_random_uuid(), 'acme', 'login', 'success')"
            )
        )
        assert conn.execute(text("SELECT details FROM audit_events")).scalar_one() == "{}"
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO user_tenant_roles (id, user_id, tenant_id, role) "
                "VALUES (gen_random_uuid(), :u, 'no-such-tenant', 'member')"
            ),
            {"u": user_id},
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO refresh_tokens (id, token_hash, user_id, tenant_id, family_id, expires_at) "
                "VALUES (gen_random_uuid(), repeat('a', 64), :u, 'acme', gen_random_uuid(), now())"
            ),
            {"u": user_id},
        )

    command.downgrade(cfg, BEFORE_IDENTITY)
    assert current(database_url) == BEFORE_IDENTITY
    with engine.connect() as conn:
        left = conn.execute(
            text(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_name IN ('tenants', 'refresh_tokens', 'audit_events')"
            )
        ).all()
        assert left == []
        column = conn.execute(
            text("SELECT 1 FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'is_active'")
        ).all()
        assert column == []
    engine.dispose()
    assert rows(database_url, "users", ["id", "email", "tenant_id"]) == users_before
    assert rows(database_url, "user_tenant_roles", ["id", "user_id", "tenant_id", "role"]) == roles_before
    command.upgrade(cfg, "head")
    assert current(database_url) == HEAD


BAD_MIGRATIONS = {
    "loses_rows": """
        def upgrade():
            op.create_table("scratch", sa.Column("id", sa.Integer, primary_key=True))
            op.execute("DELETE FROM maintenance_records WHERE ctid IN (SELECT ctid FROM maintenance_records LIMIT 10)")
    """,
    "rewrites_values": """
        def upgrade():
            op.execute("UPDATE houses SET address = upper(address)")
    """,
    "raises": """
        def upgrade():
            op.add_column("houses", sa.Column("broken", sa.Integer))
            op.execute("SELECT 1 / 0")
    """,
}


@pytest.mark.parametrize("kind", sorted(BAD_MIGRATIONS))
def test_failed_migration_is_restored_from_backup(database_url, tmp_path, kind):
    """The migrate playbook's sequence: backup, snapshot, upgrade, verify; restore when anything fails."""
    cfg = alembic_cfg()
    command.upgrade(cfg, PRE_TENANT)
    seed(database_url, per_tenant=80)
    command.upgrade(cfg, "head")
    extra = tmp_path / "versions"
    extra.mkdir()
    body = textwrap.dedent(BAD_MIGRATIONS[kind])
    (extra / "9999_bad.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = '9999_bad'\ndown_revision = '{HEAD}'\nbranch_labels = None\ndepends_on = None\n"
        f"{body}\n\ndef downgrade():\n    pass\n"
    )
    env = dbcheck.pg_env(database_url)
    dump, snap = tmp_path / "pre.dump", tmp_path / "pre.json"
    assert dbcheck.main(["backup", "--out", str(dump)]) == 0
    assert dbcheck.main(["snapshot", "--out", str(snap)]) == 0
    before = json.loads(snap.read_text())

    failed = False
    try:
        command.upgrade(alembic_cfg(extra), "heads")
    except Exception:  # noqa: BLE001 - any failure of the upgrade triggers the restore
        failed = True
    if not failed:
        failed = current(database_url) != "9999_bad" or dbcheck.main(["verify", "--before", str(snap)]) != 0
    assert failed, "the verification must catch a migration that damages data"

    assert dbcheck.main(["restore", "--dump", str(dump), "--before", str(snap)]) == 0
    assert current(database_url) == HEAD
    assert dbcheck.verify(env, before) == []
    assert dbcheck.snapshot(env) == before, "the restore must bring back exactly the pre-migration database"


def test_listing_indexes_serve_a_large_tenants_first_page_without_a_sort(database_url):
    """0007: on a tenant of 5,000 houses among other tenants' rows, the house list's statement reads its first page
    from ix_houses_tenant_created (no Sort node) and its result is the same page as without the index; an invalid
    index left by an interrupted concurrent build is replaced by a valid one; downgrading drops the indexes."""
    from app.models import House
    from sqlalchemy import bindparam, select
    from sqlalchemy.dialects import postgresql

    # The house list's statement (app.api.houses.HOUSE_PAGE, which needs FastAPI to import): HouseOut's columns,
    # the tenant, oldest first then by id, a page.
    house_page = (
        select(House.id, House.name, House.address, House.created_at)
        .where(House.tenant_id == bindparam("tenant"))
        .order_by(House.created_at, House.id)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )

    cfg = alembic_cfg()
    command.upgrade(cfg, "0006_add_identity_tables")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for tenant, count in (("big", 5000), ("small", 30)):
            conn.execute(text("INSERT INTO tenants (id) VALUES (:t) ON CONFLICT DO NOTHING"), {"t": tenant})
            conn.execute(
                text(
                    "INSERT INTO houses (id, tenant_id, name, address, created_at) SELECT gen_random_uuid(), :t, "
                    "'h' || i, '', timestamptz '2026-01-01' + (i % 997) * interval '1 second' "
                    "FROM generate_series(1, :n) i"
                ),
                {"t": tenant, "n": count},
            )
        # What an interrupted CREATE INDEX CONCURRENTLY leaves behind: an index of that name marked invalid.
        conn.execute(text("CREATE INDEX ix_houses_tenant_created ON houses (tenant_id)"))
        conn.execute(
            text("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'ix_houses_tenant_created'::regclass")
        )
    page = house_page.params(tenant="big", limit=50, offset=0)
    statement = str(house_page.compile(dialect=postgresql.dialect()))
    with engine.connect() as conn:
        conn.execute(text("ANALYZE houses"))
        page_before = conn.execute(page).all()

    command.upgrade(cfg, "head")
    with engine.connect() as conn:
        valid = dict(
            conn.execute(
                text(
                    "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                    "WHERE c.relname LIKE 'ix_%_tenant_created' AND c.relname <> 'ix_audit_events_tenant_created'"
                )
            ).all()
        )
        columns = conn.execute(text("SELECT pg_get_indexdef('ix_houses_tenant_created'::regclass)")).scalar_one()
        conn.execute(text("ANALYZE houses"))
        plan = "\n".join(
            row[0] for row in conn.exec_driver_sql(f"EXPLAIN {statement}", {"tenant": "big", "limit": 50, "offset": 0})
        )
        page_after = conn.execute(page).all()
    assert valid == {
        "ix_houses_tenant_created": True,
        "ix_documents_tenant_created": True,
        "ix_bim_models_tenant_created": True,
    }
    assert "(tenant_id, created_at, id)" in columns
    assert "ix_houses_tenant_created" in plan and "Sort" not in plan, plan
    assert page_after == page_before and len(page_after) == 50

    command.downgrade(cfg, "-1")
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM pg_class WHERE relname = ANY(:names)"), {"names": list(valid)}
        ).scalar_one()
    engine.dispose()
    assert current(database_url) == "0006_add_identity_tables"
    assert left == 0
