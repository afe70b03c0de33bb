"""MemoryMedium: snapshots as bytes objects in this process.

Used by :func:`snapkv.run_operations` so that every ``shutdown`` really goes
through the byte format, and by tests. Publishing is atomic because the new
generation becomes visible by one list operation, after it is complete.
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterable

from snapkv.media.base import Medium

__all__ = ["MemoryMedium"]


class MemoryMedium(Medium):
    """Keeps the newest snapshot, and ``keep`` older ones, in memory."""

    def __init__(self, *, keep: int = 0) -> None:
        keep = operator.index(keep)
        if keep < 0:
            raise ValueError(f"keep must be >= 0, not {keep}")
        self._keep = keep
        self._lock = threading.Lock()
        self._snapshots: list[tuple[str, bytes]] = []  # newest first
        self._next = 1

    def publish(self, pieces: Iterable[bytes]) -> None:
        data = b"".join(pieces)
        with self._lock:
            self._snapshots.insert(0, (str(self._next), data))
            self._next += 1
            del self._snapshots[self._keep + 1 :]

    def generations(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self._snapshots]

    def read(self, generation: str | None = None) -> bytes | None:
        with self._lock:
            for name, data in self._snapshots:
                if generation is None or name == generation:
                    return data
        return None

    def quarantine(self, generation: str) -> str:
        with self._lock:
            self._snapshots = [(n, d) for n, d in self._snapshots if n != generation]
        return "dropped"

    def describe(self, generation: str | None = None) -> str:
        return f"memory snapshot {generation or '(newest)'}"

    def __repr__(self) -> str:
        return f"MemoryMedium(keep={self._keep})"
