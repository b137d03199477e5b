"""Spotify against a real HTTP peer: spotipy talks to the fake server in `tests/fake_spotify.py`."""

from __future__ import annotations

import json
import logging
import socket
import stat
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from moodring.recommender import Recommender
from moodring.recommender.login import login
from moodring.recommender.spotify_client import POOL_WORKERS, RATE_LIMITED_TRIES
from moodring.recommender.table import SongTable

from moodring.errors import ConfigError
from moodring.settings import Settings
from tests.fake_spotify import CLIENT_SECRET, USER_ID, FakeSpotify, assert_matches_spec

HAPPY_PLAYLIST = "Moodring · Happy"


@pytest.fixture(scope="module")
def table() -> SongTable:
    return SongTable.load()


@pytest.fixture
def make_recommender(spotify_settings: Settings, table: SongTable):
    """Build recommenders on the fake (each one a fresh process, as far as Spotify can tell)."""
    made: list[Recommender] = []

    def make(**changes) -> Recommender:
        rec = Recommender.from_settings(replace(spotify_settings, **changes))
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


def test_without_login_there_is_no_playlist_and_no_prompt(fake_spotify, tmp_path, table):
    settings = Settings.load(environ=fake_spotify.environ(tmp_path, login=False))
    with Recommender.from_settings(settings) as rec:
        result = rec.recommend("happy", with_playlist=True)
    assert result.playlist_url is None and len(result.tracks) == 5
    assert fake_spotify.requests_to("POST", "/v1/me/playlists") == []


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


def test_spotify_login_needs_client_credentials_and_a_loopback_redirect(tmp_path: Path, fake_spotify):
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
