"""Load on the Discord bot: what one reply costs, and N selfie posts fired at once, through the path the tests use.

Settings (model, image limits) come from the environment / `.env` as for `moodring bot`; the bot's
worker and queue sizes are set per row, cooldown is off and Spotify is left out (local table).

First, one reply's cost for a 640x480 selfie, run directly: the CPU time (`time.process_time`, every
thread of the process, so LiteRT's own threads count, spinning included) of each stage (the analysis, the
recommendation, the annotated picture, the embed), p50 over 20 runs, their sum, and the picture's size
(goals: <= 25 ms, <= 150 KB). The model runs as the bot's workers run it: `from_settings(settings,
concurrent_calls=workers)`, the cores shared out between the workers (one LiteRT thread each on 2 cores);
the analysis with all cores for one call is shown beside it.

Then the bursts. Each post comes from its own user in its own channel of dpytest's fake Discord and
@mentions the bot, with the real selfie pipeline and recommender, a real SQLite store, and
attachments served from a loopback HTTP server. Configurations run side by side in one process (same
model, same machine state). For each it prints throughput (served selfies per second), reply latency
p50/p95 (post → reply sent), busy refusals (a ⏳ reaction, not a message), lost or double answers, the
event loop's lag (p50/p99/max, from a 5 ms timer), and the CPU the event loop's own thread spent per post
(`time.thread_time`: the bot's handlers, its store calls and downloads, and the fake Discord and attachment
server, which share the loop) and between two wake-ups of the timer (p99). Lag is wall time, and grows with
other processes' load; the loop's CPU does not.

    python benchmarks/bot_load.py                 # 50 events; default settings, then queue = events
    python benchmarks/bot_load.py --events 20 --workers 1 2
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from moodring.bot.answers import WAIT_REACTION, mood_answer
from moodring.bot.app import create_bot
from moodring.bot.exts.mood import PICTURE_FORMAT, PICTURE_MAX_SIDE, PICTURE_NAME
from moodring.emotion import Analysis, annotate
from moodring.emotion.image import WorkingImage
from PIL import Image

from moodring.settings import Settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the offline Discord harness lives in tests/

from tests.harness import LoopLagProbe, OfflineDiscord, percentile  # noqa: E402

SELFIE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.jpg"
REPLY_RUNS = 20


def selfie_640x480() -> bytes:
    """The example selfie as a phone-sized 640x480 JPEG (scaled to 640 wide, cropped to 480 high)."""
    with Image.open(SELFIE) as image:
        wide = image.convert("RGB").resize((640, 640))
    out = io.BytesIO()
    wide.crop((0, 80, 640, 560)).save(out, format="JPEG", quality=90)
    return out.getvalue()


def reply_cost(recognizer, recommender, selfie: bytes) -> tuple[dict[str, float], int]:
    """CPU seconds (p50) of each stage of a reply, as `compute_mood` and `mood_answer` run them; the picture's bytes.

    `recognizer` is built as the bot builds it. Also times the picture the bot drew before (full-size PNG),
    for comparison.
    """
    stages: dict[str, list[float]] = {}

    def timed(stage: str, function, *args, **kwargs):
        began = time.process_time()
        result = function(*args, **kwargs)
        stages.setdefault(stage, []).append(time.process_time() - began)
        return result

    def analyze(image: bytes) -> tuple[WorkingImage, Analysis]:
        working = recognizer.decode(image)
        return working, recognizer.analyze_picture(working)

    for _ in range(REPLY_RUNS + 1):  # the first run warms up (the first model call traces the graph)
        working, analysis = timed("analysis", analyze, selfie)
        recommendation = timed(
            "recommendation", recommender.recommend, analysis.emotion, k=5, user_key="discord:0", with_playlist=True
        )
        picture = timed("picture", annotate, working, analysis, format=PICTURE_FORMAT, max_side=PICTURE_MAX_SIDE)
        timed("embed", mood_answer, analysis, recommendation, (picture, PICTURE_NAME), None)
        timed("full-size PNG picture (before)", annotate, selfie, analysis)
    return {stage: statistics.median(times[1:]) for stage, times in stages.items()}, len(picture)


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

    kinds: Counter[str] = field(default_factory=Counter)  # served / busy / other / lost / double answers
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # post -> reply sent, served selfies
    lags: list[float] = field(default_factory=list)  # event-loop timer lateness
    loop_cpu: float = 0.0  # CPU seconds of the event loop's thread while the bursts ran
    busy: list[float] = field(default_factory=list)  # the loop thread's CPU between two timer wake-ups

    def row(self) -> str:
        """The table row: reply kinds, throughput, latency, loop-lag percentiles and the loop's CPU per post."""
        kinds, lags = self.kinds, self.lags
        posts = sum(kinds.values())
        return (
            f"{kinds['served']:>6} {kinds['busy']:>4} {kinds['other']:>5} {kinds['lost']:>4} {kinds['double']:>6} | "
            f"{kinds['served'] / self.seconds:>6.2f} {percentile(self.latencies, 50):>6.2f} "
            f"{percentile(self.latencies, 95):>6.2f} | {percentile(lags, 50) * 1000:>6.1f}ms "
            f"{percentile(lags, 99) * 1000:>6.1f}ms {max(lags, default=0.0) * 1000:>6.1f}ms | "
            f"{self.loop_cpu / max(posts, 1) * 1000:>7.2f}ms {percentile(self.busy, 99) * 1000:>10.1f}ms"
        )


