"""consecutive login failures and the password-login cap

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.db

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0',
                                   nullable=False))
        batch.add_column(sa.Column('password_login_disabled_at', sekisho.db.UTCDateTime(timezone=True),
                                   nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('accounts') as batch:
        batch.drop_column('password_login_disabled_at')
        batch.drop_column('failed_logins')
