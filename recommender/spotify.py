"""Spotify, as a best-effort extra: live popularity and one playlist per emotion, within a time budget.

Nothing here raises because of Spotify. Every public method answers within the caller's deadline
with what arrived in time plus a one-line reason when something did not, and the recommender then
uses its local table. The rules that keep Spotify (and us) safe:

- spotipy gets a `requests` session without retries: its own would retry POSTs on 5xx, and a
  retried `POST /me/playlists` whose first answer was lost makes a second playlist. We decide
  ourselves: 429 waits `Retry-After` (capped by `MOODRING_SPOTIFY_MAX_PAUSE`), and meanwhile no call
  goes out; a timeout pauses calls briefly; a failed playlist create is followed by a look, never
  by a blind second create.
- Only the 2026 endpoints: `GET /tracks/{id}` one by one (spotipy's `tracks()` calls the removed
  batch endpoint), `POST /me/playlists`, `PUT /playlists/{id}/items`.
- Calls run on a small pool; the caller waits at most until its deadline and unfinished lookups go
  on in the background, filling the popularity cache (TTL `MOODRING_POPULARITY_TTL`) for next time.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any, TypeVar

import requests
import spotipy
from spotipy.cache_handler import CacheHandler, MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOAuth, SpotifyOauthError

from moodring.errors import NotFound, SpotifyUnavailable
from moodring.files import replaced_atomically
from moodring.settings import Settings

log = logging.getLogger(__name__)

PLAYLIST_SCOPES = "playlist-modify-public playlist-modify-private"
PLAYLIST_NAME = "Moodring · {emotion}"
POOL_WORKERS = 4
OUTAGE_PAUSE = 10.0
"""Seconds no call goes out after a timeout or refused credentials (capped like Retry-After), so a
slow or misconfigured Spotify does not make every answer wait the whole budget."""
DEFAULT_RETRY_AFTER = 5.0
"""Pause after a 429 that carries no usable Retry-After header."""
RATE_LIMITED_TRIES = 3
"""Requests one call makes while Spotify keeps answering 429 (each after its Retry-After)."""
PLAYLIST_PAGES = 20
"""How many pages of 50 of the user's playlists are searched before creating one."""

T = TypeVar("T")


def track_url(track_id: str) -> str:
    """The public web link of a track."""
    return f"https://open.spotify.com/track/{track_id}"


def playlist_url(playlist_id: str) -> str:
    """The public web link of a playlist."""
    return f"https://open.spotify.com/playlist/{playlist_id}"


class PrivateTokenCache(CacheHandler):
    """spotipy token cache in a file created with mode 0600 (never briefly world-readable)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def get_cached_token(self) -> dict | None:
        """The stored token, or None when there is no readable one."""
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            log.warning("Spotify token cache %s is unreadable; run `moodring spotify-login` again", self.path)
            return None

    def save_token_to_cache(self, token_info: dict) -> None:
        """Replace the stored token atomically; the new file is 0600 from its first byte."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with replaced_atomically(self.path) as handle:
            json.dump(token_info, handle)


