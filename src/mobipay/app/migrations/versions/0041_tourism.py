"""Tourism: placeholder (the tourism context fills this in).

Revision ID: 0041
Revises: 0040
Create Date: 2026-12-07 15:00:00
"""

revision = '0041'
down_revision = '0040'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
