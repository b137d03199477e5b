"""What the bot says, and the one place each request's answer is sent.

A request produces exactly one `Answer`; `MessageReplies` and `InteractionReplies` deliver it to a
posted message or a slash command. Keeping "what to say" (plain data, built off Discord) apart from
"how to send it" is what makes every request answered exactly once: there is a single send per request.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import discord

from moodring import EMOTIONS

if TYPE_CHECKING:
    from moodring.emotion import Analysis, Face
    from moodring.recommender import Recommendation, Track

USAGE = (
    "Send me a selfie and I'll read your mood and pick five songs for it.\n"
    "• `/mood selfie:` attach a picture of your face\n"
    "• `/mood emotion:` pick how you feel instead (e.g. `happy`, `sad`)\n"
    "• or post a selfie in a channel I watch, or here in a DM"
)
BUSY = "I'm busy with other selfies right now, try again in a moment."
NO_FACE = "I couldn't find a face in that picture. Try a well-lit selfie with your face toward the camera."
SORRY = "Something went wrong on my side and I couldn't finish that one. It has been logged; please try again later."
SHUTTING_DOWN = "I'm restarting right now, try again in a minute."

ANNOTATED_FILENAME = "moodring.png"
BAR_WIDTH = 12
_EIGHTHS = " ▏▎▍▌▋▊▉"
_NAME_LIMIT = 60

EMOJI = {
    "angry": "😠",
    "disgust": "🤢",
    "fear": "😨",
    "happy": "😄",
    "sad": "😢",
    "surprise": "😮",
    "neutral": "😐",
}
COLOUR = {
    "angry": 0xE74C3C,
    "disgust": 0x27AE60,
    "fear": 0x8E44AD,
    "happy": 0xF1C40F,
    "sad": 0x3498DB,
    "surprise": 0xE67E22,
    "neutral": 0x95A5A6,
}


@dataclass(frozen=True)
class Answer:
    """One reply, as data. `private` asks for an ephemeral reply where Discord allows it (slash commands)."""

    content: str | None = None
    embed: discord.Embed | None = None
    image: bytes | None = None
    playlist_url: str | None = None
    private: bool = False

    def send_kwargs(self) -> dict[str, object]:
        """Keyword arguments for `Messageable.send` / `Webhook.send`, leaving out what is not set."""
        kwargs: dict[str, object] = {}
        if self.content is not None:
            kwargs["content"] = self.content
        if self.embed is not None:
            kwargs["embed"] = self.embed
        if self.image is not None:
            kwargs["file"] = discord.File(io.BytesIO(self.image), filename=ANNOTATED_FILENAME)
        if self.playlist_url is not None:
            view = discord.ui.View(timeout=None)
            view.add_item(discord.ui.Button(label="Open the playlist on Spotify", url=self.playlist_url))
            kwargs["view"] = view
        return kwargs


def score_bar(scores: dict[str, float]) -> str:
    """The 7 class scores as a fixed-width bar chart (a code block renders the same on every client)."""
    lines = []
    for name in EMOTIONS:
        value = min(max(scores.get(name, 0.0), 0.0), 1.0)
        eighths = round(value * BAR_WIDTH * 8)
        bar = "█" * (eighths // 8) + (_EIGHTHS[eighths % 8] if eighths % 8 else "")
        lines.append(f"{name:<8} {bar:<{BAR_WIDTH}} {value:>4.0%}")
    return "```\n" + "\n".join(lines) + "\n```"


def picture_scores(faces: list[Face]) -> dict[str, float]:
    """The picture's scores: each face's, weighted by its area, as the recognizer picks the dominant emotion."""
    areas = [face.box[2] * face.box[3] for face in faces]
    total = sum(areas) or 1
    sums = dict.fromkeys(EMOTIONS, 0.0)
    for face, area in zip(faces, areas, strict=True):
        for name in EMOTIONS:
            sums[name] += face.scores.get(name, 0.0) * area
    return {name: value / total for name, value in sums.items()}


def _link_text(text: str) -> str:
    """Track or artist name safe inside a markdown link, and short enough for an embed field."""
    if len(text) > _NAME_LIMIT:
        text = text[: _NAME_LIMIT - 1] + "…"
    return discord.utils.escape_markdown(text).replace("[", "(").replace("]", ")")


def track_lines(tracks: list[Track]) -> str:
    """Numbered "name — artist" lines, each a link to the track when it has a URL."""
    lines = []
    for number, track in enumerate(tracks, start=1):
        label = f"{_link_text(track.name)} — {_link_text(track.artist)}"
        lines.append(f"{number}. [{label}]({track.url})" if track.url else f"{number}. {label}")
    return "\n".join(lines)


def mood_answer(
    analysis: Analysis | None,
    recommendation: Recommendation,
    annotated: bytes | None,
    chosen_emotion: str | None,
) -> Answer:
    """The embed for a finished request: what was seen on the selfie (if any) and the music for it.

    `analysis` is None when the user only picked an emotion; `chosen_emotion` (from `/mood emotion:`)
    decides the music even when a selfie was analysed, and the embed says so.
    """
    emotion = recommendation.emotion
    embed = discord.Embed(colour=COLOUR.get(emotion, 0x5865F2))
    faces = analysis.faces if analysis is not None else []
    if faces:
        seen = analysis.emotion
        scores = picture_scores(faces)
        embed.title = f"{EMOJI.get(seen, '')} You look {seen}".strip()
        embed.description = f"Confidence **{scores.get(seen, 0.0):.0%}**"
        if len(faces) > 1:
            embed.description += (
                f" across **{len(faces)} faces** (larger faces count more); each face is labelled on the picture."
            )
        embed.add_field(name="Scores", value=score_bar(scores), inline=False)
        if chosen_emotion is not None and chosen_emotion != seen:
            embed.add_field(name="Your pick", value=f"You asked for music for **{chosen_emotion}**.", inline=False)
    elif analysis is not None:
        embed.title = f"{EMOJI.get(emotion, '')} Music for feeling {emotion}".strip()
        embed.description = f"I couldn't find a face in your picture, so here is music for **{emotion}**, as you asked."
    else:
        embed.title = f"{EMOJI.get(emotion, '')} Music for feeling {emotion}".strip()
    mood = f" ({recommendation.mood} mood)" if recommendation.mood else ""
    embed.add_field(
        name=f"Five songs for you{mood}",
        value=track_lines(recommendation.tracks) or "No songs found.",
        inline=False,
    )
    if annotated is not None:
        embed.set_image(url=f"attachment://{ANNOTATED_FILENAME}")
    embed.set_footer(text="Your picture was read in memory and is not kept.")
    return Answer(embed=embed, image=annotated, playlist_url=recommendation.playlist_url)


class Replies(Protocol):
    """Where a request's single answer goes, and how the user sees that work has started."""

    def working(self) -> AbstractAsyncContextManager[None]: ...

    async def send(self, answer: Answer) -> None: ...


class MessageReplies:
    """Answers a posted selfie with a reply to that message, showing "typing…" while working."""

    def __init__(self, message: discord.Message) -> None:
        self.message = message

    def working(self) -> AbstractAsyncContextManager[None]:
        return self.message.channel.typing()

    async def send(self, answer: Answer) -> None:
        await self.message.reply(mention_author=False, **answer.send_kwargs())


class InteractionReplies:
    """Answers a slash command: quick refusals as ephemeral responses, real work deferred then followed up."""

    def __init__(self, interaction: discord.Interaction) -> None:
        self.interaction = interaction

    @asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        await self.interaction.response.defer(thinking=True)
        yield

    async def send(self, answer: Answer) -> None:
        kwargs = answer.send_kwargs()
        if self.interaction.response.is_done():
            await self.interaction.followup.send(ephemeral=answer.private, **kwargs)
        else:
            await self.interaction.response.send_message(ephemeral=answer.private, **kwargs)
