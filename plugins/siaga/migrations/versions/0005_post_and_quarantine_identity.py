"""posts: different posts sharing a URL are all kept; quarantine: one row per bad record's content

Posts lose the unique canonical URL (five people sharing one group link became one post): the
URL keeps an index, and the same post seen through two sources is recognised by
`same_post_key` (canonical URL, text and author), which is unique. Quarantine rows are unique
per source and content fingerprint instead of per source and location, so a new bad record at
the same line of a replaced file is kept.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

posts = sa.table('posts', sa.column('id', sa.Integer), sa.column('canonical_url', sa.Text), sa.column('text_hash', sa.String),
                 sa.column('author', sa.String), sa.column('same_post_key', sa.String))
quarantine = sa.table('quarantine', sa.column('id', sa.Integer), sa.column('source', sa.String), sa.column('location', sa.String),
                      sa.column('reason', sa.Text), sa.column('raw', sa.Text), sa.column('fingerprint', sa.String))


def upgrade() -> None:
    # Imported here, not at the top: every task reads this script to learn the head revision
    # (`store.migrate`), and siaga.sources loads every connector's libraries (issue 14: a
    # detect task's memory).
    from siaga.sources.base import BadInput, same_post_key

    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('same_post_key', sa.String(length=32), nullable=True))
        batch_op.drop_constraint('uq_posts_canonical_url', type_='unique')
        batch_op.create_index('ix_posts_canonical_url', ['canonical_url'], unique=False)
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))
        batch_op.drop_constraint('uq_quarantine_location', type_='unique')
    bind = op.get_bind()
    rows = bind.execute(sa.select(posts.c.id, posts.c.canonical_url, posts.c.text_hash, posts.c.author)
                        .where(posts.c.canonical_url.is_not(None))).all()
    keys = [{"row_id": r.id, "key": same_post_key(r.canonical_url, r.text_hash, r.author)} for r in rows]
    if keys:  # canonical URLs were unique until now, so these keys are too
        bind.execute(posts.update().where(posts.c.id == sa.bindparam("row_id")).values(same_post_key=sa.bindparam("key")), keys)
    seen: set[tuple[str, str]] = set()
    fingerprints, duplicates = [], []
    for r in bind.execute(sa.select(quarantine).order_by(quarantine.c.id)).all():
        fingerprint = BadInput(r.location, r.reason, r.raw).identity
        if (r.source, fingerprint) in seen:
            duplicates.append(r.id)  # the same bad record at another place: kept once, as it will be from now on
        else:
            seen.add((r.source, fingerprint))
            fingerprints.append({"row_id": r.id, "fp": fingerprint})
    if duplicates:
        bind.execute(quarantine.delete().where(quarantine.c.id.in_(duplicates)))
    if fingerprints:
        bind.execute(quarantine.update().where(quarantine.c.id == sa.bindparam("row_id")).values(fingerprint=sa.bindparam("fp")), fingerprints)
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_posts_same_post', ['same_post_key'])
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.alter_column('fingerprint', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_quarantine_fingerprint', ['source', 'fingerprint'])


def downgrade() -> None:
    bind = op.get_bind()
    # Posts sharing a URL were all kept: all but the first lose the URL, none is deleted.
    first = sa.select(sa.func.min(posts.c.id)).where(posts.c.canonical_url.is_not(None)).group_by(posts.c.canonical_url)
    bind.execute(posts.update().where(posts.c.canonical_url.is_not(None), posts.c.id.not_in(first)).values(canonical_url=None))
    first = sa.select(sa.func.min(quarantine.c.id)).group_by(quarantine.c.source, quarantine.c.location)
    bind.execute(quarantine.delete().where(quarantine.c.id.not_in(first)))
    with op.batch_alter_table('quarantine', schema=None) as batch_op:
        batch_op.drop_constraint('uq_quarantine_fingerprint', type_='unique')
        batch_op.create_unique_constraint('uq_quarantine_location', ['source', 'location'])
        batch_op.drop_column('fingerprint')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_posts_same_post', type_='unique')
        batch_op.drop_index('ix_posts_canonical_url')
        batch_op.create_unique_constraint('uq_posts_canonical_url', ['canonical_url'])
        batch_op.drop_column('same_post_key')
