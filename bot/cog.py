"""The Mood cog: selfies posted in watched channels or DMs, and the `/mood` slash command.

Both entry points go through `respond`, which checks a request in the order of cost (attachment
metadata → cooldown → queue admission → download → worker thread) and sends exactly one answer;
unexpected exceptions become a logged, polite reply.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from moodring.bot.attachments import AttachmentError, check_attachment, download, looks_like_image
from moodring.bot.memory import ListenerHistory, ListenerMemory
from moodring.bot.replies import (
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
from moodring.bot.work import Cooldown
from moodring.emotion import ImageError, annotate
from moodring.recommender import STRATEGIES
from moodring.recommender.history import recommend_with_history

from moodring import EMOTIONS
from moodring.store import discord_user_key

if TYPE_CHECKING:
    from moodring.bot.app import MoodringBot
    from moodring.emotion import Analysis, EmotionRecognizer
    from moodring.recommender import Recommendation, Recommender

log = logging.getLogger(__name__)

STRATEGY_LABELS = {"notebook": "lift my mood (as the original notebook)", "match": "match my mood"}
"""Friendlier names for the recommender's strategies in Discord's menu; others show their own name."""


@dataclass(frozen=True)
class MoodResult:
    """What a worker thread computed for one request; `recommendation` is None only when nothing to play."""

    analysis: Analysis | None
    recommendation: Recommendation | None
    annotated: bytes | None


def compute_mood(
    recognizer: EmotionRecognizer,
    recommender: Recommender,
    image: bytes | None,
    chosen_emotion: str | None,
    strategy: str | None,
    user_id: int,
    history: ListenerHistory | None = None,
) -> MoodResult:
    """Analyse the selfie (if any), recommend for its emotion (or the chosen one), draw the boxes.

    Runs on a worker thread: inference, image drawing and Spotify calls are all blocking. The
    playlist link is always asked for; the recommender gives one only when Spotify is set up.
    `history` (read from the store by the caller) keeps the user's recent tracks out; None: no memory.
    """
    analysis = recognizer.analyze(image) if image is not None else None
    emotion = chosen_emotion or (analysis.emotion if analysis is not None else None)
    if emotion is None:
        return MoodResult(analysis, None, None)
    history = history or ListenerHistory(discord_user_key(user_id))
    recommendation = recommend_with_history(
        recommender,
        emotion,
        history.user_key,
        history.recent_track_ids,
        history.feedback,
        k=5,
        strategy=strategy,
        with_playlist=True,
    )
    annotated = annotate(image, analysis) if analysis is not None and analysis.faces else None
    return MoodResult(analysis, recommendation, annotated)


class MoodCog(commands.Cog, name="Mood"):
    """Reads the mood on selfies and answers with music."""

    def __init__(self, bot: MoodringBot) -> None:
        self.bot = bot
        self.settings = bot.settings
        self.cooldown = Cooldown(bot.settings.cooldown_seconds)
        self.memory = ListenerMemory(bot.store, bot.settings.recent_memory)

    # ---- entry points ------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A selfie posted in a DM or a watched channel gets a reply; everything else is left alone."""
        if message.author.bot or not self._watches(message.channel):
            return
        is_dm = message.guild is None
        replies = MessageReplies(message)
        what = f"message {message.id}"
        images = [attachment for attachment in message.attachments if looks_like_image(attachment)]
        if images:
            await self.respond(replies, what, message.author.id, images[0], None, None)
        elif message.attachments and (is_dm or self._explicitly_watched(message.channel)):
            # a file that is not an image, posted where selfies belong: say why it is refused
            await self.respond(replies, what, message.author.id, message.attachments[0], None, None)
        elif is_dm:
            await self._deliver(replies, Answer(USAGE), what)

    @app_commands.command(name="mood", description="Read the mood on a selfie (or pick one) and get five songs for it")
    @app_commands.describe(
        selfie="a picture of your face",
        emotion="how you feel, instead of (or to override) the selfie",
        strategy="lift your mood or match it (default: the server's setting)",
    )
    @app_commands.choices(
        emotion=[app_commands.Choice(name=name, value=name) for name in EMOTIONS],
        strategy=[app_commands.Choice(name=STRATEGY_LABELS.get(name, name), value=name) for name in STRATEGIES],
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
        what = f"interaction {interaction.id}"
        chosen = emotion.value if emotion is not None else None
        if selfie is None and chosen is None:
            await self._deliver(replies, Answer(USAGE, private=True), what)
            return
        strategy_name = strategy.value if strategy is not None else None
        await self.respond(replies, what, interaction.user.id, selfie, chosen, strategy_name)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """A failure before `/mood` ran (e.g. Discord's options could not be read): log it, answer politely."""
        log.error("/mood failed before it started (interaction %s)", interaction.id, exc_info=error)
        if not interaction.response.is_done():
            await self._deliver(InteractionReplies(interaction), Answer(SORRY, private=True), "failed interaction")

    # ---- one request -------------------------------------------------------------------------

    async def respond(
        self,
        replies: Replies,
        what: str,
        user_id: int,
        selfie: discord.Attachment | None,
        chosen_emotion: str | None,
        strategy: str | None,
    ) -> None:
        """Answer one request exactly once, whatever happens on the way.

        Checks run in order of cost: attachment metadata, cooldown, queue admission, then the download
        and the worker thread. The queue slot is held until the answer is sent, so a shutdown that
        drains the queue still delivers every admitted answer.
        """
        started = time.perf_counter()
        slot = None
        try:
            try:
                answer = self._refusal(user_id, selfie)
                if answer is None:
                    slot = self.bot.work.try_admit()
                    if slot is None:
                        answer = Answer(SHUTTING_DOWN if self.bot.work.closing else BUSY, private=True)
                    else:
                        self.cooldown.start(user_id)
                        answer = await self._analyse(replies, user_id, selfie, chosen_emotion, strategy)
            except Exception:  # the user still gets an answer; the traceback goes to the log
                log.exception("request failed (%s)", what)  # ids only: the selfie never reaches the log
                answer = Answer(SORRY, private=True)
            await self._deliver(replies, answer, what)
        finally:
            if slot is not None:
                slot.release()
        log.debug("answered %s in %.2f s", what, time.perf_counter() - started)

    def _refusal(self, user_id: int, selfie: discord.Attachment | None) -> Answer | None:
        """An immediate answer when the request cannot start (bad attachment, cooling down); else None."""
        if selfie is not None:
            try:
                check_attachment(selfie, self.settings.max_attachment_bytes)
            except AttachmentError as exc:
                return Answer(str(exc), private=True)
        wait = self.cooldown.retry_after(user_id)
        if wait > 0:
            return Answer(f"Easy there! You can send another selfie in {wait:.0f} s.", private=True)
        return None

    async def _analyse(
        self,
        replies: Replies,
        user_id: int,
        selfie: discord.Attachment | None,
        chosen_emotion: str | None,
        strategy: str | None,
    ) -> Answer:
        """Download (capped), then analyse and recommend on a worker thread, showing that work is under way."""
        async with replies.working():
            try:
                image = None
                if selfie is not None:
                    image = await download(self.bot.http_session, selfie.url, self.settings.max_attachment_bytes)
                history = await self.memory.history(user_id)
                result = await self.bot.work.run(
                    compute_mood,
                    self.bot.recognizer,
                    self.bot.recommender,
                    image,
                    chosen_emotion,
                    strategy,
                    user_id,
                    history,
                )
            except (AttachmentError, ImageError) as exc:
                return Answer(str(exc))
        if result.recommendation is None:
            return Answer(NO_FACE)
        await self.memory.remember(history, result.recommendation)
        return mood_answer(result.analysis, result.recommendation, result.annotated, chosen_emotion)

    async def _deliver(self, replies: Replies, answer: Answer, what: str) -> None:
        try:
            await replies.send(answer)
        except discord.HTTPException:
            log.exception("could not deliver the reply (%s)", what)

    # ---- which messages are selfies for us ---------------------------------------------------

    def _watches(self, channel: discord.abc.Messageable) -> bool:
        if isinstance(channel, discord.DMChannel):
            return True
        if not self.settings.selfies_in_channels:
            return False
        return not self.settings.watch_channels or self._explicitly_watched(channel)

    def _explicitly_watched(self, channel: discord.abc.Messageable) -> bool:
        watched = self.settings.watch_channels
        return getattr(channel, "id", None) in watched or getattr(channel, "parent_id", None) in watched
