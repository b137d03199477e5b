"""Spotify against a real HTTP peer: spotipy talks to the fake server in `tests/fake_spotify.py`."""

from __future__ import annotations

import html
import json
import logging
import os
import re
import socket
import stat
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from moodring.recommender import Recommender
from moodring.recommender.login import login
from moodring.recommender.playlists import PLAYLIST_CAP
from moodring.recommender.spotify_auth import PLAYLIST_SCOPES
from moodring.recommender.spotify_client import (
    DEFAULT_RETRY_AFTER,
    POOL_WORKERS,
    RATE_LIMITED_TRIES,
    REFUSED_PAUSE,
    SpotifyGateway,
    playlist_url,
)
from moodring.recommender.table import SongTable

from moodring.errors import ConfigError, LoginError
from moodring.settings import Settings
from tests.fake_spotify import CLIENT_SECRET, USER_ID, FakeSpotify, assert_matches_spec

HAPPY_PLAYLIST = "Moodring · Happy"


@pytest.fixture(scope="module")
def table() -> SongTable:
    return SongTable.load()


@pytest.fixture
def make_recommender(spotify_settings: Settings, table: SongTable):
    """Build recommenders on the fake (each one a fresh process, as far as Spotify can tell).

    They use the `popularity` ranking: its fixed order lets these tests name which songs live data moves.
    """
    made: list[Recommender] = []

    def make(**changes) -> Recommender:
        rec = Recommender.from_settings(replace(spotify_settings, **{"ranking": "popularity", **changes}))
        made.append(rec)
        return rec

    yield make
    for rec in made:
        rec.close()


def uris(recommendation) -> list[str]:
    return [f"spotify:track:{t.id}" for t in recommendation.tracks]


def spotify_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("moodring.recommender")
    ]


def test_live_popularity_reranks_and_missing_values_fall_back_to_the_table(fake_spotify, make_recommender, caplog):
    rec = make_recommender()
    table_top = rec.recommend("happy").tracks  # the fake serves the table's own values
    assert [t.popularity for t in table_top] == [84, 84, 84, 83, 83]
    assert len(fake_spotify.requests_to("GET", "/v1/tracks/*")) == 10  # two candidates per track, one by one
    assert fake_spotify.requests_to("GET", "/v1/tracks") == []  # never the removed batch endpoint

    fresh = make_recommender()
    fake_spotify.set_popularity(table_top[0].id, 12)
    fake_spotify.set_popularity(table_top[4].id, 99)
    live = fresh.recommend("happy").tracks
    assert live[0].id == table_top[4].id and live[0].popularity == 99
    assert table_top[0].id not in [t.id for t in live]

    fake_spotify.omit_popularity = True
    unknown = make_recommender().recommend("happy").tracks
    assert [t.id for t in unknown] == [t.id for t in table_top]
    assert spotify_warnings(caplog) == []
    assert assert_matches_spec(fake_spotify) > 0


def test_popularity_is_cached_for_its_ttl(fake_spotify, make_recommender):
    rec = make_recommender()
    rec.recommend("happy")
    asked = len(fake_spotify.requests_to("GET", "/v1/tracks/*"))
    rec.recommend("happy")
    rec.recommend("sad")  # notebook: sad gets Happy songs too, same candidates
    assert len(fake_spotify.requests_to("GET", "/v1/tracks/*")) == asked
    short = make_recommender(popularity_ttl=0.05)
    short.recommend("happy")
    time.sleep(0.1)
    short.recommend("happy")
    assert len(fake_spotify.requests_to("GET", "/v1/tracks/*")) == asked + 2 * asked


