"""What the bot keeps in the store: each listener's history around a request, and which servers it is in.

Kept apart from the cog so that the request path only calls `history` before recommending and `remember`
after. A store outage never costs a reply: `history` is then empty and `remember` a no-op (the store logs
one warning per outage). Without a store (tests, benchmarks that pass none) the bot answers without memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from moodring.errors import StoreUnavailable
from moodring.store import discord_user_key

if TYPE_CHECKING:
    from moodring.recommender import Recommendation

    from moodring.store import FeedbackRow, Store


@dataclass(frozen=True)
class ListenerHistory:
    """A Discord user's stored history, as read before one request."""

    user_key: str
    recent_track_ids: Sequence[str] = ()
    feedback: Sequence[FeedbackRow] = field(default_factory=tuple)


class ListenerMemory:
    """Reads and writes listeners' histories in the store for the cog."""

    def __init__(self, store: Store | None, recent_memory: int) -> None:
        self.store = store
        self.recent_memory = recent_memory

    async def history(self, user_id: int) -> ListenerHistory:
        """The user's recent tracks and feedback; empty when there is no store or it is down."""
        user_key = discord_user_key(user_id)
        if self.store is None:
            return ListenerHistory(user_key)
        try:
            recent = await self.store.recent_track_ids(user_key, self.recent_memory)
            feedback = await self.store.feedback(user_key)
        except StoreUnavailable:
            return ListenerHistory(user_key)
        return ListenerHistory(user_key, recent, feedback)

    async def remember(self, history: ListenerHistory, recommendation: Recommendation) -> None:
        """Record what the user was served (skipped while the store is down)."""
        if self.store is None:
            return
        try:
            await self.store.remember_tracks(history.user_key, [track.id for track in recommendation.tracks])
        except StoreUnavailable:
            pass


class GuildLifecycle(commands.Cog, name="Servers"):
    """Keeps server rows in step with the servers the bot is in: seen on ready/join, deleted on removal."""

    def __init__(self, bot: commands.Bot, store: Store) -> None:
        self.bot = bot
        self.store = store

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Mark this process's servers as seen, so the start-up prune of servers left long ago spares them."""
        await self._quietly(self.store.touch_guilds(guild.id for guild in self.bot.guilds))

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """A server added (again) is seen now."""
        await self._quietly(self.store.touch_guilds([guild.id]))

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """The bot was removed from a server: forget its settings."""
        await self._quietly(self.store.forget_guild(guild.id))

    @staticmethod
    async def _quietly(work: Awaitable[object]) -> None:
        try:
            await work
        except StoreUnavailable:
            pass  # the store logged the outage; the grace period covers a missed update
