"""Parametric QR codes of official accounts and what each scene stands for.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "qr_scenes",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("scene", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ticket", sa.Text(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("campaign", sa.String(200), nullable=True),
        sa.Column("store_id", sa.String(64), nullable=True),
        sa.Column("guide_id", sa.String(64), nullable=True),
        sa.Column("channel", sa.String(64), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ux_qr_scenes_scene", "qr_scenes", ["workspace_id", "source_id", "scene"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_qr_scenes_scene", table_name="qr_scenes")
    op.drop_table("qr_scenes")
