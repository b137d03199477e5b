"""Emotion → mood strategies, kept as data in `data/strategies.json` so a new one needs no code.

Each strategy gives every FER emotion a mood of the song table (Happy, Sad, Energetic, Calm) and a
valence/energy target inside that mood, which the `varied` ranking prefers. `notebook` lifts the
mood as the original notebook did; `match` is congruent: the music feels like the face. In `match`
each emotion sits where Russell's circumplex puts it (valence = pleasant or not, energy = arousal)
and takes the table mood of that region: anger and fear are unpleasant and aroused → Energetic,
disgust and sadness unpleasant and low → Sad, happiness and surprise pleasant and aroused → Happy,
a neutral face is calm → Calm.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from moodring import EMOTIONS
from moodring.errors import ConfigError, UnknownStrategyError

MOODS: tuple[str, ...] = ("Happy", "Sad", "Energetic", "Calm")
"""The moods of `data_moods.csv`; every song table is brought to these."""


@dataclass(frozen=True)
class Target:
    """Where an emotion's music should sit: a mood, and a point in (valence, energy) inside it."""

    mood: str
    valence: float
    energy: float


@dataclass(frozen=True)
class Strategy:
    """One emotion → mood mapping with a target per emotion."""

    name: str
    description: str
    targets: MappingProxyType  # emotion -> Target

    def target(self, emotion: str) -> Target:
        """The target of a (validated) FER emotion."""
        return self.targets[emotion]


def _parse_strategy(name: str, spec: Any) -> Strategy:
    emotions = spec.get("emotions", {}) if isinstance(spec, dict) else {}
    missing = [emotion for emotion in EMOTIONS if emotion not in emotions]
    if missing:
        raise ConfigError(f"strategy {name!r} has no entry for {', '.join(missing)}")
    targets = {}
    for emotion in EMOTIONS:
        entry = emotions[emotion]
        if entry.get("mood") not in MOODS:
            raise ConfigError(f"strategy {name!r}: {emotion} maps to unknown mood {entry.get('mood')!r}")
        valence, energy = float(entry["valence"]), float(entry["energy"])
        if not (0.0 <= valence <= 1.0 and 0.0 <= energy <= 1.0):
            raise ConfigError(f"strategy {name!r}: {emotion} target must lie in [0, 1]")
        targets[emotion] = Target(entry["mood"], valence, energy)
    return Strategy(name, str(spec.get("description", "")), MappingProxyType(targets))


def load_strategies(text: str | None = None) -> dict[str, Strategy]:
    """Parse strategies from JSON text (default: the packaged `data/strategies.json`)."""
    if text is None:
        text = resources.files(__package__).joinpath("data", "strategies.json").read_text(encoding="utf-8")
    raw = json.loads(text)
    return {name: _parse_strategy(name, spec) for name, spec in raw.items()}


STRATEGIES: dict[str, Strategy] = load_strategies()


def get_strategy(name: str) -> Strategy:
    """The strategy called `name`, or a one-line error listing the valid names."""
    try:
        return STRATEGIES[name]
    except KeyError:
        raise UnknownStrategyError(f"unknown strategy {name!r}; expected one of: {', '.join(STRATEGIES)}") from None
