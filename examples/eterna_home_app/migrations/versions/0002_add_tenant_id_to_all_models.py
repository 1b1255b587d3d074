"""Add tenant_id to every main model: expand (nullable), backfill to the default tenant, then NOT NULL
and an index.

The default tenant is ``-x default_tenant=<id>`` or the DEFAULT_TENANT_ID environment variable
(``default`` otherwise). Downgrading drops the column: rows survive, their tenant does not.

Revision ID: 0002_add_tenant_id_to_all_models
Revises: 0001_initial_schema
"""

import os

import sqlalchemy as sa
from alembic import context, op

revision = "0002_add_tenant_id_to_all_models"
down_revision = "0001_initial_schema"
branch_labels = None
depends_on = None

TABLES = (
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


def _default_tenant() -> str:
    return context.get_x_argument(as_dictionary=True).get("default_tenant") or os.environ.get(
        "DEFAULT_TENANT_ID", "default"
    )


def upgrade() -> None:
    tenant = _default_tenant()
    for table in TABLES:
        op.add_column(table, sa.Column("tenant_id", sa.String(64), nullable=True))
        op.execute(
            sa.text(f"UPDATE {table} SET tenant_id = :tenant WHERE tenant_id IS NULL").bindparams(  # noqa: S608
                tenant=tenant
            )
        )
        op.alter_column(table, "tenant_id", nullable=False)
        op.create_index(f"ix_{table}_tenant_id", table, ["tenant_id"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_index(f"ix_{table}_tenant_id", table_name=table)
        op.drop_column(table, "tenant_id")
