"""`moodring spotify-login`: the Authorization Code flow once, leaving a 0600 token cache behind.

The browser is sent to Spotify's authorize page; Spotify redirects it to `SPOTIPY_REDIRECT_URI`
(`http://127.0.0.1:<port>/callback`: Spotify no longer accepts `localhost`), where a one-request local
server picks up the answer. Without `SPOTIPY_CLIENT_SECRET` the flow uses PKCE (`recommender.spotify_auth`).

The code is exchanged while the browser waits, so the page it shows tells the truth: connected (as whom),
or what failed (Spotify's `error`, such as `access_denied`; a `state` that does not belong to this login;
a refused code exchange). The terminal gets the same one line. Nothing secret is printed or logged.
"""

from __future__ import annotations

import html
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

import requests
import spotipy
from moodring.recommender.spotify_auth import make_user_auth
from spotipy.oauth2 import SpotifyOAuth, SpotifyOauthError, SpotifyPKCE

from moodring.errors import ConfigError, LoginError
from moodring.settings import Settings

AGAIN = "run `moodring spotify-login` again"


class _CallbackServer(HTTPServer):
    """Answers the one redirect from Spotify, finishing the login before it answers the browser."""

    def __init__(self, host: str, port: int, path: str, finish: Callable[[dict[str, str]], dict]):
        super().__init__((host, port), _CallbackHandler)
        self.callback_path = path
        self.finish = finish
        self.profile: dict | None = None
        self.error: LoginError | None = None
        self.received = threading.Event()


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlparse(self.path)
        if url.path != self.server.callback_path:
            self.send_error(404)
            return
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        try:
            self.server.profile = self.server.finish(query)
            who = self.server.profile.get("display_name") or self.server.profile.get("id")
            status, title, detail = 200, f"Moodring is connected to Spotify as {who}.", "You can close this tab."
        except LoginError as exc:
            self.server.error = exc
            status, title, detail = 400, "Moodring is not connected to Spotify.", f"{exc}."
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>Moodring</title></head><body>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(detail)}</p></body></html>"
        ).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)
        self.server.received.set()

    def log_message(self, format: str, *args: object) -> None:  # the query holds the one-time code
        pass


def login(settings: Settings, open_url: Callable[[str], object], timeout: float = 300.0) -> dict:
    """Run the flow: `open_url(authorize_url)` shows Spotify's consent page (a browser, or a test's client).

    Returns the current user's profile; the token is stored at `settings.spotify_token_cache` (0600).
    """
    if not settings.spotify_client_id:
        raise ConfigError(
            "set SPOTIPY_CLIENT_ID (in .env) before `moodring spotify-login`; "
            "SPOTIPY_CLIENT_SECRET is optional (without it the login uses PKCE)"
        )
    redirect = urlparse(settings.spotify_redirect_uri)
    if redirect.scheme != "http" or redirect.hostname not in {"127.0.0.1", "::1"} or not redirect.port:
        raise ConfigError(
            f"SPOTIPY_REDIRECT_URI must look like http://127.0.0.1:8888/callback, got {settings.spotify_redirect_uri!r}"
        )
    auth = make_user_auth(settings)
    state = secrets.token_urlsafe(16)
    try:
        server = _CallbackServer(
            redirect.hostname, redirect.port, redirect.path or "/", lambda query: _finish(settings, auth, state, query)
        )
    except OSError as exc:
        raise LoginError(
            f"cannot listen on {redirect.hostname}:{redirect.port} for Spotify's redirect: {exc}"
        ) from None
    thread = threading.Thread(target=_serve_until_received, args=(server, timeout), daemon=True)
    thread.start()
    try:
        open_url(auth.get_authorize_url(state=state))
        if not server.received.wait(timeout):
            raise LoginError(f"no answer from Spotify within {timeout:g} s; {AGAIN}")
    finally:
        server.received.set()
        thread.join()
        server.server_close()
    if server.error is not None:
        raise server.error
    return server.profile or {}


def _finish(settings: Settings, auth: SpotifyOAuth | SpotifyPKCE, state: str, query: dict[str, str]) -> dict:
    """Check Spotify's redirect, exchange its code for a token (stored by spotipy), and ask who logged in."""
    if query.get("error"):
        raise LoginError(f"Spotify refused the login ({query['error']}); {AGAIN}")
    if query.get("state") != state:
        raise LoginError(f"the answer does not belong to this login attempt (state mismatch); {AGAIN}")
    if not query.get("code"):
        raise LoginError(f"Spotify's answer carried no code; {AGAIN}")
    try:
        if isinstance(auth, SpotifyOAuth):
            auth.get_access_token(code=query["code"], as_dict=False, check_cache=False)
        else:
            auth.get_access_token(code=query["code"], check_cache=False)
    except SpotifyOauthError as exc:
        raise LoginError(f"Spotify refused the code exchange ({exc.error}); {AGAIN}") from None
    except requests.RequestException as exc:
        raise LoginError(f"Spotify's accounts service could not be reached ({type(exc).__name__}); {AGAIN}") from None
    except OSError as exc:
        raise LoginError(f"cannot store the token in {settings.spotify_token_cache}: {exc.strerror}") from None
    token = auth.cache_handler.get_cached_token()
    client = spotipy.Spotify(auth=token["access_token"], requests_timeout=settings.spotify_timeout, retries=0)
    client.prefix = settings.spotify_api_url.rstrip("/") + "/"
    try:
        return client._get("me")  # `GET /me`: spotipy's me() asks for "me/", which the spec does not have
    except (spotipy.SpotifyException, requests.RequestException) as exc:
        raise LoginError(
            f"the token is stored but Spotify could not be asked who you are ({type(exc).__name__})"
        ) from None


def _serve_until_received(server: _CallbackServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    server.timeout = 0.2
    while not server.received.is_set() and time.monotonic() < deadline:
        server.handle_request()
