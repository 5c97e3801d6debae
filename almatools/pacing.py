"""Pacing requests: the per-second :class:`Throttle`, and a concurrent map that keeps the input order."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from almatools.errors import (
    AlmaError,
    ConfigError,
)

__all__ = ["Throttle"]

class Throttle:
    """A thread-safe pacer: at most ``rate`` calls per second, evenly spaced (a token bucket of depth 1).

    Even spacing keeps every one-second window at or under the limit, so Alma's per-second counter
    is rarely hit even with many threads sending at once.
    """

    def __init__(self, rate: float) -> None:
        if not rate > 0:
            raise ConfigError(f"The per-second limit must be positive, not {rate!r}.")
        self.rate = float(rate)
        self._interval = 1.0 / self.rate
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until the caller may send one call."""
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


def _ordered_map(fn: Callable[[Any], Any], items: Iterable[Any], *, workers: int,
                 in_flight: int | None = None, buffered: int | None = None) -> Iterator[tuple[Any, Any]]:
    """``(item, fn(item))`` for every item, in input order, computed on a thread pool.

    Calls run ahead of the consumer: up to ``in_flight`` at once (default ``2 * workers``, so a thread
    that finishes always finds the next call waiting), and up to ``buffered`` items (default
    ``max(256, 32 * workers)``) may be started before the oldest unfinished one is done. So a call that
    is stuck in retries never stops the others, and memory stays bounded. An :class:`AlmaError` is
    returned in place of the result; any other exception is raised. Closing the generator cancels
    what has not started.
    """
    in_flight = in_flight or 2 * workers
    buffered = max(in_flight, buffered or max(256, 32 * workers))

    def call(item: Any) -> Any:
        try:
            return fn(item)
        except AlmaError as exc:
            return exc

    source = iter(items)
    queue: deque[tuple[Any, Future]] = deque()
    running: set[Future] = set()
    exhausted = False
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="alma-fetch")
    try:
        while True:
            while not exhausted and len(running) < in_flight and len(queue) < buffered:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                future = pool.submit(call, item)
                queue.append((item, future))
                running.add(future)
            if not queue:
                return
            item, head = queue[0]
            if head.done():
                queue.popleft()
                running.discard(head)
                yield item, head.result()
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            running -= done
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
