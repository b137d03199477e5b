"""Moodring's state in a real database: SQLite embedded by default, PostgreSQL for a fleet of bot processes.

    store = await Store.connect(settings)      # migrates when behind; StoreUnavailable/ConfigError: exit 2
    recent = await store.recent_track_ids("discord:42", settings.recent_memory)
    await store.remember_tracks("discord:42", [track.id for track in recommendation.tracks])
    await store.close()

What is stored (`schema.py`): per-server settings, per-user strategy, each user's last
`MOODRING_RECENT_MEMORY` tracks, feedback (the newest `FEEDBACK_PER_USER` per user), one playlist id per
emotion, and small application state. Nothing about a face. Users are keys: `discord:<id>` for Discord,
`local:<name>` for the CLI's `--user` (`user_key_from_cli`); `forget_user` deletes every row of a key.
A server's rows go with `forget_guild` (the bot calls it on `on_guild_remove`) or, for servers the bot left
while it was offline, at the first start `GUILD_GRACE` after the fleet last saw them (on ready or join:
`touch_guilds`; on use: `guild_settings` refreshes it daily).

Each method is one short transaction. While running, a database error that means "not reachable" becomes
`StoreUnavailable`: callers answer without memory, and the store logs one warning per outage and one info
line when the database answers again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from moodring.errors import ConfigError, StoreUnavailable
from moodring.settings import Settings
from moodring.store import schema
from moodring.store.database import (
    configured_url,
    create_autocommit_engine,
    create_engine,
    is_outage,
    outage_reason,
    shown_url,
)
from moodring.store.migrate import ensure_schema

__all__ = [
    "FeedbackRow",
    "FeedbackTrack",
    "GuildSettings",
    "Store",
    "StoreUnavailable",
    "discord_user_key",
    "user_key_from_cli",
]

log = logging.getLogger(__name__)

GUILD_GRACE = timedelta(days=30)
"""A server's settings are deleted at the first start this long after the fleet last saw the server."""
REPLY_TRACKS_KEPT = timedelta(days=30)
"""How long an answer's rating buttons keep working: its tracks are deleted after this."""
SEEN_REFRESH = timedelta(days=1)
"""How stale a server's `last_seen` may get before reading its settings refreshes it."""
FEEDBACK_PER_USER = 500
"""Feedback rows kept per user, newest first; older ones are dropped as new ones arrive."""
REPLY_STYLES = ("picture", "embed")
PLAYLISTS_IMPORTED = "store.playlists_json_imported"
"""`app_state` key: the `MOODRING_PLAYLIST_STORE` file whose ids were copied into `playlists` (done once)."""


@dataclass(frozen=True)
class GuildSettings:
    """One Discord server's settings; a server never changed gets the defaults from `Settings`."""

    guild_id: int
    watched_channels: frozenset[int]  # empty for a new server: quiet by default
    strategy: str  # "notebook" (lift) or "match"
    reply_style: str  # "picture" (embed + annotated picture) or "embed" (embed only)
    answer_selfies: bool  # whether posted selfies in watched channels are answered at all
    setup_announced: bool  # the bot already told an admin, once, that no channel is watched


@dataclass(frozen=True)
class FeedbackTrack:
    """A track of a reply as the user rated it: what the recommender needs to learn, nothing more."""

    track_id: str
    artist: str
    valence: float
    energy: float


@dataclass(frozen=True)
class FeedbackRow:
    """One rating of one track, as stored."""

    track_id: str
    artist: str
    valence: float
    energy: float
    liked: bool
    at: datetime


def discord_user_key(user_id: int) -> str:
    """The store's key for a Discord user."""
    return f"discord:{int(user_id)}"


