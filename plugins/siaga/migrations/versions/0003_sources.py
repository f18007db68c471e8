"""sources: canonical URLs, repost links and pseudonymised authors on posts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:30:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('canonical_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('reposts_url', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('duplicate_of', sa.Integer(), nullable=True))
        # existing posts came from the replay source, which stores authors as given
        batch_op.add_column(sa.Column('author_pseudonymised', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_unique_constraint('uq_posts_canonical_url', ['canonical_url'])
        batch_op.create_foreign_key('fk_posts_duplicate_of', 'posts', ['duplicate_of'], ['id'], ondelete='SET NULL')
        batch_op.create_index('ix_posts_reposts_url', ['reposts_url'], unique=False)
        batch_op.create_index('ix_posts_duplicate_of', ['duplicate_of'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_index('ix_posts_duplicate_of')
        batch_op.drop_index('ix_posts_reposts_url')
        batch_op.drop_constraint('fk_posts_duplicate_of', type_='foreignkey')
        batch_op.drop_constraint('uq_posts_canonical_url', type_='unique')
        batch_op.drop_column('author_pseudonymised')
        batch_op.drop_column('duplicate_of')
        batch_op.drop_column('reposts_url')
        batch_op.drop_column('canonical_url')
