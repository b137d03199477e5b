"""The song table: loaded once with pandas, validated, then held as plain numpy arrays.

Three layouts are accepted, told apart by their columns:

- a mood table like `data_moods.csv` (`mood` column: Happy, Sad, Energetic or Calm);
- a table labelled with FER emotions like `readthisinsteadofscrapping.csv` (`Emotion`: 0-6 in
  `moodring.EMOTIONS` order, or the names): a song labelled with an emotion gets the mood the
  congruent `match` strategy gives that emotion;
- a table with no label but `valence`/`energy` like `*_popularity_spotify_data.csv`: each song
  gets the mood whose centroid (mean valence/energy in the embedded `data_moods` table) is nearest.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from moodring.recommender.ranking import notebook_order
from moodring.recommender.strategies import MOODS, get_strategy

from moodring import EMOTIONS
from moodring.errors import DataError, first_line

log = logging.getLogger(__name__)

# canonical column -> names it has in the known tables (first found wins)
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "track_id", "uri"),
    "name": ("name", "track_name"),
    "artist": ("artist", "track_artist", "artists"),
    "popularity": ("popularity", "track_popularity"),
    "valence": ("valence",),
    "energy": ("energy",),
}
OPTIONAL_COLUMNS = frozenset({"popularity"})
TRACK_ID = re.compile(r"^(?:spotify:track:)?([0-9A-Za-z]{22})$")


def embedded_table_path() -> Path:
    """The compact table shipped in the package (`recommender/data/songs.csv`)."""
    return Path(str(resources.files(__package__).joinpath("data", "songs.csv")))


@dataclass(frozen=True, eq=False)
class SongTable:
    """Songs as parallel read-only arrays, plus each mood's rows in the notebook's order."""

    ids: np.ndarray
    names: np.ndarray
    artists: np.ndarray
    artist_keys: np.ndarray  # casefolded artist names: "one song per artist" and artist bans compare these
    popularity: np.ndarray  # float, NaN where the table has none
    valence: np.ndarray
    energy: np.ndarray
    moods: np.ndarray
    by_mood: dict[str, np.ndarray]  # mood -> row positions, most popular first
    row_of: dict[str, int]  # track id -> row position
    source: str

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, path: Path | None = None) -> SongTable:
        """Read a csv song table (default: the embedded one); any problem is a one-line DataError."""
        path = Path(path) if path is not None else embedded_table_path()
        try:
            frame = pd.read_csv(path)
        except FileNotFoundError:
            raise DataError(f"songs table not found: {path} (set MOODRING_SONGS)") from None
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"songs table {path} is not a readable csv: {first_line(exc)}") from None
        return cls.from_frame(frame, str(path))

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "<frame>") -> SongTable:
        """Validate and normalise a table in any accepted layout."""
        columns = {str(column).strip().lower(): column for column in frame.columns}
        picked = {}
        for canonical, aliases in COLUMN_ALIASES.items():
            found = next((columns[alias] for alias in aliases if alias in columns), None)
            if found is None and canonical not in OPTIONAL_COLUMNS:
                raise DataError(f"songs table {source}: missing column {canonical!r} (looked for {', '.join(aliases)})")
            picked[canonical] = found
        songs = pd.DataFrame({canonical: frame[column] for canonical, column in picked.items() if column is not None})
        if picked["popularity"] is None:
            songs["popularity"] = np.nan
        for numeric in ("popularity", "valence", "energy"):
            values = pd.to_numeric(songs[numeric], errors="coerce")
            if values.isna().all() and numeric != "popularity":
                raise DataError(f"songs table {source}: column {picked[numeric]!r} is not numeric")
            songs[numeric] = values.astype(float)
        if "mood" in columns:
            songs["mood"] = _moods_from_labels(frame[columns["mood"]], source)
        elif "emotion" in columns:
            songs["mood"] = _moods_from_emotions(frame[columns["emotion"]], source)
        songs["id"] = songs["id"].astype("string").str.strip().str.extract(TRACK_ID, expand=False)
        required = ["id", "name", "artist", "valence", "energy", *(["mood"] if "mood" in songs else [])]
        usable = songs.dropna(subset=required).drop_duplicates("id")
        if "mood" not in usable:
            usable = usable.assign(mood=_moods_from_valence_energy(usable["valence"], usable["energy"]))
        dropped = len(songs) - len(usable)
        if dropped:
            log.info("songs table %s: skipped %d rows lacking a needed value or repeating an id", source, dropped)
        if usable.empty:
            raise DataError(f"songs table {source}: no usable rows")
        return cls._from_clean(usable.reset_index(drop=True), source)

    @classmethod
    def _from_clean(cls, songs: pd.DataFrame, source: str) -> SongTable:
        popularity = songs["popularity"].to_numpy(dtype=float)
        moods = songs["mood"].to_numpy(dtype=object)
        by_mood = {}
        for mood in MOODS:
            rows = np.flatnonzero(moods == mood)
            by_mood[mood] = rows[notebook_order(popularity[rows])]
        arrays = {
            "ids": songs["id"].to_numpy(dtype=object),
            "names": songs["name"].astype(str).to_numpy(dtype=object),
            "artists": songs["artist"].astype(str).to_numpy(dtype=object),
            "artist_keys": songs["artist"].astype(str).str.casefold().to_numpy(dtype=object),
            "popularity": popularity,
            "valence": songs["valence"].to_numpy(dtype=float),
            "energy": songs["energy"].to_numpy(dtype=float),
            "moods": moods,
        }
        for array in [*arrays.values(), *by_mood.values()]:
            array.flags.writeable = False  # shared by every worker thread: read-only by construction
        row_of = {str(track_id): row for row, track_id in enumerate(arrays["ids"])}
        return cls(by_mood=by_mood, row_of=row_of, source=source, **arrays)


def _moods_from_labels(labels: pd.Series, source: str) -> pd.Series:
    normalised = labels.astype("string").str.strip().str.capitalize()
    unknown = sorted(set(normalised.dropna()) - set(MOODS))
    if unknown:
        raise DataError(
            f"songs table {source}: unknown mood(s) {', '.join(map(repr, unknown[:5]))}; expected {', '.join(MOODS)}"
        )
    return normalised


def _moods_from_emotions(labels: pd.Series, source: str) -> pd.Series:
    by_code = {str(code): emotion for code, emotion in enumerate(EMOTIONS)}
    by_code.update({emotion: emotion for emotion in EMOTIONS})
    text = labels.astype("string").str.strip().str.lower().str.replace(r"\.0$", "", regex=True)
    emotions = text.map(by_code)
    unknown = sorted(set(text[emotions.isna() & text.notna()]))
    if unknown:
        raise DataError(
            f"songs table {source}: unknown emotion label(s) {', '.join(map(repr, unknown[:5]))}; "
            f"expected 0-6 or {', '.join(EMOTIONS)}"
        )
    congruent = get_strategy("match")
    return emotions.map(lambda emotion: congruent.target(emotion).mood if isinstance(emotion, str) else None)


@cache
def mood_centroids() -> dict[str, tuple[float, float]]:
    """Mean (valence, energy) of each mood in the embedded `data_moods` table."""
    songs = pd.read_csv(embedded_table_path(), usecols=["valence", "energy", "mood"])
    means = songs.groupby("mood")[["valence", "energy"]].mean()
    return {mood: (float(means.loc[mood, "valence"]), float(means.loc[mood, "energy"])) for mood in MOODS}


def _moods_from_valence_energy(valence: pd.Series, energy: pd.Series) -> np.ndarray:
    centroids = mood_centroids()
    centres = np.array([centroids[mood] for mood in MOODS])
    points = np.column_stack([valence.to_numpy(dtype=float), energy.to_numpy(dtype=float)])
    distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2)
    return np.array(MOODS, dtype=object)[distances.argmin(axis=1)]
