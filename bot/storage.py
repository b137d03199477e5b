"""What the bot needs from the store (`moodring.store.Store`), as a protocol the real store satisfies.

The bot reads and writes per-server settings, per-user feedback and small application state through
`bot.store`. Typing that attribute with this protocol (instead of the concrete class) keeps the bot's
tests on an in-memory double of the same contract, and lists in one place every call the bot makes.

`GuildSettings` and `FeedbackTrack` mirror `moodring.store`'s dataclasses field for field (the store
reads attributes, so either class works); once the store package is in the tree, import them from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class GuildSettings:
    """One server's set-up; a server never seen gets the defaults from `Settings` (the environment)."""

    guild_id: int
    watched_channels: frozenset[int]
    strategy: str  # "notebook" (lift the mood) or "match"
    reply_style: str  # "picture" (embed + annotated picture) or "embed" (embed only)
    answer_selfies: bool
    setup_announced: bool


@dataclass(frozen=True)
class FeedbackTrack:
    """One track of a reply the user rated, with what the recommender learns from."""

    track_id: str
    artist: str
    valence: float
    energy: float


class BotStore(Protocol):
    """The calls the bot makes on the store; each may raise `StoreUnavailable` during an outage."""

    async def guild_settings(self, guild_id: int) -> GuildSettings: ...

    async def update_guild_settings(self, guild_id: int, **changes: object) -> GuildSettings: ...

    async def forget_guild(self, guild_id: int) -> None: ...

    async def forget_user(self, user_key: str) -> int: ...

    async def record_feedback(self, user_key: str, tracks: Sequence[FeedbackTrack], liked: bool) -> None: ...

    async def get_state(self, key: str) -> str | None: ...

    async def set_state(self, key: str, value: str) -> None: ...

    async def close(self) -> None: ...


def user_key(user_id: int) -> str:
    """The store's key for a Discord user."""
    return f"discord:{user_id}"
