"""`moodring recommend` and `moodring spotify-login`."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from moodring.emotion import MIN_PICTURE_SIDE

from moodring.errors import ImageError, MoodringError
from moodring.settings import Settings

if TYPE_CHECKING:
    from moodring.recommender import Recommendation


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `recommend` and `spotify-login` to the `moodring` command."""
    recommend = subparsers.add_parser(
        "recommend",
        help="tracks (and a Spotify playlist) for an emotion or a selfie",
        description="Recommend tracks for the emotion on a selfie, or for an emotion given by name. Selfies "
        f"smaller than {MIN_PICTURE_SIDE} px on a side are refused: too small to hold a readable face.",
    )
    source = recommend.add_mutually_exclusive_group(required=True)
    source.add_argument("image", nargs="?", type=Path, metavar="IMAGE", help="a selfie (read in memory only)")
    source.add_argument("--emotion", metavar="NAME", help="angry, disgust, fear, happy, sad, surprise or neutral")
    recommend.add_argument("-k", type=int, default=5, help="how many tracks (default 5)")
    recommend.add_argument(
        "--strategy",
        metavar="NAME",
        help="notebook or match, kept as the --user's choice (default: their last choice, else MOODRING_STRATEGY)",
    )
    recommend.add_argument("--ranking", metavar="NAME", help="varied or popularity (default: MOODRING_RANKING)")
    recommend.add_argument(
        "--playlist", action="store_true", help="refresh the emotion's Spotify playlist, print its link"
    )
    recommend.add_argument(
        "--user",
        metavar="NAME",
        help="whose history to use and extend, so that runs vary (default: your login name; "
        "a number or discord:ID is a Discord user)",
    )
    recommend.add_argument("--json", action="store_true", help="print exactly one JSON object")
    recommend.set_defaults(handler=run_recommend)

    login = subparsers.add_parser(
        "spotify-login",
        help="log in to Spotify once so Moodring can keep a playlist per emotion",
        description="Authorization Code flow; the token is stored at MOODRING_SPOTIFY_TOKEN_CACHE with mode 0600.",
    )
    login.add_argument("--no-browser", action="store_true", help="print the link instead of opening a browser")
    login.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the redirect (default 300)")
    login.set_defaults(handler=run_spotify_login)


def _emotion_of_selfie(path: Path, settings: Settings) -> str:
    """The selfie pipeline's verdict; the image bytes stay in memory. Image errors name the file."""
    from moodring.emotion import EmotionRecognizer
    from moodring.emotion.image import read_image_file

    try:
        data = read_image_file(path, settings.max_image_bytes)
        emotion = EmotionRecognizer.from_settings(settings).analyze(data).emotion
    except ImageError as exc:
        raise ImageError(f"{path}: {exc}") from None
    if emotion is None:
        raise MoodringError(f"no face found in {path}; try a clearer selfie, or pass --emotion NAME")
    return emotion


def run_recommend(args: argparse.Namespace) -> int:
    """Handler of `moodring recommend`."""
    settings = Settings.load()
    from moodring.recommender.core import check_emotion, check_ranking
    from moodring.recommender.strategies import get_strategy

    from moodring.store import user_key_from_cli

    # Bad input is refused before the store is opened (and perhaps created): it changes nothing.
    user_key = user_key_from_cli(args.user if args.user is not None else getpass.getuser())
    if args.strategy is not None:
        args.strategy = get_strategy(args.strategy).name
    if args.ranking is not None:
        args.ranking = check_ranking(args.ranking, "--ranking")
    emotion = check_emotion(args.emotion) if args.emotion is not None else _emotion_of_selfie(args.image, settings)
    result, playlists_enabled = asyncio.run(_recommend_remembered(args, settings, emotion, user_key))
    if args.json:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
        return 0
    print(f"{result.emotion} → {result.mood}")
    for number, track in enumerate(result.tracks, start=1):
        popularity = "?" if track.popularity is None else track.popularity
        print(f"{number:2}. {track.name} — {track.artist} (popularity {popularity})  {track.url}")
    if args.playlist:
        if result.playlist_url:
            print(f"playlist: {result.playlist_url}")
        elif not playlists_enabled:
            print("playlist: off (set SPOTIPY_CLIENT_ID/SECRET in .env, then run `moodring spotify-login`)")
        else:
            print("playlist: not available right now (see the warning above)")
    return 0


async def _recommend_remembered(
    args: argparse.Namespace, settings: Settings, emotion: str, user_key: str
) -> tuple[Recommendation, bool]:
    """Recommend with the user's stored history, then store what was served (the store the bot uses).

    Returns the recommendation and whether Spotify playlists are set up.
    """
    import asyncio

    from moodring.recommender import Recommender
    from moodring.recommender.history import preferred_strategy, remember_served, stored_listener
    from moodring.recommender.playlists import StorePlaylistIds

    from moodring.store import Store

    async with await Store.connect(settings) as store:
        listener = await stored_listener(store, user_key, settings.recent_memory)
        strategy = await preferred_strategy(store, user_key, args.strategy)
        playlist_ids = StorePlaylistIds(store, asyncio.get_running_loop())
        with Recommender.from_settings(settings, playlist_ids=lambda account: playlist_ids) as recommender:
            result = await asyncio.to_thread(  # Spotify calls block; the store's playlist ids need this loop free
                recommender.recommend,
                emotion,
                args.k,
                strategy=strategy,
                ranking=args.ranking,
                with_playlist=args.playlist,
                listener=listener,
                user_key=user_key,
            )
            playlists_enabled = recommender.spotify is not None and recommender.spotify.playlists_enabled
        await remember_served(store, user_key, result)
    return result, playlists_enabled


def run_spotify_login(args: argparse.Namespace) -> int:
    """Handler of `moodring spotify-login`."""
    settings = Settings.load()
    from moodring.recommender.login import login

    def show(url: str) -> None:
        print(f"Open this link to let Moodring manage its playlists:\n  {url}", file=sys.stderr)
        if not args.no_browser:
            webbrowser.open(url)

    profile = login(settings, open_url=show, timeout=args.timeout)
    who = profile.get("display_name") or profile.get("id")
    print(f"Logged in to Spotify as {who}; token stored in {settings.spotify_token_cache} (mode 0600)")
    return 0