def test_playlist_is_created_once_and_reused_across_restarts(fake_spotify, make_recommender, spotify_settings):
    first = make_recommender().recommend("happy", with_playlist=True)
    assert first.playlist_url
    [playlist] = fake_spotify.playlists_named(HAPPY_PLAYLIST)
    assert first.playlist_url == f"https://open.spotify.com/playlist/{playlist.id}"
    assert playlist.items == uris(first)
    stored = json.loads(spotify_settings.playlist_store.read_text())
    assert stored == {USER_ID: {"happy": playlist.id}}

    restarted = make_recommender().recommend("happy", k=3, with_playlist=True)  # a new process: reads the store
    assert restarted.playlist_url == first.playlist_url
    assert len(fake_spotify.requests_to("POST", "/v1/me/playlists")) == 1
    top = [f"spotify:track:{t.id}" for t in restarted.tracks]
    assert playlist.items == top + [uri for uri in uris(first) if uri not in top]  # repeats moved up, not doubled

    spotify_settings.playlist_store.unlink()  # store lost: the playlist is found by name, not made again
    again = make_recommender().recommend("happy", with_playlist=True)
    assert again.playlist_url == first.playlist_url
    assert len(fake_spotify.playlists_named(HAPPY_PLAYLIST)) == 1

    sad = make_recommender().recommend("sad", strategy="match", with_playlist=True)
    [sad_playlist] = fake_spotify.playlists_named("Moodring · Sad")
    assert sad.playlist_url.endswith(sad_playlist.id)
    assert fake_spotify.requests_to("POST", "/v1/users/*") == []  # the removed create endpoint
    assert all(r.path.endswith("/items") for r in fake_spotify.requests_to(path="/v1/playlists/*"))
    assert [r for r in fake_spotify.requests_to() if r.status >= 400] == []  # the strict fake accepted each one
    assert assert_matches_spec(fake_spotify) > 0


def test_a_deleted_playlist_is_made_again(fake_spotify, make_recommender):
    rec = make_recommender()
    first = rec.recommend("happy", with_playlist=True)
    fake_spotify.playlists.clear()  # the owner deleted it in Spotify
    second = rec.recommend("happy", with_playlist=True)
    assert second.playlist_url and second.playlist_url != first.playlist_url
    assert len(fake_spotify.playlists_named(HAPPY_PLAYLIST)) == 1


def test_lost_create_answer_makes_no_duplicate(fake_spotify, make_recommender, caplog):
    fake_spotify.lose_create_responses(times=1)
    result = make_recommender().recommend("happy", with_playlist=True)
    [playlist] = fake_spotify.playlists_named(HAPPY_PLAYLIST)
    assert result.playlist_url.endswith(playlist.id)
    assert len(fake_spotify.requests_to("POST", "/v1/me/playlists")) == 1
    assert playlist.items == [f"spotify:track:{t.id}" for t in result.tracks]


def test_racing_calls_make_one_playlist(fake_spotify, make_recommender):
    rec = make_recommender()
    urls: list[str | None] = []
    threads = [
        threading.Thread(target=lambda: urls.append(rec.recommend("happy", with_playlist=True).playlist_url))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(urls)) == 1 and urls[0]
    assert len(fake_spotify.playlists_named(HAPPY_PLAYLIST)) == 1


def assert_quiet_after_429(recorded: list, quiet: float, in_flight: float = 0.2) -> None:
    """After the first 429, only requests already in flight (sent within `in_flight` s) may arrive
    before `quiet` seconds have passed; and something did arrive afterwards."""
    first_429 = min(request.at for request in recorded if request.status == 429)
    later = [request.at - first_429 for request in recorded if request.at > first_429 + in_flight]
    assert later and min(later) >= quiet


def test_429_retry_after_is_honoured_within_the_budget(fake_spotify, make_recommender, table, caplog):
    rec = make_recommender(spotify_timeout=3.0)
    fake_spotify.set_popularity(table.ids[table.by_mood["Happy"][4]], 99)
    fake_spotify.rate_limit(times=POOL_WORKERS, retry_after=1)  # the whole first wave is told to wait
    started = time.monotonic()
    result = rec.recommend("happy")
    elapsed = time.monotonic() - started
    assert result.tracks[0].popularity == 99  # live data, after waiting
    assert 1.0 <= elapsed < 3.0
    assert_quiet_after_429(fake_spotify.requests_to("GET", "/v1/tracks/*"), quiet=1.0)
    assert spotify_warnings(caplog) == []


def test_429_retry_after_is_capped(fake_spotify, make_recommender):
    rec = make_recommender(spotify_timeout=2.0, spotify_max_pause=0.5)
    fake_spotify.rate_limit(times=POOL_WORKERS, retry_after=3600)
    started = time.monotonic()
    result = rec.recommend("happy")
    assert 0.5 <= time.monotonic() - started < 2.0
    assert len(result.tracks) == 5
    assert_quiet_after_429(fake_spotify.requests_to("GET", "/v1/tracks/*"), quiet=0.5)


