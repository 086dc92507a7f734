"""Cinema: placeholder (the cinema context fills this in).

Revision ID: 0040
Revises: 0039
Create Date: 2026-12-07 15:00:00
"""

revision = '0040'
down_revision = '0039'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
