"""Saved segments, their immutable versions, and named event groups.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _workspace() -> sa.Column:
    return sa.Column(
        "workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "segments",
        sa.Column("id", sa.String(40), primary_key=True),
        _workspace(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
        sa.Column("deleted_at", TS, nullable=True),
        sa.Column("deleted_by", sa.String(200), nullable=True),
        sa.Column("refreshed_at", TS, nullable=True),
        sa.Column("refreshed_version", sa.Integer(), nullable=True),
        sa.Column("member_count", sa.BigInteger(), nullable=True),
        sa.Column("refresh_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_segments_workspace_id", "segments", ["workspace_id"])
    op.create_index(
        "ux_segments_workspace_name",
        "segments",
        ["workspace_id", "name"],
        unique=True,
        sqlite_where=sa.text("deleted_at IS NULL"),
        postgresql_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "segment_versions",
        sa.Column(
            "segment_id", sa.String(40), sa.ForeignKey("segments.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "event_groups",
        sa.Column(
            "workspace_id",
            sa.String(40),
            sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("updated_by", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("event_groups")
    op.drop_table("segment_versions")
    op.drop_index("ux_segments_workspace_name", table_name="segments")
    op.drop_index("ix_segments_workspace_id", table_name="segments")
    op.drop_table("segments")
