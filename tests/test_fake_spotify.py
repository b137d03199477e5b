"""The fake Spotify itself: its answers, switches included, match the shared OpenAPI description."""

from __future__ import annotations

import time

import pytest
import requests

from tests.fake_spotify import CLIENT_ID, CLIENT_SECRET, FakeSpotify, assert_matches_spec

TRACK = "7w87IxuO7BDcJ3YUqCyMTT"  # Pumped Up Kicks, in the embedded table


@pytest.fixture
def user(fake_spotify: FakeSpotify) -> dict[str, str]:
    return {"Authorization": f"Bearer {fake_spotify.issue_user_token()['access_token']}"}


def test_every_route_answers_as_the_spec_says(fake_spotify: FakeSpotify, user: dict[str, str]):
    api = fake_spotify.api_url
    assert requests.get(f"{api}tracks/{TRACK}", headers=user).json()["popularity"] == 84
    assert requests.get(f"{api}me", headers=user).json()["id"]
    created = requests.post(f"{api}me/playlists", headers=user, json={"name": "Moodring · Sad", "public": True})
    assert created.status_code == 201
    playlist = created.json()["id"]
    replaced = requests.put(f"{api}playlists/{playlist}/items", headers=user, json={"uris": [f"spotify:track:{TRACK}"]})
    assert replaced.status_code == 200 and replaced.json()["snapshot_id"]
    added = requests.post(f"{api}playlists/{playlist}/items", headers=user, json={"uris": [f"spotify:track:{TRACK}"]})
    assert added.status_code == 201
    assert requests.get(f"{api}playlists/{playlist}/items", headers=user).json()["total"] == 2
    assert requests.get(f"{api}playlists/{playlist}", headers=user).json()["name"] == "Moodring · Sad"
    assert requests.get(f"{api}me/playlists?limit=1", headers=user).json()["total"] == 1
    assert requests.get(f"{api}tracks/{'0' * 22}", headers=user).status_code == 404
    assert requests.get(f"{api}me", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert assert_matches_spec(fake_spotify) == 10


def test_switches_answer_as_the_spec_says(fake_spotify: FakeSpotify, user: dict[str, str]):
    track = f"{fake_spotify.api_url}tracks/{TRACK}"
    fake_spotify.rate_limit(times=1, retry_after=7)
    limited = requests.get(track, headers=user)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "7")
    fake_spotify.fail(times=1, status=503)
    assert requests.get(track, headers=user).status_code == 503
    fake_spotify.omit_popularity = True
    assert "popularity" not in requests.get(track, headers=user).json()
    fake_spotify.delay = 0.3
    started = time.monotonic()
    assert requests.get(track, headers=user).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert assert_matches_spec(fake_spotify) == 4


def test_down_refuses_and_up_serves_again(fake_spotify: FakeSpotify, user: dict[str, str]):
    track = f"{fake_spotify.api_url}tracks/{TRACK}"
    with requests.Session() as session:
        assert session.get(track, headers=user).status_code == 200  # a kept-alive connection
        fake_spotify.down()
        with pytest.raises(requests.ConnectionError):
            session.get(track, headers=user)
        with pytest.raises(requests.ConnectionError):
            requests.get(track, headers=user)
        fake_spotify.up()
        assert requests.get(track, headers=user).status_code == 200


def test_lost_create_answer_still_creates(fake_spotify: FakeSpotify, user: dict[str, str]):
    fake_spotify.lose_create_responses(times=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{fake_spotify.api_url}me/playlists", headers=user, json={"name": "Moodring · Fear"})
    assert len(fake_spotify.playlists_named("Moodring · Fear")) == 1


def test_token_endpoint_checks_the_client(fake_spotify: FakeSpotify):
    url = f"{fake_spotify.accounts_url}/api/token"
    good = requests.post(url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, CLIENT_SECRET))
    assert good.json()["token_type"] == "Bearer"
    bad = requests.post(url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, "wrong"))
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_client")
