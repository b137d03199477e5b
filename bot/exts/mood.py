"""Selfies and `/mood`: read the mood on a picture (or take the one picked) and answer with five songs.

Where the bot reads posted images is each server's choice (`/moodring watch`): in a server, a posted image
is read only in a watched channel, or when the bot is @mentioned with it; anything else is left alone
before a byte is downloaded. DMs and `/mood` always work.

Both entry points go through `respond`, which checks a request in the order of cost (attachment metadata →
cooldown → queue admission → the user's stored strategy and history → download → worker thread) and sends
exactly one answer; refusals are private (a reaction or an ephemeral message) and unexpected exceptions become
a logged, private apology.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from moodring.bot.answers import (
    BUSY,
    NO_FACE,
    REFUSED_REACTION,
    SHUTTING_DOWN,
    SORRY,
    USAGE,
    WAIT_REACTION,
    Answer,
    mood_answer,
    refusal,
)
from moodring.bot.attachments import check_attachment, download, looks_like_image
from moodring.bot.delivery import InteractionReplies, MessageReplies, Replies
from moodring.bot.exts.feedback import remember_reply
from moodring.emotion import annotate
from moodring.recommender import STRATEGIES
from moodring.recommender.history import preferred_strategy, remember_served, stored_listener

from moodring import EMOTIONS
from moodring.errors import AttachmentError, ImageError, StoreUnavailable
from moodring.store import FeedbackTrack, GuildSettings, discord_user_key

if TYPE_CHECKING:
    from moodring.bot.app import MoodringBot
    from moodring.emotion import Analysis, EmotionRecognizer
    from moodring.recommender import Listener, Recommendation, Recommender, Track

log = logging.getLogger(__name__)

STRATEGY_LABELS = {"notebook": "lift my mood (as the original notebook)", "match": "match my mood"}
"""Friendlier names for the recommender's strategies in Discord's menu; others show their own name."""
PICTURE_FORMAT = "JPEG"
PICTURE_NAME = "moodring.jpg"
PICTURE_MAX_SIDE = 640
"""Discord shows an embed's image at most about this wide: a larger picture costs CPU and upload for nothing."""


@dataclass(frozen=True)
class MoodRequest:
    """One request for an answer: whose it is, its picture (none for `/mood emotion:`), the server it came from
    (none in DMs), and what the user chose with it."""

    user_id: int
    selfie: discord.Attachment | None
    server: GuildSettings | None
    chosen_emotion: str | None = None
    chosen_strategy: str | None = None

    @property
    def with_picture(self) -> bool:
        """The annotated picture goes with the answer unless the server chose embeds only."""
        return self.server is None or self.server.reply_style == "picture"


class OneOf(app_commands.Transformer):
    """A string option limited to `labels`' keys, shown as Discord choices; any other value names the valid ones."""

    def __init__(self, kind: str, labels: dict[str, str]) -> None:
        self.kind = kind
        self.labels = labels

    @property
    def choices(self) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=label, value=value) for value, label in self.labels.items()]

    async def transform(self, interaction: discord.Interaction, value: str, /) -> str:
        if value not in self.labels:
            raise app_commands.TransformerError(value, self.type, self)
        return value

    def refusal(self, value: object) -> str:
        """What the user reads when Discord passed a value that is not one of the choices."""
        return f"`{value}` isn't {self.kind} I know. Pick one of: {', '.join(self.labels)}."


EMOTION_OPTION = OneOf("an emotion", {name: name for name in EMOTIONS})
STRATEGY_OPTION = OneOf("a strategy", {name: STRATEGY_LABELS.get(name, name) for name in STRATEGIES})


@dataclass(frozen=True)
class MoodResult:
    """What a worker thread computed for one request; `recommendation` is None only when nothing to play."""

    analysis: Analysis | None
    recommendation: Recommendation | None
    picture: bytes | None


