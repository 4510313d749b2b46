"""Ad redirect links with their campaign and UTM values, and imported ad costs per day.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ad_links",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column(
            "workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("source_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("target_url", sa.Text(), nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("utm_source", sa.String(200), nullable=False),
        sa.Column("utm_medium", sa.String(200), nullable=False),
        sa.Column("utm_campaign", sa.String(200), nullable=False),
        sa.Column("utm_term", sa.String(200), nullable=True),
        sa.Column("utm_content", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_ad_links_workspace", "ad_links", ["workspace_id", "created_at"])
    op.create_table(
        "ad_costs",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "workspace_id", sa.String(40), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("spend_micros", sa.BigInteger(), nullable=False),
        sa.Column("impressions", sa.BigInteger(), nullable=True),
        sa.Column("clicks", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("imported_at", TS, nullable=False),
    )
    op.create_index(
        "ux_ad_costs_key", "ad_costs", ["workspace_id", "channel", "campaign", "day"], unique=True
    )


def downgrade() -> None:
    op.drop_index("ux_ad_costs_key", table_name="ad_costs")
    op.drop_table("ad_costs")
    op.drop_index("ix_ad_links_workspace", table_name="ad_links")
    op.drop_table("ad_links")
