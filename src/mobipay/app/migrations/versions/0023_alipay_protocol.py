"""Alipay- and WeChat Pay-compatible edges: an app's protocol (its notifications in
mobipay's JSON, Alipay's form or WeChat Pay's encrypted JSON), a WeChat Pay app's APIv3 key,
and how a notification is encoded when posted.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 19:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('merchant_apps', schema=None) as batch_op:
        batch_op.add_column(sa.Column('protocol', sa.String(length=8), server_default='mobipay', nullable=False))
        batch_op.add_column(sa.Column('apiv3_key', sa.String(length=32), nullable=True))
    with op.batch_alter_table('merchant_notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encoding', sa.String(length=8), server_default='json', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('merchant_notifications', schema=None) as batch_op:
        batch_op.drop_column('encoding')
    with op.batch_alter_table('merchant_apps', schema=None) as batch_op:
        batch_op.drop_column('apiv3_key')
        batch_op.drop_column('protocol')
