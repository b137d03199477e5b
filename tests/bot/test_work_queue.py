"""The bot's worker pool: every thread prepared once at start-up, and later work on those same threads."""

from __future__ import annotations

import threading

from moodring.bot.work_queue import WorkQueue


async def test_prepare_threads_runs_once_on_each_worker_and_requests_reuse_them() -> None:
    queue = WorkQueue(workers=3, capacity=1)
    prepared: list[int] = []
    await queue.prepare_threads(lambda: prepared.append(threading.get_ident()))
    served = {await queue.run(threading.get_ident) for _ in range(6)}
    await queue.drain(timeout=1.0)

    assert len(prepared) == 3 and len(set(prepared)) == 3
    assert served <= set(prepared)
