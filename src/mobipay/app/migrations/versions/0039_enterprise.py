"""Enterprise: placeholder (the enterprise context fills this in).

Revision ID: 0039
Revises: 0038
Create Date: 2026-12-07 15:00:00
"""

revision = '0039'
down_revision = '0038'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
