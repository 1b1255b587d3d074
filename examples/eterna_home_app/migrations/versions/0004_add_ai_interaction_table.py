"""AI assistant interactions, tenant-scoped.

Revision ID: 0004_add_ai_interaction_table
Revises: 0003_add_user_tenant_role_table
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_add_ai_interaction_table"
down_revision = "0003_add_user_tenant_role_table"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ai_assistant_interactions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("response", sa.Text(), nullable=False, server_default=""),
        sa.Column("model_name", sa.String(128), nullable=False, server_default=""),
        sa.Column("latency_ms", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_ai_assistant_interactions_tenant_id", "ai_assistant_interactions", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_ai_assistant_interactions_tenant_id", table_name="ai_assistant_interactions")
    op.drop_table("ai_assistant_interactions")
