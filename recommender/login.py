"""`moodring spotify-login`: the Authorization Code flow once, leaving a 0600 token cache behind.

The browser is sent to Spotify's authorize page; Spotify redirects it to
`SPOTIPY_REDIRECT_URI` (`http://127.0.0.1:<port>/callback`: Spotify no longer accepts
`localhost`), where a one-request local server picks up the code. The code is exchanged for a
token that spotipy refreshes from then on. Nothing secret is printed.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import requests
import spotipy
from moodring.recommender.spotify import make_oauth
from spotipy.oauth2 import SpotifyOauthError

from moodring.errors import ConfigError, LoginError
from moodring.settings import Settings


class _CallbackServer(HTTPServer):
    """Answers the one redirect from Spotify and keeps its query."""

    def __init__(self, host: str, port: int, path: str):
        super().__init__((host, port), _CallbackHandler)
        self.callback_path = path
        self.query: dict[str, str] | None = None
        self.received = threading.Event()


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        if url.path != self.server.callback_path:
            self.send_error(404)
            return
        self.server.query = {key: values[0] for key, values in parse_qs(url.query).items()}
        body = b"<html><body><h1>Moodring is connected to Spotify.</h1>You can close this tab.</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.received.set()

    def log_message(self, format: str, *args: object) -> None:  # the query holds the one-time code
        pass


def login(settings: Settings, open_url: Callable[[str], object], timeout: float = 300.0) -> dict:
    """Run the flow: `open_url(authorize_url)` shows Spotify's consent page (a browser, or a test's client).

    Returns the current user's profile; the token is stored at `settings.spotify_token_cache` (0600).
    """
    if not (settings.spotify_client_id and settings.spotify_client_secret):
        raise ConfigError("set SPOTIPY_CLIENT_ID and SPOTIPY_CLIENT_SECRET (in .env) before `moodring spotify-login`")
    redirect = urlparse(settings.spotify_redirect_uri)
    if redirect.scheme != "http" or redirect.hostname not in {"127.0.0.1", "::1"} or not redirect.port:
        raise ConfigError(
            f"SPOTIPY_REDIRECT_URI must look like http://127.0.0.1:8888/callback, got {settings.spotify_redirect_uri!r}"
        )
    oauth = make_oauth(settings)
    state = secrets.token_urlsafe(16)
    try:
        server = _CallbackServer(redirect.hostname, redirect.port, redirect.path or "/")
    except OSError as exc:
        raise LoginError(
            f"cannot listen on {redirect.hostname}:{redirect.port} for Spotify's redirect: {exc}"
        ) from None
    thread = threading.Thread(target=_serve_until_received, args=(server, timeout), daemon=True)
    thread.start()
    try:
        open_url(oauth.get_authorize_url(state=state))
        if not server.received.wait(timeout):
            raise LoginError(f"no answer from Spotify within {timeout:g} s; run `moodring spotify-login` again")
    finally:
        server.received.set()
        thread.join()
        server.server_close()
    query = server.query or {}
    if query.get("error"):
        raise LoginError(f"Spotify refused the login: {query['error']}")
    if query.get("state") != state or not query.get("code"):
        raise LoginError("Spotify's redirect did not match this login attempt; run `moodring spotify-login` again")
    try:
        oauth.get_access_token(code=query["code"], as_dict=False, check_cache=False)
        token = oauth.cache_handler.get_cached_token()
        client = spotipy.Spotify(auth=token["access_token"], requests_timeout=settings.spotify_timeout, retries=0)
        client.prefix = settings.spotify_api_url.rstrip("/") + "/"
        return client.me()
    except SpotifyOauthError as exc:
        raise LoginError(f"Spotify refused the code exchange: {exc.error}") from None
    except (spotipy.SpotifyException, requests.RequestException) as exc:
        raise LoginError(
            f"the token is stored but Spotify could not be asked who you are: {type(exc).__name__}"
        ) from None


def _serve_until_received(server: _CallbackServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    server.timeout = 0.2
    while not server.received.is_set() and time.monotonic() < deadline:
        server.handle_request()