class PlaylistStore:
    """Which playlist serves which emotion, per Spotify account, in a small JSON file."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._ids: dict[str, dict[str, str]] = self._read()

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
        return {str(user): dict(ids) for user, ids in data.items() if isinstance(ids, dict)}

    def get(self, user_id: str, emotion: str) -> str | None:
        """The remembered playlist id, if any."""
        with self._lock:
            return self._ids.get(user_id, {}).get(emotion)

    def put(self, user_id: str, emotion: str, playlist_id: str) -> None:
        """Remember a playlist (written to disk at once, atomically)."""
        with self._lock:
            self._ids.setdefault(user_id, {})[emotion] = playlist_id
            self._write()

    def forget(self, user_id: str, emotion: str) -> None:
        """Drop a playlist that no longer exists."""
        with self._lock:
            if self._ids.get(user_id, {}).pop(emotion, None) is not None:
                self._write()

    def _write(self) -> None:
        with replaced_atomically(self.path) as handle:
            json.dump(self._ids, handle, indent=2, sort_keys=True)


def make_oauth(settings: Settings, session: requests.Session | None = None) -> SpotifyOAuth:
    """Authorization Code flow manager for the playlist scopes, pointed at the configured accounts URL."""
    oauth = SpotifyOAuth(
        client_id=settings.spotify_client_id,
        client_secret=settings.spotify_client_secret,
        redirect_uri=settings.spotify_redirect_uri,
        scope=PLAYLIST_SCOPES,
        cache_handler=PrivateTokenCache(settings.spotify_token_cache),
        open_browser=False,
        requests_timeout=settings.spotify_timeout,
        requests_session=session or requests.Session(),
    )
    accounts = settings.spotify_accounts_url.rstrip("/")
    oauth.OAUTH_AUTHORIZE_URL = f"{accounts}/authorize"
    oauth.OAUTH_TOKEN_URL = f"{accounts}/api/token"
    return oauth


class _ClientToken:
    """Client-credentials token shared by every pool thread (spotipy's manager is not thread-safe)."""

    def __init__(self, settings: Settings):
        self._lock = threading.Lock()
        self._manager = SpotifyClientCredentials(
            client_id=settings.spotify_client_id,
            client_secret=settings.spotify_client_secret,
            cache_handler=MemoryCacheHandler(),
            requests_timeout=settings.spotify_timeout,
        )
        self._manager.OAUTH_TOKEN_URL = f"{settings.spotify_accounts_url.rstrip('/')}/api/token"

    def get_access_token(self, as_dict: bool = False) -> str:
        """The current token, fetched when missing or about to expire."""
        with self._lock:
            return self._manager.get_access_token(as_dict=False)

    def invalidate(self) -> None:
        """Forget a token Spotify rejected, so the next call fetches a fresh one."""
        with self._lock:
            self._manager.cache_handler.save_token_to_cache(None)


class _UserToken:
    """The logged-in user's token from the 0600 cache; refreshed when expired, never interactive."""

    def __init__(self, settings: Settings):
        self._lock = threading.Lock()
        self._oauth = make_oauth(settings)
        self._cache = self._oauth.cache_handler

    def get_access_token(self, as_dict: bool = False) -> str:
        """The user's access token; spotipy would prompt on stdin without one, so we refuse instead."""
        with self._lock:
            try:
                token = self._oauth.validate_token(self._cache.get_cached_token())
            except SpotifyOauthError as exc:
                raise SpotifyUnavailable(f"Spotify refused to refresh the login ({exc.error})") from None
            if not token:
                raise SpotifyUnavailable("no Spotify login with playlist scopes; run `moodring spotify-login`")
            return token["access_token"]

    def invalidate(self) -> None:
        """Mark the cached token expired so the next call refreshes it."""
        with self._lock:
            token = self._cache.get_cached_token()
            if token:
                token["expires_at"] = 0
                self._cache.save_token_to_cache(token)


class SpotifyGateway:
    """Live popularity and per-emotion playlists; thread-safe, bounded in time, never raising."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic):
        # spotipy logs every HTTP error itself and, at debug level, request headers with bearer
        # tokens; we log one warning per fallback instead and keep tokens out of logs.
        logging.getLogger("spotipy").setLevel(logging.CRITICAL)
        self._settings = settings
        self._clock = clock
        self._api_url = settings.spotify_api_url.rstrip("/") + "/"
        self._max_pause = settings.spotify_max_pause
        self._client_token = _ClientToken(settings)
        self._user_token = _UserToken(settings)
        self._store = PlaylistStore(settings.playlist_store)
        self._pool = ThreadPoolExecutor(max_workers=POOL_WORKERS, thread_name_prefix="moodring-spotify")
        self._local = threading.local()
        self._lock = threading.RLock()  # RLock: a done-callback may run in the thread holding it
        # id -> (value, expires at); bounded by the song table, whose ids are the only ones asked for
        self._popularity: dict[str, tuple[int | None, float]] = {}
        self._in_flight: dict[str, Future] = {}
        self._paused_until = 0.0
        self._pause_reason = ""
        self._user_id: str | None = None
        self._playlist_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> SpotifyGateway | None:
        """A gateway when client id and secret are configured, else None (local table only)."""
        if not (settings.spotify_client_id and settings.spotify_client_secret):
            return None
        return cls(settings)

    @property
    def playlists_enabled(self) -> bool:
        """Whether a user login exists (`moodring spotify-login` wrote the token cache)."""
        return self._settings.spotify_token_cache.is_file()

    # --- popularity -----------------------------------------------------------------------------

    def popularity(self, track_ids: Iterable[str], deadline: float) -> tuple[dict[str, int | None], str | None]:
        """Live popularity of the tracks that answered by `deadline` (None: Spotify has no value).

        Returns the values and, if some track did not get one, the reason why.
        """
        found: dict[str, int | None] = {}
        pending: dict[str, Future] = {}
        problem = None
        now = self._clock()
        with self._lock:
            for track_id in dict.fromkeys(track_ids):
                cached = self._popularity.get(track_id)
                if cached and cached[1] > now:
                    found[track_id] = cached[0]
                    continue
                future = self._in_flight.get(track_id)
                if future is None:
                    if self._paused_until >= deadline:
                        problem = self._pause_message(now)
                        continue
                    future = self._submit(self._fetch_popularity, track_id, deadline)
                    self._in_flight[track_id] = future
                    future.add_done_callback(lambda _, key=track_id: self._forget_in_flight(key))
                pending[track_id] = future
        if pending:
            wait_futures(pending.values(), timeout=max(0.0, deadline - self._clock()))
        for track_id, future in pending.items():
            if not future.done():
                problem = problem or f"no answer within {self._settings.spotify_timeout:g} s"
            elif future.cancelled():
                problem = problem or "the recommender is closing"
            elif future.exception() is not None:
                problem = problem or str(future.exception())
            else:
                found[track_id] = future.result()
        return found, problem

    def _forget_in_flight(self, track_id: str) -> None:
        with self._lock:
            self._in_flight.pop(track_id, None)

    def _fetch_popularity(self, track_id: str, deadline: float) -> int | None:
        try:
            track = self._call("catalog", lambda client: client.track(track_id), deadline)
        except NotFound:
            track = None
        value = track.get("popularity") if isinstance(track, dict) else None
        popularity = value if isinstance(value, int) and 0 <= value <= 100 else None
        with self._lock:
            self._popularity[track_id] = (popularity, self._clock() + self._settings.popularity_ttl)
        return popularity

    # --- playlists ------------------------------------------------------------------------------

    def playlist(self, emotion: str, track_ids: list[str], deadline: float) -> tuple[str | None, str | None]:
        """Link of the emotion's playlist, now holding exactly `track_ids`; (None, reason) if not in time."""
        if not self.playlists_enabled:
            return None, None
        now = self._clock()
        if self._paused_until >= deadline:
            return None, self._pause_message(now)
        future = self._submit(self._sync_playlist, emotion, track_ids, deadline)
        try:
            return future.result(timeout=max(0.0, deadline - self._clock())), None
        except FutureTimeout:
            return None, f"playlist not ready within {self._settings.spotify_timeout:g} s"
        except SpotifyUnavailable as exc:
            return None, str(exc)
        except CancelledError:
            return None, "the recommender is closing"
        except (KeyError, TypeError, ValueError) as exc:
            return None, f"unexpected answer from Spotify ({type(exc).__name__}: {exc})"
        except OSError as exc:  # the playlist store could not be written
            return None, f"cannot save the playlist id in {self._store.path}: {exc.strerror}"

    def _sync_playlist(self, emotion: str, track_ids: list[str], deadline: float) -> str:
        uris = [f"spotify:track:{track_id}" for track_id in track_ids]
        with self._playlist_locks[emotion]:  # one create at most, even with calls racing
            user_id = self._current_user_id(deadline)
            playlist_id = self._store.get(user_id, emotion)
            if playlist_id:
                try:
                    self._replace_items(playlist_id, uris, deadline)
                    return playlist_url(playlist_id)
                except NotFound:
                    log.info("the %s playlist %s was deleted; making a new one", emotion, playlist_id)
                    self._store.forget(user_id, emotion)
            name = PLAYLIST_NAME.format(emotion=emotion.capitalize())
            playlist_id = self._find_playlist(name, user_id, deadline) or self._create_playlist(name, user_id, deadline)
            self._store.put(user_id, emotion, playlist_id)
            self._replace_items(playlist_id, uris, deadline)
            return playlist_url(playlist_id)

    def _current_user_id(self, deadline: float) -> str:
        if self._user_id is None:
            me = self._call("user", lambda client: client.me(), deadline)
            self._user_id = str(me["id"])
        return self._user_id

    def _replace_items(self, playlist_id: str, uris: list[str], deadline: float) -> None:
        self._call("user", lambda client: client.playlist_replace_items(playlist_id, uris), deadline)

    def _find_playlist(self, name: str, user_id: str, deadline: float) -> str | None:
        """Look before creating: a playlist of ours from an earlier run or a create whose answer was lost."""
        for page in range(PLAYLIST_PAGES):
            listing = self._call(
                "user", lambda client, offset=page * 50: client.current_user_playlists(50, offset), deadline
            )
            for playlist in listing.get("items") or []:
                if playlist and playlist.get("name") == name and (playlist.get("owner") or {}).get("id") == user_id:
                    return str(playlist["id"])
            if not listing.get("next"):
                return None
        return None

    def _create_playlist(self, name: str, user_id: str, deadline: float) -> str:
        description = "Made by Moodring: songs for the mood on your face. Refreshed on every selfie."
        try:
            created = self._call(
                "user",
                lambda client: client.current_user_playlist_create(name, public=True, description=description),
                deadline,
            )
            return str(created["id"])
        except SpotifyUnavailable:
            # The create may have happened with its answer lost: look again instead of creating again.
            found = self._find_playlist(name, user_id, deadline)
            if found:
                log.info("playlist %r was created although its answer was lost; using it", name)
                return found
            raise

    # --- one call, with the pause rules ------------------------------------------------------------

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future:
        if self._closed:
            future: Future = Future()
            future.set_exception(SpotifyUnavailable("recommender is closed"))
            return future
        return self._pool.submit(fn, *args)

    def _thread_client(self, kind: str, token: _ClientToken | _UserToken) -> spotipy.Spotify:
        """One spotipy client (and requests session) per pool thread: sessions are not thread-safe."""
        client = getattr(self._local, kind, None)
        if client is None:
            client = spotipy.Spotify(
                auth_manager=token,
                requests_session=requests.Session(),  # no retries: see the module docstring
                requests_timeout=self._settings.spotify_timeout,
            )
            client.prefix = self._api_url
            setattr(self._local, kind, client)
        return client

    def _call(self, kind: str, request: Callable[[spotipy.Spotify], T], deadline: float) -> T:
        """One request as the app ("catalog") or the user: waits out a pause that ends before `deadline`."""
        token = self._client_token if kind == "catalog" else self._user_token
        refreshed = False
        rate_limited = 0
        while True:
            now = self._clock()
            if self._paused_until > now:
                if self._paused_until >= deadline:
                    raise SpotifyUnavailable(self._pause_message(now))
                time.sleep(self._paused_until - now)
                continue
            try:
                return request(self._thread_client(kind, token))
            except spotipy.SpotifyException as exc:
                status = exc.http_status
                if status == 429:
                    self._pause(_retry_after(exc.headers), "rate limited (HTTP 429)")
                    rate_limited += 1
                    if rate_limited < RATE_LIMITED_TRIES:
                        continue
                    raise SpotifyUnavailable(f"rate limited (HTTP 429) {rate_limited} times in a row") from None
                if status == 401 and not refreshed:
                    token.invalidate()
                    refreshed = True
                    continue
                if status == 404:
                    raise NotFound("Spotify answered HTTP 404") from None
                raise SpotifyUnavailable(f"Spotify answered HTTP {status}") from None
            except SpotifyOauthError as exc:
                self._pause(OUTAGE_PAUSE, f"Spotify refused our credentials ({exc.error})")
                raise SpotifyUnavailable(f"Spotify refused our credentials ({exc.error})") from None
            except requests.Timeout:
                self._pause(OUTAGE_PAUSE, "Spotify timed out")
                raise SpotifyUnavailable(f"Spotify timed out after {self._settings.spotify_timeout:g} s") from None
            except requests.RequestException as exc:  # refused or cut: fails fast, so no pause needed
                raise SpotifyUnavailable(f"Spotify unreachable ({type(exc).__name__})") from None

    def _pause(self, seconds: float, reason: str) -> None:
        """No call goes out for `seconds` (at most MOODRING_SPOTIFY_MAX_PAUSE)."""
        seconds = min(max(seconds, 0.0), self._max_pause)
        with self._lock:
            until = self._clock() + seconds
            if until > self._paused_until:
                self._paused_until, self._pause_reason = until, reason

    def _pause_message(self, now: float) -> str:
        return f"{self._pause_reason}; calls paused for {max(0.0, self._paused_until - now):.1f} s"

    def close(self) -> None:
        """Stop the pool; lookups still running end at their own request timeout."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)


def _retry_after(headers: Any) -> float:
    """Seconds from a Retry-After header (Spotify sends whole seconds)."""
    try:
        value = float((headers or {}).get("Retry-After"))
    except (TypeError, ValueError):
        return DEFAULT_RETRY_AFTER
    return value if value >= 0 else DEFAULT_RETRY_AFTER
