"""Load on the Discord bot: N selfie posts fired at once, through the path the tests use.

Settings (model, image limits) come from the environment / `.env` as for `moodring bot`; the bot's
worker and queue sizes are set per row, cooldown is off and Spotify is left out (local table).

Each post comes from its own user in its own channel of dpytest's fake Discord, with the real
selfie pipeline and recommender, attachments served from a loopback HTTP server. Configurations
run side by side in one process (same model, same machine state). For each it prints throughput,
reply latency p50/p95 (post → reply sent), busy replies, lost or double replies, and the event
loop's lag (p50/p99/max, from a 5 ms timer). It also times one selfie's work run directly, which
is how long the loop would stall per selfie if the bot ran the model on the event loop.

    python benchmarks/bot_load.py                 # 50 events; default settings, then queue = events
    python benchmarks/bot_load.py --events 20 --workers 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from moodring.bot.app import create_bot
from moodring.bot.cog import compute_mood
from moodring.bot.replies import BUSY

from moodring.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the offline Discord harness lives in tests/
from tests.harness import LoopLagProbe, OfflineDiscord, percentile  # noqa: E402

SELFIE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"


def _settings(base: Settings, workers: int, queue_size: int, scratch: Path) -> Settings:
    """The environment's settings (model, limits), with these bot limits, no cooldown and no Spotify."""
    return dataclasses.replace(
        base,
        workers=workers,
        queue_size=queue_size,
        cooldown_seconds=0.0,
        spotify_client_id=None,
        spotify_client_secret=None,
        cache_dir=scratch / "cache",
        playlist_store=scratch / "playlists.json",
        spotify_token_cache=scratch / "spotify-token.json",
    )


async def run_idle(seconds: float) -> LoopLagProbe:
    """The loop's lag with nothing to do: what the machine alone costs (other processes, scheduler)."""
    async with LoopLagProbe() as probe:
        await asyncio.sleep(seconds)
    return probe


@dataclass
class Burst:
    """What happened to every post of one or more bursts, pooled."""

    kinds: Counter[str] = field(default_factory=Counter)  # served / busy / other / lost / double
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # post -> reply sent, served selfies
    lags: list[float] = field(default_factory=list)  # event-loop timer lateness

    def row(self) -> str:
        """The table row: reply kinds, throughput, latency and loop-lag percentiles."""
        kinds, lags = self.kinds, self.lags
        return (
            f"{kinds['served']:>6} {kinds['busy']:>4} {kinds['other']:>5} {kinds['lost']:>4} {kinds['double']:>6} | "
            f"{kinds['served'] / self.seconds:>6.2f} {percentile(self.latencies, 50):>6.2f} "
            f"{percentile(self.latencies, 95):>6.2f} | {percentile(lags, 50) * 1000:>6.1f}ms "
            f"{percentile(lags, 99) * 1000:>6.1f}ms {max(lags, default=0.0) * 1000:>6.1f}ms"
        )


async def run_burst(settings: Settings, recognizer, recommender, selfie: bytes, events: int, into: Burst) -> None:
    """Fire `events` selfie posts at once at a fresh bot; measure until every handler has finished."""
    bot = create_bot(settings, recognizer, recommender)
    world = await OfflineDiscord.start(bot, channels=events, users=events)
    try:
        attachments = [world.host.attachment(selfie, "selfie.jpg", "image/jpeg") for _ in range(events)]
        async with LoopLagProbe() as probe:
            started = time.perf_counter()
            posts = [
                world.post(user, [attachment], channel=channel)
                for user, channel, attachment in zip(world.users, world.channels, attachments, strict=True)
            ]
            await world.settle()
            into.seconds += time.perf_counter() - started
        into.lags += probe.lags
        for posted in posts:
            replies = world.replies_to(posted)
            if len(replies) != 1:
                into.kinds["lost" if not replies else "double"] += 1
            elif replies[0].embeds:
                into.kinds["served"] += 1
                into.latencies.append(world.sent_at[replies[0].id] - started)
            else:
                into.kinds["busy" if replies[0].content == BUSY else "other"] += 1
    finally:
        await world.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50, help="selfie posts fired at once (default 50)")
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[os.cpu_count() or 1], help="worker thread counts to compare"
    )
    parser.add_argument("--repeat", type=int, default=3, help="bursts per configuration, pooled (default 3)")
    args = parser.parse_args()

    from moodring.emotion import EmotionRecognizer
    from moodring.recommender import Recommender

    selfie = SELFIE.read_bytes()
    with tempfile.TemporaryDirectory(prefix="moodring-bot-load-") as scratch_dir:
        scratch = Path(scratch_dir)
        os.chdir(scratch)  # dpytest stores the files the bot uploads in the working directory
        base = _settings(Settings.load(), 1, 1, scratch)
        recognizer = EmotionRecognizer.from_settings(base)  # one call alone: all cores
        recommender = Recommender.from_settings(base)
        compute_mood(recognizer, recommender, selfie, None, None, 0)  # warm-up: first model call traces the graph
        direct = []
        for _ in range(5):
            began = time.perf_counter()
            compute_mood(recognizer, recommender, selfie, None, None, 0)
            direct.append(time.perf_counter() - began)
        print(
            f"one selfie's work, run directly (the loop stall per selfie without workers): "
            f"median {statistics.median(direct) * 1000:.0f} ms over {len(direct)} runs"
        )
        print(f"{args.events} selfie posts at once, {args.repeat} bursts per row (pooled); {os.cpu_count()} CPUs\n")

        header = (
            f"{'workers':>7} {'queue':>5} | {'served':>6} {'busy':>4} {'other':>5} {'lost':>4} {'double':>6} | "
            f"{'req/s':>6} {'p50 s':>6} {'p95 s':>6} | {'lag p50':>8} {'lag p99':>8} {'lag max':>8}"
        )
        print(header)
        print("-" * len(header))
        idle = asyncio.run(run_idle(5.0))
        print(
            f"{'idle loop, no requests (baseline)':>58} | {idle.percentile(50) * 1000:>6.1f}ms "
            f"{idle.percentile(99) * 1000:>6.1f}ms {max(idle.lags, default=0.0) * 1000:>6.1f}ms"
        )
        queues = (Settings().queue_size, args.events)
        configurations = [(workers, queue) for workers in args.workers for queue in queues]
        pooled = {configuration: Burst() for configuration in configurations}
        # As the bot builds it: the cores shared out between the worker threads.
        pool_recognizers = {w: EmotionRecognizer.from_settings(base, concurrent_calls=w) for w in args.workers}
        for _ in range(args.repeat):  # round-robin, so that a change in machine load touches every row alike
            for workers, queue_size in configurations:
                settings = _settings(base, workers, queue_size, scratch)
                burst = run_burst(
                    settings, pool_recognizers[workers], recommender, selfie, args.events, pooled[workers, queue_size]
                )
                asyncio.run(burst)
        for (workers, queue_size), burst in pooled.items():
            print(f"{workers:>7} {queue_size:>5} | {burst.row()}")
        recommender.close()
    print("\nreq/s: served selfies per second of burst time; p50/p95: post → reply sent, served selfies only.")
    print("lag: how late a 5 ms timer fired on the event loop while the burst ran (goal: p99 <= 20 ms).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
