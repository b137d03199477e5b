"""`moodring bot` runs the Discord bot; `moodring sync-commands` publishes its slash commands."""

from __future__ import annotations

import argparse

from moodring.errors import ConfigError

NO_TOKEN = (
    "DISCORD_TOKEN is not set: add DISCORD_TOKEN=<your bot token> to .env or the environment "
    "(README, 'Run it on your server')"
)


BOT_DESCRIPTION = (
    "Connect to Discord and answer selfies and /mood until SIGINT/SIGTERM. Publishes the slash commands only when "
    "they changed since the last sync. Reads DISCORD_TOKEN, DISCORD_GUILD_ID, MOODRING_* and the Spotify settings "
    "from the environment / .env."
)
SYNC_DESCRIPTION = (
    "Publish /mood, /moodring and /forget-me globally (Discord shows a change within an hour), or to one server "
    "with --guild (at once, for trying changes out), and print what changed. Syncing one scope removes the "
    "commands from the other, so nothing is listed twice."
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the `bot` and `sync-commands` sub-commands."""
    parser = subparsers.add_parser("bot", help="run the Discord bot", description=BOT_DESCRIPTION)
    parser.set_defaults(handler=run_bot)
    sync = subparsers.add_parser(
        "sync-commands", help="publish the bot's slash commands to Discord", description=SYNC_DESCRIPTION
    )
    sync.add_argument("--guild", type=int, metavar="ID", help="publish to this server only (default: global)")
    sync.set_defaults(handler=run_sync_commands)


def _settings_with_token():
    from moodring.settings import Settings

    settings = Settings.load()
    if not settings.discord_token:
        raise ConfigError(NO_TOKEN)
    return settings


def run_bot(args: argparse.Namespace) -> int:
    """Check the settings, then serve until stopped (the token is checked before anything slow loads)."""
    settings = _settings_with_token()
    import asyncio

    from moodring.bot.app import create_bot, serve

    asyncio.run(serve(create_bot(settings), settings.discord_token))
    return 0


def run_sync_commands(args: argparse.Namespace) -> int:
    """Log in, sync to the chosen scope, print the one-line report."""
    settings = _settings_with_token()
    import asyncio

    from moodring.bot.app import MoodringBot, discord_errors, verify_token
    from moodring.bot.sync import sync_commands

    async def sync() -> str:
        async with MoodringBot(settings, commands_only=True) as bot:
            await verify_token(settings.discord_token)
            with discord_errors():
                await bot.login(settings.discord_token)
            return (await sync_commands(bot, args.guild)).summary()

    print(asyncio.run(sync()))
    return 0
