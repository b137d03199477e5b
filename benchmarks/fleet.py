"""A fleet on one PostgreSQL: two bot processes with disjoint shards, each answering selfie posts.

The benchmark starts a throwaway PostgreSQL 15 cluster (as the tests do: `tests/postgres.py`) with an empty
database, then two worker processes, `MOODRING_SHARD_COUNT=2` and `MOODRING_SHARD_IDS=0` / `1`, released at
the same instant. Each worker, as `moodring bot` would:

1. opens the store, so both migrate the empty database at once (the advisory lock lets one do it);
2. claims a playlist id for every emotion at once with the other worker (what a first request per emotion
   does once Spotify playlists go through the store): the unique constraint keeps one per emotion;
3. answers `--requests` selfie posts on the offline Discord harness (`tests/harness.py`, real selfie
   pipeline and recommender, no Spotify) in waves of `--concurrency` users posting at once; every request
   reads the user's history from the store before recommending and records what it served after.

dpytest has no gateway, so shards route nothing here: each worker gets its own fake server and users, as its
shards would. Printed: replies lost or doubled, playlist rows per emotion, the schema version, and the store's
time per request (all its calls for one request, p50/p99; goal p99 <= 5 ms), timed on the bot's event loop
while the selfie pipeline loads the CPUs, and again for the same calls in an idle process after the run.

    python benchmarks/fleet.py                          # 200 requests per process, waves of 10
    python benchmarks/fleet.py --requests 400 --concurrency 20
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

from moodring import EMOTIONS
from moodring.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the offline Discord harness lives in tests/
from tests.harness import LoopLagProbe, OfflineDiscord, percentile  # noqa: E402
from tests.postgres import PostgresCluster  # noqa: E402

SELFIE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
SHARD_COUNT = 2


class TimedStore:
    """The bot's store with the time of every call added up per request (the request's own task)."""

    def __init__(self, store) -> None:
        self._store = store
        self.per_request: defaultdict[asyncio.Task, float] = defaultdict(float)  # tasks kept: no id reuse

    def __getattr__(self, name: str):
        method = getattr(self._store, name)
        if not inspect.iscoroutinefunction(method):
            return method

        async def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                self.per_request[asyncio.current_task()] += time.perf_counter() - began

        return timed


async def run_worker(shard_id: int, database_url: str, requests: int, concurrency: int, start_at: float) -> dict:
    """One fleet member: migrate, claim playlists, answer `requests` selfie posts; what it saw, as a dict."""
    from moodring.bot.app import create_bot
    from moodring.emotion import EmotionRecognizer
    from moodring.recommender import Recommender

    from moodring.store import Store

    scratch = Path(tempfile.mkdtemp(prefix=f"moodring-fleet-{shard_id}-"))
    os.chdir(scratch)  # dpytest stores the files the bot uploads in the working directory
    settings = dataclasses.replace(
        Settings.load(),
        cooldown_seconds=0.0,
        queue_size=concurrency,
        spotify_client_id=None,
        spotify_client_secret=None,
        playlist_store=scratch / "playlists.json",
        spotify_token_cache=scratch / "spotify-token.json",
        ranking="varied",
        shard_count=SHARD_COUNT,
        shard_ids=(shard_id,),
        database_url=database_url,
    )
    recognizer = EmotionRecognizer.from_settings(settings, concurrent_calls=settings.workers)
    recommender = Recommender.from_settings(settings)
    selfie = SELFIE.read_bytes()
    await asyncio.sleep(max(0.0, start_at - time.time()))  # both workers go at once

    store = await Store.connect(settings)  # migrates the empty database: both try at the same instant
    winners = await asyncio.gather(
        *(store.claim_playlist(emotion, f"shard{shard_id}-{emotion}") for emotion in EMOTIONS)
    )
    timed = TimedStore(store)
    bot = create_bot(settings, timed, recognizer, recommender)
    world = await OfflineDiscord.start(bot, channels=concurrency, users=concurrency)
    for channel in world.channels:  # set up as an admin would: every channel watched
        server = await store.guild_settings(world.guild.id)
        await store.update_guild_settings(world.guild.id, watched_channels=server.watched_channels | {channel.id})
    timed.per_request.clear()
    kinds: Counter[str] = Counter()
    probe = LoopLagProbe()
    try:
        await probe.__aenter__()
        for wave in range(-(-requests // concurrency)):
            size = min(concurrency, requests - wave * concurrency)
            posts = [
                world.post(
                    world.users[n], [world.host.attachment(selfie, "me.jpg", "image/jpeg")], channel=world.channels[n]
                )
                for n in range(size)
            ]
            await world.settle()
            for posted in posts:
                replies = world.replies_to(posted)
                kinds[
                    "lost"
                    if not replies
                    else "double"
                    if len(replies) > 1
                    else "served"
                    if replies[0].embeds
                    else "other"
                ] += 1
        await probe.__aexit__(None, None, None)
    finally:
        await world.close()
        await store.close()
        recommender.close()
    return {
        "shard_ids": bot.shard_ids,
        "shard_count": bot.shard_count,
        "kinds": dict(kinds),
        "winners": dict(zip(EMOTIONS, winners, strict=True)),
        "store_ms": [seconds * 1000 for seconds in timed.per_request.values()],
        "loop_lag_ms": [seconds * 1000 for seconds in probe.lags],
    }


async def time_store_alone(database_url: str, requests: int) -> list[float]:
    """The store calls of `requests` requests (history read, then the write), one after another in one
    otherwise idle process: the store's own cost on this machine. Milliseconds per request."""
    from moodring.store import Store

    settings = dataclasses.replace(Settings.load(), database_url=database_url)
    times = []
    async with await Store.connect(settings) as store:
        for n in range(requests):
            began = time.perf_counter()
            user_key = f"discord:{10_000 + n % 20}"
            await store.guild_settings(1)
            await store.recent_track_ids(user_key, settings.recent_memory)
            await store.feedback(user_key)
            await store.remember_tracks(user_key, [f"alone-{n}-{k}" for k in range(5)])
            times.append((time.perf_counter() - began) * 1000)
    return times


