"""An in-memory double of the store contract (`moodring.store.Store`, /work STORE_API), for the bot's tests.

It behaves as the contract says, as the fake Spotify server behaves as Spotify does: a server never seen
gets its settings from `Settings` (the environment), `update_guild_settings` changes only what it is given,
`forget_user` deletes everything about a user and says how many records, and every method raises
`StoreUnavailable` while the database is "down". `MemoryTables` is the database: stores opened on the
same tables see the same data, as two runs of the bot on one SQLite file do.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from moodring.bot.storage import FeedbackTrack, GuildSettings

from moodring.errors import StoreUnavailable
from moodring.settings import Settings

GUILD_FIELDS = frozenset(field.name for field in dataclasses.fields(GuildSettings)) - {"guild_id"}


@dataclass
class MemoryTables:
    """The data, shared by every store opened on it; `down` makes every call fail as an outage does."""

    guilds: dict[int, GuildSettings] = field(default_factory=dict)
    feedback: dict[str, list[tuple[FeedbackTrack, bool]]] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)
    down: bool = False


class MemoryStore:
    """The store calls the bot makes, on `MemoryTables`."""

    def __init__(self, settings: Settings, tables: MemoryTables) -> None:
        self.settings = settings
        self.tables = tables
        self.closed = False

    def _check(self) -> None:
        if self.tables.down or self.closed:
            raise StoreUnavailable("the database is unavailable")

    async def guild_settings(self, guild_id: int) -> GuildSettings:
        self._check()
        return self.tables.guilds.get(guild_id) or GuildSettings(
            guild_id=guild_id,
            watched_channels=frozenset(self.settings.watch_channels),
            strategy=self.settings.strategy,
            reply_style="picture",
            answer_selfies=self.settings.selfies_in_channels,
            setup_announced=False,
        )

    async def update_guild_settings(self, guild_id: int, **changes: object) -> GuildSettings:
        self._check()
        unknown = set(changes) - GUILD_FIELDS
        if unknown:
            raise TypeError(f"unknown guild settings: {sorted(unknown)}")
        updated = dataclasses.replace(await self.guild_settings(guild_id), **changes)
        self.tables.guilds[guild_id] = updated
        return updated

    async def forget_guild(self, guild_id: int) -> None:
        self._check()
        self.tables.guilds.pop(guild_id, None)

    async def forget_user(self, user_key: str) -> int:
        self._check()
        return len(self.tables.feedback.pop(user_key, []))

    async def record_feedback(self, user_key: str, tracks: Sequence[FeedbackTrack], liked: bool) -> None:
        self._check()
        self.tables.feedback.setdefault(user_key, []).extend((track, liked) for track in tracks)

    async def get_state(self, key: str) -> str | None:
        self._check()
        return self.tables.state.get(key)

    async def set_state(self, key: str, value: str) -> None:
        self._check()
        self.tables.state[key] = value

    async def close(self) -> None:
        self.closed = True
