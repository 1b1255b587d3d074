"""Multi-tenant RBAC: one role per (user, tenant).

Revision ID: 0003_add_user_tenant_role_table
Revises: 0002_add_tenant_id_to_all_models
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_add_user_tenant_role_table"
down_revision = "0002_add_tenant_id_to_all_models"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_tenant_roles",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False, server_default="member"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("user_id", "tenant_id", name="uq_user_tenant_roles_user_tenant"),
    )
    op.create_index("ix_user_tenant_roles_tenant_id", "user_tenant_roles", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_user_tenant_roles_tenant_id", table_name="user_tenant_roles")
    op.drop_table("user_tenant_roles")
