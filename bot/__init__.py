"""Moodring on Discord: post a selfie or use `/mood`, get the emotion, five songs and a playlist link.

`create_bot(settings)` builds a `MoodringBot`; `moodring bot` runs it. The names are loaded on first
use so that `moodring --help` does not import discord.py, TensorFlow or the recommender.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moodring.bot.app import MoodringBot, create_bot

__all__ = ["MoodringBot", "create_bot"]


def __getattr__(name: str):
    if name in __all__:
        from moodring.bot import app

        return getattr(app, name)
    raise AttributeError(f"module 'bot' has no attribute {name!r}")
