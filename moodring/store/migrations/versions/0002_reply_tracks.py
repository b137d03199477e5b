"""Each sent answer's tracks in a table of their own, with the time they were sent, so that they can age out.

Until 0002 they were `reply:<message id>` rows of `app_state`, which nothing ever deleted. They move here with
the migration's time as their `sent_at`.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

app_state = sa.table("app_state", sa.column("key", sa.String), sa.column("value", sa.Text))
PREFIX = "reply:"


def upgrade() -> None:
    reply_tracks = op.create_table(
        "reply_tracks",
        sa.Column("message_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("tracks", sa.JSON(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_reply_tracks"),
    )
    op.create_index("ix_reply_tracks_sent_at", "reply_tracks", ["sent_at"])
    connection = op.get_bind()
    stored = connection.execute(sa.select(app_state).where(app_state.c.key.startswith(PREFIX))).all()
    now = datetime.now(UTC)
    rows = [
        {"message_id": int(key.removeprefix(PREFIX)), "tracks": json.loads(value), "sent_at": now}
        for key, value in stored
    ]
    if rows:
        op.bulk_insert(reply_tracks, rows)
    connection.execute(sa.delete(app_state).where(app_state.c.key.startswith(PREFIX)))


def downgrade() -> None:
    connection = op.get_bind()
    replies = sa.table("reply_tracks", sa.column("message_id", sa.BigInteger), sa.column("tracks", sa.JSON))
    rows = [
        {"key": f"{PREFIX}{message_id}", "value": json.dumps(tracks)}
        for message_id, tracks in connection.execute(sa.select(replies.c.message_id, replies.c.tracks))
    ]
    if rows:
        op.bulk_insert(app_state, rows)
    op.drop_index("ix_reply_tracks_sent_at", table_name="reply_tracks")
    op.drop_table("reply_tracks")