async def time_round_trips(cluster: PostgresCluster, count: int) -> list[float]:
    """The machine's floor: one bare asyncpg `SELECT 1` round trip to the same server, in ms."""
    import asyncpg

    connection = await asyncpg.connect(host="127.0.0.1", port=cluster.port, user="moodring", database="fleet")
    times = []
    try:
        for _ in range(count):
            began = time.perf_counter()
            await connection.fetchval("SELECT 1")
            times.append((time.perf_counter() - began) * 1000)
    finally:
        await connection.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="selfie posts per process (default 200)")
    parser.add_argument("--concurrency", type=int, default=10, help="posts at once per process (default 10)")
    parser.add_argument("--worker", type=int, metavar="SHARD", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        result = asyncio.run(run_worker(args.worker, args.database_url, args.requests, args.concurrency, args.start_at))
        print(json.dumps(result))
        return 0

    load_before = " ".join(f"{value:.1f}" for value in os.getloadavg())
    with PostgresCluster() as cluster:
        url = cluster.create_database("fleet")
        start_at = time.time() + 20.0  # time for both workers to load the model before they race
        common = ["--requests", str(args.requests), "--concurrency", str(args.concurrency)]
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--worker",
                    str(shard),
                    "--database-url",
                    url,
                    "--start-at",
                    str(start_at),
                    *common,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for shard in range(SHARD_COUNT)
        ]
        results = []
        for worker in workers:
            out, _ = worker.communicate()
            if worker.returncode != 0:
                print(f"a worker failed (exit {worker.returncode})", file=sys.stderr)
                return 1
            results.append(json.loads(out.splitlines()[-1]))
        alone = asyncio.run(time_store_alone(url, args.requests))
        floor = asyncio.run(time_round_trips(cluster, args.requests))
        rows = asyncio.run(_query(url, "SELECT emotion, count(*) FROM playlists GROUP BY emotion"))
        versions = asyncio.run(_query(url, "SELECT version_num FROM alembic_version"))
        users = asyncio.run(_query(url, "SELECT count(DISTINCT user_key), count(*) FROM recent_tracks"))

    print(f"load average when the run began: {load_before}")
    print(
        f"{SHARD_COUNT} bot processes, one PostgreSQL 15 on 127.0.0.1; {args.requests} selfie posts each, "
        f"{args.concurrency} at once; {os.cpu_count()} CPUs\n"
    )
    header = (
        f"{'shards':>8} | {'served':>6} {'other':>5} {'lost':>4} {'double':>6} | "
        f"{'store/request p50':>17} {'p99':>8} {'max':>8} | {'loop lag p50':>12} {'p99':>8}"
    )
    print(header)
    print("-" * len(header))
    for result in results:
        kinds, times, lags = Counter(result["kinds"]), result["store_ms"], result["loop_lag_ms"]
        shards = ",".join(map(str, result["shard_ids"])) + f"/{result['shard_count']}"
        print(
            f"{shards:>8} | {kinds['served']:>6} {kinds['other']:>5} {kinds['lost']:>4} {kinds['double']:>6} | "
            f"{percentile(times, 50):>15.2f}ms {percentile(times, 99):>6.2f}ms {max(times, default=0):>6.2f}ms | "
            f"{percentile(lags, 50):>10.2f}ms {percentile(lags, 99):>6.2f}ms"
        )
    print(
        f"{'alone':>8} | {len(alone):>6} requests, one idle process    | {percentile(alone, 50):>15.2f}ms "
        f"{percentile(alone, 99):>6.2f}ms {max(alone, default=0):>6.2f}ms |"
    )
    print(
        f"{'floor':>8} | {len(floor):>6} bare asyncpg SELECT 1 trips   | {percentile(floor, 50):>15.2f}ms "
        f"{percentile(floor, 99):>6.2f}ms {max(floor, default=0):>6.2f}ms |"
    )
    agreed = results[0]["winners"] == results[1]["winners"]
    print(
        f"\nplaylist rows per emotion: {dict(sorted(rows))} "
        f"({len(EMOTIONS)} emotions; both processes were told the same winners: {agreed})"
    )
    print(f"schema: {[version for (version,) in versions]} (migrated once by the two processes starting at once)")
    print(f"recent tracks: {users[0][1]} rows for {users[0][0]} users (at most MOODRING_RECENT_MEMORY each)")
    print(
        "store/request: the store calls of one request (history read, then the write), timed on the bot's event "
        "loop during the run (loop lag: how late a 5 ms timer fired meanwhile); alone: the same calls one request "
        "after another in an idle process (4 statements); floor: one bare round trip to the same server now. "
        "Goal p99 <= 5 ms"
    )
    return 0


async def _query(url: str, statement: str) -> list[tuple]:
    from sqlalchemy import text

    from moodring.store.database import async_url, create_engine

    engine = create_engine(async_url(url))
    try:
        async with engine.connect() as connection:
            return [tuple(row) for row in await connection.execute(text(statement))]
    finally:
        await engine.dispose()


if __name__ == "__main__":
    sys.exit(main())
