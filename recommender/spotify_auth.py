"""Spotify tokens: the app's client-credentials token, the user's login token, and the login flow's manager.

Two ways to log in, chosen by whether `SPOTIPY_CLIENT_SECRET` is set:

- without a secret (the documented default for self-hosters), Authorization Code with PKCE
  (spotipy's `SpotifyPKCE`): nothing secret has to live on the machine beyond the user's own token;
- with a secret, the classic Authorization Code flow (`SpotifyOAuth`), plus a client-credentials token
  for catalogue lookups that do not need a user at all.

The user's token lives in a 0600 file (`MOODRING_SPOTIFY_TOKEN_CACHE`) that spotipy refreshes. Nothing
here prompts on stdin: a login that is refused, or that lacks a scope (one from before
`playlist-read-private` was asked for), is a `SpotifyRefused`, which only a new `moodring spotify-login` fixes.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Protocol

import requests
from spotipy.cache_handler import CacheHandler, MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOAuth, SpotifyOauthError, SpotifyPKCE

from moodring.errors import SpotifyRefused
from moodring.files import replaced_atomically
from moodring.settings import Settings

log = logging.getLogger(__name__)

PLAYLIST_SCOPES = "playlist-read-private playlist-modify-public playlist-modify-private"
"""What the login asks for: read, to find an existing private Moodring playlist by name
(`GET /me/playlists`); modify, to create the playlists and keep their items."""


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


def token_file_signature(path: Path) -> tuple[int, int, int] | None:
    """What changes when `moodring spotify-login` writes a new token (None: no file)."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_ino, status.st_mtime_ns, status.st_size


def uses_pkce(settings: Settings) -> bool:
    """PKCE when no client secret is configured: the app then holds nothing but the user's own token."""
    return not settings.spotify_client_secret


def make_user_auth(settings: Settings, session: requests.Session | None = None) -> SpotifyOAuth | SpotifyPKCE:
    """The user-login manager (PKCE without a client secret), pointed at the configured accounts URL."""
    common = {
        "client_id": settings.spotify_client_id,
        "redirect_uri": settings.spotify_redirect_uri,
        "scope": PLAYLIST_SCOPES,
        "cache_handler": PrivateTokenCache(settings.spotify_token_cache),
        "open_browser": False,
        "requests_timeout": settings.spotify_timeout,
        "requests_session": session or requests.Session(),
    }
    if uses_pkce(settings):
        auth: SpotifyOAuth | SpotifyPKCE = SpotifyPKCE(**common)
    else:
        auth = SpotifyOAuth(client_secret=settings.spotify_client_secret, **common)
    accounts = settings.spotify_accounts_url.rstrip("/")
    auth.OAUTH_AUTHORIZE_URL = f"{accounts}/authorize"
    auth.OAUTH_TOKEN_URL = f"{accounts}/api/token"
    return auth


class TokenSource(Protocol):
    """What a spotipy client asks for its bearer token; `invalidate` after Spotify rejected one."""

    def get_access_token(self, as_dict: bool = False) -> str:
        """A usable access token."""
        ...

    def invalidate(self) -> None:
        """Forget the current token so that the next request fetches or refreshes one."""
        ...


class ClientToken:
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


class UserToken:
    """The logged-in user's token from the 0600 cache; refreshed when expired, never interactive."""

    def __init__(self, settings: Settings):
        self._lock = threading.Lock()
        self._auth = make_user_auth(settings)
        self._cache = self._auth.cache_handler

    def get_access_token(self, as_dict: bool = False) -> str:
        """The user's access token; spotipy would prompt on stdin without one, so we refuse instead."""
        with self._lock:
            try:
                token = self._auth.validate_token(self._cache.get_cached_token())
            except SpotifyOauthError as exc:
                raise SpotifyRefused(f"Spotify refused to refresh the login ({exc.error})") from None
            if not token:  # no file (the caller checks first), or a login from before a scope was added
                raise SpotifyRefused(f"the Spotify login does not grant {PLAYLIST_SCOPES}")
            return token["access_token"]

    def invalidate(self) -> None:
        """Mark the cached token expired so the next call refreshes it."""
        with self._lock:
            token = self._cache.get_cached_token()
            if token:
                token["expires_at"] = 0
                self._cache.save_token_to_cache(token)
