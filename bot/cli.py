"""`moodring bot`: run the Discord bot with the settings from the environment and `.env`."""

from __future__ import annotations

import argparse

from moodring.errors import ConfigError

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

    from moodring.bot.app import create_bot, serve

    bot = create_bot(settings)
    asyncio.run(serve(bot, settings.discord_token))
    return 0
