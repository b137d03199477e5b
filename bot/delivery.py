"""How an `Answer` reaches the user: a reply to a posted message, or a slash command's response.

A missing permission must never cost the user their answer. `MessageReplies` reads the bot's permissions in
the channel before sending and degrades in this order: no Attach Files → the embed without the picture;
no Embed Links → plain text; no Read Message History → no reply reference; no Send Messages → one DM to the
user saying why, with the answer. Permissions can change between the check and the send, so Discord's own
refusals (50013 Missing Permissions, 160002 reply without history) take the same way down. When even the DM
fails, one warning line is logged: these are the server's settings, not a bug, so no traceback.

A private answer (a refusal) is never a public message: a reaction on the selfie in a server, a message
in a DM, an ephemeral message for a slash command.
"""

from __future__ import annotations

import io
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Protocol

import discord
from moodring.bot.answers import CONTENT_LIMIT, Answer, as_text, cut
from moodring.bot.exts.feedback import reply_view

log = logging.getLogger(__name__)

MISSING_PERMISSIONS = 50013
REPLY_WITHOUT_HISTORY = 160002


class Replies(Protocol):
    """Where a request's single answer goes, and how the user sees that work has started."""

    def working(self) -> AbstractAsyncContextManager[None]: ...

    async def send(self, answer: Answer) -> discord.Message | None:
        """Deliver `answer`; returns the public message sent, if any (feedback buttons are tied to it)."""
        ...


def _send_kwargs(answer: Answer, *, embed: bool, attach: bool) -> dict[str, object]:
    """Keyword arguments for `Messageable.send` / `Webhook.send`, for what the bot may post here."""
    kwargs: dict[str, object] = {}
    if answer.embed is not None and not embed:
        kwargs["content"] = cut("\n".join(filter(None, [answer.content, as_text(answer.embed)])), CONTENT_LIMIT)
    else:
        if answer.content is not None:
            kwargs["content"] = answer.content
        if answer.embed is not None:
            shown = answer.embed
            if not attach and answer.image is not None:
                shown = answer.embed.copy()
                shown.set_image(url=None)
            kwargs["embed"] = shown
    if attach and embed and answer.image is not None and answer.image_name is not None:
        kwargs["file"] = discord.File(io.BytesIO(answer.image), filename=answer.image_name)
    view = reply_view(answer)
    if view is not None:
        kwargs["view"] = view
    return kwargs


class MessageReplies:
    """Answers a posted selfie with a reply to it, degrading to what the bot's permissions allow."""

    def __init__(self, message: discord.Message) -> None:
        self.message = message

    def _permissions(self) -> discord.Permissions:
        channel = self.message.channel
        if self.message.guild is None:
            return discord.Permissions.text() | discord.Permissions(view_channel=True)
        return channel.permissions_for(self.message.guild.me)

    def _may_send(self, permissions: discord.Permissions) -> bool:
        if isinstance(self.message.channel, discord.Thread):
            return permissions.view_channel and permissions.send_messages_in_threads
        return permissions.view_channel and permissions.send_messages

    def working(self) -> AbstractAsyncContextManager[None]:
        """ "typing…" where the bot may post; nothing elsewhere (Discord would refuse it)."""
        if self._may_send(self._permissions()):
            return self.message.channel.typing()
        return nullcontext()

    async def send(self, answer: Answer) -> discord.Message | None:
        if answer.private and self.message.guild is not None:
            await self._react(answer.reaction)
            return None
        permissions = self._permissions()
        if not self._may_send(permissions):
            await self._direct_message(answer, "Send Messages")
            return None
        embed, attach, reference = (
            permissions.embed_links,
            permissions.attach_files,
            permissions.read_message_history,
        )
        for _ in range(3):  # at most: as planned, without the reference, as bare text
            try:
                return await self._post(answer, embed=embed, attach=attach, reference=reference)
            except discord.HTTPException as exc:
                if exc.code == REPLY_WITHOUT_HISTORY and reference:
                    reference = False
                elif isinstance(exc, discord.Forbidden) and (embed or attach or reference):
                    embed = attach = reference = False
                elif isinstance(exc, discord.Forbidden):
                    break
                else:
                    raise
        await self._direct_message(answer, "Send Messages")
        return None

    async def _post(self, answer: Answer, *, embed: bool, attach: bool, reference: bool) -> discord.Message:
        kwargs = _send_kwargs(answer, embed=embed, attach=attach)
        if reference:
            return await self.message.reply(mention_author=False, **kwargs)
        return await self.message.channel.send(**kwargs)

    async def _react(self, emoji: str | None) -> None:
        if emoji is None:
            return
        try:
            await self.message.add_reaction(emoji)
        except discord.HTTPException as exc:
            log.warning("could not react to message %s: %s", self.message.id, exc.text or exc.status)

    async def _direct_message(self, answer: Answer, missing: str) -> None:
        """One DM saying why the answer is here, with the answer; one warning line if that fails too."""
        where = getattr(self.message.channel, "mention", "that channel")
        note = f"I couldn't answer in {where}: I'm missing the **{missing}** permission there."
        kwargs = _send_kwargs(answer, embed=True, attach=True)
        kwargs["content"] = cut("\n".join(filter(None, [note, answer.content])), CONTENT_LIMIT)
        try:
            dm = await self.message.author.create_dm()
            await dm.send(**kwargs)
        except discord.HTTPException as exc:
            log.warning(
                "no reply to message %s in channel %s: missing %s, and the author's DMs are closed (%s)",
                self.message.id,
                self.message.channel.id,
                missing,
                exc.status,
            )


class InteractionReplies:
    """Answers a slash command: quick refusals as ephemeral responses, real work deferred then followed up.

    A failure after the public defer must stay private: the "thinking…" message is deleted and the
    answer goes in an ephemeral follow-up.
    """

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        await self.interaction.response.defer(thinking=True)
        yield

    async def send(self, answer: Answer) -> discord.Message | None:
        kwargs = _send_kwargs(answer, embed=True, attach=True)
        if not self.interaction.response.is_done():
            await self.interaction.response.send_message(ephemeral=answer.private, **kwargs)
            return None
        if answer.private:
            try:
                await self.interaction.delete_original_response()
            except discord.HTTPException as exc:
                log.warning("could not remove the 'thinking…' of interaction %s: %s", self.interaction.id, exc.status)
            await self.interaction.followup.send(ephemeral=True, **kwargs)
            return None
        return await self.interaction.followup.send(wait=True, **kwargs)
