"""The ordered fetch pool: input order for the caller, yet a call stuck in retries never holds the others."""

from __future__ import annotations

import threading
import time

import pytest

from almatools.client import _ordered_map
from almatools.errors import NotFoundError


def test_a_stuck_call_does_not_hold_back_the_pool():
    started: dict[int, float] = {}
    lock = threading.Lock()
    t0 = time.monotonic()

    def fetch(n: int) -> int:
        with lock:
            started[n] = time.monotonic() - t0
        time.sleep(1.0 if n == 0 else 0.005)  # item 0 waits on retries for a second
        return n * n

    got = list(_ordered_map(fetch, range(300), workers=4, buffered=60))
    assert got == [(n, n * n) for n in range(300)]  # input order
    before_head_done = [n for n, at in started.items() if at < 0.9]
    # The old window of 4 * workers = 16 stalled behind item 0; now the pool works on up to the
    # buffer's bound (60) while item 0 is stuck, and never beyond it.
    assert 45 <= len(before_head_done) <= 60


def test_errors_come_back_in_place_and_closing_cancels_the_rest():
    calls = []

    def fetch(n: int) -> int:
        calls.append(n)
        if n == 3:
            raise NotFoundError("gone", code="401861")
        return n

    results = _ordered_map(fetch, range(10_000), workers=2, buffered=20)
    first = [next(results) for _ in range(5)]
    results.close()
    assert [r for _, r in first[:3]] == [0, 1, 2] and isinstance(first[3][1], NotFoundError)
    assert len(calls) <= 30  # bounded read-ahead; the rest was never started


def test_other_exceptions_are_raised():
    def fetch(n: int) -> int:
        raise KeyError(n)

    with pytest.raises(KeyError):
        list(_ordered_map(fetch, range(5), workers=2))
