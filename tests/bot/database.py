"""A test's look into the bot's real SQLite database: what the bot stored, read with the standard library.

The bot writes through `moodring.store`; the tests read the same file directly, so that an assertion never
relies on the code under test. `down = True` takes the tables away: every store call then fails as it would on
a broken database, and the bot must carry on without memory.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from moodring.store import FeedbackTrack

TABLES = ("guild_settings", "user_preferences", "recent_tracks", "feedback", "playlists", "reply_tracks", "app_state")


class AppState:
    """`app_state` as a mapping: read and write keys as another process would."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def __getitem__(self, key: str) -> str:
        row = self._connection.execute("SELECT value FROM app_state WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return row[0]

    def __setitem__(self, key: str, value: str) -> None:
        with self._connection:
            self._connection.execute("INSERT OR REPLACE INTO app_state (key, value) VALUES (?, ?)", (key, value))

    def __contains__(self, key: object) -> bool:
        return self._connection.execute("SELECT 1 FROM app_state WHERE key = ?", (key,)).fetchone() is not None


class Database:
    """The SQLite file a test's bots share, opened read-write beside them."""

    def __init__(self, path: Path, url: str) -> None:
        self.path = path
        self.url = url
        self._connection = sqlite3.connect(path, isolation_level=None)
        self.state = AppState(self._connection)
        self._down = False

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._connection.close()

    @property
    def feedback(self) -> dict[str, list[tuple[FeedbackTrack, bool]]]:
        """Each user's ratings, oldest first."""
        rows = self._connection.execute(
            "SELECT user_key, track_id, artist, valence, energy, liked FROM feedback ORDER BY id"
        )
        rated: dict[str, list[tuple[FeedbackTrack, bool]]] = {}
        for user_key, track_id, artist, valence, energy, liked in rows:
            rated.setdefault(user_key, []).append((FeedbackTrack(track_id, artist, valence, energy), bool(liked)))
        return rated

    @property
    def recent_tracks(self) -> dict[str, list[str]]:
        """Each user's remembered tracks."""
        rows = self._connection.execute("SELECT user_key, track_id FROM recent_tracks")
        served: dict[str, list[str]] = {}
        for user_key, track_id in rows:
            served.setdefault(user_key, []).append(track_id)
        return served

    @property
    def user_strategies(self) -> dict[str, str]:
        """Each user's kept strategy."""
        return dict(self._connection.execute("SELECT user_key, strategy FROM user_preferences"))

    def reply_tracks(self, message_id: int) -> str | None:
        """The stored tracks of one answer, as the JSON text in the table; None if there is no row."""
        row = self._connection.execute("SELECT tracks FROM reply_tracks WHERE message_id = ?", (message_id,))
        found = row.fetchone()
        return None if found is None else found[0]

    def age_replies(self, days: int) -> None:
        """Move every answer's send time `days` into the past, as if that long had gone by."""
        with self._connection:
            self._connection.execute("UPDATE reply_tracks SET sent_at = datetime(sent_at, ?)", (f"-{days} days",))

    @property
    def guilds(self) -> set[int]:
        """The servers that have a settings row."""
        return {row[0] for row in self._connection.execute("SELECT guild_id FROM guild_settings")}

    @property
    def down(self) -> bool:
        """Whether the tables are taken away."""
        return self._down

    @down.setter
    def down(self, value: bool) -> None:
        if value == self._down:
            return
        for table in TABLES:
            old, new = (table, f"{table}_away") if value else (f"{table}_away", table)
            self._connection.execute(f"ALTER TABLE {old} RENAME TO {new}")
        self._down = value
