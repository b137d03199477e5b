"""The "more like this" / "not for me" buttons under each answer, and what a click records.

The buttons must work after a restart, so they are a persistent view: fixed `custom_id`s, `timeout=None`,
registered with `bot.add_view` when the extension loads. Which tracks a reply offered, and to whom, cannot
ride in the `custom_id` (five 22-character Spotify ids already pass its 100 characters), and the embed does
not carry what the recommender learns from (valence, energy). So each reply's tracks are stored when it is
sent, under `reply:<message id>` in the store's application state, and read back on click.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

import discord
from moodring.bot.storage import FeedbackTrack, user_key

from moodring.errors import StoreUnavailable

if TYPE_CHECKING:
    from moodring.bot.answers import Answer
    from moodring.bot.app import MoodringBot
    from moodring.bot.storage import BotStore

log = logging.getLogger(__name__)

MORE_ID = "moodring:feedback:more"
LESS_ID = "moodring:feedback:less"
PLAYLIST_LABEL = "Open the playlist on Spotify"
NOT_YOURS = "Only the person this answer was for can rate it. Try `/mood` for your own."
FORGOTTEN = "I don't remember that answer any more, so I can't record this. Try `/mood` again."
NO_MEMORY = "I can't record that right now; please try again later."
THANKS = {True: "Noted: more like these for you.", False: "Noted: fewer like these for you."}


def reply_key(message_id: int) -> str:
    """The state key under which a reply's tracks and user are kept."""
    return f"reply:{message_id}"


class FeedbackView(discord.ui.View):
    """The two rating buttons; one instance registered at start-up answers clicks on every reply."""

    def __init__(self) -> None:
        super().__init__(timeout=None)

    @discord.ui.button(label="More like this", emoji="👍", style=discord.ButtonStyle.success, custom_id=MORE_ID)
    async def more(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        """The user liked the reply's tracks."""
        await rate(interaction, liked=True)

    @discord.ui.button(label="Not for me", emoji="👎", style=discord.ButtonStyle.secondary, custom_id=LESS_ID)
    async def less(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        """The user disliked the reply's tracks."""
        await rate(interaction, liked=False)


def reply_view(answer: Answer) -> discord.ui.View | None:
    """The buttons under an answer: rating when it offers tracks, the playlist link when there is one."""
    if not answer.tracks and answer.playlist_url is None:
        return None
    view = FeedbackView() if answer.tracks else discord.ui.View(timeout=None)
    if answer.playlist_url is not None:
        view.add_item(discord.ui.Button(label=PLAYLIST_LABEL, url=answer.playlist_url))
    return view


async def remember_reply(store: BotStore, message_id: int, user_id: int, tracks: list[FeedbackTrack]) -> None:
    """Keep what a click on `message_id`'s buttons needs; without the store, the buttons answer NO_MEMORY."""
    value = json.dumps({"user": user_id, "tracks": [asdict(track) for track in tracks]})
    try:
        await store.set_state(reply_key(message_id), value)
    except StoreUnavailable:
        pass  # the store logs the outage once; the answer itself is already sent


async def rate(interaction: discord.Interaction, *, liked: bool) -> None:
    """Record the click as feedback for the reply's user; anyone else gets a private note."""
    bot: MoodringBot = interaction.client  # type: ignore[assignment]
    try:
        raw = await bot.store.get_state(reply_key(interaction.message.id))
        if raw is None:
            note = FORGOTTEN
        else:
            reply = json.loads(raw)
            if reply["user"] != interaction.user.id:
                note = NOT_YOURS
            else:
                tracks = [FeedbackTrack(**track) for track in reply["tracks"]]
                await bot.store.record_feedback(user_key(interaction.user.id), tracks, liked)
                note = THANKS[liked]
    except StoreUnavailable:
        note = NO_MEMORY
    await interaction.response.send_message(note, ephemeral=True)


async def setup(bot: MoodringBot) -> None:
    """Answer clicks on the buttons of every reply, including those sent before this start."""
    bot.add_view(FeedbackView())
