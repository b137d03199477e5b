"""`moodring bot`: run the Discord bot with the settings from the environment and `.env`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from moodring.errors import ConfigError

if TYPE_CHECKING:
    from moodring.settings import Settings

NO_TOKEN = (
    "DISCORD_TOKEN is not set: add DISCORD_TOKEN=<your bot token> to .env or the environment "
    "(README, 'Run it on your server')"
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `bot` sub-command."""
    parser = subparsers.add_parser(
        "bot",
        help="run the Discord bot",
        description="Connect to Discord and answer selfies and /mood until SIGINT/SIGTERM. "
        "Reads DISCORD_TOKEN, DISCORD_GUILD_ID, MOODRING_* and the Spotify settings from the environment / .env.",
    )
    parser.set_defaults(handler=run_bot)


def run_bot(args: argparse.Namespace) -> int:
    """Check the token before loading anything heavy, then build the bot and serve until stopped."""
    from moodring.settings import Settings

    settings = Settings.load()
    if not settings.discord_token:
        raise ConfigError(NO_TOKEN)

    import asyncio

    asyncio.run(_serve_with_store(settings))
    return 0


async def _serve_with_store(settings: Settings) -> None:
    """Open (and migrate) the store first, so that a database that cannot serve stops the start at once."""
    import logging

    from moodring.bot.app import create_bot, serve

    from moodring.store import Store

    async with await Store.connect(settings) as store:
        logging.getLogger(__name__).info("state in %s", store.url)
        await serve(create_bot(settings, store=store), settings.discord_token)
