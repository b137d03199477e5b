"""One Spotify playlist per emotion whose top always holds the latest reply's tracks.

A reply links to its emotion's playlist, so the playlist must still hold that reply's songs when someone
opens the link later, even after other replies. Each reply therefore puts its tracks on top instead of
replacing the items: its tracks are first removed where they already are (a repeat moves up, never
appears twice), then added at position 0, and whatever lies beyond `PLAYLIST_CAP` is dropped, oldest
first. A link stays good for the next `PLAYLIST_CAP / 5` replies of its emotion. Only the spec's item
endpoints are used: `DELETE`, `POST ?position=0` and `GET` on `/playlists/{id}/items`.

Which playlist serves which emotion sits behind `PlaylistIds` (get, claim, release per emotion): today a
small JSON file per Spotify account, later a database table shared by a fleet. Before creating, the
user's own playlists are searched by name (`GET /me/playlists`, with the `playlist-read-private` scope),
so a lost id file or a create whose answer was lost never makes a second playlist. Playlists owned by
someone else (followed ones with the same name) are ignored: Moodring cannot change them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import spotipy

from moodring.errors import NotFound, SpotifyUnavailable, StoreUnavailable
from moodring.files import replaced_atomically

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from moodring.store import Store

T = TypeVar("T")
UserCall = Callable[[Callable[[spotipy.Spotify], T], float], T]
"""Makes one request as the logged-in user before a deadline (the gateway's pause rules apply)."""

PLAYLIST_NAME = "Moodring · {emotion}"
PLAYLIST_DESCRIPTION = "Made by Moodring: songs for the mood on your face. The newest reply's songs come first."
PLAYLIST_CAP = 100
"""Tracks a playlist keeps; also the most one item request may carry."""
LISTING_PAGE = 50
"""Largest `limit` the spec allows for `GET /me/playlists` and `GET /playlists/{id}/items`."""
LISTING_PAGES = 20
"""How many pages of the user's playlists are searched before creating one."""


class PlaylistIds(Protocol):
    """Which playlist serves which emotion: the one place that decides, so that each emotion has one."""

    def playlist_id(self, emotion: str) -> str | None:
        """The emotion's playlist id, if one was claimed."""
        ...

    def claim_playlist(self, emotion: str, playlist_id: str) -> str:
        """Record `playlist_id` unless the emotion already has one; returns the id that won."""
        ...

    def release_playlist(self, emotion: str, playlist_id: str) -> None:
        """Forget `playlist_id` (deleted in Spotify) if it is still the emotion's playlist."""
        ...


class StorePlaylistIds:
    """`PlaylistIds` in the database (`moodring.store`), shared by every process of a fleet.

    The gateway calls from its worker threads; the store is async and lives on an event loop, so each call
    is handed to that loop and waited for. The table's primary key on the emotion makes a claim race have
    one winner across processes.
    """

    TIMEOUT_SECONDS = 5.0

    def __init__(self, store: Store, loop: asyncio.AbstractEventLoop) -> None:
        self.store = store
        self.loop = loop

    def _wait(self, call: Coroutine[Any, Any, T]) -> T:
        """The call's result; the reply goes out without its playlist link if the database cannot answer."""
        try:
            return asyncio.run_coroutine_threadsafe(call, self.loop).result(self.TIMEOUT_SECONDS)
        except (StoreUnavailable, FutureTimeout) as exc:
            raise SpotifyUnavailable(f"playlist ids unavailable: {type(exc).__name__}") from None

    def playlist_id(self, emotion: str) -> str | None:
        """The emotion's playlist id, if one was claimed."""
        return self._wait(self.store.playlist_id(emotion))

    def claim_playlist(self, emotion: str, playlist_id: str) -> str:
        """Record `playlist_id` unless the emotion already has one; returns the id that won."""
        return self._wait(self.store.claim_playlist(emotion, playlist_id))

    def release_playlist(self, emotion: str, playlist_id: str) -> None:
        """Forget `playlist_id` (deleted in Spotify) if it is still the emotion's playlist."""
        self._wait(self.store.forget_playlist(emotion, playlist_id))


class JsonPlaylistIds:
    """`PlaylistIds` in a small JSON file (`MOODRING_PLAYLIST_STORE`), per Spotify account.

    The file is read on every call and replaced atomically, so a second process sees the first one's
    claim; two processes claiming in the same instant can still both win (the database store fixes that).
    """

    _lock = threading.Lock()  # one per process: every instance may share the same file

    def __init__(self, path: Path, account: str):
        self.path = Path(path)
        self.account = account

    def playlist_id(self, emotion: str) -> str | None:
        """The remembered playlist id, if any."""
        with self._lock:
            return self._read().get(self.account, {}).get(emotion)

    def claim_playlist(self, emotion: str, playlist_id: str) -> str:
        """Remember `playlist_id` (written at once, atomically) unless another is remembered already."""
        with self._lock:
            ids = self._read()
            mine = ids.setdefault(self.account, {})
            if mine.get(emotion):
                return mine[emotion]
            mine[emotion] = playlist_id
            self._write(ids)
            return playlist_id

    def release_playlist(self, emotion: str, playlist_id: str) -> None:
        """Drop a playlist that no longer exists."""
        with self._lock:
            ids = self._read()
            if ids.get(self.account, {}).get(emotion) == playlist_id:
                del ids[self.account][emotion]
                self._write(ids)

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            log.warning("playlist store %s is unreadable; existing playlists will be found by name", self.path)
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(account): dict(ids) for account, ids in data.items() if isinstance(ids, dict)}

    def _write(self, ids: dict[str, dict[str, str]]) -> None:
        with replaced_atomically(self.path) as handle:
            json.dump(ids, handle, indent=2, sort_keys=True)


