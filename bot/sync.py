"""Publishing the slash commands to Discord, deliberately: on request, or when they changed.

Commands live in one scope at a time: globally (every server; Discord takes up to an hour to show a change)
or in one test server (`DISCORD_GUILD_ID`; at once). A command synced to both is listed twice in that server,
so syncing one scope clears the other. The scope and a fingerprint of what was synced (a hash of the command
tree's JSON payloads) are kept in the store, so `moodring bot` syncs only when the commands or the scope
changed, and `moodring sync-commands` knows which test server to clear when going global.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from moodring.errors import ConfigError, DiscordUnavailable

if TYPE_CHECKING:
    from moodring.bot.app import MoodringBot

log = logging.getLogger(__name__)

FINGERPRINT_KEY = "commands:fingerprint"
GUILD_KEY = "commands:guild"
"""The test server last synced to ("" when last synced globally)."""


@dataclass(frozen=True)
class SyncReport:
    """What one sync changed, by command name."""

    scope: str
    added: list[str]
    removed: list[str]
    kept: list[str]
    cleared: str | None  # the other scope, when it held commands that are now removed

    def summary(self) -> str:
        """One line for the terminal or the log."""
        parts = [f"synced {len(self.added) + len(self.kept)} command(s) to {self.scope}"]
        for label, names in (("added", self.added), ("removed", self.removed), ("updated in place", self.kept)):
            if names:
                parts.append(f"{label}: {', '.join('/' + name for name in names)}")
        if self.cleared:
            parts.append(f"cleared {self.cleared}")
        return "; ".join(parts)


def fingerprint(bot: MoodringBot, guild_id: int | None) -> str:
    """A hash of every command's payload and the scope: equal when a sync would change nothing."""
    payload = [command.to_dict(bot.tree) for command in bot.tree.get_commands()]
    text = json.dumps({"guild": guild_id, "commands": payload}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _scope(guild_id: int | None) -> str:
    return f"server {guild_id}" if guild_id is not None else "every server (global)"


async def sync_commands(bot: MoodringBot, guild_id: int | None) -> SyncReport:
    """Publish the commands to one scope and clear the other; remember both in the store.

    A refused sync (the bot is not in that server, or was invited without `applications.commands`)
    is a `ConfigError`; any other failure of Discord is `DiscordUnavailable`.
    """
    tree = bot.tree
    guild = discord.Object(id=guild_id) if guild_id is not None else None
    previous = await bot.store.get_state(GUILD_KEY)
    try:
        before = {command.name for command in await tree.fetch_commands(guild=guild)}
        if guild is not None:
            tree.copy_global_to(guild=guild)
        after = [command.name for command in await tree.sync(guild=guild)]
        cleared = await _clear_other_scope(bot, guild_id, int(previous) if previous else None)
    except discord.Forbidden as exc:
        raise ConfigError(
            f"Discord refused to publish the commands to {_scope(guild_id)} ({exc.status}): is the bot in that "
            "server, invited with the applications.commands scope? (DISCORD_GUILD_ID, --guild)"
        ) from None
    except discord.HTTPException as exc:
        raise DiscordUnavailable(f"Discord failed to publish the commands: {exc.status} {exc.text}") from None
    await bot.store.set_state(GUILD_KEY, str(guild_id) if guild_id is not None else "")
    await bot.store.set_state(FINGERPRINT_KEY, fingerprint(bot, guild_id))
    return SyncReport(
        scope=_scope(guild_id),
        added=sorted(set(after) - before),
        removed=sorted(before - set(after)),
        kept=sorted(set(after) & before),
        cleared=cleared,
    )


async def _clear_other_scope(bot: MoodringBot, guild_id: int | None, previous_guild: int | None) -> str | None:
    """Remove the commands from the scope not synced to; returns it when it held any."""
    application_id = bot.application_id
    if guild_id is not None:
        if not await bot.tree.fetch_commands():
            return None
        await bot.http.bulk_upsert_global_commands(application_id, [])
        return _scope(None)
    if previous_guild is None:
        return None
    try:
        held = await bot.tree.fetch_commands(guild=discord.Object(id=previous_guild))
    except discord.Forbidden:  # the bot has left that server: nothing of ours is listed there
        return None
    if not held:
        return None
    await bot.http.bulk_upsert_guild_commands(application_id, previous_guild, [])
    return _scope(previous_guild)


async def sync_if_changed(bot: MoodringBot) -> SyncReport | None:
    """Sync at start-up only when the commands or the scope changed since the last sync."""
    guild_id = bot.settings.discord_guild_id
    if await bot.store.get_state(FINGERPRINT_KEY) == fingerprint(bot, guild_id):
        log.info("slash commands unchanged since the last sync; not syncing")
        return None
    report = await sync_commands(bot, guild_id)
    log.info("%s", report.summary())
    return report
