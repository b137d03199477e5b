"""Setting the bot up from Discord: `/moodring` for members with Manage Server, `/forget-me` for everyone.

Each server's settings live in the store (the environment variables are only the defaults for a server
never seen), so two servers can be set up differently and an admin changes them without the host.
`/moodring` is hidden from members without Manage Server (`default_permissions`) and checked again on
use, because a server can override the default. `/forget-me` is its own top-level command, not a
`/moodring` subcommand: Discord applies default permissions per top-level command, so a subcommand
cannot be open to everyone while its siblings are not.

The bot also greets a server it joins (one message in the system channel, when it may post there) and
forgets a server's settings when it is removed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from moodring.bot.exts.mood import STRATEGY_OPTION, OneOf

from moodring.errors import StoreUnavailable
from moodring.store import GuildSettings, discord_user_key

if TYPE_CHECKING:
    from moodring.bot.app import MoodringBot

log = logging.getLogger(__name__)

NEEDED_IN_WATCHED_CHANNELS = {
    "view_channel": "View Channel",
    "send_messages": "Send Messages",
    "embed_links": "Embed Links",
    "attach_files": "Attach Files",
    "read_message_history": "Read Message History",
    "add_reactions": "Add Reactions",
}
"""What the bot uses in a channel it watches; `/moodring settings` names any it lacks."""
WatchableChannel = discord.TextChannel | discord.Thread
REPLY_STYLE_OPTION = OneOf("a reply style", {"picture": "embed with the annotated picture", "embed": "embed only"})
NOT_WATCHING = (
    "Note: I don't read any channel of this server yet. Add one with `/moodring watch`; until then I answer "
    "only when someone @mentions me with a selfie, in DMs, and to `/mood`."
)
WELCOME = (
    "Hi! I read the mood on a selfie and answer with five songs for it. Try `/mood` with a selfie, or "
    "@mention me with one. Members with **Manage Server** choose where I read posted selfies with "
    "`/moodring watch`, and see my set-up with `/moodring settings`."
)
STORE_DOWN = "I can't reach my settings right now; please try again in a minute."
FORGET_PROMPT = (
    "Delete everything I remember about you (your feedback and recent songs) on every server? This can't be undone."
)


def missing_permissions(channel: discord.abc.GuildChannel | WatchableChannel, me: discord.Member) -> list[str]:
    """The permissions the bot lacks in `channel` for answering selfies there, by their names in Discord."""
    permissions = channel.permissions_for(me)
    return [label for flag, label in NEEDED_IN_WATCHED_CHANNELS.items() if not getattr(permissions, flag)]


def describe(server: GuildSettings, guild: discord.Guild) -> str:
    """`/moodring settings`: what is set, and what stops the bot from answering in each watched channel."""
    lines = ["**Watched channels**"]
    for channel_id in sorted(server.watched_channels):
        channel = guild.get_channel_or_thread(channel_id)
        if channel is None:
            lines.append(f"• <#{channel_id}> (no longer exists or I can't see it)")
            continue
        missing = missing_permissions(channel, guild.me)
        lines.append(f"• {channel.mention}" + (f": I'm missing {', '.join(missing)}" if missing else ""))
    if not server.watched_channels:
        lines.append("• none: I answer @mentions with a selfie, DMs and `/mood` only")
    lines += [
        f"**Strategy**: {STRATEGY_OPTION.labels.get(server.strategy, server.strategy)}",
        f"**Replies**: {REPLY_STYLE_OPTION.labels.get(server.reply_style, server.reply_style)}",
        f"**Selfies in watched channels**: {'answered' if server.answer_selfies else 'not answered'}",
    ]
    return "\n".join(lines)


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ServerSetup(commands.GroupCog, group_name="moodring", group_description="Set Moodring up for this server"):
    """`/moodring`: where selfies are read and how the bot answers in this server."""

    def __init__(self, bot: MoodringBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Manage Server, checked on use: a server may have opened `/moodring` to others in its settings."""
        if interaction.guild_id is None or not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """Refusals and store outages, said privately; anything else is logged."""
        if isinstance(error, app_commands.MissingPermissions):
            text = "Only members with **Manage Server** can change my set-up."
        elif isinstance(error, app_commands.TransformerError) and isinstance(error.transformer, OneOf):
            text = error.transformer.refusal(error.value)
        elif isinstance(error, app_commands.CommandInvokeError) and isinstance(error.original, StoreUnavailable):
            text = STORE_DOWN
        else:
            log.error("/moodring failed (interaction %s)", interaction.id, exc_info=error)
            text = "Something went wrong on my side; it has been logged."
        await _say(interaction, text)

    async def _update(self, interaction: discord.Interaction, text: str, **changes: object) -> None:
        """Apply `changes` to this server's settings and answer privately, adding the set-up note once."""
        server = await self.bot.store.guild_settings(interaction.guild_id)
        if not server.setup_announced:
            changes["setup_announced"] = True
            if not server.watched_channels and "watched_channels" not in changes:
                text = f"{text}\n\n{NOT_WATCHING}"
        if changes:
            await self.bot.store.update_guild_settings(interaction.guild_id, **changes)
        await _say(interaction, text)

    @app_commands.command(name="watch", description="Answer selfies posted in this channel")
    @app_commands.describe(channel="the channel (default: this one)")
    async def watch(self, interaction: discord.Interaction, channel: WatchableChannel | None = None) -> None:
        """Add a watched channel, saying what the bot lacks there."""
        await self._set_watched(interaction, channel or interaction.channel, watched=True)

    @app_commands.command(name="unwatch", description="Stop answering selfies posted in a channel")
    @app_commands.describe(channel="the channel (default: this one)")
    async def unwatch(self, interaction: discord.Interaction, channel: WatchableChannel | None = None) -> None:
        """Remove a watched channel."""
        await self._set_watched(interaction, channel or interaction.channel, watched=False)

    async def _set_watched(self, interaction: discord.Interaction, channel: WatchableChannel, *, watched: bool) -> None:
        server = await self.bot.store.guild_settings(interaction.guild_id)
        if not watched:
            text = f"I no longer read selfies posted in {channel.mention}."
            await self._update(interaction, text, watched_channels=server.watched_channels - {channel.id})
            return
        text = f"I'll answer selfies posted in {channel.mention}."
        missing = missing_permissions(channel, interaction.guild.me)
        if missing:
            text += f" I'm missing {', '.join(missing)} there: grant them, or my answers will be reduced."
        await self._update(interaction, text, watched_channels=server.watched_channels | {channel.id})

    @app_commands.command(name="strategy", description="Lift the mood or match it, by default in this server")
    async def strategy(
        self, interaction: discord.Interaction, strategy: app_commands.Transform[str, STRATEGY_OPTION]
    ) -> None:
        """Set the server's default strategy (`/mood strategy:` still overrides it)."""
        await self._update(interaction, f"Default strategy: {STRATEGY_OPTION.labels[strategy]}.", strategy=strategy)

    @app_commands.command(name="replies", description="Answer with the annotated picture, or the embed alone")
    async def replies(
        self, interaction: discord.Interaction, style: app_commands.Transform[str, REPLY_STYLE_OPTION]
    ) -> None:
        """Set the reply style."""
        await self._update(interaction, f"Replies: {REPLY_STYLE_OPTION.labels[style]}.", reply_style=style)

    @app_commands.command(name="selfies", description="Answer selfies posted in watched channels, or not at all")
    async def selfies(self, interaction: discord.Interaction, answer: bool) -> None:
        """Turn answering posted selfies on or off (mentions, DMs and `/mood` keep working)."""
        text = "I answer selfies in watched channels." if answer else "I leave selfies in watched channels alone."
        await self._update(interaction, text, answer_selfies=answer)

    @app_commands.command(name="settings", description="Show this server's set-up and what I'm missing")
    async def show(self, interaction: discord.Interaction) -> None:
        """Show the settings, with any permission the bot lacks in each watched channel."""
        server = await self.bot.store.guild_settings(interaction.guild_id)
        await self._update(interaction, describe(server, interaction.guild))

    # ---- joining and leaving servers ---------------------------------------------------------

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        """Mark this process's servers as seen, so that the start-up prune of servers left long ago spares them."""
        await self._touch(guild.id for guild in self.bot.guilds)

    async def _touch(self, guild_ids: Iterable[int]) -> None:
        try:
            await self.bot.store.touch_guilds(guild_ids)
        except StoreUnavailable:
            pass  # the store logged the outage; the 30-day grace period covers a missed mark

    @commands.Cog.listener()
    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Mark the server as seen; one short welcome in its system channel, if the bot may post there."""
        await self._touch([guild.id])
        channel = guild.system_channel
        if channel is None or not channel.permissions_for(guild.me).send_messages:
            return
        try:
            await channel.send(WELCOME)
        except discord.HTTPException as exc:
            log.warning("could not welcome guild %s: %s", guild.id, exc.status)

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        """A server that removed the bot keeps nothing with it."""
        try:
            await self.bot.store.forget_guild(guild.id)
        except StoreUnavailable:
            log.warning("could not forget guild %s: the store is unavailable", guild.id)


class ConfirmForget(discord.ui.View):
    """The confirmation under `/forget-me`: only its user may press it, for two minutes."""

    def __init__(self, bot: MoodringBot, user_id: int) -> None:
        super().__init__(timeout=120)
        self.bot = bot
        self.user_id = user_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the member who asked may confirm (the prompt is ephemeral; this guards a forged click)."""
        if interaction.user.id != self.user_id:
            await interaction.response.send_message("This button isn't for you.", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Delete my data", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        """Delete, then say how much was deleted."""
        try:
            deleted = await self.bot.store.forget_user(discord_user_key(self.user_id))
            text = f"Done: I deleted everything I remembered about you ({deleted} records)."
        except StoreUnavailable:
            text = STORE_DOWN
        self.stop()
        await interaction.response.edit_message(content=text, view=None)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        """Keep everything."""
        self.stop()
        await interaction.response.edit_message(content="Nothing was deleted.", view=None)


class Privacy(commands.Cog):
    """`/forget-me`, open to everyone, in servers and DMs."""

    def __init__(self, bot: MoodringBot) -> None:
        self.bot = bot

    @app_commands.command(name="forget-me", description="Delete everything Moodring remembers about you")
    async def forget_me(self, interaction: discord.Interaction) -> None:
        """Ask for confirmation, privately."""
        view = ConfirmForget(self.bot, interaction.user.id)
        await interaction.response.send_message(FORGET_PROMPT, view=view, ephemeral=True)


async def _say(interaction: discord.Interaction, text: str) -> None:
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True)
    else:
        await interaction.response.send_message(text, ephemeral=True)


async def setup(bot: MoodringBot) -> None:
    """Load `/moodring`, `/forget-me` and the join/leave handlers."""
    await bot.add_cog(ServerSetup(bot))
    await bot.add_cog(Privacy(bot))
