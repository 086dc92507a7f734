"""Real-name identities and bank cards (wallet); partner orders and their reconciliation
items (platform: cash-in/out now, top-ups and bills later).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 19:40:23.432234
"""
import sqlalchemy as sa
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('partner_orders',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner', sa.String(length=32), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('msisdn', sa.String(length=16), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('fee', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('partner_ref', sa.String(length=64), server_default='', nullable=False),
    sa.Column('reason', sa.String(length=64), server_default='', nullable=False),
    sa.Column('details', sa.Text(), server_default='{}', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('settled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('next_check_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('checks', sa.Integer(), server_default='0', nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_orders'))
    )
    with op.batch_alter_table('partner_orders', schema=None) as batch_op:
        batch_op.create_index('ix_partner_orders_due', ['state', 'next_check_at'], unique=False)
        batch_op.create_index('ix_partner_orders_settled', ['partner', 'settled_at'], unique=False)
        batch_op.create_index('ix_partner_orders_user', ['user_id', 'created_at'], unique=False)

    op.create_table('partner_recon_items',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('partner', sa.String(length=32), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('our_state', sa.String(length=12), nullable=True),
    sa.Column('our_amount', sa.BigInteger(), nullable=True),
    sa.Column('partner_status', sa.String(length=12), nullable=True),
    sa.Column('partner_amount', sa.BigInteger(), nullable=True),
    sa.Column('resolution', sa.String(length=24), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_recon_items'))
    )
    with op.batch_alter_table('partner_recon_items', schema=None) as batch_op:
        batch_op.create_index('uq_partner_recon_items', ['partner', 'day', 'order_id'], unique=True)

    op.create_table('wallet_cards',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('bank_code', sa.String(length=16), nullable=False),
    sa.Column('bank_name', sa.String(length=64), nullable=False),
    sa.Column('masked', sa.String(length=24), nullable=False),
    sa.Column('card_hmac', sa.String(length=64), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_cards'))
    )
    with op.batch_alter_table('wallet_cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wallet_cards_user_id'), ['user_id'], unique=False)
        batch_op.create_index('uq_wallet_cards_active', ['card_hmac'], unique=True, sqlite_where=sa.text("state = 'active'"), postgresql_where=sa.text("state = 'active'"))

    op.create_table('wallet_identities',
    sa.Column('user_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('id_masked', sa.String(length=18), nullable=False),
    sa.Column('id_hmac', sa.String(length=64), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_by', sa.String(length=16), nullable=False),
    sa.Column('tier3_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_wallet_identities'))
    )
    with op.batch_alter_table('wallet_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wallet_identities_id_hmac'), ['id_hmac'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('wallet_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wallet_identities_id_hmac'))

    op.drop_table('wallet_identities')
    with op.batch_alter_table('wallet_cards', schema=None) as batch_op:
        batch_op.drop_index('uq_wallet_cards_active', sqlite_where=sa.text("state = 'active'"), postgresql_where=sa.text("state = 'active'"))
        batch_op.drop_index(batch_op.f('ix_wallet_cards_user_id'))

    op.drop_table('wallet_cards')
    with op.batch_alter_table('partner_recon_items', schema=None) as batch_op:
        batch_op.drop_index('uq_partner_recon_items')

    op.drop_table('partner_recon_items')
    with op.batch_alter_table('partner_orders', schema=None) as batch_op:
        batch_op.drop_index('ix_partner_orders_user')
        batch_op.drop_index('ix_partner_orders_settled')
        batch_op.drop_index('ix_partner_orders_due')

    op.drop_table('partner_orders')
