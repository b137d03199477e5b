"""The first schema: server settings, user preferences, recent tracks, feedback, playlists, app state.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "guild_settings",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("watched_channels", sa.JSON(), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.Column("reply_style", sa.String(32), nullable=False),
        sa.Column("answer_selfies", sa.Boolean(), nullable=False),
        sa.Column("setup_announced", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("guild_id", name="pk_guild_settings"),
    )
    op.create_table(
        "user_preferences",
        sa.Column("user_key", sa.String(120), nullable=False),
        sa.Column("strategy", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("user_key", name="pk_user_preferences"),
    )
    op.create_table(
        "recent_tracks",
        sa.Column("user_key", sa.String(120), nullable=False),
        sa.Column("track_id", sa.String(64), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_key", "track_id", name="pk_recent_tracks"),
    )
    op.create_index("ix_recent_tracks_user_key_served_at", "recent_tracks", ["user_key", "served_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_key", sa.String(120), nullable=False),
        sa.Column("track_id", sa.String(64), nullable=False),
        sa.Column("artist", sa.Text(), nullable=False),
        sa.Column("valence", sa.Float(), nullable=False),
        sa.Column("energy", sa.Float(), nullable=False),
        sa.Column("liked", sa.Boolean(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_feedback"),
    )
    op.create_index("ix_feedback_user_key", "feedback", ["user_key"])
    op.create_table(
        "playlists",
        sa.Column("emotion", sa.String(16), nullable=False),
        sa.Column("playlist_id", sa.String(64), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("emotion", name="pk_playlists"),
    )
    op.create_table(
        "app_state",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_app_state"),
    )


def downgrade() -> None:
    for table in ("app_state", "playlists", "feedback", "recent_tracks", "user_preferences", "guild_settings"):
        op.drop_table(table)