def test_429_longer_than_the_budget_falls_back_and_pauses_calls(fake_spotify, make_recommender, caplog):
    rec = make_recommender(spotify_timeout=0.5)
    fake_spotify.rate_limit(times=1, retry_after=30)
    started = time.monotonic()
    result = rec.recommend("happy", with_playlist=True)
    assert time.monotonic() - started < 0.5 + 0.3
    assert [t.popularity for t in result.tracks] == [84, 84, 84, 83, 83]  # the local table's values
    assert result.playlist_url is None
    [warning] = spotify_warnings(caplog)
    assert "429" in warning and "local song table" in warning
    sent = len(fake_spotify.requests_to())
    rec.recommend("sad", with_playlist=True)
    assert len(fake_spotify.requests_to()) == sent  # paused: no call goes out before Retry-After ends


@pytest.mark.parametrize("trouble", ["down", "slow", "5xx", "401"])
def test_spotify_trouble_falls_back_to_the_local_table_within_the_budget(
    trouble, fake_spotify, make_recommender, caplog
):
    budget = 0.5
    rec = make_recommender(spotify_timeout=budget)
    expected = rec.recommend("angry")  # warm: tokens fetched, connections open
    caplog.clear()
    if trouble == "down":
        fake_spotify.down()
    elif trouble == "slow":
        fake_spotify.delay = 3.0
    elif trouble == "5xx":
        fake_spotify.fail(times=100, status=503)
    else:  # every token is revoked and Spotify refuses to issue new ones
        fake_spotify.expire_tokens()
        fake_spotify.fail(times=100, status=401)
    started = time.monotonic()
    result = rec.recommend("happy", with_playlist=True)
    elapsed = time.monotonic() - started
    assert elapsed < budget + 0.3
    assert [t.name for t in result.tracks][:3] == ["Pumped Up Kicks", "Africa", "Take on Me"]
    assert result.playlist_url is None
    assert len(spotify_warnings(caplog)) == 1
    assert rec.recommend("angry") == expected
    if trouble == "down":
        fake_spotify.up()


def test_an_expired_token_is_renewed_without_a_warning(fake_spotify, make_recommender, caplog):
    rec = make_recommender()
    rec.recommend("happy", with_playlist=True)
    fake_spotify.expire_tokens()  # access tokens rejected; client credentials and refresh token still work
    fresh = rec.recommend("fear", with_playlist=True)
    assert fresh.playlist_url
    assert spotify_warnings(caplog) == []


@pytest.mark.parametrize("secret", [CLIENT_SECRET, ""], ids=["client-secret", "pkce"])
def test_without_login_there_is_no_playlist_and_no_prompt(secret, fake_spotify, tmp_path, table, caplog):
    settings = Settings.load(environ=fake_spotify.environ(tmp_path, login=False, SPOTIPY_CLIENT_SECRET=secret))
    with Recommender.from_settings(settings) as rec:
        result = rec.recommend("happy", with_playlist=True)
    assert result.playlist_url is None and len(result.tracks) == 5
    assert fake_spotify.requests_to("POST", "/v1/me/playlists") == []
    if not secret:  # PKCE and no login yet: nothing to ask Spotify with, and nothing to warn about
        assert fake_spotify.requests_to() == [] and spotify_warnings(caplog) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_spotify_login_stores_a_private_token(fake_spotify: FakeSpotify, tmp_path: Path):
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    settings = Settings.load(environ=fake_spotify.environ(tmp_path, login=False, SPOTIPY_REDIRECT_URI=redirect))
    seen: list[str] = []

    def browser(url: str) -> None:  # the user's browser: approve, follow the redirect to our callback
        seen.append(url)
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 5}, daemon=True).start()

    profile = login(settings, open_url=browser, timeout=10)
    assert profile["id"] == USER_ID
    assert seen[0].startswith(f"{fake_spotify.accounts_url}/authorize?")
    assert "client_secret" not in seen[0]
    token_file = settings.spotify_token_cache
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text())["refresh_token"]
    with Recommender.from_settings(settings) as rec:  # the stored login now serves playlists
        assert rec.recommend("happy", with_playlist=True).playlist_url


def test_spotify_login_needs_a_client_id_and_a_loopback_redirect(tmp_path: Path, fake_spotify):
    bare = Settings.load(environ={"MOODRING_SPOTIFY_TOKEN_CACHE": str(tmp_path / "t.json")})
    with pytest.raises(ConfigError, match="SPOTIPY_CLIENT_ID"):
        login(bare, open_url=print, timeout=1)
    remote = Settings.load(
        environ=fake_spotify.environ(tmp_path, login=False, SPOTIPY_REDIRECT_URI="http://localhost:8888/callback")
    )
    with pytest.raises(ConfigError, match="127.0.0.1"):
        login(remote, open_url=print, timeout=1)


