"""Transit: placeholder (the transit context fills this in).

Revision ID: 0038
Revises: 0037
Create Date: 2026-12-07 15:00:00
"""

revision = '0038'
down_revision = '0037'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