def user_key_from_cli(name: str) -> str:
    """`--user` of the CLI: `local:<name>` for a name, `discord:<id>` for a bare number; explicit prefixes kept."""
    name = name.strip()
    if not name:
        raise ConfigError("--user needs a name (or discord:<id>)")
    if name.startswith(("local:", "discord:")):
        kind, _, rest = name.partition(":")
        if not rest or (kind == "discord" and not rest.isdigit()):
            raise ConfigError(f"--user {name!r}: expected local:<name> or discord:<numeric id>")
        return name
    return discord_user_key(int(name)) if name.isdigit() else f"local:{name}"


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class Store:
    """Moodring's state behind one async engine. Build it with `Store.connect(settings)`; safe for one loop."""

    def __init__(self, engine: AsyncEngine, url: URL, settings: Settings) -> None:
        self._engine = engine
        self._autocommit = create_autocommit_engine(url, engine)
        self._url = url
        self._settings = settings
        self._down_since: float | None = None
        self._next_reply_prune = 0.0
        dialect = postgresql if url.get_backend_name() == "postgresql" else sqlite
        self._insert = dialect.insert  # INSERT ... ON CONFLICT, spelled alike by both back-ends

    @property
    def url(self) -> str:
        """The database URL with its password hidden: what may be logged."""
        return shown_url(self._url)

    @classmethod
    async def connect(cls, settings: Settings) -> Store:
        """Open the database, migrate it when behind, and check that it can be written.

        Raises `ConfigError` (bad URL), `SchemaTooNewError` or `StoreUnavailable` (cannot reach or write),
        each one line without the password; the CLI turns them into exit 2.
        """
        url = configured_url(settings.database_url)
        engine = create_engine(url, connections=max(5, settings.queue_size))
        store = cls(engine, url, settings)
        try:
            await ensure_schema(engine)
            await store._start()
        except BaseException as error:
            await store.close()
            if is_outage(error):
                raise StoreUnavailable(outage_reason(error, url)) from None
            raise
        log.debug("state in %s", store.url)
        return store

    async def _start(self) -> None:
        """The write check at start (a read-only database fails here, not on the first request), the
        one-time copy of the old playlist file, the grace-period prune of servers not seen, and the prune of
        answers' tracks older than `REPLY_TRACKS_KEPT`."""
        async with self._engine.begin() as connection:
            await self._put_state(connection, "store.last_start", _now().isoformat())
            pruned = await connection.execute(
                delete(schema.guild_settings).where(schema.guild_settings.c.last_seen < _now() - GUILD_GRACE)
            )
            if pruned.rowcount:
                log.info("deleted the settings of %d server(s) not seen for %d days", pruned.rowcount, GUILD_GRACE.days)
            await self._prune_reply_tracks(connection)
            await self._import_playlist_file(connection, self._settings.playlist_store)

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()
        if self._autocommit.sync_engine.pool is not self._engine.sync_engine.pool:
            await self._autocommit.dispose()

    async def __aenter__(self) -> Store:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @asynccontextmanager
    async def _transaction(self, atomic: bool = True) -> AsyncIterator[AsyncConnection]:
        """One transaction, or with `atomic=False` statements that each commit alone (no BEGIN/COMMIT round
        trips: for single reads, and writes whose steps are each safe alone); an outage becomes
        `StoreUnavailable`, logged once per outage."""
        try:
            async with self._engine.begin() if atomic else self._autocommit.connect() as connection:
                yield connection
        except Exception as error:
            if not is_outage(error):
                raise
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("%s; answering without memory until it is back", outage_reason(error, self._url))
            raise StoreUnavailable(outage_reason(error, self._url)) from None
        if self._down_since is not None:
            log.info("database %s is back after %.0f s", self.url, time.monotonic() - self._down_since)
            self._down_since = None

    # ---- servers -----------------------------------------------------------------------------

    def default_guild_settings(self, guild_id: int) -> GuildSettings:
        """What a server the bot never configured gets: the environment's settings."""
        return GuildSettings(
            guild_id=guild_id,
            watched_channels=frozenset(self._settings.watch_channels),
            strategy=self._settings.strategy,
            reply_style=REPLY_STYLES[0],
            answer_selfies=self._settings.selfies_in_channels,
            setup_announced=False,
        )

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        """The server's settings (defaults if it has none). A server whose settings are read is in use: its
        `last_seen` is refreshed (at most daily, one extra write), so the grace-period prune never takes it."""
        table = schema.guild_settings
        async with self._transaction(atomic=False) as connection:
            row = (await connection.execute(select(table).where(table.c.guild_id == guild_id))).first()
            if row is not None and _utc(row.last_seen) < _now() - SEEN_REFRESH:
                await connection.execute(update(table).where(table.c.guild_id == guild_id).values(last_seen=_now()))
        return self.default_guild_settings(guild_id) if row is None else _guild_settings(row._mapping)

    async def update_guild_settings(self, guild_id: int, **changes: Any) -> GuildSettings:
        """Change some of a server's settings; the others keep their value, even if another process
        changes them at the same time (only the named columns are written)."""
        known = {spec.name for spec in fields(GuildSettings)} - {"guild_id"}
        if unknown := set(changes) - known:
            raise TypeError(f"unknown server settings: {', '.join(sorted(unknown))}")
        if "reply_style" in changes and changes["reply_style"] not in REPLY_STYLES:
            raise ConfigError(f"reply style must be one of {', '.join(REPLY_STYLES)}, got {changes['reply_style']!r}")
        values = _guild_row(replace(self.default_guild_settings(guild_id), **changes))
        written = {name: values[name] for name in changes} | {"last_seen": values["last_seen"]}
        statement = self._insert(schema.guild_settings).values(values)
        statement = statement.on_conflict_do_update(index_elements=["guild_id"], set_=written).returning(
            *schema.guild_settings.c
        )
        async with self._transaction() as connection:
            row = (await connection.execute(statement)).one()
        return _guild_settings(row._mapping)

    async def touch_guilds(self, guild_ids: Iterable[int]) -> None:
        """Mark servers as seen now (call on ready and on join), so the grace-period prune spares them."""
        ids = list(guild_ids)
        if not ids:
            return
        async with self._transaction() as connection:
            await connection.execute(
                update(schema.guild_settings).where(schema.guild_settings.c.guild_id.in_(ids)).values(last_seen=_now())
            )

    async def forget_guild(self, guild_id: int) -> int:
        """Delete the server's rows (the bot was removed from it); how many were deleted."""
        async with self._transaction() as connection:
            result = await connection.execute(
                delete(schema.guild_settings).where(schema.guild_settings.c.guild_id == guild_id)
            )
        return result.rowcount

    # ---- users -------------------------------------------------------------------------------

    async def user_strategy(self, user_key: str) -> str | None:
        """The user's chosen strategy, None if they never chose."""
        async with self._transaction(atomic=False) as connection:
            return await connection.scalar(
                select(schema.user_preferences.c.strategy).where(schema.user_preferences.c.user_key == user_key)
            )

    async def set_user_strategy(self, user_key: str, strategy: str | None) -> None:
        """Remember the user's strategy (None: back to the default)."""
        table = schema.user_preferences
        async with self._transaction() as connection:
            if strategy is None:
                await connection.execute(delete(table).where(table.c.user_key == user_key))
                return
            statement = self._insert(table).values(user_key=user_key, strategy=strategy)
            await connection.execute(
                statement.on_conflict_do_update(index_elements=["user_key"], set_={"strategy": strategy})
            )

    async def recent_track_ids(self, user_key: str, limit: int) -> list[str]:
        """The user's last `limit` served tracks, newest first (a reply's tracks in their order)."""
        if limit <= 0:
            return []
        table = schema.recent_tracks
        async with self._transaction(atomic=False) as connection:
            result = await connection.scalars(
                select(table.c.track_id)
                .where(table.c.user_key == user_key)
                .order_by(table.c.served_at.desc(), table.c.position)
                .limit(limit)
            )
            return list(result)

    async def remember_tracks(self, user_key: str, track_ids: list[str]) -> None:
        """Record a reply's tracks as the newest; keep only the newest `MOODRING_RECENT_MEMORY` per user.

        Two statements that each commit alone: a concurrent writer for the same user may leave a few more
        rows until the next prune, never fewer than the newest N.
        """
        table = schema.recent_tracks
        keep = self._settings.recent_memory
        served_at = _now()
        unique = list(dict.fromkeys(track_ids))
        async with self._transaction(atomic=False) as connection:
            if unique and keep:
                rows = [
                    {"user_key": user_key, "track_id": track_id, "served_at": served_at, "position": position}
                    for position, track_id in enumerate(unique)
                ]
                statement = self._insert(table).values(rows)
                await connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=["user_key", "track_id"],
                        set_={"served_at": statement.excluded.served_at, "position": statement.excluded.position},
                    )
                )
            newest = (
                select(table.c.track_id)
                .where(table.c.user_key == user_key)
                .order_by(table.c.served_at.desc(), table.c.position)
                .limit(keep)
            )
            await connection.execute(
                delete(table).where(table.c.user_key == user_key, table.c.track_id.not_in(newest.scalar_subquery()))
            )

    async def record_feedback(self, user_key: str, tracks: list[FeedbackTrack], liked: bool) -> None:
        """Store a like or dislike of a reply's tracks; keep the newest `FEEDBACK_PER_USER` per user."""
        if not tracks:
            return
        table = schema.feedback
        at = _now()
        rows = [
            {
                "user_key": user_key,
                "track_id": track.track_id,
                "artist": track.artist,
                "valence": float(track.valence),
                "energy": float(track.energy),
                "liked": bool(liked),
                "at": at,
            }
            for track in tracks
        ]
        async with self._transaction() as connection:
            await connection.execute(table.insert(), rows)
            newest = (
                select(table.c.id)
                .where(table.c.user_key == user_key)
                .order_by(table.c.id.desc())
                .limit(FEEDBACK_PER_USER)
            )
            await connection.execute(
                delete(table).where(table.c.user_key == user_key, table.c.id.not_in(newest.scalar_subquery()))
            )

    async def feedback(self, user_key: str) -> list[FeedbackRow]:
        """The user's ratings, newest first: what the recommender learns from."""
        table = schema.feedback
        async with self._transaction(atomic=False) as connection:
            result = await connection.execute(
                select(table.c.track_id, table.c.artist, table.c.valence, table.c.energy, table.c.liked, table.c.at)
                .where(table.c.user_key == user_key)
                .order_by(table.c.id.desc())
            )
            rows = result.all()
        return [
            FeedbackRow(row.track_id, row.artist, row.valence, row.energy, bool(row.liked), _utc(row.at))
            for row in rows
        ]

    async def forget_user(self, user_key: str) -> int:
        """Delete every row about the user (strategy, recent tracks, feedback); how many were deleted."""
        deleted = 0
        async with self._transaction() as connection:
            for table in (schema.user_preferences, schema.recent_tracks, schema.feedback):
                deleted += (await connection.execute(delete(table).where(table.c.user_key == user_key))).rowcount
        return deleted

    # ---- answers' rating buttons ---------------------------------------------------------------

    async def remember_reply(self, message_id: int, tracks: list[FeedbackTrack]) -> None:
        """Keep the tracks of the answer `message_id` for its rating buttons (no user: see the schema)."""
        row = {"message_id": message_id, "tracks": [asdict(track) for track in tracks], "sent_at": _now()}
        async with self._transaction() as connection:
            await connection.execute(self._insert(schema.reply_tracks).values(row).on_conflict_do_nothing())
            if time.monotonic() >= self._next_reply_prune:  # a long-running bot prunes daily, not only at start
                await self._prune_reply_tracks(connection)

    async def reply_tracks(self, message_id: int) -> list[FeedbackTrack] | None:
        """The tracks of the answer `message_id`; None when never stored or older than `REPLY_TRACKS_KEPT`."""
        table = schema.reply_tracks
        statement = select(table.c.tracks).where(
            table.c.message_id == message_id, table.c.sent_at >= _now() - REPLY_TRACKS_KEPT
        )
        async with self._transaction(atomic=False) as connection:
            tracks = await connection.scalar(statement)
        return None if tracks is None else [FeedbackTrack(**track) for track in tracks]

    async def _prune_reply_tracks(self, connection: AsyncConnection) -> None:
        table = schema.reply_tracks
        await connection.execute(delete(table).where(table.c.sent_at < _now() - REPLY_TRACKS_KEPT))
        self._next_reply_prune = time.monotonic() + timedelta(days=1).total_seconds()

    # ---- playlists ---------------------------------------------------------------------------

    async def playlist_id(self, emotion: str) -> str | None:
        """The emotion's playlist id, None before one was claimed."""
        async with self._transaction(atomic=False) as connection:
            return await connection.scalar(
                select(schema.playlists.c.playlist_id).where(schema.playlists.c.emotion == emotion)
            )

    async def claim_playlist(self, emotion: str, playlist_id: str) -> str:
        """Make `playlist_id` the emotion's playlist unless one is already; the id that won.

        The primary key decides a race between processes: the loser gets the winner's id (and should
        delete the playlist it made, if it made one).
        """
        async with self._transaction() as connection:
            return await _claim(connection, self._insert, emotion, playlist_id)

    async def forget_playlist(self, emotion: str, playlist_id: str) -> None:
        """Drop the emotion's playlist id if it is still `playlist_id` (the playlist was deleted on Spotify)."""
        table = schema.playlists
        async with self._transaction() as connection:
            await connection.execute(
                delete(table).where(table.c.emotion == emotion, table.c.playlist_id == playlist_id)
            )

    async def _import_playlist_file(self, connection: AsyncConnection, path: Path) -> None:
        """Copy the ids of the JSON playlist file older versions kept (`{account: {emotion: id}}`), once."""
        if not path.is_file() or await _get_state(connection, PLAYLISTS_IMPORTED) is not None:
            return
        try:
            accounts = json.loads(path.read_text(encoding="utf-8"))
            pairs = [
                (str(emotion), str(playlist_id))
                for account in sorted(accounts)  # several accounts: the first account's playlist wins
                for emotion, playlist_id in dict(accounts[account]).items()
            ]
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("cannot read the playlist ids in %s (%s); leaving them out", path, exc)
            return
        for emotion, playlist_id in pairs:
            await _claim(connection, self._insert, emotion, playlist_id)
        await self._put_state(connection, PLAYLISTS_IMPORTED, str(path))
        log.info("copied %d playlist id(s) from %s into the database", len(pairs), path)

    # ---- application state -------------------------------------------------------------------

    async def get_state(self, key: str) -> str | None:
        """A small named value, None if never set."""
        async with self._transaction(atomic=False) as connection:
            return await _get_state(connection, key)

    async def set_state(self, key: str, value: str) -> None:
        """Set a small named value."""
        async with self._transaction() as connection:
            await self._put_state(connection, key, value)

    async def _put_state(self, connection: AsyncConnection, key: str, value: str) -> None:
        statement = self._insert(schema.app_state).values(key=key, value=value)
        await connection.execute(statement.on_conflict_do_update(index_elements=["key"], set_={"value": value}))