def test_cli_recommend_with_playlist_prints_its_link(fake_spotify, tmp_path, monkeypatch, capsys):
    from moodring.cli import main

    for name, value in fake_spotify.environ(tmp_path).items():
        monkeypatch.setenv(name, value)
    assert main(["recommend", "--emotion", "surprise", "--playlist", "--json"]) == 0
    out, err = capsys.readouterr()
    answer = json.loads(out)
    [playlist] = fake_spotify.playlists_named("Moodring · Surprise")
    assert answer["playlist_url"] == f"https://open.spotify.com/playlist/{playlist.id}"
    assert playlist.items == [f"spotify:track:{track['id']}" for track in answer["tracks"]]
    assert CLIENT_SECRET not in out + err


def test_endless_429s_cost_a_bounded_number_of_requests(fake_spotify, make_recommender, caplog):
    rec = make_recommender(spotify_timeout=1.0)
    fake_spotify.rate_limit(times=1000, retry_after=0)
    result = rec.recommend("happy")
    assert [t.popularity for t in result.tracks] == [84, 84, 84, 83, 83]
    assert len(fake_spotify.requests_to("GET", "/v1/tracks/*")) <= 10 * RATE_LIMITED_TRIES
    [warning] = spotify_warnings(caplog)
    assert "429" in warning


