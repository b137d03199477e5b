"""A fake Spotify (Web API + accounts service) on 127.0.0.1, for tests that drive real spotipy code.

It runs an aiohttp server on its own event loop in a background thread, so synchronous spotipy
(and async tests) can call it. Routes and bodies follow `../shared/spotify/openapi.yml` (2026):
`GET /v1/tracks/{id}`, `GET /v1/me`, `GET|POST /v1/me/playlists`, `GET /v1/playlists/{id}`,
`GET|PUT|POST|DELETE /v1/playlists/{id}/items`, plus the accounts service's `GET /authorize` (approves
at once and redirects) and `POST /api/token` (client credentials, authorization code with or without
PKCE, refresh token).

It is as strict as the spec: every Web API request is validated against it (path, query, body) with
openapi-core and answered 400 when it breaks it (a create without `name`, `limit=500`, a body that is
not JSON), and so are the things Spotify refuses that the spec cannot say (an item URI that is not a
track or episode URI, more than 100 items, changing someone else's playlist: 403). A path the spec does
not have (`/v1/me/`) is a 404. Every Web API answer is kept in `exchanges` and checked against the spec
too (`assert_matches_spec`, with openapi-core): by a test when it wants, and always when the fake stops.

Use it through the `fake_spotify` fixture (`tests/conftest.py`) or directly:

    with FakeSpotify() as fake:
        settings = Settings.load(environ=fake.environ(tmp_path))   # pre-seeded user login
        ...
        fake.rate_limit(times=1, retry_after=1)   # next Web API request answers 429 + Retry-After
        fake.fail(times=2, status=503)            # next two answer 503 (or 403, 401: any error status)
        fake.answer_with(times=1, body=b"")       # next answers 200 with exactly this body (b"{" malformed)
        fake.add_foreign_playlist("Moodring · Happy")   # someone else's playlist in the user's listing
        fake.clear_faults()                       # drop every 429, failure and body still waiting
        fake.deny_logins = True                   # /authorize redirects with error=access_denied
        fake.delay = 3.0                          # every Web API answer waits 3 s
        fake.down() / fake.up()                   # refuse / accept connections (same port)
        fake.omit_popularity = True               # track objects without `popularity`
        fake.set_popularity(track_id, 12)         # live value differing from the song table
        fake.lose_create_responses(times=1)       # next POST /me/playlists creates, then drops the answer
        fake.expire_tokens()                      # every issued access token now answers 401
        fake.playlists                            # {id: FakePlaylist(name, owner_id, public, items=[uris])}
        fake.requests_to("POST", "/v1/me/playlists")   # what it received
        fake.issued_secrets()                     # every code and token it handed out, and the client's secret
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
from aiohttp import web
from moodring.recommender.spotify_auth import PLAYLIST_SCOPES
from moodring.recommender.table import embedded_table_path

from tests.paths import ROOT

SPEC = ROOT.parent / "shared" / "spotify" / "openapi.yml"

CLIENT_ID = "moodring-test-client"
CLIENT_SECRET = "moodring-test-secret"
USER_ID = "moodring-tester"
OTHER_USER_ID = "someone-else"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
TOKEN_SECONDS = 3600
ITEM_URI = re.compile(r"spotify:(track|episode):[0-9A-Za-z]{22}")
MAX_ITEMS = 100
NO_SUCH_PATH = "Service not found"
FAILURE_MESSAGES = {401: "Invalid access token", 403: "Forbidden"}


def fake_id(*parts: str) -> str:
    """A stable 22-character base-62 id derived from `parts` (artists, playlists, users)."""
    number = int.from_bytes(hashlib.sha256("/".join(parts).encode()).digest(), "big")
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(BASE62[digit])
    return "".join(chars)


@dataclass
class Recorded:
    """One request the fake received, and the answer it sent (Web API only)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    response: Any = None


@dataclass
class FakePlaylist:
    """A playlist held by the fake; `items` are track URIs in order."""

    id: str
    name: str
    owner_id: str
    public: bool
    description: str
    items: list[str] = field(default_factory=list)
    snapshot: int = 1


