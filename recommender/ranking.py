"""Ranking songs within a mood: the notebook's order, and the varied score that is kinder to listeners.

`notebook_order` replays exactly what the original notebook ran,
`df[df.mood == m].sort_values(by="popularity", ascending=False)` on pandas 1.x: pandas reversed the
column, argsorted it with numpy's introsort (median-of-3 quicksort, insertion sort below 17
items) and reversed the result. Equally popular songs come out in the order that algorithm leaves
them; today's numpy sorts with SIMD code that orders ties differently, so calling pandas now would
not give the notebook's list (for happy: Pumped Up Kicks, Africa, Take on Me — all at 84).

`varied_scores` ranks for the default `varied` ranking: popularity weighs half, the other half is how close a song
sits to the listener's (valence, energy) target (`Listener.target`), and a small nudge seeded by the user spreads
users over near-equal songs. Which songs may be offered at all (recent, turned down, one per artist) is decided by
the recommender from a `Listener`.
"""

from __future__ import annotations

import numpy as np

SMALL_PARTITION = 16  # numpy's SMALL_QUICKSORT: partitions this small are insertion-sorted


def _numpy1_argsort(values: list[float]) -> list[int]:
    """numpy 1.x `argsort(kind="quicksort")` for a 1-D array, step for step (aquicksort_)."""
    order = list(range(len(values)))
    low, high = 0, len(values) - 1
    stack: list[tuple[int, int]] = []
    while True:
        while high - low > SMALL_PARTITION:
            mid = low + ((high - low) >> 1)
            if values[order[mid]] < values[order[low]]:
                order[mid], order[low] = order[low], order[mid]
            if values[order[high]] < values[order[mid]]:
                order[high], order[mid] = order[mid], order[high]
            if values[order[mid]] < values[order[low]]:
                order[mid], order[low] = order[low], order[mid]
            pivot = values[order[mid]]
            i, j = low, high - 1
            order[mid], order[j] = order[j], order[mid]
            while True:
                i += 1
                while values[order[i]] < pivot:
                    i += 1
                j -= 1
                while pivot < values[order[j]]:
                    j -= 1
                if i >= j:
                    break
                order[i], order[j] = order[j], order[i]
            order[i], order[high - 1] = order[high - 1], order[i]
            if i - low < high - i:  # keep the smaller part, stack the larger one
                stack.append((i + 1, high))
                high = i - 1
            else:
                stack.append((low, i - 1))
                low = i + 1
        for i in range(low + 1, high + 1):
            item = order[i]
            value = values[item]
            j = i
            while j > low and value < values[order[j - 1]]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = item
        if not stack:
            return order
        low, high = stack.pop()


def notebook_order(popularity: np.ndarray) -> np.ndarray:
    """Positions of `popularity` from most to least popular, ties as the notebook ordered them.

    Unknown popularity (NaN) goes last, in table order, as pandas puts NaN last.
    """
    known = np.flatnonzero(~np.isnan(popularity))
    unknown = np.flatnonzero(np.isnan(popularity))
    reversed_values = popularity[known][::-1].tolist()
    ascending = np.asarray(_numpy1_argsort(reversed_values), dtype=np.intp)
    descending = known[::-1][ascending][::-1] if len(known) else known
    return np.concatenate([descending, unknown]).astype(np.intp)


POPULARITY_WEIGHT = 0.5
"""Share of popularity in the varied score; the rest is closeness to the listener's target."""

POPULARITY_WEIGHT_AVOIDING = 0.1
"""Share of popularity once a listener has turned replies down: fit to their moved target comes first, so that a
reply tests the new direction instead of falling back to the same popular songs."""

JITTER = 0.3
"""Largest seeded random nudge, as a share of the popularity weight, so that users differ among popular songs
(0.15 in score by default: as much as 30 points of popularity) while a listener's fit still decides."""

_MAX_DISTANCE = float(np.sqrt(2.0))  # farthest two points can be in the (valence, energy) unit square


def varied_scores(
    popularity: np.ndarray,
    valence: np.ndarray,
    energy: np.ndarray,
    target: tuple[float, float],
    nudge: np.ndarray,
    popularity_weight: float = POPULARITY_WEIGHT,
) -> np.ndarray:
    """Score = weighted popularity (0..1, unknown counts as 0) + weighted closeness to target + jitter.

    `nudge` holds a seeded uniform 0..1 value per song; it adds at most `JITTER` x `popularity_weight`.
    """
    closeness = 1.0 - np.hypot(valence - target[0], energy - target[1]) / _MAX_DISTANCE
    known_popularity = np.fmax(popularity, 0.0) / 100.0  # fmax turns NaN into 0
    return popularity_weight * (known_popularity + JITTER * nudge) + (1.0 - popularity_weight) * closeness
