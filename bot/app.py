"""The bot itself: an auto-sharded discord.py bot, its start-up, and the run loop behind `moodring bot`.

`AutoShardedBot` with Discord's recommended shard count is one shard for a small bot and grows past
Discord's 2,500-guilds-per-shard limit without a rewrite. Start-up runs in this order, so that a wrong
setting fails fast, in one line, before anything slow happens:

1. `verify_token` asks Discord who the token belongs to (a bad token or no network ends here, before
   discord.py's own login logs anything);
2. `setup_hook` (after login, before the gateway connects) opens the store and the download session,
   loads the model and the song table, builds each worker thread's interpreters (so that the first selfies
   do not stall the event loop), loads the features (`INITIAL_EXTENSIONS`, as RoboDanny does), syncs
   the slash commands only when they changed since the last sync (`moodring.bot.sync`), and freezes what
   it built out of the garbage collector's full passes.

Without the Message Content intent enabled for the application, the bot does not ask for it: it then
answers DMs, @mentions and `/mood`, and says so once in the log.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import aiohttp
import discord
from discord.ext import commands
from moodring.bot.sync import sync_if_changed
from moodring.bot.work_queue import WorkQueue

from moodring import __version__
from moodring.errors import ConfigError, DiscordUnavailable
from moodring.settings import Settings

if TYPE_CHECKING:
    from moodring.emotion import EmotionRecognizer
    from moodring.recommender import Recommender

    from moodring.store import Store

log = logging.getLogger(__name__)

INITIAL_EXTENSIONS = (
    "moodring.bot.exts.mood",
    "moodring.bot.exts.admin",
    "moodring.bot.exts.feedback",
)
DRAIN_SECONDS = 30.0
"""On shutdown, how long requests already admitted may take to finish and be answered."""
GATEWAY_GRACE_SECONDS = 10.0
"""After closing, how long the gateway task may take to end before it is cancelled."""
TOKEN_CHECK_SECONDS = 20.0
BAD_TOKEN = "Discord rejected DISCORD_TOKEN; copy the token again from the Developer Portal (Bot tab)"
NO_MESSAGE_CONTENT = (
    "the Message Content intent is not enabled for this application: answering DMs, @mentions and /mood only "
    "(enable it in the Developer Portal, Bot tab, to read selfies in watched channels)"
)

# The bot never joins voice; discord.py would otherwise log two warnings about voice libraries at start-up.
discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False


def build_intents(settings: Settings) -> discord.Intents:
    """Only what the bot uses: guilds (slash commands), DMs, guild messages (mentions), and content if asked.

    Discord shows a bot the attachments of a guild message that does not mention it only with the
    privileged Message Content intent; watched channels need it, mentions and DMs do not.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.dm_messages = True
    intents.guild_messages = True
    intents.message_content = settings.selfies_in_channels
    return intents


