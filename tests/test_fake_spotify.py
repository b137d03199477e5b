"""The fake Spotify itself: its answers, switches included, match the shared OpenAPI description."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlparse

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


def test_requests_that_break_the_spec_are_refused(fake_spotify: FakeSpotify, user: dict[str, str]):
    api = fake_spotify.api_url
    nameless = requests.post(f"{api}me/playlists", headers=user, json={"public": True})
    assert nameless.status_code == 400 and "name" in nameless.json()["error"]["message"]
    assert fake_spotify.playlists == {}  # refused before anything was made
    assert requests.get(f"{api}me/playlists?limit=500", headers=user).status_code == 400
    assert requests.get(f"{api}me/playlists?limit=many", headers=user).status_code == 400
    not_json = requests.post(f"{api}me/playlists", headers={**user, "Content-Type": "application/json"}, data=b"{name")
    assert not_json.status_code == 400
    assert requests.get(f"{api}me/", headers=user).status_code == 404  # spotipy's me(); the spec has no such path

    playlist = requests.post(f"{api}me/playlists", headers=user, json={"name": "Moodring · Angry"}).json()["id"]
    items = f"{api}playlists/{playlist}/items"
    assert requests.post(items, headers=user, json=[f"spotify:track:{TRACK}"]).status_code == 400  # not an object
    assert requests.post(items, headers=user, json={"uris": ["not-a-uri"]}).status_code == 400
    too_many = [f"spotify:track:{TRACK}"] * 101
    assert requests.put(items, headers=user, json={"uris": too_many}).status_code == 400
    assert requests.delete(items, headers=user, json={"uris": [f"spotify:track:{TRACK}"]}).status_code == 400
    assert fake_spotify.playlists[playlist].items == []
    assert assert_matches_spec(fake_spotify) == 9  # the 404 for a path the spec lacks is not checked


def test_items_go_on_top_move_and_go(fake_spotify: FakeSpotify, user: dict[str, str]):
    api = fake_spotify.api_url
    first, second, third = (f"spotify:track:{track}" for track in list(fake_spotify.catalogue)[:3])
    playlist = requests.post(f"{api}me/playlists", headers=user, json={"name": "Moodring · Fear"}).json()["id"]
    items = f"{api}playlists/{playlist}/items"
    assert requests.post(items, headers=user, json={"uris": [first, second]}).status_code == 201
    assert requests.post(items, headers=user, json={"uris": [third], "position": 0}).status_code == 201
    assert fake_spotify.playlists[playlist].items == [third, first, second]
    reordered = requests.put(items, headers=user, json={"range_start": 2, "insert_before": 0})
    assert reordered.status_code == 200
    assert fake_spotify.playlists[playlist].items == [second, third, first]
    removed = requests.delete(items, headers=user, json={"items": [{"uri": third}]})
    assert removed.status_code == 200 and removed.json()["snapshot_id"]
    assert fake_spotify.playlists[playlist].items == [second, first]
    page = requests.get(f"{items}?offset=1&limit=1", headers=user).json()
    assert [entry["item"]["uri"] for entry in page["items"]] == [first] and page["total"] == 2
    assert assert_matches_spec(fake_spotify) == 6


def test_forbidden_and_broken_bodies_on_request(fake_spotify: FakeSpotify, user: dict[str, str]):
    track = f"{fake_spotify.api_url}tracks/{TRACK}"
    fake_spotify.fail(times=1, status=403)
    forbidden = requests.get(track, headers=user)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["status"] == 403
    fake_spotify.answer_with(times=1, body=b"")
    empty = requests.get(track, headers=user)
    assert (empty.status_code, empty.content) == (200, b"")
    fake_spotify.answer_with(times=1, body=b'{"id": ')
    malformed = requests.get(track, headers=user)
    assert malformed.status_code == 200
    with pytest.raises(ValueError):
        malformed.json()
    assert requests.get(track, headers=user).json()["id"] == TRACK  # switches are used up
    assert assert_matches_spec(fake_spotify) == 2  # the 403 and the normal answer; broken bodies are meant to be


def test_someone_elses_playlist_is_listed_but_not_changeable(fake_spotify: FakeSpotify, user: dict[str, str]):
    api = fake_spotify.api_url
    theirs = fake_spotify.add_foreign_playlist("Moodring · Happy")
    [listed] = requests.get(f"{api}me/playlists", headers=user).json()["items"]
    assert (listed["id"], listed["owner"]["id"]) == (theirs.id, "someone-else")
    add = requests.post(f"{api}playlists/{theirs.id}/items", headers=user, json={"uris": [f"spotify:track:{TRACK}"]})
    assert add.status_code == 403
    assert theirs.items == []
    assert fake_spotify.playlists_named("Moodring · Happy") == []  # none of the user's own
    assert assert_matches_spec(fake_spotify) == 2


def test_token_endpoint_checks_pkce_verifiers_and_denied_logins(fake_spotify: FakeSpotify):
    redirect = "http://127.0.0.1:9/callback"
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    query = {"client_id": CLIENT_ID, "response_type": "code", "redirect_uri": redirect, "state": "s1"}
    authorize = f"{fake_spotify.accounts_url}/authorize"

    def code() -> str:
        answer = requests.get(authorize, params={**query, "code_challenge": challenge}, allow_redirects=False)
        return parse_qs(urlparse(answer.headers["Location"]).query)["code"][0]

    token = f"{fake_spotify.accounts_url}/api/token"
    exchange = {"grant_type": "authorization_code", "redirect_uri": redirect, "client_id": CLIENT_ID}
    wrong = requests.post(token, data={**exchange, "code": code(), "code_verifier": "w" * 64})
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_grant")
    right = requests.post(token, data={**exchange, "code": code(), "code_verifier": verifier})
    assert right.status_code == 200 and right.json()["refresh_token"]
    no_secret = requests.post(token, data={"grant_type": "client_credentials", "client_id": CLIENT_ID})
    assert no_secret.json()["error"] == "invalid_client"  # client credentials always need the secret

    fake_spotify.deny_logins = True
    denied = requests.get(authorize, params=query, allow_redirects=False)
    assert parse_qs(urlparse(denied.headers["Location"]).query) == {"error": ["access_denied"], "state": ["s1"]}
