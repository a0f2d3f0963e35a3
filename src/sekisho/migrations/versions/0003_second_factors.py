"""second factors, login flows, new-device notices

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.db

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('authenticators',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('secret', sa.String(length=255), nullable=True),
    sa.Column('last_step', sa.BigInteger(), nullable=True),
    sa.Column('credential_id', sa.String(length=512), nullable=True),
    sa.Column('public_key', sa.LargeBinary(), nullable=True),
    sa.Column('sign_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sekisho.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('confirmed_at', sekisho.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_used_at', sekisho.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_authenticators_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authenticators')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_authenticators_credential_id'))
    )
    with op.batch_alter_table('authenticators', schema=None) as batch_op:
        batch_op.create_index('ix_authenticators_account', ['account_id'], unique=False)

    op.create_table('login_flows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sekisho.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sekisho.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('failed_attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('completed_at', sekisho.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_login_flows_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_flows')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_login_flows_token_hash'))
    )
    op.create_table('recovery_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('code_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sekisho.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('used_at', sekisho.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_recovery_codes_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recovery_codes')),
    sa.UniqueConstraint('account_id', 'code_hash', name='uq_recovery_codes')
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('new_device_notice', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column('devices_reset_at', sekisho.db.UTCDateTime(timezone=True), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('devices_reset_at')
        batch_op.drop_column('new_device_notice')

    op.drop_table('recovery_codes')
    op.drop_table('login_flows')
    with op.batch_alter_table('authenticators', schema=None) as batch_op:
        batch_op.drop_index('ix_authenticators_account')

    op.drop_table('authenticators')