def compute_mood(
    recognizer: EmotionRecognizer,
    recommender: Recommender,
    image: bytes | None,
    chosen_emotion: str | None,
    strategy: str | None,
    listener: Listener | None,
    user_key: str,
    with_picture: bool,
) -> MoodResult:
    """Analyse the selfie (if any), recommend for its emotion (or the chosen one), draw the boxes once.

    Runs on a worker thread: inference, image drawing and Spotify calls are all blocking. The
    playlist link is always asked for; the recommender gives one only when Spotify is set up.
    """
    working = recognizer.decode(image) if image is not None else None  # decoded once: analysed, then drawn on
    analysis = recognizer.analyze_picture(working) if working is not None else None
    emotion = chosen_emotion or (analysis.emotion if analysis is not None else None)
    if emotion is None:
        return MoodResult(analysis, None, None)
    recommendation = recommender.recommend(
        emotion, k=5, strategy=strategy, listener=listener, user_key=user_key, with_playlist=True
    )
    picture = None
    if with_picture and analysis is not None and analysis.faces:
        picture = annotate(working, analysis, format=PICTURE_FORMAT, max_side=PICTURE_MAX_SIDE)
    return MoodResult(analysis, recommendation, picture)


def rated_tracks(tracks: Iterable[Track]) -> list[FeedbackTrack]:
    """A reply's tracks as its feedback buttons record them."""
    return [FeedbackTrack(track.id, track.artist, track.valence, track.energy) for track in tracks]


