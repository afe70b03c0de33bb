"""The script thread: runs one job at a time while the event loop's thread waits.

Why a thread: Lua cannot yield from its count hook, so a script that
outlives ``busy-reply-threshold`` cannot hand the event loop back from
the loop's own thread. It runs here instead; the loop's thread waits for
it (so nothing else runs meanwhile, as in Redis) and, past the threshold,
stops waiting and serves ``-BUSY`` until the job's callback hands the
reply back. A :class:`Job` is made to be cheap to hand over: a queue put,
and a lock the waiting thread acquires (C-level, no Condition).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Job", "Relay", "Worker"]

log = logging.getLogger("snapkv.server")


class Job:
    """One call to run on the script thread (or inline with :meth:`run`)."""

    __slots__ = ("_callback", "_done", "_error", "_fn", "_guard", "_result", "finished")

    def __init__(self, fn: Callable[[], bytes]) -> None:
        self._fn = fn
        self._result = b""
        self._error: BaseException | None = None
        self._done = threading.Lock()
        self._done.acquire()
        self._guard = threading.Lock()
        self._callback: Callable[[], object] | None = None
        self.finished = False

    def run(self) -> None:
        """Run the call; then wake the waiter, or call the callback set meanwhile."""
        try:
            self._result = self._fn()
        except BaseException as exc:  # handed to whoever reads the result
            self._error = exc
        with self._guard:
            self.finished = True
            callback = self._callback
        self._done.release()
        if callback is not None:
            try:
                callback()
            except Exception:  # e.g. the event loop closed by a shutdown meanwhile
                log.exception("after a script ended")

    def wait(self, timeout: float | None) -> bool:
        """Wait up to ``timeout`` seconds (``None``: for ever); whether the job ended."""
        return self._done.acquire(timeout=-1 if timeout is None else timeout)

    def on_done(self, callback: Callable[[], object]) -> bool:
        """Call ``callback`` (on the script thread) when the job ends; False if it already has."""
        with self._guard:
            if self.finished:
                return False
            self._callback = callback
            return True

    def result(self) -> bytes:
        """The call's result (raises what the call raised)."""
        if self._error is not None:
            raise self._error
        return self._result


class Worker:
    """A daemon thread that runs submitted jobs in order."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="snapkv-script", daemon=True)
        self.thread.start()

    def submit(self, job: Job) -> None:
        """Queue ``job`` (the one running script: a second waits for the first)."""
        self._jobs.put(job)

    def _loop(self) -> None:
        while True:
            self._jobs.get().run()


class Relay:
    """Stands in for the event loop's ``threadsafe_call`` while the loop's thread waits.

    What a script on the script thread sends other clients (MONITOR lines,
    PUBLISH messages) is handed to the loop as a callback; queued on the
    loop, those callbacks would run after the pushes of the commands the
    loop runs next, out of Redis's order. Collected here instead, they run
    on the loop's thread (:meth:`flush`) as soon as it stops waiting, before
    anything else it does: in order, as if the script had run there.
    """

    def __init__(self, real: Callable[[Callable[[], None]], object]) -> None:
        self.real = real
        self._lock = threading.Lock()
        self._pending: list[Callable[[], Any]] | None = []

    def __call__(self, fn: Callable[[], None]) -> object:
        with self._lock:
            pending = self._pending
            if pending is not None:
                pending.append(fn)
                return None
        return self.real(fn)

    def flush(self) -> None:
        """On the loop's thread: run what was collected; later calls go to the loop."""
        with self._lock:
            pending, self._pending = self._pending, None
        for fn in pending or ():
            try:
                fn()
            except Exception:  # one client's push must not stop the others'
                log.exception("after a script's command")
