"""The database schema: every table Moodring keeps, in one place (SQLAlchemy 2's typed declarations).

What is here is all Moodring stores about anyone: ids, names of tracks and artists, preferences and
timestamps. Never an image, a face crop, a face embedding or an emotion score tied to a user.

- `guild_settings`: one row per Discord server whose settings were changed (a server never changed has
  no row and gets the defaults from `Settings`); `last_seen` drives the grace-period prune.
- `user_preferences`, `recent_tracks`, `feedback`: keyed by a user key (`discord:<id>`, `local:<name>`),
  so that forgetting a user is three deletes by one key.
- `playlists`: one Spotify playlist per emotion across a fleet; the primary key is the unique constraint
  that makes `claim_playlist` race-free.
- `reply_tracks`: the tracks of each answer the bot sent, for its rating buttons; no user, kept
  `REPLY_TRACKS_KEPT` (after which the buttons say they no longer remember the answer).
- `app_state`: small named values (e.g. the slash-command tree fingerprint).

Alembic's migrations (`moodring/store/migrations/versions/`) create and change these tables; a change here
needs a new migration there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, DateTime, Float, Index, MetaData, SmallInteger, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

USER_KEY_LENGTH = 120
TRACK_ID_LENGTH = 64


class Base(DeclarativeBase):
    """Typed table declarations: a column is NOT NULL unless its annotation says `| None`, and a timestamp
    always carries its time zone. The store queries the tables with SQLAlchemy Core (`Model.__table__`)."""

    metadata = MetaData(
        naming_convention={  # stable constraint names, so that later migrations can refer to them
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: DateTime(timezone=True), float: Float}


class GuildSettings(Base):
    __tablename__ = "guild_settings"

    guild_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    watched_channels: Mapped[list[int]] = mapped_column(JSON)
    strategy: Mapped[str] = mapped_column(String(32))
    reply_style: Mapped[str] = mapped_column(String(32))
    answer_selfies: Mapped[bool]
    setup_announced: Mapped[bool]
    last_seen: Mapped[datetime]


class UserPreference(Base):
    __tablename__ = "user_preferences"

    user_key: Mapped[str] = mapped_column(String(USER_KEY_LENGTH), primary_key=True)
    strategy: Mapped[str] = mapped_column(String(32))


class RecentTrack(Base):
    __tablename__ = "recent_tracks"
    __table_args__ = (Index("ix_recent_tracks_user_key_served_at", "user_key", "served_at"),)

    user_key: Mapped[str] = mapped_column(String(USER_KEY_LENGTH), primary_key=True)
    track_id: Mapped[str] = mapped_column(String(TRACK_ID_LENGTH), primary_key=True)
    served_at: Mapped[datetime]
    position: Mapped[int] = mapped_column(SmallInteger)  # place in the reply that served it, 0 = first


class Feedback(Base):
    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    user_key: Mapped[str] = mapped_column(String(USER_KEY_LENGTH), index=True)
    track_id: Mapped[str] = mapped_column(String(TRACK_ID_LENGTH))
    artist: Mapped[str] = mapped_column(Text)
    valence: Mapped[float]
    energy: Mapped[float]
    liked: Mapped[bool]
    at: Mapped[datetime]


class Playlist(Base):
    __tablename__ = "playlists"

    emotion: Mapped[str] = mapped_column(String(16), primary_key=True)
    playlist_id: Mapped[str] = mapped_column(String(64))
    claimed_at: Mapped[datetime]


class ReplyTracks(Base):
    __tablename__ = "reply_tracks"

    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tracks: Mapped[list[dict]] = mapped_column(JSON)  # FeedbackTrack fields: id, artist, valence, energy
    sent_at: Mapped[datetime] = mapped_column(index=True)


class AppState(Base):
    __tablename__ = "app_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


metadata = Base.metadata
guild_settings = GuildSettings.__table__
user_preferences = UserPreference.__table__
recent_tracks = RecentTrack.__table__
feedback = Feedback.__table__
playlists = Playlist.__table__
reply_tracks = ReplyTracks.__table__
app_state = AppState.__table__
