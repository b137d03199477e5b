"""The Mood cog: selfies posted in watched channels or DMs, and the `/mood` slash command.

Both entry points share `serve`, which checks a request in the order of cost (attachment metadata →
cooldown → queue admission → download → worker thread) and returns one `Answer`. `_answer_once`
sends that answer; unexpected exceptions become a logged, polite reply.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.attachments import AttachmentError, check_attachment, download, looks_like_image
from bot.replies import (
    BUSY,
    NO_FACE,
    SHUTTING_DOWN,
    SORRY,
    USAGE,
    Answer,
    InteractionReplies,
    MessageReplies,
    Replies,
    mood_answer,
)
from bot.work import Cooldown
from emotion import ImageError, annotate
from moodring import EMOTIONS

if TYPE_CHECKING:
    from bot.app import MoodringBot

log = logging.getLogger(__name__)

STRATEGY_CHOICES = {
    "notebook": "lift my mood (as the original notebook)",
    "match": "match my mood",
}


@dataclass(frozen=True)
class MoodResult:
    """What a worker thread computed for one request; `recommendation` is None only when nothing to play."""

    analysis: object | None
    recommendation: object | None
    annotated: bytes | None


def compute_mood(
    recognizer,
    recommender,
    image: bytes | None,
    chosen_emotion: str | None,
    strategy: str | None,
    user_id: int,
    with_playlist: bool,
) -> MoodResult:
    """Analyse the selfie (if any), recommend for its emotion (or the chosen one), draw the boxes.

    Runs on a worker thread: inference, image drawing and Spotify calls are all blocking.
    """
    analysis = recognizer.analyze(image) if image is not None else None
    emotion = chosen_emotion or (analysis.emotion if analysis is not None else None)
    if emotion is None:
        return MoodResult(analysis, None, None)
    recommendation = recommender.recommend(
        emotion, k=5, strategy=strategy, user_id=str(user_id), with_playlist=with_playlist
    )
    annotated = annotate(image, analysis) if analysis is not None and analysis.faces else None
    return MoodResult(analysis, recommendation, annotated)


class MoodCog(commands.Cog, name="Mood"):
    """Reads the mood on selfies and answers with music."""

    def __init__(self, bot: MoodringBot) -> None:
        self.bot = bot
        self.settings = bot.settings
        self.cooldown = Cooldown(bot.settings.cooldown_seconds)

    # ---- entry points ------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A selfie posted in a DM or a watched channel gets a reply; everything else is left alone."""
        if message.author.bot or not self._watches(message.channel):
            return
        is_dm = message.guild is None
        replies = MessageReplies(message)
        images = [attachment for attachment in message.attachments if looks_like_image(attachment)]
        if images:
            request = self.serve(message.author.id, images[0], None, None, replies)
        elif message.attachments and (is_dm or self._explicitly_watched(message.channel)):
            # a file that is not an image, posted where selfies belong: say why it is refused
            request = self.serve(message.author.id, message.attachments[0], None, None, replies)
        elif is_dm:
            request = Answer(USAGE)
        else:
            return
        await self._answer_once(replies, request, f"message {message.id}")

    @app_commands.command(name="mood", description="Read the mood on a selfie (or pick one) and get five songs for it")
    @app_commands.describe(
        selfie="a picture of your face",
        emotion="how you feel, instead of (or to override) the selfie",
        strategy="lift your mood or match it (default: the server's setting)",
    )
    @app_commands.choices(
        emotion=[app_commands.Choice(name=name, value=name) for name in EMOTIONS],
        strategy=[app_commands.Choice(name=label, value=name) for name, label in STRATEGY_CHOICES.items()],
    )
    async def mood(
        self,
        interaction: discord.Interaction,
        selfie: discord.Attachment | None = None,
        emotion: app_commands.Choice[str] | None = None,
        strategy: app_commands.Choice[str] | None = None,
    ) -> None:
        """`/mood`: defer, work off the loop, follow up with the embed; no input → ephemeral help."""
        replies = InteractionReplies(interaction)
        chosen = emotion.value if emotion is not None else None
        strategy_name = strategy.value if strategy is not None else None
        if selfie is None and chosen is None:
            request = Answer(USAGE, private=True)
        else:
            request = self.serve(interaction.user.id, selfie, chosen, strategy_name, replies)
        await self._answer_once(replies, request, f"interaction {interaction.id}")

    # ---- requests ----------------------------------------------------------------------------

    async def serve(
        self,
        user_id: int,
        selfie: discord.Attachment | None,
        chosen_emotion: str | None,
        strategy: str | None,
        replies: Replies,
    ) -> Answer:
        """The answer to one request, checked in order of cost: metadata, cooldown, queue, download, worker."""
        if selfie is not None:
            try:
                check_attachment(selfie, self.settings.max_attachment_bytes)
            except AttachmentError as exc:
                return Answer(str(exc), private=True)
        wait = self.cooldown.retry_after(user_id)
        if wait > 0:
            return Answer(f"Easy there! You can send another selfie in {wait:.0f} s.", private=True)
        slot = self.bot.work.try_admit()
        if slot is None:
            return Answer(SHUTTING_DOWN if self.bot.work.closing else BUSY, private=True)
        with slot:
            self.cooldown.start(user_id)
            async with replies.working():
                try:
                    image = None
                    if selfie is not None:
                        image = await download(self.bot.http_session, selfie.url, self.settings.max_attachment_bytes)
                    result = await self.bot.work.run(
                        compute_mood,
                        self.bot.recognizer,
                        self.bot.recommender,
                        image,
                        chosen_emotion,
                        strategy,
                        user_id,
                        self.bot.spotify_configured,
                    )
                except (AttachmentError, ImageError) as exc:
                    return Answer(str(exc))
        if result.recommendation is None:
            return Answer(NO_FACE)
        return mood_answer(result.analysis, result.recommendation, result.annotated, chosen_emotion)

    # ---- plumbing ----------------------------------------------------------------------------

    async def _answer_once(self, replies: Replies, request: Answer | Awaitable[Answer], what: str) -> None:
        """Await the request's answer and send it: exactly one reply, whatever happened on the way."""
        started = time.perf_counter()
        try:
            answer = request if isinstance(request, Answer) else await request
        except Exception:  # the user still gets an answer; the traceback goes to the log
            log.exception("request failed (%s)", what)  # never the selfie itself: only ids reach the log
            answer = Answer(SORRY, private=True)
        try:
            await replies.send(answer)
        except discord.HTTPException:
            log.exception("could not deliver the reply (%s)", what)
        log.debug("answered %s in %.2f s", what, time.perf_counter() - started)

    def _watches(self, channel: discord.abc.Messageable) -> bool:
        if isinstance(channel, discord.DMChannel):
            return True
        if not self.settings.selfies_in_channels:
            return False
        return not self.settings.watch_channels or self._explicitly_watched(channel)

    def _explicitly_watched(self, channel: discord.abc.Messageable) -> bool:
        watched = self.settings.watch_channels
        return getattr(channel, "id", None) in watched or getattr(channel, "parent_id", None) in watched
