"""posts: the untagged posts indexed on their own; repost and copy links indexed only where set

The tag stage reads "posts not yet tagged, in id order" and then marks them tagged. An index on
`tagged_at` held every post and took a new entry for each one tagged; `ix_posts_untagged` holds
only the posts still to tag (ordered by id, as the tag stage reads them), so marking a post
tagged adds nothing to it. Most posts are no repost and no copy: `reposts_url` and
`duplicate_of` are NULL, and the lookups (`ingest.link_copies`, the foreign key's ON DELETE)
only ever ask for set values, so those indexes leave the NULLs out. Fewer index entries per
post stored and per post tagged (issue 14: pipeline throughput).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 00:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {'postgresql_where': sa.text(condition), 'sqlite_where': sa.text(condition)}


def upgrade() -> None:
    op.drop_index('ix_posts_tagged_at', table_name='posts')
    op.create_index('ix_posts_untagged', 'posts', ['id'], unique=False, **_where('tagged_at IS NULL'))
    op.drop_index('ix_posts_reposts_url', table_name='posts')
    op.create_index('ix_posts_reposts_url', 'posts', ['reposts_url'], unique=False, **_where('reposts_url IS NOT NULL'))
    op.drop_index('ix_posts_duplicate_of', table_name='posts')
    op.create_index('ix_posts_duplicate_of', 'posts', ['duplicate_of'], unique=False, **_where('duplicate_of IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_posts_duplicate_of', table_name='posts')
    op.create_index('ix_posts_duplicate_of', 'posts', ['duplicate_of'], unique=False)
    op.drop_index('ix_posts_reposts_url', table_name='posts')
    op.create_index('ix_posts_reposts_url', 'posts', ['reposts_url'], unique=False)
    op.drop_index('ix_posts_untagged', table_name='posts')
    op.create_index('ix_posts_tagged_at', 'posts', ['tagged_at'], unique=False)