class PlaylistKeeper:
    """Finds or makes each emotion's playlist and puts a reply's tracks on its top; thread-safe."""

    def __init__(self, call: UserCall, ids_for_account: Callable[[str], PlaylistIds]):
        self._call = call
        self._ids_for_account = ids_for_account
        self._account: str | None = None
        self._locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    def put_on_top(self, emotion: str, track_ids: list[str], deadline: float) -> str:
        """The id of the emotion's playlist, whose first items are now `track_ids` in order."""
        uris = list(dict.fromkeys(f"spotify:track:{track_id}" for track_id in track_ids))[:PLAYLIST_CAP]
        with self._locks[emotion]:  # one create at most, even with calls racing
            account = self._current_account(deadline)
            ids = self._ids_for_account(account)
            playlist_id = ids.playlist_id(emotion)
            if playlist_id:
                try:
                    self._move_to_top(playlist_id, uris, deadline, fresh=False)
                    return playlist_id
                except NotFound:
                    log.info("the %s playlist %s was deleted; making a new one", emotion, playlist_id)
                    ids.release_playlist(emotion, playlist_id)
            name = PLAYLIST_NAME.format(emotion=emotion.capitalize())
            found = self._find(name, account, deadline)
            created = None if found else self._create(name, account, deadline)
            playlist_id = ids.claim_playlist(emotion, found or created)
            self._move_to_top(playlist_id, uris, deadline, fresh=playlist_id == created)
            return playlist_id

    def _current_account(self, deadline: float) -> str:
        if self._account is None:
            # `GET /me`: spotipy's me() asks for "me/", a path the spec does not have.
            me = self._call(lambda client: client._get("me"), deadline)
            self._account = str(me["id"])
        return self._account

    def _move_to_top(self, playlist_id: str, uris: list[str], deadline: float, fresh: bool) -> None:
        items = f"playlists/{playlist_id}/items"
        if not fresh:  # a repeat moves up instead of appearing twice
            self._call(lambda client: client._delete(items, payload={"items": [{"uri": u} for u in uris]}), deadline)
        self._call(lambda client: client._post(items, payload={"uris": uris, "position": 0}), deadline)
        if fresh:
            return
        beyond = self._call(lambda client: client._get(items, offset=PLAYLIST_CAP, limit=LISTING_PAGE), deadline)
        oldest = [uri for uri in _item_uris(beyond) if uri not in uris]
        if oldest:
            self._call(lambda client: client._delete(items, payload={"items": [{"uri": u} for u in oldest]}), deadline)

    def _find(self, name: str, account: str, deadline: float) -> str | None:
        """Look before creating: a playlist of ours from an earlier run or a create whose answer was lost."""
        for page in range(LISTING_PAGES):
            listing = self._call(
                lambda client, offset=page * LISTING_PAGE: client._get(
                    "me/playlists", limit=LISTING_PAGE, offset=offset
                ),
                deadline,
            )
            for playlist in listing.get("items") or []:
                if playlist and playlist.get("name") == name and (playlist.get("owner") or {}).get("id") == account:
                    return str(playlist["id"])
            if not listing.get("next"):
                return None
        return None

    def _create(self, name: str, account: str, deadline: float) -> str:
        try:
            created = self._call(
                lambda client: client._post(
                    "me/playlists", payload={"name": name, "public": True, "description": PLAYLIST_DESCRIPTION}
                ),
                deadline,
            )
            return str(created["id"])
        except SpotifyUnavailable:
            # The create may have happened with its answer lost: look again instead of creating again.
            found = self._find(name, account, deadline)
            if found:
                log.info("playlist %r was created although its answer was lost; using it", name)
                return found
            raise


def _item_uris(page: Any) -> list[str]:
    """Track URIs of a page of playlist items (`item` in the 2026 spec, `track` before it)."""
    uris = []
    for entry in (page or {}).get("items") or []:
        item = (entry or {}).get("item") or (entry or {}).get("track") or {}
        if item.get("uri"):
            uris.append(str(item["uri"]))
    return uris
