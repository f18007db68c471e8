"""posts: tagging recorded in its own narrow tables, a queue of posts to tag filled by the database

Marking a post tagged was an UPDATE of `posts.tagged_at` and `posts.in_region`: PostgreSQL wrote
a new version of the whole wide row (text, raw JSON) with a new entry in each of its indexes,
and the partial index of untagged posts changed too; that was most of the database's share of
the tag stage (issue 14). Now:

- `posts_to_tag` (post_id): the posts still to tag. A trigger adds every post inserted, whoever
  inserts it, so no writer of `posts` can forget; the tag stage deletes the posts it tagged.
- `post_tags` (post_id, tagged_at, in_region): the posts tagged, one narrow row each, written
  with COPY in the tag stage's transaction.
- A trigger on delete from `posts` (retention) drops the deleted posts' rows from both. Not
  foreign keys: a foreign key's check locks the referenced post row for every row inserted,
  which would cost again much of what this migration saves.

On PostgreSQL the triggers are per statement, reading the statement's rows from a transition
table (one INSERT ... SELECT per COPY of a poll, not one per post); SQLite has only row
triggers. Existing posts move: tagged ones to `post_tags`, the others to `posts_to_tag`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 13:00:00.000000
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import siaga.store

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# PostgreSQL: functions first (CREATE OR REPLACE: a database emptied by dropping its tables
# keeps its functions), then the statement triggers that call them.
_PG_UP = (
    """CREATE OR REPLACE FUNCTION siaga_queue_new_posts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO posts_to_tag (post_id) SELECT id FROM new_posts;
    RETURN NULL;
END $$""",
    """CREATE OR REPLACE FUNCTION siaga_forget_deleted_posts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM posts_to_tag WHERE post_id IN (SELECT id FROM old_posts);
    DELETE FROM post_tags WHERE post_id IN (SELECT id FROM old_posts);
    RETURN NULL;
END $$""",
    """CREATE TRIGGER trg_posts_queue_new AFTER INSERT ON posts REFERENCING NEW TABLE AS new_posts
    FOR EACH STATEMENT EXECUTE FUNCTION siaga_queue_new_posts()""",
    """CREATE TRIGGER trg_posts_forget_deleted AFTER DELETE ON posts REFERENCING OLD TABLE AS old_posts
    FOR EACH STATEMENT EXECUTE FUNCTION siaga_forget_deleted_posts()""",
)
_PG_DOWN = (
    "DROP TRIGGER IF EXISTS trg_posts_forget_deleted ON posts",
    "DROP TRIGGER IF EXISTS trg_posts_queue_new ON posts",
    "DROP FUNCTION IF EXISTS siaga_forget_deleted_posts()",
    "DROP FUNCTION IF EXISTS siaga_queue_new_posts()",
)
_SQLITE_UP = (
    """CREATE TRIGGER trg_posts_queue_new AFTER INSERT ON posts
    BEGIN INSERT INTO posts_to_tag (post_id) VALUES (NEW.id); END""",
    """CREATE TRIGGER trg_posts_forget_deleted AFTER DELETE ON posts
    BEGIN DELETE FROM posts_to_tag WHERE post_id = OLD.id; DELETE FROM post_tags WHERE post_id = OLD.id; END""",
)
_SQLITE_DOWN = (
    "DROP TRIGGER IF EXISTS trg_posts_forget_deleted",
    "DROP TRIGGER IF EXISTS trg_posts_queue_new",
)


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {'postgresql_where': sa.text(condition), 'sqlite_where': sa.text(condition)}


def _run(statements: tuple[str, ...]) -> None:
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:
    op.create_table(
        'posts_to_tag',
        sa.Column('post_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint('post_id'),
    )
    op.create_table(
        'post_tags',
        sa.Column('post_id', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('tagged_at', siaga.store.UTCDateTime(timezone=True), nullable=False),
        sa.Column('in_region', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('post_id'),
    )
    op.execute("INSERT INTO post_tags (post_id, tagged_at, in_region)"
               " SELECT id, tagged_at, COALESCE(in_region, false) FROM posts WHERE tagged_at IS NOT NULL")
    op.execute("INSERT INTO posts_to_tag (post_id) SELECT id FROM posts WHERE tagged_at IS NULL")
    op.drop_index('ix_posts_untagged', table_name='posts')
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.drop_column('in_region')
        batch_op.drop_column('tagged_at')
    # After the columns are gone: on SQLite that rebuilt `posts`, which would drop its triggers.
    _run(_PG_UP if op.get_bind().dialect.name == 'postgresql' else _SQLITE_UP)


def downgrade() -> None:
    _run(_PG_DOWN if op.get_bind().dialect.name == 'postgresql' else _SQLITE_DOWN)
    with op.batch_alter_table('posts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tagged_at', siaga.store.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('in_region', sa.Boolean(), nullable=True))
    op.execute("UPDATE posts SET tagged_at = (SELECT t.tagged_at FROM post_tags t WHERE t.post_id = posts.id),"
               " in_region = (SELECT t.in_region FROM post_tags t WHERE t.post_id = posts.id)"
               " WHERE id IN (SELECT post_id FROM post_tags)")
    op.create_index('ix_posts_untagged', 'posts', ['id'], unique=False, **_where('tagged_at IS NULL'))
    op.drop_table('post_tags')
    op.drop_table('posts_to_tag')
