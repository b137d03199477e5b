"""What the bot says: each request's single answer as plain data, built off Discord, within Discord's limits.

A request produces exactly one `Answer`; `moodring.bot.delivery` sends it (and degrades it when the bot lacks
a permission). Keeping "what to say" apart from "how to send it" is what makes every request answered
exactly once: there is a single send per request.

Discord refuses a whole message when one embed field passes 1,024 characters, the title 256 or the embed
6,000, and the reply is then lost. Song and artist names come from a table anyone can replace, so every
name is escaped first and cut after (cutting first let escapes grow a field past the limit), and the songs
field is shortened until it fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from moodring import EMOTIONS

if TYPE_CHECKING:
    from moodring.emotion import Analysis, Face
    from moodring.recommender import Recommendation, Track

USAGE = (
    "Send me a selfie and I'll read your mood and pick five songs for it.\n"
    "• `/mood selfie:` attach a picture of your face\n"
    "• `/mood emotion:` pick how you feel instead (e.g. `happy`, `sad`)\n"
    "• or mention me with a selfie, post one in a channel this server set up for me, or DM me"
)
BUSY = "I'm busy with other selfies right now, try again in a moment."
NO_FACE = "I couldn't find a face in that picture. Try a well-lit selfie with your face toward the camera."
SORRY = "Something went wrong on my side and I couldn't finish that one. It has been logged; please try again later."
SHUTTING_DOWN = "I'm restarting right now, try again in a minute."

WAIT_REACTION = "⏳"
"""On a posted selfie: busy, cooling down or restarting (a reaction, so that a refusal never adds a message)."""
REFUSED_REACTION = "🚫"
"""On a posted file the bot will not read: not an image, too large, unreadable."""

TITLE_LIMIT = 256
FIELD_LIMIT = 1024
EMBED_LIMIT = 6000
CONTENT_LIMIT = 2000
NAME_LIMITS = (80, 40, 20)
"""Longest song/artist name shown (after escaping); the next is tried when five lines overflow a field."""

BAR_WIDTH = 12
_EIGHTHS = " ▏▎▍▌▋▊▉"

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
    """One reply, as data.

    `private` marks a refusal or an error: ephemeral for a slash command, a reaction (`reaction`) on a posted
    message in a server. `tracks` are the songs offered, which the feedback buttons let `user_id` rate.
    """

    content: str | None = None
    embed: discord.Embed | None = None
    image: bytes | None = None
    image_name: str | None = None
    playlist_url: str | None = None
    tracks: tuple[Track, ...] = ()
    user_id: int | None = None
    private: bool = False
    reaction: str | None = None


def refusal(text: str, reaction: str) -> Answer:
    """A private refusal: `text` where only the user sees it (slash command, DM), else `reaction`."""
    return Answer(text, private=True, reaction=reaction)


def cut(text: str, limit: int) -> str:
    """`text` at most `limit` characters, ending in "…" when shortened."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _label(text: str, limit: int) -> str:
    """A song or artist name safe inside a markdown link: one line, escaped, then cut (never mid-escape)."""
    escaped = discord.utils.escape_markdown(" ".join(text.split())).replace("[", "(").replace("]", ")")
    if len(escaped) <= limit:
        return escaped
    kept = escaped[: limit - 1]
    trailing = len(kept) - len(kept.rstrip("\\"))
    if trailing % 2:  # a lone backslash would escape the "…"
        kept = kept[:-1]
    return kept + "…"


def track_lines(tracks: list[Track] | tuple[Track, ...]) -> str:
    """Numbered "name — artist" lines, each a link to the track, at most `FIELD_LIMIT` characters in all."""
    text = ""
    for limit in NAME_LIMITS:
        lines = []
        for number, track in enumerate(tracks, start=1):
            label = f"{_label(track.name, limit)} — {_label(track.artist, limit)}"
            link = track.url and not any(c in track.url for c in " ()<>")
            lines.append(f"{number}. [{label}]({track.url})" if link else f"{number}. {label}")
        text = "\n".join(lines)
        if len(text) <= FIELD_LIMIT:
            return text
    return cut(text, FIELD_LIMIT)


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


def _describe_what_was_seen(embed: discord.Embed, analysis: Analysis | None, emotion: str, chosen: str | None) -> None:
    """Title, description and score bars: the emotion on the selfie, or the one picked when there is no face."""
    faces = analysis.faces if analysis is not None else []
    if not faces:
        embed.title = f"{EMOJI.get(emotion, '')} Music for feeling {emotion}".strip()
        if analysis is not None:
            embed.description = (
                f"I couldn't find a face in your picture, so here is music for **{emotion}**, as you asked."
            )
        return
    seen = analysis.emotion
    scores = picture_scores(faces)
    embed.title = f"{EMOJI.get(seen, '')} You look {seen}".strip()
    embed.description = f"Confidence **{scores.get(seen, 0.0):.0%}**"
    if len(faces) > 1:
        embed.description += (
            f" across **{len(faces)} faces** (larger faces count more); each face is labelled on the picture."
        )
    embed.add_field(name="Scores", value=score_bar(scores), inline=False)
    if chosen is not None and chosen != seen:
        embed.add_field(name="Your pick", value=f"You asked for music for **{chosen}**.", inline=False)


def mood_answer(
    analysis: Analysis | None,
    recommendation: Recommendation,
    picture: tuple[bytes, str] | None,
    chosen_emotion: str | None,
    user_id: int | None = None,
) -> Answer:
    """The embed for a finished request: what was seen on the selfie (if any) and the music for it.

    `analysis` is None when the user only picked an emotion; `chosen_emotion` (from `/mood emotion:`)
    decides the music even when a selfie was analysed, and the embed says so. `picture` is the annotated
    picture and its file name, or None to answer with the embed alone. `user_id` is who may rate the tracks.
    """
    embed = discord.Embed(colour=COLOUR.get(recommendation.emotion, 0x5865F2))
    _describe_what_was_seen(embed, analysis, recommendation.emotion, chosen_emotion)
    mood = f" ({recommendation.mood} mood)" if recommendation.mood else ""
    embed.add_field(
        name=cut(f"Five songs for you{mood}", TITLE_LIMIT),
        value=track_lines(recommendation.tracks) or "No songs found.",
        inline=False,
    )
    image, image_name = picture if picture is not None else (None, None)
    if image_name is not None:
        embed.set_image(url=f"attachment://{image_name}")
    embed.set_footer(text="Your picture was read in memory and is not kept.")
    return Answer(
        embed=embed,
        image=image,
        image_name=image_name,
        playlist_url=recommendation.playlist_url,
        tracks=tuple(recommendation.tracks),
        user_id=user_id,
    )


def as_text(embed: discord.Embed) -> str:
    """The embed as plain text, for a channel where the bot may not embed: title, description, fields."""
    parts = [f"**{embed.title}**" if embed.title else "", embed.description or ""]
    parts += [f"**{field.name}**\n{field.value}" for field in embed.fields]
    return cut("\n".join(part for part in parts if part), CONTENT_LIMIT)