async def _get_state(connection: AsyncConnection, key: str) -> str | None:
    return await connection.scalar(select(schema.app_state.c.value).where(schema.app_state.c.key == key))


async def _claim(connection: AsyncConnection, insert, emotion: str, playlist_id: str) -> str:
    table = schema.playlists
    statement = insert(table).values(emotion=emotion, playlist_id=playlist_id, claimed_at=_now())
    await connection.execute(statement.on_conflict_do_nothing(index_elements=["emotion"]))
    return await connection.scalar(select(table.c.playlist_id).where(table.c.emotion == emotion))


def _guild_row(settings: GuildSettings) -> dict[str, Any]:
    return {
        "guild_id": settings.guild_id,
        "watched_channels": sorted(settings.watched_channels),
        "strategy": settings.strategy,
        "reply_style": settings.reply_style,
        "answer_selfies": settings.answer_selfies,
        "setup_announced": settings.setup_announced,
        "last_seen": _now(),
    }


def _guild_settings(row: Any) -> GuildSettings:
    return GuildSettings(
        guild_id=int(row["guild_id"]),
        watched_channels=frozenset(int(channel) for channel in row["watched_channels"]),
        strategy=row["strategy"],
        reply_style=row["reply_style"],
        answer_selfies=bool(row["answer_selfies"]),
        setup_announced=bool(row["setup_announced"]),
    )
