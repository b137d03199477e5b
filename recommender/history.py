"""A listener's stored history around one recommendation: read before it, written after it.

The history is the tracks the user was served, their feedback, and the strategy they last chose.

The CLI (`recommend --user`) and the bot share these two calls. The recommender keeps no database code and
no per-user state: it sees the history only as the `Listener` built here. A store outage never costs an
answer: the listener is then None (no memory) and the write is skipped; the store logs the outage once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from moodring.recommender.listener import Listener

from moodring.errors import StoreUnavailable

if TYPE_CHECKING:
    from moodring.recommender.core import Recommendation

    from moodring.store import Store


async def stored_listener(store: Store, user_key: str, recent_memory: int) -> Listener | None:
    """The user's recent tracks and feedback as a `Listener`; None while the store is down."""
    try:
        recent = await store.recent_track_ids(user_key, recent_memory)
        feedback = await store.feedback(user_key)
    except StoreUnavailable:
        return None
    return Listener.from_history(recent, feedback)


async def preferred_strategy(store: Store, user_key: str, chosen: str | None) -> str | None:
    """The strategy to use: one the user chose now is kept as their preference; otherwise their stored one.

    None when the user never chose (the caller's default applies) or the store is down.
    """
    try:
        if chosen is not None:
            await store.set_user_strategy(user_key, chosen)
            return chosen
        return await store.user_strategy(user_key)
    except StoreUnavailable:
        return chosen


async def remember_served(store: Store, user_key: str, recommendation: Recommendation) -> None:
    """Store the tracks the user was served, so that the next answers vary (skipped while the store is down)."""
    try:
        await store.remember_tracks(user_key, [track.id for track in recommendation.tracks])
    except StoreUnavailable:
        pass