class FakeSpotify:
    """The fake server: start/stop it (or use it as a context manager), flip switches, read what it got."""

    def __init__(self, catalogue: dict[str, dict[str, Any]] | None = None):
        if catalogue is None:
            songs = pd.read_csv(embedded_table_path())
            catalogue = {
                row.id: {"name": row.name, "artist": row.artist, "popularity": int(row.popularity)}
                for row in songs.itertuples()
            }
        self.catalogue = catalogue
        self.playlists: dict[str, FakePlaylist] = {}
        self.exchanges: list[Recorded] = []
        self.delay = 0.0
        self.omit_popularity = False
        self.port: int | None = None
        self._lock = threading.Lock()
        self._rate_limits: list[float | None] = []
        self._failures: list[int] = []
        self._lost_creates = 0
        self._bodies: list[bytes] = []
        self.deny_logins = False
        self._issued: list[str] = []
        self._created = 0
        self._down = False
        self._access_tokens: set[str] = set()
        self._refresh_tokens: set[str] = set()
        self._codes: dict[str, tuple[str, str | None]] = {}  # code -> (redirect_uri, PKCE code challenge)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # --- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FakeSpotify:
        """Listen on a free 127.0.0.1 port, serving from a background thread."""
        _openapi()  # parsed once per process (seconds), before any request has to wait for it
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-spotify", daemon=True)
        self._thread.start()
        self._run(self._start())
        return self

    def stop(self) -> None:
        """Stop serving and end the background thread."""
        if self._loop is None:
            return
        self._run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> FakeSpotify:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        """Stop; then, unless something failed already, check every answer it gave against the spec."""
        self.stop()
        if exc_type is None:
            assert_matches_spec(self)

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    async def _start(self) -> None:
        app = web.Application(middlewares=[self._web_api_middleware])
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/api/token", self._token)
        app.router.add_get("/v1/tracks/{id}", self._track)
        app.router.add_get("/v1/me", self._me)
        app.router.add_get("/v1/me/playlists", self._list_playlists)
        app.router.add_post("/v1/me/playlists", self._create_playlist)
        app.router.add_get("/v1/playlists/{id}", self._get_playlist)
        app.router.add_get("/v1/playlists/{id}/items", self._get_items)
        app.router.add_put("/v1/playlists/{id}/items", self._replace_items)
        app.router.add_post("/v1/playlists/{id}/items", self._add_items)
        app.router.add_delete("/v1/playlists/{id}/items", self._remove_items)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await self._listen()

    async def _listen(self) -> None:
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port or 0, reuse_address=True)
        await self._site.start()
        self.port = self._site._server.sockets[0].getsockname()[1]

    # --- addresses and settings -------------------------------------------------------------------

    @property
    def accounts_url(self) -> str:
        """What `MOODRING_SPOTIFY_ACCOUNTS_URL` should be."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        """What `MOODRING_SPOTIFY_API_URL` should be."""
        return f"http://127.0.0.1:{self.port}/v1/"

    def issue_user_token(self) -> dict[str, Any]:
        """A valid user token with the playlist scopes, in spotipy's token-cache format."""
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        with self._lock:
            self._access_tokens.add(access)
            self._refresh_tokens.add(refresh)
            self._issued += [access, refresh]
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": TOKEN_SECONDS,
            "refresh_token": refresh,
            "scope": PLAYLIST_SCOPES,
            "expires_at": int(time.time()) + TOKEN_SECONDS,
        }

    def environ(self, folder: Path, login: bool = True, **extra: str) -> dict[str, str]:
        """Environment for `Settings.load(environ=...)` pointing at this fake, files inside `folder`.

        With `login`, the token cache is pre-seeded as if `moodring spotify-login` had run.
        """
        folder = Path(folder)
        token_cache = folder / "spotify-token.json"
        if login:
            token_cache.write_text(json.dumps(self.issue_user_token()))
            token_cache.chmod(0o600)
        return {
            "SPOTIPY_CLIENT_ID": CLIENT_ID,
            "SPOTIPY_CLIENT_SECRET": CLIENT_SECRET,
            "SPOTIPY_REDIRECT_URI": "http://127.0.0.1:8888/callback",
            "MOODRING_SPOTIFY_API_URL": self.api_url,
            "MOODRING_SPOTIFY_ACCOUNTS_URL": self.accounts_url,
            "MOODRING_SPOTIFY_TOKEN_CACHE": str(token_cache),
            "MOODRING_PLAYLIST_STORE": str(folder / "playlists.json"),
            "MOODRING_CACHE_DIR": str(folder / "cache"),
            **extra,
        }

    # --- switches ---------------------------------------------------------------------------------

    def rate_limit(self, times: int = 1, retry_after: float | None = 1) -> None:
        """The next `times` Web API requests answer 429 with `Retry-After: retry_after` (None: no header,
        which the spec allows: it defines no Retry-After)."""
        with self._lock:
            self._rate_limits.extend([retry_after] * times)

    def fail(self, times: int = 1, status: int = 500) -> None:
        """The next `times` Web API requests answer `status` (a 5xx, or 403/401 as for a refused user)."""
        with self._lock:
            self._failures.extend([status] * times)

    def clear_faults(self) -> None:
        """Drop every 429, failure and canned body still waiting to be answered."""
        with self._lock:
            self._rate_limits.clear()
            self._failures.clear()
            self._bodies.clear()

    def answer_with(self, times: int = 1, body: bytes = b"") -> None:
        """The next `times` Web API requests answer 200 with exactly `body` (empty, or malformed JSON)."""
        with self._lock:
            self._bodies.extend([body] * times)

    def add_foreign_playlist(self, name: str) -> FakePlaylist:
        """A playlist owned by someone else that the user follows: listed, but not the user's to change."""
        with self._lock:
            self._created += 1
            playlist = FakePlaylist(fake_id("foreign", str(self._created), name), name, OTHER_USER_ID, True, "")
            self.playlists[playlist.id] = playlist
        return playlist

    def lose_create_responses(self, times: int = 1) -> None:
        """The next `times` playlist creations happen, but the connection drops before the answer."""
        with self._lock:
            self._lost_creates += times

    def down(self) -> None:
        """Refuse new connections and cut open ones, as a Spotify outage looks from here."""
        self._down = True
        self._run(self._site.stop())

    def up(self) -> None:
        """Serve again on the same port."""
        self._down = False
        self._run(self._listen())

    def expire_tokens(self) -> None:
        """Every access token issued so far is rejected with 401 (refresh tokens still work)."""
        with self._lock:
            self._access_tokens.clear()

    def set_popularity(self, track_id: str, popularity: int | None) -> None:
        """Give a track a live popularity (None: answer without the field)."""
        self.catalogue[track_id]["popularity"] = popularity

    # --- what it received ---------------------------------------------------------------------------

    def requests_to(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        """Recorded Web API requests, filtered by method and path (a prefix ending in '*', or exact)."""
        with self._lock:
            recorded = list(self.exchanges)

        def matches(item: Recorded) -> bool:
            if method and item.method != method:
                return False
            if path is None:
                return True
            return item.path.startswith(path[:-1]) if path.endswith("*") else item.path == path

        return [item for item in recorded if matches(item)]

    def playlists_named(self, name: str, owner_id: str = USER_ID) -> list[FakePlaylist]:
        """Every playlist of `owner_id` with this name (a test for duplicates wants exactly one)."""
        return [p for p in self.playlists.values() if p.name == name and p.owner_id == owner_id]

    def issued_secrets(self) -> list[str]:
        """Every code, access and refresh token handed out, the client secret and its Basic header."""
        with self._lock:
            return [*self._issued, CLIENT_SECRET, _basic_credentials()]

    # --- Web API plumbing -----------------------------------------------------------------------------

    @web.middleware
    async def _web_api_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._down:  # a keep-alive connection from before the outage: cut it
            request.transport.abort()
            raise asyncio.CancelledError
        if not request.path.startswith("/v1/"):
            return await handler(request)
        raw = await request.read() if request.can_read_body else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        recorded = Recorded(request.method, request.path, dict(request.query), body, time.monotonic())
        with self._lock:
            self.exchanges.append(recorded)
            limited = bool(self._rate_limits)
            retry_after = self._rate_limits.pop(0) if limited else None
            failure = None if limited or not self._failures else self._failures.pop(0)
            canned = None if limited or failure is not None or not self._bodies else self._bodies.pop(0)
        if self.delay:
            await asyncio.sleep(self.delay)
        if limited:
            headers = None if retry_after is None else {"Retry-After": f"{retry_after:g}"}
            response = _error(429, "API rate limit exceeded", headers)
        elif failure is not None:
            response = _error(failure, FAILURE_MESSAGES.get(failure, "Service unavailable"))
        elif not self._authorized(request):
            response = _error(401, FAILURE_MESSAGES[401])
        elif (problem := _spec_problem(request, raw)) is not None:
            response = _error(problem[0], problem[1])
        elif canned is not None:
            response = web.Response(body=canned, status=200, content_type="application/json")
        else:
            response = await handler(request)
        recorded.status = response.status
        recorded.headers = dict(response.headers)
        if canned is not None and response.status == 200:
            recorded.response = canned  # not JSON: kept as the bytes sent
        else:
            recorded.response = json.loads(response.body) if getattr(response, "body", None) else None
        return response

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            return scheme == "Bearer" and token in self._access_tokens

    def _url(self, path: str) -> str:
        return f"{self.api_url.rstrip('/')}{path}"

    def _track_object(self, track_id: str) -> dict[str, Any]:
        song = self.catalogue[track_id]
        artist_id = fake_id("artist", song["artist"])
        track = {
            "id": track_id,
            "name": song["name"],
            "type": "track",
            "uri": f"spotify:track:{track_id}",
            "href": self._url(f"/tracks/{track_id}"),
            "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
            "artists": [
                {
                    "id": artist_id,
                    "name": song["artist"],
                    "type": "artist",
                    "uri": f"spotify:artist:{artist_id}",
                    "href": self._url(f"/artists/{artist_id}"),
                    "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
                }
            ],
            "disc_number": 1,
            "track_number": 1,
            "duration_ms": 200_000,
            "explicit": False,
            "is_local": False,
            "is_playable": True,
        }
        if not self.omit_popularity and song.get("popularity") is not None:
            track["popularity"] = song["popularity"]
        return track

    def _user_object(self, user_id: str = USER_ID) -> dict[str, Any]:
        return {
            "id": user_id,
            "display_name": "Moodring Tester" if user_id == USER_ID else "Someone Else",
            "type": "user",
            "uri": f"spotify:user:{user_id}",
            "href": self._url(f"/users/{user_id}"),
            "external_urls": {"spotify": f"https://open.spotify.com/user/{user_id}"},
            "followers": {"href": None, "total": 0},
            "images": [],
        }

    def _playlist_object(self, playlist: FakePlaylist, full: bool) -> dict[str, Any]:
        owner = self._user_object(playlist.owner_id)
        body: dict[str, Any] = {
            "id": playlist.id,
            "name": playlist.name,
            "description": playlist.description,
            "public": playlist.public,
            "collaborative": False,
            "owner": {key: owner[key] for key in ("id", "display_name", "type", "uri", "href", "external_urls")},
            "snapshot_id": f"snapshot-{playlist.snapshot}",
            "type": "playlist",
            "uri": f"spotify:playlist:{playlist.id}",
            "href": self._url(f"/playlists/{playlist.id}"),
            "external_urls": {"spotify": f"https://open.spotify.com/playlist/{playlist.id}"},
            "images": [],
        }
        if full:
            body["items"] = self._items_page(playlist, 0, 100)
            body["followers"] = {"href": None, "total": 0}
        else:
            body["items"] = {"href": self._url(f"/playlists/{playlist.id}/items"), "total": len(playlist.items)}
        body["tracks"] = body["items"]
        return body

    def _items_page(self, playlist: FakePlaylist, offset: int, limit: int) -> dict[str, Any]:
        owner = self._user_object(playlist.owner_id)
        added_by = {key: owner[key] for key in ("id", "type", "uri", "href", "external_urls")}
        entries = []
        for uri in playlist.items[offset : offset + limit]:
            track = self._track_object(uri.rsplit(":", 1)[-1])
            entries.append(
                {
                    "added_at": "2026-01-01T00:00:00Z",
                    "added_by": added_by,
                    "is_local": False,
                    "item": track,
                    "track": track,
                }
            )
        return _page(self._url(f"/playlists/{playlist.id}/items"), entries, offset, limit, len(playlist.items))

    # --- Web API routes ---------------------------------------------------------------------------------

    async def _track(self, request: web.Request) -> web.Response:
        track_id = request.match_info["id"]
        if track_id not in self.catalogue:
            return _error(404, "Resource not found")
        return web.json_response(self._track_object(track_id))

    async def _me(self, request: web.Request) -> web.Response:
        return web.json_response(self._user_object())

    async def _list_playlists(self, request: web.Request) -> web.Response:
        limit, offset = int(request.query.get("limit", 20)), int(request.query.get("offset", 0))
        listed = [self._playlist_object(playlist, full=False) for playlist in self.playlists.values()]
        return web.json_response(
            _page(self._url("/me/playlists"), listed[offset : offset + limit], offset, limit, len(listed))
        )

    async def _create_playlist(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        with self._lock:
            self._created += 1
            playlist_id = fake_id("playlist", str(self._created), body["name"])
            playlist = FakePlaylist(
                playlist_id, body["name"], USER_ID, bool(body.get("public", True)), body.get("description", "")
            )
            self.playlists[playlist_id] = playlist
            lose = self._lost_creates > 0
            self._lost_creates -= int(lose)
        if lose:  # created, but the answer never reaches the client
            request.transport.abort()
            raise asyncio.CancelledError
        return web.json_response(self._playlist_object(playlist, full=True), status=201)

    def _playlist(self, request: web.Request) -> FakePlaylist | None:
        return self.playlists.get(request.match_info["id"])

    async def _get_playlist(self, request: web.Request) -> web.Response:
        playlist = self._playlist(request)
        if playlist is None:
            return _error(404, "Resource not found")
        return web.json_response(self._playlist_object(playlist, full=True))

    async def _get_items(self, request: web.Request) -> web.Response:
        playlist = self._playlist(request)
        if playlist is None:
            return _error(404, "Resource not found")
        if playlist.owner_id != USER_ID:
            return _error(403, "Forbidden")
        limit, offset = int(request.query.get("limit", 20)), int(request.query.get("offset", 0))
        return web.json_response(self._items_page(playlist, offset, limit))

    async def _changeable(self, request: web.Request) -> tuple[FakePlaylist | None, Any, web.Response | None]:
        """The playlist and JSON body of a change, or the error Spotify answers instead."""
        playlist = self._playlist(request)
        if playlist is None:
            return None, None, _error(404, "Resource not found")
        if playlist.owner_id != USER_ID:
            return None, None, _error(403, "You cannot change a playlist you do not own")
        body = await request.json() if request.body_exists else {}
        return playlist, body or {}, None

    def _changed(self, playlist: FakePlaylist, status: int = 200) -> web.Response:
        playlist.snapshot += 1
        return web.json_response({"snapshot_id": f"snapshot-{playlist.snapshot}"}, status=status)

    async def _replace_items(self, request: web.Request) -> web.Response:
        playlist, body, refused = await self._changeable(request)
        if refused:
            return refused
        if "uris" in request.query or "uris" in body:
            uris = request.query["uris"].split(",") if "uris" in request.query else body["uris"]
            if problem := _uris_problem(uris):
                return _error(400, problem)
            playlist.items = list(uris)
            return self._changed(playlist)
        if "range_start" in body and "insert_before" in body:
            start, length, before = body["range_start"], body.get("range_length", 1), body["insert_before"]
            if not (0 <= start and start + length <= len(playlist.items) and 0 <= before <= len(playlist.items)):
                return _error(400, "Index out of bounds")
            moved = playlist.items[start : start + length]
            rest = playlist.items[:start] + playlist.items[start + length :]
            before -= length if before > start else 0
            playlist.items = rest[:before] + moved + rest[before:]
            return self._changed(playlist)
        return _error(400, "Either uris, or range_start and insert_before, are required")

    async def _add_items(self, request: web.Request) -> web.Response:
        playlist, body, refused = await self._changeable(request)
        if refused:
            return refused
        uris = request.query["uris"].split(",") if "uris" in request.query else body.get("uris")
        position = int(request.query.get("position", body.get("position", len(playlist.items))))
        if problem := _uris_problem(uris):
            return _error(400, problem)
        if not 0 <= position <= len(playlist.items):
            return _error(400, "Index out of bounds")
        playlist.items[position:position] = uris
        return self._changed(playlist, status=201)

    async def _remove_items(self, request: web.Request) -> web.Response:
        playlist, body, refused = await self._changeable(request)
        if refused:
            return refused
        uris = [entry.get("uri") for entry in body["items"]]
        if problem := _uris_problem(uris):
            return _error(400, problem)
        playlist.items = [uri for uri in playlist.items if uri not in set(uris)]
        return self._changed(playlist)

    # --- accounts service ---------------------------------------------------------------------------------

    async def _authorize(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
            return web.Response(status=400, text="INVALID_CLIENT")
        if self.deny_logins:  # the user pressed "Cancel" on the consent page
            answer = {"error": "access_denied", "state": query.get("state", "")}
        else:
            code = secrets.token_urlsafe(12)
            with self._lock:
                self._codes[code] = (query["redirect_uri"], query.get("code_challenge"))
                self._issued.append(code)
            answer = {"code": code, "state": query.get("state", "")}
        raise web.HTTPFound(f"{query['redirect_uri']}?{urlencode(answer)}")

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        grant = form.get("grant_type")
        confidential = request.headers.get("Authorization") == f"Basic {_basic_credentials()}"
        public = "Authorization" not in request.headers and form.get("client_id") == CLIENT_ID
        if not (confidential or (public and grant != "client_credentials")):
            return web.json_response({"error": "invalid_client", "error_description": "Invalid client"}, status=400)
        with self._lock:
            if grant == "client_credentials":
                access = secrets.token_urlsafe(16)
                self._access_tokens.add(access)
                self._issued.append(access)
                return web.json_response({"access_token": access, "token_type": "Bearer", "expires_in": TOKEN_SECONDS})
            if grant == "authorization_code" and self._code_matches(form, public):
                refresh = secrets.token_urlsafe(16)
                self._refresh_tokens.add(refresh)
            elif grant == "refresh_token" and form.get("refresh_token") in self._refresh_tokens:
                refresh = form["refresh_token"]
            else:
                return web.json_response({"error": "invalid_grant", "error_description": "Invalid grant"}, status=400)
            access = secrets.token_urlsafe(16)
            self._access_tokens.add(access)
            self._issued += [access, refresh]
        return web.json_response(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": TOKEN_SECONDS,
                "refresh_token": refresh,
                "scope": PLAYLIST_SCOPES,
            }
        )

    def _code_matches(self, form: Any, public: bool) -> bool:
        """A known code for this redirect URI; a public (PKCE) client must also prove its verifier."""
        redirect_uri, challenge = self._codes.pop(form.get("code"), (None, None))
        if redirect_uri is None or redirect_uri != form.get("redirect_uri"):
            return False
        if not public:
            return True
        verifier = str(form.get("code_verifier", ""))
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        return challenge is not None and digest == challenge


def _basic_credentials() -> str:
    return base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()


def _uris_problem(uris: Any) -> str | None:
    """What Spotify would refuse in a list of item URIs, or None."""
    if not isinstance(uris, list) or not uris:
        return "No uris provided"
    if len(uris) > MAX_ITEMS:
        return f"Too many items: at most {MAX_ITEMS} per request"
    bad = next((uri for uri in uris if not isinstance(uri, str) or not ITEM_URI.fullmatch(uri)), None)
    return None if bad is None else f"Invalid item URI: {bad!r}"


def _spec_problem(request: web.Request, raw: bytes) -> tuple[int, str] | None:
    """(404 or 400, message) when the request breaks the spec: unknown path, bad query or body.

    The verdict is remembered per route, query and body: the spec's ids are unconstrained strings, so
    `/tracks/A` and `/tracks/B` get the same one, and each costs openapi-core's milliseconds only once.
    """
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else request.path
    content_type = request.content_type if raw else "application/json"
    key = (request.method, route, tuple(sorted(request.query.items())), content_type, raw)
    if key not in _SPEC_VERDICTS:
        _SPEC_VERDICTS[key] = _validate_request(request.method, request.path, dict(request.query), content_type, raw)
    return _SPEC_VERDICTS[key]


_SPEC_VERDICTS: dict[tuple, tuple[int, str] | None] = {}


def _validate_request(method: str, path: str, query: dict[str, str], content_type: str, raw: bytes):
    from openapi_core.templating.paths.exceptions import PathNotFound
    from openapi_core.testing import MockRequest

    checked = MockRequest(
        "http://127.0.0.1:80", method.lower(), path, args=query, data=raw or None, content_type=content_type
    )
    try:
        _openapi().validate_request(checked)
    except PathNotFound:
        return 404, NO_SUCH_PATH
    except Exception as exc:  # openapi-core's request errors share no narrower base
        cause = exc.__cause__ or exc
        try:
            detail = str(cause).splitlines()[0]
        except Exception:  # some of openapi-core's messages fail to render
            detail = type(cause).__name__
        return 400, f"Bad request: {detail}"
    return None


def _page(href: str, items: list[Any], offset: int, limit: int, total: int) -> dict[str, Any]:
    following = offset + limit
    return {
        "href": f"{href}?offset={offset}&limit={limit}",
        "items": items,
        "limit": limit,
        "offset": offset,
        "total": total,
        "next": f"{href}?offset={following}&limit={limit}" if following < total else None,
        "previous": f"{href}?offset={max(0, offset - limit)}&limit={limit}" if offset > 0 else None,
    }


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"status": status, "message": message}}, status=status, headers=headers)


