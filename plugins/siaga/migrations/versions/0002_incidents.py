"""incidents: who closed, reopen count, the areas an incident covers

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 09:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siaga.store

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.add_column(sa.Column('closed_by', sa.String(length=128), nullable=True))
        # existing incidents were never reopened
        batch_op.add_column(sa.Column('reopened', sa.Integer(), nullable=False, server_default=sa.text('0')))

    op.create_table('incident_areas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('incident_id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('area_code', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('posts', sa.Integer(), nullable=False),
    sa.Column('added_at', siaga.store.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['incident_id'], ['incidents.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('incident_id', 'level', 'area_code', name='uq_incident_areas')
    )
    with op.batch_alter_table('incident_areas', schema=None) as batch_op:
        batch_op.create_index('ix_incident_areas_area', ['level', 'area_code'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('incident_areas', schema=None) as batch_op:
        batch_op.drop_index('ix_incident_areas_area')

    op.drop_table('incident_areas')
    with op.batch_alter_table('incidents', schema=None) as batch_op:
        batch_op.drop_column('reopened')
        batch_op.drop_column('closed_by')
