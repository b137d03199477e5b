"""The database schema: every table Moodring keeps, in one place (SQLAlchemy Core).

What is here is all Moodring stores about anyone: ids, names of tracks and artists, preferences and
timestamps. Never an image, a face crop, a face embedding or an emotion score tied to a user.

- `guild_settings`: one row per Discord server whose settings were changed (a server never changed has
  no row and gets the defaults from `Settings`); `last_seen` drives the grace-period prune.
- `user_preferences`, `recent_tracks`, `feedback`: keyed by a user key (`discord:<id>`, `local:<name>`),
  so that forgetting a user is three deletes by one key.
- `playlists`: one Spotify playlist per emotion across a fleet; the primary key is the unique constraint
  that makes `claim_playlist` race-free.
- `app_state`: small named values (e.g. the slash-command tree fingerprint).

Alembic's migrations (`moodring/store/migrations/versions/`) create and change these tables; a change here
needs a new migration there.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={  # stable constraint names, so that later migrations can refer to them
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

USER_KEY_LENGTH = 120
TRACK_ID_LENGTH = 64

guild_settings = Table(
    "guild_settings",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("watched_channels", JSON, nullable=False),  # a list of channel ids
    Column("strategy", String(32), nullable=False),
    Column("reply_style", String(32), nullable=False),
    Column("answer_selfies", Boolean, nullable=False),
    Column("setup_announced", Boolean, nullable=False),
    Column("last_seen", DateTime(timezone=True), nullable=False),
)

user_preferences = Table(
    "user_preferences",
    metadata,
    Column("user_key", String(USER_KEY_LENGTH), primary_key=True),
    Column("strategy", String(32), nullable=False),
)

recent_tracks = Table(
    "recent_tracks",
    metadata,
    Column("user_key", String(USER_KEY_LENGTH), primary_key=True),
    Column("track_id", String(TRACK_ID_LENGTH), primary_key=True),
    Column("served_at", DateTime(timezone=True), nullable=False),
    Column("position", SmallInteger, nullable=False),  # place in the reply that served it, 0 = first
    Index("ix_recent_tracks_user_key_served_at", "user_key", "served_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_key", String(USER_KEY_LENGTH), nullable=False, index=True),
    Column("track_id", String(TRACK_ID_LENGTH), nullable=False),
    Column("artist", Text, nullable=False),
    Column("valence", Float, nullable=False),
    Column("energy", Float, nullable=False),
    Column("liked", Boolean, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)

playlists = Table(
    "playlists",
    metadata,
    Column("emotion", String(16), primary_key=True),
    Column("playlist_id", String(64), nullable=False),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
)

app_state = Table(
    "app_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
