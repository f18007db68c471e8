"""silences, and outbox rows that belong to no incident (the managers' daily digest)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 09:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siaga.store

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('silences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('matchers', sa.JSON(), nullable=False),
    sa.Column('starts_at', siaga.store.UTCDateTime(timezone=True), nullable=False),
    sa.Column('ends_at', siaga.store.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('created_at', siaga.store.UTCDateTime(timezone=True), nullable=False),
    sa.Column('dedup_key', sa.String(length=256), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dedup_key', name='uq_silences_dedup')
    )
    with op.batch_alter_table('silences', schema=None) as batch_op:
        batch_op.create_index('ix_silences_ends_at', ['ends_at'], unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('incident_id', existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE incident_id IS NULL")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('incident_id', existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table('silences', schema=None) as batch_op:
        batch_op.drop_index('ix_silences_ends_at')
    op.drop_table('silences')
