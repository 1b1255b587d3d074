"""Asynchronous BIM conversion state on bim_models.

Revision ID: 0005_add_bim_conversion_fields
Revises: 0004_add_ai_interaction_table
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_add_bim_conversion_fields"
down_revision = "0004_add_ai_interaction_table"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("bim_models", sa.Column("conversion_status", sa.String(32), nullable=False, server_default="none"))
    op.add_column("bim_models", sa.Column("conversion_requested_at", sa.DateTime(timezone=True)))
    op.add_column("bim_models", sa.Column("conversion_completed_at", sa.DateTime(timezone=True)))
    op.add_column("bim_models", sa.Column("converted_object_key", sa.String(512)))
    op.add_column("bim_models", sa.Column("conversion_error", sa.Text()))


def downgrade() -> None:
    for column in (
        "conversion_error",
        "converted_object_key",
        "conversion_completed_at",
        "conversion_requested_at",
        "conversion_status",
    ):
        op.drop_column("bim_models", column)
