"""outbox: fenced claims (a token per claim, a wall-clock hold) and "may already be in Slack"

Each claim writes a fresh `claim_token`, and only the worker holding it may record an outcome.
`held_until` is a wall-clock time (not a run's logical time) until which no other worker may
take the row: a live claim's lease, or the time Slack may still need to store a post whose
outcome is unknown. `may_be_posted` marks a row whose earlier attempt may have reached Slack,
so it is looked up in Slack before it is posted again or dead-lettered. Rows claimed when this
runs may have been posted by a worker of the old code: they are marked so.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 17:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siaga.store

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

outbox = sa.table('outbox', sa.column('state', sa.String), sa.column('attempts', sa.Integer),
                  sa.column('may_be_posted', sa.Boolean))


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_token', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('held_until', siaga.store.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('may_be_posted', sa.Boolean(), server_default=sa.false(), nullable=False))
    # A claimed row, or one the old code retried (attempts > 0 after an unknown outcome or a
    # re-queue), may already be in Slack.
    op.get_bind().execute(outbox.update().where(sa.or_(outbox.c.state == 'claimed', sa.and_(
        outbox.c.state == 'pending', outbox.c.attempts > 0))).values(may_be_posted=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('may_be_posted')
        batch_op.drop_column('held_until')
        batch_op.drop_column('claim_token')