async def run_burst(settings: Settings, recognizer, recommender, selfie: bytes, events: int, into: Burst) -> None:
    """Fire `events` selfie posts at once at a fresh bot; measure until every handler has finished."""
    from moodring.store import Store

    database = settings.cache_dir.parent / f"bot-{time.monotonic_ns()}.db"
    store = await Store.connect(dataclasses.replace(settings, database_url=f"sqlite:///{database}"))
    bot = create_bot(settings, store, recognizer, recommender)
    world = await OfflineDiscord.start(bot, channels=events, users=events)
    try:
        attachments = [world.host.attachment(selfie, "selfie.jpg", "image/jpeg") for _ in range(events)]
        async with LoopLagProbe() as probe:
            started, loop_cpu = time.perf_counter(), time.thread_time()
            posts = [
                world.post(user, [attachment], world.mention, channel)
                for user, channel, attachment in zip(world.users, world.channels, attachments, strict=True)
            ]
            await world.settle()
            into.seconds += time.perf_counter() - started
            into.loop_cpu += time.thread_time() - loop_cpu
        into.lags += probe.lags
        into.busy += probe.busy
        for posted in posts:
            answers = world.replies_to(posted) + world.reactions_on(posted)
            if len(answers) != 1:
                into.kinds["lost" if not answers else "double"] += 1
            elif answers[0] == WAIT_REACTION:
                into.kinds["busy"] += 1
            elif isinstance(answers[0], str) or not answers[0].embeds:
                into.kinds["other"] += 1
            else:
                into.kinds["served"] += 1
                into.latencies.append(world.sent_at[answers[0].id] - started)
    finally:
        await world.close()
        await store.close()


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

    selfie = selfie_640x480()
    with tempfile.TemporaryDirectory(prefix="moodring-bot-load-") as scratch_dir:
        scratch = Path(scratch_dir)
        os.chdir(scratch)  # dpytest stores the files the bot uploads in the working directory
        base = _settings(Settings.load(), 1, 1, scratch)
        recommender = Recommender.from_settings(base)
        # As the bot builds it: the cores shared out between the worker threads.
        pool_recognizers = {w: EmotionRecognizer.from_settings(base, concurrent_calls=w) for w in args.workers}
        workers = args.workers[0]
        costs, picture_bytes = reply_cost(pool_recognizers[workers], recommender, selfie)
        before = costs.pop("full-size PNG picture (before)")
        threads = pool_recognizers[workers].classifier.threads
        print(f"one reply for a 640x480 selfie, CPU p50 over {REPLY_RUNS} runs (time.process_time, all threads),")
        print(f"as {workers} worker(s) run it: {threads} LiteRT thread(s) per call")
        for stage, seconds in costs.items():
            print(f"  {stage:<15} {seconds * 1000:6.1f} ms")
        print(f"  {'whole reply':<15} {sum(costs.values()) * 1000:6.1f} ms (goal <= 25)")
        print(f"  picture: {picture_bytes / 1024:.0f} KB (goal <= 150); full-size PNG before: {before * 1000:.1f} ms")
        alone = EmotionRecognizer.from_settings(base)  # one call alone: all cores, its idle threads spinning
        if alone.classifier.threads != threads:
            all_cores, _ = reply_cost(alone, recommender, selfie)
            print(
                f"  analysis with {alone.classifier.threads} LiteRT threads (one call alone): "
                f"{all_cores['analysis'] * 1000:.1f} ms"
            )
        print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
        print(f"{args.events} selfie posts at once, {args.repeat} bursts per row (pooled); {os.cpu_count()} CPUs\n")

        header = (
            f"{'workers':>7} {'queue':>5} | {'served':>6} {'busy':>4} {'other':>5} {'lost':>4} {'double':>6} | "
            f"{'req/s':>6} {'p50 s':>6} {'p95 s':>6} | {'lag p50':>8} {'lag p99':>8} {'lag max':>8} | "
            f"{'loop/post':>9} {'cpu/tick p99':>12}"
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
        for _ in range(args.repeat):  # round-robin, so that a change in machine load touches every row alike
            for workers, queue_size in configurations:
                settings = _settings(base, workers, queue_size, scratch)
                burst = run_burst(
                    settings, pool_recognizers[workers], recommender, selfie, args.events, pooled[workers, queue_size]
                )
                asyncio.run(burst)
        for (workers, queue_size), burst in pooled.items():
            print(f"{workers:>7} {queue_size:>5} | {burst.row()}")
        print(f"load average after the bursts: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        recommender.close()
    print("\nreq/s: served selfies per second of burst time; p50/p95: post → reply sent, served selfies only.")
    print("lag: how late a 5 ms timer fired on the event loop while the burst ran (goal: p99 <= 20 ms).")
    print("loop/post: CPU of the event loop's thread per post (bot, store calls, fake Discord, attachment server).")
    print("cpu/tick p99: the loop thread's CPU between two wake-ups of the 5 ms timer, which bounds how late the")
    print("loop's own work can make it, whatever other processes do (lag also counts waits for a core or the GIL).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
