"""maintenance windows

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import sekisho.db

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('maintenance_windows',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('recurrence', sa.String(length=8), nullable=False),
    sa.Column('starts_at', sekisho.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ends_at', sekisho.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('weekday', sa.Integer(), nullable=True),
    sa.Column('month', sa.Integer(), nullable=True),
    sa.Column('day', sa.Integer(), nullable=True),
    sa.Column('start_time', sa.String(length=5), nullable=True),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('components', sa.JSON(), nullable=False),
    sa.Column('note_ja', sa.String(length=200), nullable=True),
    sa.Column('note_en', sa.String(length=200), nullable=True),
    sa.Column('created_at', sekisho.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_maintenance_windows'))
    )


def downgrade() -> None:
    op.drop_table('maintenance_windows')
