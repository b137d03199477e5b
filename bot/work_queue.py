"""Backpressure for the bot: a bounded number of requests in flight, and the worker threads that run them.

The gateway heartbeat and every other user's request share one event loop, so model inference and
Spotify calls run on a small thread pool instead. Requests are admitted up to a fixed capacity (the
ones downloading, waiting for a worker, or running); beyond it the bot answers "busy" at once rather
than letting a queue grow without limit. All bookkeeping here happens on the event loop thread.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class Slot:
    """One admitted request; `release()` frees its place exactly once."""

    def __init__(self, queue: WorkQueue) -> None:
        self._queue: WorkQueue | None = queue

    def release(self) -> None:
        """Give the place back (idempotent: a second call does nothing)."""
        if self._queue is not None:
            self._queue._release()
            self._queue = None


class WorkQueue:
    """Admits at most `capacity` requests at once and runs their heavy parts on `workers` threads."""

    def __init__(self, workers: int, capacity: int) -> None:
        self.workers = workers
        self.capacity = capacity
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="moodring-worker")
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._closed = False

    @property
    def in_flight(self) -> int:
        """Requests admitted and not yet finished."""
        return self._in_flight

    @property
    def closing(self) -> bool:
        """True once `drain` has begun: new requests are refused."""
        return self._closed

    def try_admit(self) -> Slot | None:
        """A slot for one more request, or None when full or shutting down (the caller answers "busy")."""
        if self._closed or self._in_flight >= self.capacity:
            return None
        self._in_flight += 1
        self._idle.clear()
        return Slot(self)

    def _release(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def run(self, function: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        """`function(*args, **kwargs)` on a worker thread; the event loop stays free meanwhile."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    async def prepare_threads(self, prepare: Callable[[], object], timeout: float = 60.0) -> None:
        """Start every worker thread now and run `prepare()` once on each (e.g. to build per-thread models).

        Threads otherwise start on the first requests, and whatever they build then, with the GIL held,
        stalls the event loop while users wait. A barrier holds each call until all `workers` have
        started, so that no thread runs two of them and every thread runs one.
        """
        barrier = threading.Barrier(self.workers)

        def once() -> None:
            barrier.wait(timeout)
            prepare()

        await asyncio.gather(*(self.run(once) for _ in range(self.workers)))

    async def drain(self, timeout: float) -> None:
        """Stop admitting, let admitted requests finish (up to `timeout` s), then stop the threads."""
        self._closed = True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            pass
        await asyncio.to_thread(self._executor.shutdown, wait=True, cancel_futures=True)
