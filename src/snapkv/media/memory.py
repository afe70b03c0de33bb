"""MemoryMedium: snapshots as bytes objects in this process.

Used by :func:`snapkv.run_operations` so that every ``shutdown`` really goes
through the byte format, and by tests. Publishing is atomic because the new
generation becomes visible by one list operation, after it is complete.

Journals are bytearrays. Each one also remembers how many of its bytes were
synced (:meth:`MemoryMedium.synced_size`), which is what a power loss would
keep for certain: a fault-injecting medium built on this one can drop,
zero or garble everything past that point, as LevelDB's
``FaultInjectionTestEnv`` does with "data not protected by a sync".
"""

from __future__ import annotations

import operator
import threading
from collections.abc import Iterable

from snapkv.errors import MediumError
from snapkv.media.base import JournalFile, Medium

__all__ = ["MemoryJournal", "MemoryMedium"]


class _JournalBytes:
    """A journal's content and how much of it is synced, shared by all its handles."""

    __slots__ = ("data", "synced")

    def __init__(self, data: bytearray) -> None:
        self.data = data
        self.synced = len(data)


class MemoryJournal(JournalFile):
    """An open journal of a :class:`MemoryMedium`: appends to its bytearray.

    A removed or replaced journal keeps its handles writing to the old
    bytes, as an unlinked file keeps its descriptors.
    """

    def __init__(self, name: str, content: _JournalBytes, lock: threading.Lock) -> None:
        self.name = name
        self._content = content
        self._lock = lock
        self._closed = False
        self.size = len(content.data)

    def _check_open(self) -> None:
        if self._closed:
            raise MediumError(f"{self.name} is closed")

    def write(self, data: bytes) -> None:
        with self._lock:
            self._check_open()
            self._content.data += data
            self.size = len(self._content.data)

    def sync(self) -> None:
        with self._lock:
            self._check_open()
            self._content.synced = len(self._content.data)

    def truncate(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"cannot truncate to {size} bytes")
        with self._lock:
            self._check_open()
            data = self._content.data
            # Like ftruncate: a larger size extends the journal with zero bytes.
            del data[size:]
            data.extend(bytes(size - len(data)))
            self._content.synced = self.size = size

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<MemoryJournal {self.name} size={self.size}>"


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
        self._journals: dict[int, _JournalBytes] = {}

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

    # ----------------------------------------------------------------- journals

    def journal_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._journals)

    def read_journal(self, jid: int) -> bytes | None:
        with self._lock:
            content = self._journals.get(jid)
            return None if content is None else bytes(content.data)

    def create_journal(self, jid: int, header: bytes) -> JournalFile:
        _check_jid(jid)
        with self._lock:
            content = self._journals[jid] = _JournalBytes(bytearray(header))
            return MemoryJournal(self.describe_journal(jid), content, self._lock)

    def open_journal(self, jid: int) -> JournalFile:
        with self._lock:
            content = self._journals.get(jid)
            if content is None:
                raise MediumError(f"cannot open {self.describe_journal(jid)}: it does not exist")
            content.synced = len(content.data)  # open_journal makes the content durable
            return MemoryJournal(self.describe_journal(jid), content, self._lock)

    def remove_journals(self, below: int) -> None:
        with self._lock:
            for jid in [jid for jid in self._journals if jid < below]:
                del self._journals[jid]

    def quarantine_journal(self, jid: int) -> str:
        with self._lock:
            self._journals.pop(jid, None)
        return "dropped"

    def synced_size(self, jid: int) -> int:
        """Bytes of journal ``jid`` that a sync made durable: what a power loss keeps for sure.

        Everything past it was written but not synced: a fault-injecting
        medium may drop, zero or garble it to simulate a power loss.

        :raises KeyError: there is no journal ``jid``.
        """
        with self._lock:
            return self._journals[jid].synced

    def describe_journal(self, jid: int) -> str:
        return f"memory journal {jid}"

    def __repr__(self) -> str:
        return f"MemoryMedium(keep={self._keep})"


def _check_jid(jid: int) -> None:
    if not 0 < jid < 10**16:
        raise ValueError(f"journal ids are 1 to 10**16-1, not {jid}")
