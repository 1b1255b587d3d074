"""Initial schema, before multi-tenancy: users, houses and everything attached to them.

Revision ID: 0001_initial_schema
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial_schema"
down_revision = None
branch_labels = None
depends_on = None


def _id() -> sa.Column:
    return sa.Column("id", sa.Uuid(), primary_key=True)


def _created() -> sa.Column:
    return sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "users",
        _id(),
        _created(),
        sa.Column("email", sa.String(255), nullable=False, unique=True),
        sa.Column("full_name", sa.String(255), nullable=False, server_default=""),
        sa.Column("hashed_password", sa.String(255), nullable=False, server_default=""),
    )
    op.create_table(
        "houses",
        _id(),
        _created(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("address", sa.String(500), nullable=False, server_default=""),
        sa.Column("owner_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
    )
    op.create_table(
        "rooms",
        _id(),
        _created(),
        sa.Column("house_id", sa.Uuid(), sa.ForeignKey("houses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("area_m2", sa.Numeric(8, 2)),
    )
    op.create_table(
        "bookings",
        _id(),
        _created(),
        sa.Column("room_id", sa.Uuid(), sa.ForeignKey("rooms.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "maintenance_records",
        _id(),
        _created(),
        sa.Column("house_id", sa.Uuid(), sa.ForeignKey("houses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(32), nullable=False, server_default="open"),
    )
    op.create_table(
        "nodes",
        _id(),
        _created(),
        sa.Column("house_id", sa.Uuid(), sa.ForeignKey("houses.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("serial", sa.String(128), nullable=False),
    )
    op.create_table(
        "audio_logs",
        _id(),
        _created(),
        sa.Column("node_id", sa.Uuid(), sa.ForeignKey("nodes.id", ondelete="SET NULL")),
        sa.Column("transcript", sa.Text(), nullable=False, server_default=""),
        sa.Column("duration_ms", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "documents",
        _id(),
        _created(),
        sa.Column("house_id", sa.Uuid(), sa.ForeignKey("houses.id", ondelete="SET NULL")),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False, server_default="application/octet-stream"),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("sha256", sa.String(64), nullable=False, server_default=""),
        sa.Column("object_key", sa.String(512), nullable=False),
    )
    op.create_table(
        "bim_models",
        _id(),
        _created(),
        sa.Column("house_id", sa.Uuid(), sa.ForeignKey("houses.id", ondelete="SET NULL")),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    for table in (
        "bim_models",
        "documents",
        "audio_logs",
        "nodes",
        "maintenance_records",
        "bookings",
        "rooms",
        "houses",
        "users",
    ):
        op.drop_table(table)
