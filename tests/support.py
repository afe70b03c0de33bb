"""Shared by the tests: an injected wall clock, the whole state of a store, and waiting."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from snapkv import Store

#: 2023-11-14T22:13:20Z: far from 0, so "expires at 0 ms" bugs cannot hide.
START_MS = 1_700_000_000_000


class FakeClock:
    """Wall-clock seconds that move only when the test says so, at millisecond resolution.

    ``ms / 1000`` and back is exact for every millisecond near ``START_MS``,
    so the store sees exactly the millisecond the test set. ``on_call``, if
    set, runs at every reading (the store reads its clock under its lock
    when it reclaims expired keys, which lets a test observe the sweep).
    """

    def __init__(self, ms: int = START_MS) -> None:
        self.ms = ms
        self.on_call: Callable[[], None] | None = None

    def __call__(self) -> float:
        if self.on_call is not None:
            self.on_call()
        return self.ms / 1000

    def advance(self, seconds: float) -> None:
        self.ms += round(seconds * 1000)


State = dict[int, dict[str, tuple[str, int]]]  # keyspace -> key -> (value, expiry ms or 0)


def dump(store: Store) -> State:
    """Every live key of every keyspace, with its expiry (0: none)."""
    state: State = {}
    for number in range(store.databases):
        space = store.db(number)
        items = dict(space.items())
        if items:
            state[number] = {
                key: (value, space.expiry_ms(key) or 0) for key, value in items.items()
            }
    return state


def wait_until(predicate: Callable[[], object], *, timeout: float = 10.0, what: str) -> None:
    """Poll ``predicate`` until it is true; fail naming ``what`` after ``timeout`` seconds.

    For a condition that no event announces (another thread's progress, a
    child's output): the test goes on as soon as it holds, and the timeout
    only bounds a hang, so it can be generous without slowing the suite.
    """
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


class WatchedLock:
    """Wraps one of the Store's locks and says when a thread has to wait for it.

    A test that must show a call waits for an operation holding the lock
    installs it (``store._lock = WatchedLock(store._lock)``), starts the call
    in a thread and waits for ``waiting``: set when an acquire finds the lock
    held, so the test knows the call is blocked without sleeping to find out.
    """

    def __init__(self, lock: Any) -> None:
        self._lock = lock
        self.waiting = threading.Event()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        if not blocking:
            return False
        self.waiting.set()
        acquired: bool = self._lock.acquire(True, timeout)
        return acquired

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