class MoodCog(commands.Cog, name="Mood"):
    """Reads the mood on selfies and answers with music."""

    def __init__(self, bot: MoodringBot) -> None:
        self.bot = bot
        self.settings = bot.settings
        # One accepted request per user per MOODRING_COOLDOWN_SECONDS, keyed by user id (both entry points).
        self.cooldown = commands.CooldownMapping(commands.Cooldown(1, bot.settings.cooldown_seconds), lambda uid: uid)

    # ---- entry points ------------------------------------------------------------------------

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A DM, an @mention with a picture, or a picture in a watched channel gets an answer; nothing else."""
        if message.author.bot:
            return
        replies = MessageReplies(message)
        request = f"message {message.id}"
        if message.guild is None:
            if not message.attachments:
                await self._deliver(replies, Answer(USAGE), request)
                return
            await self.respond(replies, request, MoodRequest(message.author.id, message.attachments[0], None))
            return
        if not message.attachments:
            return
        mentioned = any(user.id == self.bot.user.id for user in message.mentions)
        server = await self.server_settings(message.guild.id)
        if not mentioned and not (server is not None and server.answer_selfies and _watched(server, message)):
            return
        images = [attachment for attachment in message.attachments if looks_like_image(attachment)]
        chosen = (images or message.attachments)[0]  # a file that is not an image: say (privately) why not
        await self.respond(replies, request, MoodRequest(message.author.id, chosen, server))

    @app_commands.command(name="mood", description="Read the mood on a selfie (or pick one) and get five songs for it")
    @app_commands.describe(
        selfie="a picture of your face",
        emotion="how you feel, instead of (or to override) the selfie",
        strategy="lift your mood or match it (kept as your choice; default: the server's setting)",
    )
    async def mood(
        self,
        interaction: discord.Interaction,
        selfie: discord.Attachment | None = None,
        emotion: app_commands.Transform[str, EMOTION_OPTION] | None = None,
        strategy: app_commands.Transform[str, STRATEGY_OPTION] | None = None,
    ) -> None:
        """`/mood`: defer, work off the loop, follow up with the embed; no input → ephemeral help."""
        replies = InteractionReplies(interaction)
        request = f"interaction {interaction.id}"
        if selfie is None and emotion is None:
            await self._deliver(replies, Answer(USAGE, private=True), request)
            return
        server = await self.server_settings(interaction.guild_id) if interaction.guild_id is not None else None
        await self.respond(replies, request, MoodRequest(interaction.user.id, selfie, server, emotion, strategy))

    async def strategy_for(self, user_id: int, chosen: str | None, server: GuildSettings | None) -> str | None:
        """The user's choice now (then kept), else their last choice, else the server's default."""
        preferred = await preferred_strategy(self.bot.store, discord_user_key(user_id), chosen)
        return preferred or (server.strategy if server is not None else None)

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """A failure before `/mood` ran: an option that is not a choice names the valid ones; else log, apologise."""
        if isinstance(error, app_commands.TransformerError) and isinstance(error.transformer, OneOf):
            answer = Answer(error.transformer.refusal(error.value), private=True)
        else:
            log.error("/mood failed before it started (interaction %s)", interaction.id, exc_info=error)
            answer = Answer(SORRY, private=True)
        await self._deliver(InteractionReplies(interaction), answer, f"interaction {interaction.id}")

    # ---- one request -------------------------------------------------------------------------

    async def respond(self, replies: Replies, request: str, asked: MoodRequest) -> None:
        """Answer one request exactly once, whatever happens on the way.

        Checks run in order of cost: attachment metadata, cooldown, queue admission, then the store, the
        download and the worker thread (a refusal makes no store call here). The queue slot is held until the
        answer is sent, so a shutdown that drains the queue still delivers every admitted answer.
        """
        started = time.perf_counter()
        slot = None
        try:
            try:
                answer = self._refusal(asked.user_id, asked.selfie)
                if answer is None:
                    slot = self.bot.work.try_admit()
                    if slot is None:
                        answer = refusal(SHUTTING_DOWN if self.bot.work.closing else BUSY, WAIT_REACTION)
                    else:
                        self.cooldown.get_bucket(asked.user_id).update_rate_limit()
                        answer = await self._analyse(replies, asked)
            except Exception:  # the user still gets an answer; the traceback goes to the log
                log.exception("request failed (%s)", request)  # ids only: the selfie never reaches the log
                answer = refusal(SORRY, REFUSED_REACTION)
            sent = await self._deliver(replies, answer, request)
            if sent is not None and answer.tracks:
                await remember_reply(self.bot.store, sent.id, rated_tracks(answer.tracks))
        finally:
            if slot is not None:
                slot.release()
        log.debug("answered %s in %.2f s", request, time.perf_counter() - started)

    def _refusal(self, user_id: int, selfie: discord.Attachment | None) -> Answer | None:
        """An immediate answer when the request cannot start (bad attachment, cooling down); else None."""
        if selfie is not None:
            try:
                check_attachment(selfie, self.settings.max_attachment_bytes)
            except AttachmentError as exc:
                return refusal(str(exc), REFUSED_REACTION)
        wait = self.cooldown.get_bucket(user_id).get_retry_after()
        if wait > 0:
            return refusal(f"Easy there! You can send another selfie in {wait:.0f} s.", WAIT_REACTION)
        return None

    async def _analyse(self, replies: Replies, asked: MoodRequest) -> Answer:
        """Download (capped), then analyse and recommend on a worker thread, showing that work is under way."""
        async with replies.working():
            try:
                image = None
                if asked.selfie is not None:
                    url, limit = asked.selfie.url, self.settings.max_attachment_bytes
                    image = await download(self.bot.http_session, url, limit)
                strategy = await self.strategy_for(asked.user_id, asked.chosen_strategy, asked.server)
                result = await self.recommend_for(
                    asked.user_id, image, asked.chosen_emotion, strategy, asked.with_picture
                )
            except (AttachmentError, ImageError) as exc:
                return refusal(str(exc), REFUSED_REACTION)
        if result.recommendation is None:
            return Answer(NO_FACE)
        picture = (result.picture, PICTURE_NAME) if result.picture is not None else None
        return mood_answer(result.analysis, result.recommendation, picture, asked.chosen_emotion, asked.user_id)

    async def recommend_for(
        self, user_id: int, image: bytes | None, chosen_emotion: str | None, strategy: str | None, with_picture: bool
    ) -> MoodResult:
        """The user's answer, computed on a worker thread, around the user's stored listening history.

        The history is read before and the tracks served are written after, on the event loop; while the
        store is down the answer comes without memory.
        """
        user_key = discord_user_key(user_id)
        listener = await stored_listener(self.bot.store, user_key, self.settings.recent_memory)
        result = await self.bot.work.run(
            compute_mood,
            self.bot.recognizer,
            self.bot.recommender,
            image,
            chosen_emotion,
            strategy,
            listener,
            user_key,
            with_picture,
        )
        if result.recommendation is not None:
            await remember_served(self.bot.store, user_key, result.recommendation)
        return result

    async def _deliver(self, replies: Replies, answer: Answer, request: str) -> discord.Message | None:
        try:
            return await replies.send(answer)
        except discord.HTTPException as exc:
            log.warning("could not deliver the answer to %s: %s %s", request, exc.status, exc.text or "")
            return None

    async def server_settings(self, guild_id: int) -> GuildSettings | None:
        """The server's settings, or None while the store is down (the bot then answers only @mentions)."""
        try:
            return await self.bot.store.guild_settings(guild_id)
        except StoreUnavailable:
            return None


def _watched(server: GuildSettings, message: discord.Message) -> bool:
    channel = message.channel
    return channel.id in server.watched_channels or getattr(channel, "parent_id", None) in server.watched_channels


async def setup(bot: MoodringBot) -> None:
    """Load the selfie and `/mood` feature."""
    await bot.add_cog(MoodCog(bot))
