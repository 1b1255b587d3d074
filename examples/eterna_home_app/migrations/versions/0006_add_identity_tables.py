"""Identity: tenants (backfilled from the existing users and memberships, and referenced by
user_tenant_roles), users.is_active, refresh tokens (stored as SHA-256 only) and the audit trail.

Downgrading drops the new tables and the column: refresh tokens and audit events are lost (every
session must log in again), memberships and users survive.

Revision ID: 0006_add_identity_tables
Revises: 0005_add_bim_conversion_fields
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_add_identity_tables"
down_revision = "0005_add_bim_conversion_fields"
branch_labels = None
depends_on = None


def _now() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        _now(),
    )
    op.execute("INSERT INTO tenants (id) SELECT tenant_id FROM user_tenant_roles UNION SELECT tenant_id FROM users")
    op.create_foreign_key(
        "fk_user_tenant_roles_tenant_id_tenants",
        "user_tenant_roles",
        "tenants",
        ["tenant_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.add_column("users", sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()))
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", sa.String(64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        _now(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("replaced_by", sa.Uuid()),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _now(),
        sa.Column("tenant_id", sa.String(64)),
        sa.Column("actor_user_id", sa.Uuid()),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(64)),
        sa.Column("target_id", sa.String(255)),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("client_ip", sa.String(64)),
        sa.Column("request_id", sa.String(64)),
        sa.Column("details", sa.Text(), nullable=False, server_default="{}"),
    )
    op.create_index("ix_audit_events_tenant_created", "audit_events", ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_tenant_created", table_name="audit_events")
    op.drop_table("audit_events")
    op.drop_index("ix_refresh_tokens_family_id", table_name="refresh_tokens")
    op.drop_index("ix_refresh_tokens_user_id", table_name="refresh_tokens")
    op.drop_table("refresh_tokens")
    op.drop_column("users", "is_active")
    op.drop_constraint("fk_user_tenant_roles_tenant_id_tenants", "user_tenant_roles", type_="foreignkey")
    op.drop_table("tenants")
