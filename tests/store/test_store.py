"""The store on real databases: the same behaviour on SQLite and PostgreSQL (one parametrized suite), plus what
only a server can show (a fleet migrating at once, an outage while running)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from moodring.errors import ConfigError, SchemaTooNewError, StoreUnavailable
from moodring.store import (
    GUILD_GRACE,
    FeedbackTrack,
    Store,
    discord_user_key,
    user_key_from_cli,
)
from moodring.store.database import async_url, create_engine, default_database_url
from moodring.store.migrate import alembic_config, head_revision
from moodring.store.schema import metadata
from tests.store.conftest import start_postgres, store_settings

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


async def execute(database_url: str, statement: str, **parameters: object) -> list[tuple]:
    """Run raw SQL on the database behind the store's back (to age rows or fake a newer schema)."""
    engine = create_engine(async_url(database_url))
    try:
        async with engine.begin() as connection:
            result = await connection.execute(text(statement), parameters)
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        await engine.dispose()


async def table_names(database_url: str) -> set[str]:
    engine = create_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


# ---- schema --------------------------------------------------------------------------------------


async def test_connect_migrates_an_empty_database_to_the_schema(database_url: str, tmp_path: Path):
    assert await table_names(database_url) == set()
    store = await Store.connect(store_settings(database_url, tmp_path))
    await store.close()
    assert await table_names(database_url) == set(metadata.tables) | {"alembic_version"}
    assert await execute(database_url, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


async def test_the_migrations_build_exactly_the_schema_module(database_url: str, tmp_path: Path):
    """A change to `schema.py` without its migration (or the reverse) shows up here, on both back-ends."""
    await (await Store.connect(store_settings(database_url, tmp_path))).close()
    engine = create_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
            )
    finally:
        await engine.dispose()
    assert differences == []


async def test_answers_kept_in_app_state_before_0002_move_to_their_own_table(database_url: str, tmp_path: Path):
    engine = create_engine(async_url(database_url))
    try:
        async with engine.connect() as connection:

            def to_0001(sync) -> None:
                config = alembic_config()
                config.attributes["connection"] = sync
                command.upgrade(config, "0001")

            await connection.run_sync(to_0001)
            await connection.commit()
    finally:
        await engine.dispose()
    tracks = [{"track_id": "t1", "artist": "A", "valence": 0.5, "energy": 0.25}]
    await execute(
        database_url, "INSERT INTO app_state (key, value) VALUES ('reply:42', :value)", value=json.dumps(tracks)
    )
    await execute(database_url, "INSERT INTO app_state (key, value) VALUES ('commands.fingerprint', 'abc')")

    store = await Store.connect(store_settings(database_url, tmp_path))
    try:
        assert await store.reply_tracks(42) == [FeedbackTrack("t1", "A", 0.5, 0.25)]
        assert await store.get_state("commands.fingerprint") == "abc"
    finally:
        await store.close()
    assert await execute(database_url, "SELECT count(*) FROM app_state WHERE key LIKE 'reply:%'") == [(0,)]


async def test_a_fleet_starting_at_once_migrates_once(database_url: str, tmp_path: Path):
    """On SQLite too: without its write lock taken first, the second upgrade found `alembic_version` made."""
    stores = await asyncio.gather(*(Store.connect(store_settings(database_url, tmp_path)) for _ in range(4)))
    for store in stores:
        await store.close()
    assert await execute(database_url, "SELECT version_num FROM alembic_version") == [(head_revision(),)]


async def test_a_database_newer_than_the_code_is_refused_and_left_untouched(database_url: str, tmp_path: Path):
    await (await Store.connect(store_settings(database_url, tmp_path))).close()
    await execute(database_url, "UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(SchemaTooNewError, match=r"\(9999\) is newer than this Moodring"):
        await Store.connect(store_settings(database_url, tmp_path))
    assert await execute(database_url, "SELECT version_num FROM alembic_version") == [("9999",)]
    assert await execute(database_url, "SELECT count(*) FROM app_state") == [(1,)]  # only the first start's row


async def test_a_read_only_database_is_refused_at_start(database_url: str, tmp_path: Path):
    await (await Store.connect(store_settings(database_url, tmp_path))).close()
    if database_url.startswith("sqlite"):  # root ignores file modes: SQLite's own read-only mode
        read_only = f"sqlite:///file:{database_url.removeprefix('sqlite:///')}?mode=ro&uri=true"
    else:
        database = database_url.rsplit("/", 1)[1]
        await execute(database_url, f"ALTER DATABASE {database} SET default_transaction_read_only = on")
        read_only = database_url
    with pytest.raises(StoreUnavailable, match="unavailable: .*read"):
        await Store.connect(store_settings(read_only, tmp_path))


async def test_an_unreachable_database_is_one_line_without_the_password(tmp_path: Path):
    from tests.postgres import free_port

    closed = f"postgresql://moodring:s3cret-pw@127.0.0.1:{free_port()}/moodring"
    with pytest.raises(StoreUnavailable) as caught:
        await Store.connect(store_settings(closed, tmp_path))
    message = str(caught.value)
    assert "s3cret-pw" not in message and "\n" not in message
    assert message.startswith(f"database postgresql://moodring:***@127.0.0.1:{closed.split(':')[3].split('/')[0]}")
    with pytest.raises(StoreUnavailable, match="no-such-folder does not exist"):
        await Store.connect(store_settings(f"sqlite:///{tmp_path}/no-such-folder/m.db", tmp_path))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:pw@host/db", "unsupported database 'mysql'"),
        ("sqlite://", "a SQLite URL needs a file"),
        ("not a url", "not a database URL"),
        ("postgresql+psycopg2://u:pw@host/db", "unsupported database"),
    ],
)
def test_bad_urls_are_config_errors_without_the_password(url: str, message: str):
    with pytest.raises(ConfigError, match=message) as caught:
        async_url(url)
    assert ":pw@" not in str(caught.value)


