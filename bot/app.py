"""The bot itself: an auto-sharded discord.py bot, its factory, and the run loop behind `moodring bot`.

`AutoShardedBot` with Discord's recommended shard count is one shard for a small bot and grows past
Discord's 2,500-guilds-per-shard limit without a rewrite. `setup_hook` (run once, after login and
before the gateway connects) opens the download session, loads the cog and syncs `/mood`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord.ext import commands
from moodring.bot.cog import MoodCog
from moodring.bot.memory import GuildLifecycle
from moodring.bot.work import WorkQueue

from moodring.errors import ConfigError, DiscordUnavailable
from moodring.settings import Settings

if TYPE_CHECKING:
    from moodring.emotion import EmotionRecognizer
    from moodring.recommender import Recommender

    from moodring.store import Store

log = logging.getLogger(__name__)

DRAIN_SECONDS = 30.0
"""On shutdown, how long requests already admitted may take to finish and be answered."""
GATEWAY_GRACE_SECONDS = 10.0
"""After closing, how long the gateway task may take to end before it is cancelled."""


def build_intents(settings: Settings) -> discord.Intents:
    """Only what the bot uses: guilds (slash commands), DMs, and guild messages + content for channel selfies."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.dm_messages = True
    if settings.selfies_in_channels:
        intents.guild_messages = True
        intents.message_content = True  # privileged: without it Discord hides attachments of channel messages
    return intents


class MoodringBot(commands.AutoShardedBot):
    """Moodring on Discord. Build it with `create_bot`; it owns a worker pool and an HTTP session."""

    def __init__(
        self,
        settings: Settings,
        recognizer: EmotionRecognizer,
        recommender: Recommender,
        *,
        owns_recommender: bool,
        store: Store | None = None,
    ) -> None:
        super().__init__(
            shard_count=settings.shard_count,  # a fleet: this process runs only MOODRING_SHARD_IDS
            shard_ids=list(settings.shard_ids) or None,
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=build_intents(settings),
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.settings = settings
        self.recognizer = recognizer
        self.recommender = recommender
        self.store = store  # closed by whoever opened it
        self._owns_recommender = owns_recommender
        self.work = WorkQueue(settings.workers, settings.queue_size)
        self.http_session: aiohttp.ClientSession | None = None
        self._released = False

    async def setup_hook(self) -> None:
        """Open the attachment download session, load the cog, publish `/mood`."""
        self.http_session = aiohttp.ClientSession()
        await self.add_cog(MoodCog(self))
        if self.store is not None:
            await self.add_cog(GuildLifecycle(self, self.store))
        await self.sync_commands()

    async def sync_commands(self) -> None:
        """Sync to `DISCORD_GUILD_ID` when set (appears at once, for testing), globally otherwise (can take ~1 h)."""
        if self.settings.discord_guild_id is not None:
            guild = discord.Object(id=self.settings.discord_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            log.info("synced %d application command(s) to guild %s", len(synced), guild.id)
        else:
            synced = await self.tree.sync()
            log.info("synced %d application command(s) globally", len(synced))

    async def on_ready(self) -> None:
        """Log the connection (called again after every reconnect)."""
        log.info("connected as %s to %d guild(s) on %s shard(s)", self.user, len(self.guilds), self.shard_count)

    async def close(self) -> None:
        """Refuse new work, let admitted requests finish and be answered, then close sessions and the gateway."""
        if not self._released:
            self._released = True
            await self.work.drain(DRAIN_SECONDS)
            if self.http_session is not None:
                await self.http_session.close()
            if self._owns_recommender:
                await asyncio.to_thread(self.recommender.close)
        await super().close()


def create_bot(
    settings: Settings,
    recognizer: EmotionRecognizer | None = None,
    recommender: Recommender | None = None,
    store: Store | None = None,
) -> MoodringBot:
    """A ready-to-start bot. Missing parts are built from `settings` (this loads the model: a few seconds).

    Tests and benchmarks pass one recognizer/recommender built once; the bot closes only what it built.
    """
    if recognizer is None:
        from moodring.emotion import EmotionRecognizer

        recognizer = EmotionRecognizer.from_settings(settings, concurrent_calls=settings.workers)
    owns_recommender = recommender is None
    if owns_recommender:
        from moodring.recommender import Recommender

        recommender = Recommender.from_settings(settings)
    return MoodringBot(settings, recognizer, recommender, owns_recommender=owns_recommender, store=store)


async def serve(bot: MoodringBot, token: str) -> None:
    """Run `bot` until Discord closes the connection or SIGINT/SIGTERM arrives; always shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with bot:
            running = asyncio.create_task(bot.start(token), name="discord-gateway")
            stopping = asyncio.create_task(stop.wait(), name="shutdown-signal")
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if running.done():
                running.result()  # Discord ended the session: raise what it said, if anything
                return
            log.info("shutting down: finishing admitted requests")
            await bot.close()
            try:  # the gateway task ends once the bot is closed; do not wait on it forever
                await asyncio.wait_for(running, GATEWAY_GRACE_SECONDS)
            except Exception:
                log.warning("the gateway did not end cleanly after shutdown", exc_info=True)
    except discord.LoginFailure:
        raise ConfigError("Discord rejected DISCORD_TOKEN; copy the token again from the Developer Portal") from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "Discord refused the Message Content intent: enable it for the bot in the Developer Portal, "
            "or set MOODRING_SELFIES_IN_CHANNELS=false"
        ) from None
    except (aiohttp.ClientConnectionError, discord.GatewayNotFound) as exc:
        raise DiscordUnavailable(f"cannot reach Discord: {exc}") from None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
