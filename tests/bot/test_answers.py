"""Answers stay within Discord's embed limits whatever the song table holds."""

from __future__ import annotations

import pandas as pd
import pytest
from moodring.bot.answers import EMBED_LIMIT, FIELD_LIMIT, TITLE_LIMIT, mood_answer, track_lines
from moodring.recommender import Recommendation, Recommender, Track
from moodring.recommender.table import embedded_table_path

from tests.bot.conftest import bot_settings

ADVERSARIAL_NAMES = [
    "*_~`|>[]()\\" * 40,  # every markdown character, escaped to twice its length
    "x" * 5000,  # far longer than a field
    "🎵" * 300 + "Ünïcødé 名前 اسم",  # wide characters and right-to-left text
    "line one\nline two\n\n# heading\n> quote",  # newlines and block markdown
    "\\" * 199,  # an odd run of backslashes, so a cut could end mid-escape
]


def _adversarial_tracks() -> list[Track]:
    return [
        Track(
            id=f"{n:022d}",
            name=name,
            artist=name[::-1],
            popularity=50,
            url=f"https://open.spotify.com/track/{n}",
            valence=0.5,
            energy=0.5,
        )
        for n, name in enumerate(ADVERSARIAL_NAMES)
    ]


def _assert_within_limits(embed: dict) -> None:
    assert len(embed.get("title", "")) <= TITLE_LIMIT
    for field in embed["fields"]:
        assert len(field["name"]) <= TITLE_LIMIT and 0 < len(field["value"]) <= FIELD_LIMIT
    total = len(embed.get("title", "")) + len(embed.get("description", "")) + len(embed["footer"]["text"])
    total += sum(len(field["name"]) + len(field["value"]) for field in embed["fields"])
    assert total <= EMBED_LIMIT


def test_adversarial_names_fit_a_field_and_keep_five_lines():
    text = track_lines(_adversarial_tracks())
    assert len(text) <= FIELD_LIMIT and len(text.splitlines()) == 5
    assert all(line.startswith(f"{n}. ") for n, line in enumerate(text.splitlines(), start=1))


@pytest.mark.parametrize("name", ADVERSARIAL_NAMES)
def test_a_cut_name_never_ends_in_a_lone_escape(name):
    [line] = track_lines([Track("0" * 22, name, "a", 1, "", 0.5, 0.5)]).splitlines()
    label = line.split(". ", 1)[1].split(" — ")[0]
    if label.endswith("…"):
        kept = label[:-1]
        assert (len(kept) - len(kept.rstrip("\\"))) % 2 == 0


def test_the_whole_embed_stays_within_discords_limits():
    recommendation = Recommendation("happy", "Happy" * 100, _adversarial_tracks())
    answer = mood_answer(None, recommendation, None, None)
    _assert_within_limits(answer.embed.to_dict())


async def test_an_adversarial_song_table_still_gives_a_valid_embed(start_bot, shared_data, tmp_path):
    songs = pd.read_csv(embedded_table_path())
    for n, name in enumerate(ADVERSARIAL_NAMES):
        songs.loc[songs.index % len(ADVERSARIAL_NAMES) == n, "name"] = name
        songs.loc[songs.index % len(ADVERSARIAL_NAMES) == n, "artist"] = name[::-1]
    table = tmp_path / "adversarial.csv"
    songs.to_csv(table, index=False)
    with Recommender.from_settings(bot_settings(shared_data, tmp_path, MOODRING_SONGS=str(table))) as recommender:
        world = await start_bot(recommender=recommender)
        interaction = await world.slash(
            world.users[0], "mood", options=[{"name": "emotion", "type": 3, "value": "sad"}]
        )

    followup = world.interactions.for_interaction(interaction)[-1]
    [embed] = followup.embeds
    _assert_within_limits(embed)
    assert len(embed["fields"][-1]["value"].splitlines()) == 5
