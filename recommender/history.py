"""One call from a user's stored history to a recommendation, shared by the CLI and the bot.

Callers read the history from `moodring.store` (`recent_track_ids`, `feedback`), call this, then store what
was served (`remember_tracks`). The recommender keeps no database code: it only sees the history given here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from moodring.recommender.core import Recommendation, Recommender


def recommend_with_history(
    recommender: Recommender,
    emotion: str,
    user_key: str,
    recent_track_ids: Sequence[str],
    feedback: Sequence[Any],
    **options: Any,
) -> Recommendation:
    """Recommend for `user_key`, not repeating `recent_track_ids` (newest first) while enough others remain.

    `feedback` (the store's `FeedbackRow`s) is not used by this recommender yet; the listener-aware one
    takes both as `listener=Listener.from_history(recent_track_ids, feedback)`.
    """
    recommender._remember(user_key, list(reversed(recent_track_ids)))  # its per-user memory, oldest first
    return recommender.recommend(emotion, user_id=user_key, **options)
