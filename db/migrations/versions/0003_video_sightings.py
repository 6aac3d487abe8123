"""Video sightings: the box of a crop cut from a video frame.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crops", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bbox_x", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bbox_y", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bbox_w", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("bbox_h", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crops", schema=None) as batch_op:
        batch_op.drop_column("bbox_h")
        batch_op.drop_column("bbox_w")
        batch_op.drop_column("bbox_y")
        batch_op.drop_column("bbox_x")