def test_the_default_is_a_sqlite_file_in_the_user_data_folder(user_data_home: Path):
    assert default_database_url() == f"sqlite:///{user_data_home / 'moodring' / 'moodring.db'}"
    assert (user_data_home / "moodring").is_dir()  # created on first use


def test_cli_user_names_become_keys():
    assert user_key_from_cli("alice") == "local:alice"
    assert user_key_from_cli("1234") == user_key_from_cli("discord:1234") == discord_user_key(1234) == "discord:1234"
    assert user_key_from_cli("local:1234") == "local:1234"
    for bad in ("", "discord:bob", "local:"):
        with pytest.raises(ConfigError):
            user_key_from_cli(bad)


# ---- users ---------------------------------------------------------------------------------------


async def test_recent_tracks_are_newest_first_and_pruned_to_the_memory(database_url: str, tmp_path: Path):
    store = await Store.connect(store_settings(database_url, tmp_path, MOODRING_RECENT_MEMORY="4"))
    try:
        await store.remember_tracks("local:alice", ["a", "b", "c"])
        await store.remember_tracks("local:alice", ["d", "a", "d"])  # "a" again: it moves to the front
        assert await store.recent_track_ids("local:alice", 10) == ["d", "a", "b", "c"]
        await store.remember_tracks("local:alice", ["e"])
        assert await store.recent_track_ids("local:alice", 10) == ["e", "d", "a", "b"]  # "c", the oldest, pruned
        assert await store.recent_track_ids("local:alice", 2) == ["e", "d"]
        assert await execute(database_url, "SELECT count(*) FROM recent_tracks") == [(4,)]
        assert await store.recent_track_ids("local:bob", 10) == []
    finally:
        await store.close()


async def test_strategy_and_feedback_round_trip(store: Store):
    assert await store.user_strategy("discord:1") is None
    await store.set_user_strategy("discord:1", "match")
    await store.set_user_strategy("discord:1", "notebook")
    assert await store.user_strategy("discord:1") == "notebook"
    await store.set_user_strategy("discord:1", None)
    assert await store.user_strategy("discord:1") is None

    before = datetime.now(UTC)
    await store.record_feedback("discord:1", [FeedbackTrack("t1", "Artist", 0.8, 0.6)], liked=True)
    await store.record_feedback("discord:1", [FeedbackTrack("t2", "Other", 0.1, 0.2)], liked=False)
    rows = await store.feedback("discord:1")
    assert [(row.track_id, row.artist, row.valence, row.energy, row.liked) for row in rows] == [
        ("t2", "Other", 0.1, 0.2, False),
        ("t1", "Artist", 0.8, 0.6, True),
    ]
    assert all(before - timedelta(seconds=5) <= row.at <= datetime.now(UTC) for row in rows)


async def test_forget_user_deletes_every_row_about_that_user_only(store: Store, database_url: str):
    for user in ("local:alice", "local:bob"):
        await store.set_user_strategy(user, "match")
        await store.remember_tracks(user, ["t1", "t2"])
        await store.record_feedback(user, [FeedbackTrack("t1", "A", 0.5, 0.5)], liked=True)
    assert await store.forget_user("local:alice") == 4
    for table in ("user_preferences", "recent_tracks", "feedback"):
        users = await execute(database_url, f"SELECT DISTINCT user_key FROM {table}")
        assert users == [("local:bob",)], table
    assert await store.forget_user("local:alice") == 0


# ---- servers -------------------------------------------------------------------------------------


