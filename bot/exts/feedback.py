"""The "more like this" / "not for me" buttons under each answer, and what a click records.

The buttons must work after a restart and only for the user the answer was for. Each button is a
`DynamicItem` whose `custom_id` carries the verdict and that user's id (`moodring:more:<user id>`), so
discord.py routes clicks on any reply, old or new, to `RateButton` once it is registered at start-up.
The five tracks cannot ride in the `custom_id` too (five 22-character Spotify ids already pass its 100
characters), and the embed does not carry what the recommender learns from (valence, energy), so each
reply's tracks are stored by message id when it is sent (`Store.remember_reply`) and read back on click.
That record names no user, so `/forget-me` leaves nothing about the user behind in it, and it is deleted
after `REPLY_TRACKS_KEPT` (30 days), when the buttons start answering `FORGOTTEN`.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

import discord

from moodring.errors import StoreUnavailable
from moodring.store import FeedbackTrack, discord_user_key

if TYPE_CHECKING:
    from moodring.bot.answers import Answer
    from moodring.bot.app import MoodringBot

    from moodring.store import Store

log = logging.getLogger(__name__)

PLAYLIST_LABEL = "Open the playlist on Spotify"
NOT_YOURS = "Only the person this answer was for can rate it. Try `/mood` for your own."
FORGOTTEN = "I don't remember that answer any more, so I can't record this. Try `/mood` again."
NO_MEMORY = "I can't record that right now; please try again later."
THANKS = {True: "Noted: more like these for you.", False: "Noted: fewer like these for you."}
VERDICTS = {True: "more", False: "less"}


def rate_id(liked: bool, user_id: int) -> str:
    """The `custom_id` of a rating button for `user_id`'s answer."""
    return f"moodring:{VERDICTS[liked]}:{user_id}"


class RateButton(discord.ui.DynamicItem[discord.ui.Button], template=r"moodring:(?P<verdict>more|less):(?P<user>\d+)"):
    """One rating button; the class registered at start-up answers clicks on every reply's buttons."""

    def __init__(self, liked: bool, user_id: int) -> None:
        label, emoji, style = (
            ("More like this", "👍", discord.ButtonStyle.success)
            if liked
            else ("Not for me", "👎", discord.ButtonStyle.secondary)
        )
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style, custom_id=rate_id(liked, user_id)))
        self.liked = liked
        self.user_id = user_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str], /
    ) -> RateButton:
        """The button as it was sent, from its `custom_id`."""
        return cls(match["verdict"] == VERDICTS[True], int(match["user"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        """Record the click as feedback on the reply's tracks; anyone else gets a private note."""
        if interaction.user.id != self.user_id:
            note = NOT_YOURS
        else:
            note = await record(interaction.client, interaction.message.id, self.user_id, self.liked)
        await interaction.response.send_message(note, ephemeral=True)


def reply_view(answer: Answer) -> discord.ui.View | None:
    """The buttons under an answer: rating when it offers tracks, the playlist link when there is one."""
    if not answer.tracks and answer.playlist_url is None:
        return None
    view = discord.ui.View(timeout=None)
    if answer.tracks and answer.user_id is not None:
        view.add_item(RateButton(True, answer.user_id))
        view.add_item(RateButton(False, answer.user_id))
    if answer.playlist_url is not None:
        view.add_item(discord.ui.Button(label=PLAYLIST_LABEL, url=answer.playlist_url))
    return view


async def remember_reply(store: Store, message_id: int, tracks: list[FeedbackTrack]) -> None:
    """Keep what a click on `message_id`'s buttons needs; without the store, the buttons answer NO_MEMORY."""
    try:
        await store.remember_reply(message_id, tracks)
    except StoreUnavailable:
        pass  # the store logs the outage once; the answer itself is already sent


async def record(bot: MoodringBot, message_id: int, user_id: int, liked: bool) -> str:
    """Record `user_id`'s verdict on the tracks of reply `message_id`; returns what to tell them."""
    try:
        tracks = await bot.store.reply_tracks(message_id)
        if tracks is None:
            return FORGOTTEN
        await bot.store.record_feedback(discord_user_key(user_id), tracks, liked)
    except StoreUnavailable:
        return NO_MEMORY
    return THANKS[liked]


async def setup(bot: MoodringBot) -> None:
    """Answer clicks on the buttons of every reply, including those sent before this start."""
    bot.add_dynamic_items(RateButton)
