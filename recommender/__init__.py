"""Music for an emotion: FER emotion → mood (a strategy) → top tracks of a song table, plus Spotify.

from moodring.recommender import Listener, Recommender
rec = Recommender.from_settings(settings)
listener = Listener.from_history(recent_track_ids, feedback)   # from the store; None = no memory
rec.recommend("happy", listener=listener, user_key="discord:1").to_dict()   # {"emotion", "mood", "tracks", ...}
rec.close()
"""

from moodring.recommender.core import RANKINGS, Recommendation, Recommender, Track, UnknownEmotionError
from moodring.recommender.listener import Listener
from moodring.recommender.strategies import STRATEGIES, UnknownStrategyError

__all__ = [
    "RANKINGS",
    "STRATEGIES",
    "Listener",
    "Recommendation",
    "Recommender",
    "Track",
    "UnknownEmotionError",
    "UnknownStrategyError",
]