async def test_guild_settings_default_from_settings_and_change_one_field_at_a_time(database_url: str, tmp_path: Path):
    settings = store_settings(database_url, tmp_path, MOODRING_STRATEGY="match", MOODRING_WATCH_CHANNELS="7")
    store = await Store.connect(settings)
    try:
        fresh = await store.guild_settings(10)
        assert (fresh.watched_channels, fresh.strategy, fresh.reply_style) == (frozenset({7}), "match", "picture")
        assert (fresh.answer_selfies, fresh.setup_announced) == (True, False)
        big = 1_234_567_890_123_456_789  # Discord ids do not fit 32 bits
        changed = await store.update_guild_settings(10, watched_channels=frozenset({big, 2}))
        assert changed.watched_channels == frozenset({big, 2}) and changed.strategy == "match"
        await store.update_guild_settings(10, reply_style="embed", setup_announced=True)
        assert await store.guild_settings(10) == changed.__class__(
            10, frozenset({big, 2}), "match", "embed", True, True
        )
        with pytest.raises(ConfigError, match="reply style"):
            await store.update_guild_settings(10, reply_style="poem")
        with pytest.raises(TypeError, match="colour"):
            await store.update_guild_settings(10, colour="red")
        assert await store.forget_guild(10) == 1
        assert await store.guild_settings(10) == fresh
    finally:
        await store.close()


async def test_servers_not_seen_for_the_grace_period_are_pruned_at_start(database_url: str, tmp_path: Path):
    settings = store_settings(database_url, tmp_path)
    store = await Store.connect(settings)
    await store.update_guild_settings(1, strategy="match")
    await store.update_guild_settings(2, strategy="match")
    await store.update_guild_settings(3, strategy="match")
    old = datetime.now(UTC) - GUILD_GRACE - timedelta(days=1)
    await execute(database_url, "UPDATE guild_settings SET last_seen = :old", old=old)
    await store.touch_guilds([2])  # the bot saw server 2 (on ready)
    await store.guild_settings(3)  # server 3 is in use
    await store.close()
    store = await Store.connect(settings)
    try:
        strategies = [(await store.guild_settings(guild)).strategy for guild in (1, 2, 3)]
        assert strategies == ["notebook", "match", "match"]
    finally:
        await store.close()


# ---- playlists and state -------------------------------------------------------------------------


async def test_two_processes_claiming_a_playlist_at_once_agree_on_one(database_url: str, tmp_path: Path):
    first, second = [await Store.connect(store_settings(database_url, tmp_path)) for _ in range(2)]
    try:
        claims = [
            (store, emotion, f"{name}-{emotion}")
            for emotion in EMOTIONS
            for name, store in (("first", first), ("second", second))
        ]
        winners = await asyncio.gather(*(store.claim_playlist(emotion, mine) for store, emotion, mine in claims))
        by_emotion = {}
        for (_, emotion, _), winner in zip(claims, winners, strict=True):
            assert by_emotion.setdefault(emotion, winner) == winner, emotion  # both were told the same winner
        rows = await execute(database_url, "SELECT emotion, playlist_id FROM playlists")
        assert sorted(rows) == sorted(by_emotion.items())
        assert await second.playlist_id("happy") == by_emotion["happy"]
        await second.forget_playlist("happy", "not-the-current-id")  # a stale forget changes nothing
        assert await first.playlist_id("happy") == by_emotion["happy"]
        await second.forget_playlist("happy", by_emotion["happy"])
        assert await first.playlist_id("happy") is None
    finally:
        await first.close()
        await second.close()


async def test_the_old_playlist_file_is_copied_once(database_url: str, tmp_path: Path):
    (tmp_path / "playlists.json").write_text(json.dumps({"spotify-user": {"happy": "pl-happy", "sad": "pl-sad"}}))
    settings = store_settings(database_url, tmp_path)
    store = await Store.connect(settings)
    assert (await store.playlist_id("happy"), await store.playlist_id("sad")) == ("pl-happy", "pl-sad")
    await store.forget_playlist("sad", "pl-sad")  # deleted on Spotify since
    await store.close()
    store = await Store.connect(settings)  # a restart does not bring the old id back
    try:
        assert await store.playlist_id("sad") is None
    finally:
        await store.close()


async def test_state_values_round_trip(store: Store):
    assert await store.get_state("commands.fingerprint") is None
    await store.set_state("commands.fingerprint", "abc")
    await store.set_state("commands.fingerprint", "def")
    assert await store.get_state("commands.fingerprint") == "def"


# ---- PostgreSQL only: a fleet, an outage ---------------------------------------------------------


async def test_an_outage_while_running_raises_store_unavailable_and_warns_once(tmp_path: Path, caplog):
    cluster = start_postgres()  # its own server: stopping it must not disturb the other tests
    try:
        store = await Store.connect(store_settings(cluster.create_database(), tmp_path))
        await store.remember_tracks("discord:1", ["t1"])
        cluster.stop()
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="moodring.store"):
            for _ in range(5):
                with pytest.raises(StoreUnavailable, match="unavailable"):
                    await store.recent_track_ids("discord:1", 5)
                with pytest.raises(StoreUnavailable):
                    await store.remember_tracks("discord:1", ["t2"])
            warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
            assert len(warnings) == 1 and "answering without memory" in warnings[0].getMessage()
            cluster.start()
            assert await store.recent_track_ids("discord:1", 5) == ["t1"]
            assert await store.recent_track_ids("discord:1", 5) == ["t1"]
        back = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
        assert len(back) == 1 and "is back after" in back[0]
        await store.close()
    finally:
        cluster.destroy()