@cache
def _openapi() -> Any:
    """The shared Spotify OpenAPI description, served from any 127.0.0.1 port."""
    import yaml
    from openapi_core import OpenAPI

    spec = yaml.load(SPEC.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    spec["servers"] = [{"url": "http://127.0.0.1:{port}/v1", "variables": {"port": {"default": "80"}}}]
    for operations in spec["paths"].values():  # the fake checks tokens itself; openapi-core has no OAuth 2
        for operation in operations.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    _add_discriminator_mappings(spec)
    return OpenAPI.from_dict(spec)


def _add_discriminator_mappings(node: Any) -> None:
    """The spec's track-or-episode unions name no discriminator mapping, so by OpenAPI's rules the
    value "track" would have to be a schema called `track`; map Spotify's values to their schemas."""
    if isinstance(node, dict):
        discriminator = node.get("discriminator")
        if isinstance(discriminator, dict) and "mapping" not in discriminator and "oneOf" in node:
            discriminator["mapping"] = {
                "track": "#/components/schemas/TrackObject",
                "episode": "#/components/schemas/EpisodeObject",
            }
        for value in node.values():
            _add_discriminator_mappings(value)
    elif isinstance(node, list):
        for value in node:
            _add_discriminator_mappings(value)


def assert_matches_spec(fake: FakeSpotify) -> int:
    """Check every Web API answer the fake sent against the spec; returns how many were checked.

    Skipped: dropped connections (no answer), paths the spec does not have (their 404 is the point),
    and the bodies `answer_with` was told to send (broken on purpose).
    """
    from openapi_core.templating.responses.exceptions import ResponseNotFound
    from openapi_core.testing import MockRequest, MockResponse

    openapi = _openapi()
    checked = 0
    for exchange in fake.requests_to():
        if exchange.status is None or isinstance(exchange.response, bytes):
            continue
        if exchange.status == 404 and (exchange.response or {}).get("error", {}).get("message") == NO_SUCH_PATH:
            continue
        request = MockRequest(
            fake.accounts_url,
            exchange.method.lower(),
            exchange.path,
            args=exchange.query,
            headers={"Authorization": "Bearer checked-by-the-fake"},
        )
        body = json.dumps(exchange.response).encode()
        try:
            try:
                openapi.validate_response(request, MockResponse(body, exchange.status, headers=exchange.headers))
            except ResponseNotFound:
                # Real Spotify also answers 404 and 5xx, which the spec does not list for these paths:
                # their body must still be the error wrapper that the listed 401/403/429 answers use.
                assert exchange.status >= 400, "a success status the spec does not list"
                openapi.validate_response(request, MockResponse(body, 401, headers=exchange.headers))
        except Exception as exc:  # name the exchange; the validator's own message is long
            raise AssertionError(f"{exchange.method} {exchange.path} -> {exchange.status}: {exc}") from exc
        checked += 1
    return checked
