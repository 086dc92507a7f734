"""Rural: placeholder (the rural context fills this in).

Revision ID: 0042
Revises: 0041
Create Date: 2026-12-07 15:00:00
"""

revision = '0042'
down_revision = '0041'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
