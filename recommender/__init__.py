"""Music for an emotion: FER emotion → mood (a strategy) → top tracks of a song table, plus Spotify.

from moodring.recommender import Recommender
rec = Recommender.from_settings(settings)
rec.recommend("happy").to_dict()      # {"emotion", "mood", "tracks": [...], "playlist_url"}
rec.close()
"""

from moodring.recommender.core import RANKINGS, Recommendation, Recommender, Track, UnknownEmotionError
from moodring.recommender.strategies import STRATEGIES, UnknownStrategyError

__all__ = [
    "RANKINGS",
    "STRATEGIES",
    "Recommendation",
    "Recommender",
    "Track",
    "UnknownEmotionError",
    "UnknownStrategyError",
]