class MoodringBot(commands.AutoShardedBot):
    """Moodring on Discord. Parts not given are built in `setup_hook`, and closed by `close`.

    `commands_only` is for `moodring sync-commands`: log in to manage slash commands, nothing else.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        recognizer: EmotionRecognizer | None = None,
        recommender: Recommender | None = None,
        commands_only: bool = False,
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
        self.store: Store = store  # type: ignore[assignment]  # set in setup_hook when not given
        self.recognizer: EmotionRecognizer = recognizer  # type: ignore[assignment]
        self.recommender: Recommender = recommender  # type: ignore[assignment]
        self.commands_only = commands_only
        self._owned: list[str] = []  # the parts this bot built, and so closes
        self.work = WorkQueue(settings.workers, settings.queue_size)
        self.http_session: aiohttp.ClientSession | None = None
        self._released = False

    async def setup_hook(self) -> None:
        """Open the store and download session, load the pipeline and the features, sync commands if changed."""
        self.http_session = aiohttp.ClientSession()
        if self.store is None:
            self.store = await open_store(self.settings)
            self._owned.append("store")
        self.match_intents_to(self.application)
        if not self.commands_only:
            await self._load_pipeline()
        for extension in INITIAL_EXTENSIONS:
            await self.load_extension(extension)  # a feature that fails to load stops the start: no half bot
        if not self.commands_only:
            await sync_if_changed(self)
            # What start-up built (modules, the model, the song table, ~160,000 objects) lives as long as the
            # bot. Frozen, it is left out of the collector's full passes, which otherwise walk all of it on
            # the event loop: ~90 ms of CPU each, a stall of the gateway and of every request.
            gc.freeze()

    def match_intents_to(self, application: discord.AppInfo | None) -> None:
        """Ask Discord only for what the application may have: it closes the gateway on a refused intent.

        `application` is what login learnt (None when not logged in through Discord: keep what was asked).
        """
        if not self.intents.message_content:
            log.info("MOODRING_SELFIES_IN_CHANNELS is off: answering DMs, @mentions and /mood only")
            return
        if application is None:
            return
        flags = application.flags
        if not (flags.gateway_message_content or flags.gateway_message_content_limited):
            self._connection._intents.message_content = False  # the intents sent when the gateway identifies
            log.warning(NO_MESSAGE_CONTENT)

    async def _load_pipeline(self) -> None:
        """The model and the song table, built off the event loop (a few seconds), and every worker's interpreters."""
        if self.recognizer is None:
            from moodring.emotion import EmotionRecognizer

            self.recognizer = await asyncio.to_thread(
                EmotionRecognizer.from_settings, self.settings, concurrent_calls=self.settings.workers
            )
        if self.recommender is None:
            from moodring.recommender import Recommender
            from moodring.recommender.playlists import StorePlaylistIds

            playlist_ids = StorePlaylistIds(self.store, asyncio.get_running_loop())
            self.recommender = await asyncio.to_thread(
                Recommender.from_settings, self.settings, lambda account: playlist_ids
            )
            self._owned.append("recommender")
        await self.work.prepare_threads(self.recognizer.warm_up)

    async def on_ready(self) -> None:
        """Log the connection (called again after every reconnect)."""
        log.info("connected as %s to %d guild(s) on %s shard(s)", self.user, len(self.guilds), self.shard_count)

    async def close(self) -> None:
        """Refuse new work, let admitted requests finish and be answered, then close what this bot opened."""
        if not self._released:
            self._released = True
            await self.work.drain(DRAIN_SECONDS)
            if self.http_session is not None:
                await self.http_session.close()
            if "recommender" in self._owned:
                await asyncio.to_thread(self.recommender.close)
            if "store" in self._owned:
                await self.store.close()
            gc.unfreeze()  # what was frozen at start-up may be collected again once the bot is gone
        await super().close()


async def open_store(settings: Settings) -> Store:
    """The store named by the settings (`MOODRING_DATABASE_URL`, or the local SQLite default)."""
    from moodring.store import Store

    return await Store.connect(settings)


def create_bot(
    settings: Settings,
    store: Store | None = None,
    recognizer: EmotionRecognizer | None = None,
    recommender: Recommender | None = None,
) -> MoodringBot:
    """A ready-to-start bot. Tests and benchmarks pass parts built once; the bot closes only what it built."""
    return MoodringBot(settings, store=store, recognizer=recognizer, recommender=recommender)


async def verify_token(token: str) -> None:
    """Ask Discord whose token this is: `ConfigError` if rejected, `DiscordUnavailable` if out of reach.

    Done before discord.py's login, so that a wrong token ends in Moodring's one line and nothing else.
    """
    timeout = aiohttp.ClientTimeout(total=TOKEN_CHECK_SECONDS)
    headers = {"Authorization": f"Bot {token}", "User-Agent": f"DiscordBot (moodring, {__version__})"}
    with discord_errors():
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(f"{discord.http.Route.BASE}/users/@me", headers=headers) as response:
                if response.status == 401:
                    raise ConfigError(BAD_TOKEN)
                if response.status >= 400:
                    raise DiscordUnavailable(f"Discord answered {response.status} when checking the token")


@contextmanager
def discord_errors() -> Iterator[None]:
    """Turn what Discord or the network refuse at start-up into one-line `MoodringError`s (exit code 2)."""
    try:
        yield
    except discord.LoginFailure:
        raise ConfigError(BAD_TOKEN) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigError(
            "Discord refused the Message Content intent: enable it for the bot in the Developer Portal, "
            "or set MOODRING_SELFIES_IN_CHANNELS=false"
        ) from None
    except (aiohttp.ClientConnectionError, discord.GatewayNotFound, TimeoutError) as exc:
        raise DiscordUnavailable(f"cannot reach Discord: {exc or type(exc).__name__}") from None


async def serve(bot: MoodringBot, token: str) -> None:
    """Run `bot` until Discord closes the connection or SIGINT/SIGTERM arrives; always shut down cleanly."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        with discord_errors():
            async with bot:
                await verify_token(token)
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
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