def test_a_reply_goes_on_top_and_recent_replies_keep_their_songs(fake_spotify, spotify_settings, table):
    gateway = SpotifyGateway(spotify_settings)
    ids = [str(track_id) for track_id in table.ids]
    replies = [ids[5 * n : 5 * n + 5] for n in range(PLAYLIST_CAP // 5 + 1)]
    try:
        for reply in replies[:-1]:
            url, problem = gateway.playlist("calm", reply, time.monotonic() + 5)
            assert problem is None
        [playlist] = fake_spotify.playlists_named("Moodring · Calm")
        assert len(playlist.items) == PLAYLIST_CAP
        for reply in replies[:-1]:  # every one of the last 20 links still holds its reply's songs
            assert {f"spotify:track:{track}" for track in reply} <= set(playlist.items)

        url, _ = gateway.playlist("calm", replies[-1], time.monotonic() + 5)
        assert url == playlist_url(playlist.id) and len(playlist.items) == PLAYLIST_CAP
        assert playlist.items[:5] == [f"spotify:track:{track}" for track in replies[-1]]
        assert not {f"spotify:track:{track}" for track in replies[0]} & set(playlist.items)  # the oldest went

        repeat = [replies[3][0], replies[10][2], replies[-1][4]]  # songs already in it move up, never twice
        gateway.playlist("calm", repeat, time.monotonic() + 5)
        assert playlist.items[:3] == [f"spotify:track:{track}" for track in repeat]
        assert len(playlist.items) == len(set(playlist.items)) == PLAYLIST_CAP - 0
    finally:
        gateway.close()
    assert len(fake_spotify.requests_to("POST", "/v1/me/playlists")) == 1
    assert [r for r in fake_spotify.requests_to() if r.status >= 400] == []
    assert assert_matches_spec(fake_spotify) > 0


def test_someone_elses_playlist_of_the_same_name_is_left_alone(fake_spotify, make_recommender):
    theirs = fake_spotify.add_foreign_playlist(HAPPY_PLAYLIST)
    result = make_recommender().recommend("happy", with_playlist=True)
    [mine] = fake_spotify.playlists_named(HAPPY_PLAYLIST)
    assert result.playlist_url.endswith(mine.id) and mine.id != theirs.id
    assert theirs.items == [] and mine.items == uris(result)


def test_me_is_asked_without_a_trailing_slash(fake_spotify, make_recommender):
    assert make_recommender().recommend("happy", with_playlist=True).playlist_url
    assert len(fake_spotify.requests_to("GET", "/v1/me")) == 1
    assert fake_spotify.requests_to("GET", "/v1/me/") == []


class ShiftableClock:
    """`time.monotonic`, plus however far a test moves it on."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_login_warns_once_then_pauses_until_a_new_login_or_ten_minutes(
    status, fake_spotify, spotify_settings, table, caplog
):
    clock = ShiftableClock()
    gateway = SpotifyGateway(spotify_settings, clock=clock)
    with Recommender(table, spotify_settings, spotify=gateway, clock=clock) as rec:
        fake_spotify.fail(times=10_000, status=status)  # stays refused, whatever token is sent
        first = rec.recommend("happy", with_playlist=True)
        assert len(first.tracks) == 5 and first.playlist_url is None
        [warning] = spotify_warnings(caplog)
        assert f"HTTP {status}" in warning and "run `moodring spotify-login` again" in warning
        sent = len(fake_spotify.requests_to())
        assert sent <= 2 * (POOL_WORKERS + 1)  # the first wave and one refresh, not 20 tracks and 10 tokens

        rec.recommend("fear", with_playlist=True)
        rec.recommend("angry")
        assert len(fake_spotify.requests_to()) == sent  # paused: nothing goes out
        assert len(spotify_warnings(caplog)) == 1  # and nothing more is said

        clock.offset = REFUSED_PAUSE + 1  # ten minutes later, calls are tried again
        rec.recommend("surprise")
        assert len(fake_spotify.requests_to()) > sent
        sent = len(fake_spotify.requests_to())
        rec.recommend("neutral")
        assert len(fake_spotify.requests_to()) == sent  # refused again: paused again
        assert len(spotify_warnings(caplog)) == 2

        fake_spotify.clear_faults()
        login = fake_spotify.issue_user_token()  # `moodring spotify-login` ran again: the file changes
        spotify_settings.spotify_token_cache.write_text(json.dumps(login))
        assert rec.recommend("happy", with_playlist=True).playlist_url
        assert len(spotify_warnings(caplog)) == 2


def test_429_without_retry_after_pauses_the_default_time(fake_spotify, make_recommender, caplog):
    rec = make_recommender(spotify_timeout=0.5)
    fake_spotify.rate_limit(times=1, retry_after=None)  # the spec defines no Retry-After header
    result = rec.recommend("happy")
    assert [t.popularity for t in result.tracks] == [84, 84, 84, 83, 83]
    [warning] = spotify_warnings(caplog)
    paused = float(re.search(r"calls paused for ([0-9.]+) s", warning).group(1))
    assert DEFAULT_RETRY_AFTER - 1 < paused <= DEFAULT_RETRY_AFTER
    sent = len(fake_spotify.requests_to())
    rec.recommend("sad")
    assert len(fake_spotify.requests_to()) == sent


@pytest.mark.parametrize("body", [b"", b'{"id": '])
def test_empty_or_malformed_answers_fall_back_without_a_traceback(body, fake_spotify, make_recommender, caplog):
    fake_spotify.answer_with(times=10_000, body=body)
    result = make_recommender().recommend("happy", with_playlist=True)
    assert [t.name for t in result.tracks][:3] == ["Pumped Up Kicks", "Africa", "Take on Me"]
    assert result.playlist_url is None
    assert len(spotify_warnings(caplog)) <= 1
    assert not any(record.exc_info for record in caplog.records)


class Browser:
    """The user's browser: follows Spotify's redirect to the callback, or opens a link of its own."""

    def __init__(self, replace_with: str | None = None):
        self.replace_with = replace_with
        self.opened: list[str] = []
        self.pages: list[requests.Response] = []

    def __call__(self, url: str) -> None:
        self.opened.append(url)
        target = self.replace_with or url
        threading.Thread(target=lambda: self.pages.append(requests.get(target, timeout=10)), daemon=True).start()

    def page(self) -> requests.Response:
        for _ in range(100):
            if self.pages:
                return self.pages[0]
            time.sleep(0.05)
        raise AssertionError("the callback never answered the browser")


def test_pkce_login_needs_no_client_secret(fake_spotify: FakeSpotify, tmp_path: Path):
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    environ = fake_spotify.environ(tmp_path, login=False, SPOTIPY_REDIRECT_URI=redirect, SPOTIPY_CLIENT_SECRET="")
    settings = Settings.load(environ=environ)
    assert settings.spotify_client_secret is None
    browser = Browser()
    assert login(settings, open_url=browser, timeout=10)["id"] == USER_ID
    asked = parse_qs(urlparse(browser.opened[0]).query)
    assert asked["code_challenge_method"] == ["S256"] and asked["code_challenge"]
    assert set(asked["scope"][0].split()) == set(PLAYLIST_SCOPES.split())
    assert "playlist-read-private" in PLAYLIST_SCOPES  # to find a private Moodring playlist by name
    page = browser.page()
    assert page.status_code == 200 and "connected to Spotify as Moodring Tester" in page.text
    with Recommender.from_settings(settings) as rec:  # the user's own token serves the catalogue and playlists
        result = rec.recommend("happy", ranking="popularity", with_playlist=True)
    assert result.playlist_url and [t.popularity for t in result.tracks] == [84, 84, 84, 83, 83]
    assert fake_spotify.requests_to("GET", "/v1/tracks/*")


@pytest.mark.parametrize(
    ("trouble", "said"),
    [
        ("denied", "Spotify refused the login (access_denied)"),
        ("forged", "state mismatch"),
        ("unwritable", "cannot store the token in"),
    ],
)
def test_the_callback_page_says_what_failed(trouble, said, fake_spotify: FakeSpotify, tmp_path: Path):
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    environ = fake_spotify.environ(tmp_path, login=False, SPOTIPY_REDIRECT_URI=redirect)
    browser = Browser()
    if trouble == "denied":
        fake_spotify.deny_logins = True
    elif trouble == "forged":  # a redirect that this login attempt did not start
        browser = Browser(replace_with=f"{redirect}?code=stolen&state=someone-elses")
    else:
        (tmp_path / "a-file").write_text("")
        environ["MOODRING_SPOTIFY_TOKEN_CACHE"] = str(tmp_path / "a-file" / "token.json")
    settings = Settings.load(environ=environ)
    with pytest.raises(LoginError, match=re.escape(said)):
        login(settings, open_url=browser, timeout=10)
    page = browser.page()
    assert page.status_code == 400
    assert "not connected" in page.text and said in html.unescape(page.text)
    assert not settings.spotify_token_cache.exists()


def run_cli(args: list[str], environ: dict[str, str], cwd: Path) -> subprocess.Popen:
    """`moodring ARGS` in a child process, with only the fake's settings (no developer .env)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SPOTIPY_", "MOODRING_", "DISCORD_"))}
    return subprocess.Popen(
        [sys.executable, "-m", "moodring.cli", *args],
        env={**clean, **environ},
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"MOODRING_DEBUG_SPOTIFY": "1", "MOODRING_DEBUG_DISCORD": "1"},
        {"MOODRING_DEBUG_SPOTIFY": "1", "SPOTIPY_CLIENT_SECRET": ""},  # PKCE
    ],
    ids=["verbose", "library-debug", "pkce-library-debug"],
)
def test_verbose_login_and_recommend_print_no_secret(extra, fake_spotify: FakeSpotify, tmp_path: Path):
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    environ = fake_spotify.environ(tmp_path, login=False, SPOTIPY_REDIRECT_URI=redirect, **extra)
    child = run_cli(["-v", "spotify-login", "--no-browser", "--timeout", "30"], environ, tmp_path)
    output = []
    for line in child.stdout:  # the link comes first; then the browser follows Spotify's redirect
        output.append(line)
        if "/authorize?" in line:
            assert requests.get(line.strip(), timeout=20).status_code == 200
            break
    rest, _ = child.communicate(timeout=60)
    login_output = "".join(output) + rest
    assert child.returncode == 0, login_output
    assert "Logged in to Spotify as Moodring Tester" in login_output

    fake_spotify.expire_tokens()  # the next run refreshes the user token and fetches an app token
    child = run_cli(["-v", "recommend", "--emotion", "happy", "--playlist"], environ, tmp_path)
    recommend_output, _ = child.communicate(timeout=120)
    assert child.returncode == 0, recommend_output
    assert "playlist: https://open.spotify.com/playlist/" in recommend_output

    everything = login_output + recommend_output
    leaked = [secret for secret in fake_spotify.issued_secrets() if secret in everything]
    assert leaked == [], everything
    if extra.get("MOODRING_DEBUG_SPOTIFY"):  # spotipy's debug lines were there, with their secrets redacted
        assert "Sending POST" in everything and "<redacted>" in everything
    else:
        assert "Sending POST" not in everything


def test_a_login_without_the_read_scope_asks_once_for_a_new_one(
    fake_spotify, spotify_settings, make_recommender, caplog
):
    token = json.loads(spotify_settings.spotify_token_cache.read_text())
    token["scope"] = "playlist-modify-public playlist-modify-private"  # a login from before the read scope
    spotify_settings.spotify_token_cache.write_text(json.dumps(token))
    rec = make_recommender()
    assert rec.recommend("happy", with_playlist=True).playlist_url is None
    assert rec.recommend("sad", with_playlist=True).playlist_url is None
    [warning] = spotify_warnings(caplog)
    assert "playlist-read-private" in warning and "run `moodring spotify-login` again" in warning
    assert fake_spotify.requests_to("POST", "/v1/me/playlists") == []
