"""The journals of an :class:`~snapkv.objstore.medium.ObjectMedium`: their bytes and their segments.

Split from the medium at the seam between the prefix's protocol (claiming,
fencing, manifests, snapshots: :mod:`snapkv.objstore.medium`) and the
bookkeeping of the journals the segments hold:

* :class:`JournalState`: one journal's bytes, how much of them a segment
  made durable, the times of the writes not yet, and the first and last
  segment that wrote it;
* :class:`ObjectJournal`: the :class:`~snapkv.media.base.JournalFile` a
  Store writes to; every call goes to its medium (the :class:`JournalHost`),
  which holds the locks and puts the segments;
* :class:`JournalBook`: the live journals, the spans of the dropped ones,
  and from them the first segment a manifest must name (FORMAT.md O6).

Nothing here makes a request.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from array import array
from collections.abc import Iterable, Iterator
from typing import Protocol

from snapkv.errors import MediumError
from snapkv.media.base import JournalFile
from snapkv.objstore import layout as lo

__all__ = ["JournalBook", "JournalHost", "JournalState", "ObjectJournal"]


class JournalState:
    """One journal: its durable bytes, the writes buffered after them, and their times.

    The durable bytes (every segment put so far) wait in an unnamed
    temporary file, not in memory: a journal grows to the Store's
    compaction threshold (twice the snapshot), and keeping it in memory
    would hold the data twice. Only the writes not yet synced are in memory.
    """

    __slots__ = (
        "__weakref__",
        "_close",
        "_fd",
        "durable",
        "ends",
        "first_seq",
        "last_seq",
        "live",
        "pending",
        "stamps",
        "times",
    )

    def __init__(self, data: bytes | bytearray, first_seq: int, last_seq: int = 0) -> None:
        # An unnamed file (removed at once): gone with its descriptor, which
        # drop() closes, or the garbage collector if the medium is abandoned.
        fd, path = tempfile.mkstemp(prefix="snapkv-journal-")
        os.unlink(path)
        self._fd = fd
        self._close = weakref.finalize(self, os.close, fd)
        #: Bytes of the journal that a segment made durable (all in the file).
        self.durable = 0
        #: Bytes written after them, not synced yet.
        self.pending = bytearray()
        #: ``(end offset, epoch ms)`` of each buffered write past ``durable``.
        self.times: list[tuple[int, int]] = []
        #: End offset and epoch ms of each durable write (two int64 arrays: a
        #: consolidation puts the journal again whole with its records' times).
        self.ends = array("q")
        self.stamps = array("q")
        #: The segment that last wrote it from offset 0: what the fold needs from.
        self.first_seq = first_seq
        #: The last segment that wrote it.
        self.last_seq = max(first_seq, last_seq)
        #: False once the journal was dropped or replaced: its handles may not sync.
        self.live = True
        self._store(data)

    @property
    def size(self) -> int:
        """Bytes in the journal, buffered ones included."""
        return self.durable + len(self.pending)

    def _store(self, data: bytes | bytearray | memoryview) -> None:
        try:
            written = os.pwrite(self._fd, data, self.durable)
        except OSError as exc:
            raise MediumError(f"cannot keep a journal's bytes in a temporary file: {exc}") from exc
        if written != len(data):
            raise MediumError("cannot keep a journal's bytes in a temporary file: short write")
        self.durable += written

    def synced(self, count: int) -> None:
        """The first ``count`` buffered bytes are in a segment now: move them to the file."""
        self._store(memoryview(self.pending)[:count])
        del self.pending[:count]
        for end, ms in self.times:
            if end <= self.durable:
                self.ends.append(end)
                self.stamps.append(ms)
        self.times = [(end, ms) for end, ms in self.times if end > self.durable]

    def durable_bytes(self) -> bytes:
        """The durable bytes (read back from the file)."""
        try:
            return os.pread(self._fd, self.durable, 0)
        except OSError as exc:
            raise MediumError(f"cannot read a journal's bytes back: {exc}") from exc

    def pieces(self, limit: int) -> Iterator[tuple[int, bytes, tuple[tuple[int, int], ...]]]:
        """The durable bytes again as ``(offset, bytes, times)`` runs of about ``limit`` bytes.

        What a consolidation puts: each run ends at a record's end (one
        record larger than ``limit`` is a run alone), carries its records'
        own times relative to its start, and is read from the file only
        when asked for, so memory holds one run, never the journal.
        """
        start = 0
        times: list[tuple[int, int]] = []
        for end, ms in zip(self.ends, self.stamps, strict=True):
            if times and end - start > limit:
                yield start, self._range(start, times[-1][0] + start), tuple(times)
                start, times = times[-1][0] + start, []
            times.append((end - start, ms))
        if times or start < self.durable or not self.durable:
            yield start, self._range(start, self.durable), tuple(times)

    def _range(self, start: int, end: int) -> bytes:
        try:
            return os.pread(self._fd, end - start, start)
        except OSError as exc:
            raise MediumError(f"cannot read a journal's bytes back: {exc}") from exc

    def read(self) -> bytes:
        """Every byte of the journal, buffered ones included."""
        return self.durable_bytes() + bytes(self.pending)

    def cut(self, size: int) -> bool:
        """Cut (or extend with zeros) to ``size``; return whether durable bytes were cut."""
        cut = size < self.durable
        if cut:
            os.ftruncate(self._fd, size)
            self.durable = size
            self.pending.clear()
        else:
            del self.pending[size - self.durable :]
            self.pending.extend(bytes(size - self.size))
        self.times = [(end, ms) for end, ms in self.times if end <= size]
        kept = sum(1 for end in self.ends if end <= size)
        del self.ends[kept:], self.stamps[kept:]
        return cut

    def drop(self) -> None:
        """No longer a journal of the medium: its handles stop, its file goes."""
        self.live = False
        self._close()


class JournalHost(Protocol):
    """What an :class:`ObjectJournal` asks of its medium."""

    def journal_write(self, jid: int, state: JournalState, data: bytes) -> None:
        """Buffer ``data`` with its time."""
        ...

    def journal_sync(self, jid: int, state: JournalState) -> None:
        """Put one segment holding everything buffered."""
        ...

    def journal_truncate(self, jid: int, state: JournalState, size: int) -> None:
        """Cut the journal at ``size``, durably."""
        ...

    def describe_journal(self, jid: int) -> str:
        """The journal, for messages."""
        ...


class ObjectJournal(JournalFile):
    """An open journal of an ObjectMedium: writes buffer, ``sync`` is one segment PUT."""

    def __init__(self, host: JournalHost, jid: int, state: JournalState) -> None:
        self._host = host
        self.jid = jid
        self._state = state
        self._closed = False

    @property
    def size(self) -> int:
        """Bytes in the journal, buffered ones included (JournalFile's ``size``, always current)."""
        return self._state.size

    @size.setter
    def size(self, value: int) -> None:
        raise AttributeError("an ObjectJournal's size follows its bytes")

    def _check(self) -> None:
        if self._closed:
            raise MediumError(f"{self._host.describe_journal(self.jid)} is closed")

    def write(self, data: bytes) -> None:
        if self._closed:
            self._check()  # raises
        self._host.journal_write(self.jid, self._state, data)

    def sync(self) -> None:
        self._check()
        self._host.journal_sync(self.jid, self._state)

    def truncate(self, size: int) -> None:
        self._check()
        self._host.journal_truncate(self.jid, self._state, size)

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<ObjectJournal {self.jid} size={self.size} durable={self._state.durable}>"


class JournalBook:
    """The live journals by id, and the segment spans of the dropped ones.

    Not thread-safe: the medium calls it under its locks.
    """

    def __init__(self) -> None:
        self.live: dict[int, JournalState] = {}
        #: ``(first, last)`` segments of each dropped journal (see :meth:`segments_from`).
        self.dead: list[tuple[int, int]] = []

    def load(self, pairs: Iterable[tuple[int, lo.Segment]], journals: dict[int, bytearray]) -> None:
        """Set the book to the folded ``journals`` of ``pairs`` (all durable), spans and times."""
        spans: dict[int, tuple[int, int]] = {}
        times: dict[int, list[tuple[int, int]]] = {}
        for number, segment in pairs:
            jid = segment.journal
            if segment.kind == lo.KIND_WRITE:
                if segment.offset == 0 and jid in spans:
                    self.dead.append(spans.pop(jid))
                first = spans[jid][0] if jid in spans and segment.offset else number
                spans[jid] = (first, number)
                kept = [t for t in times.get(jid, []) if t[0] <= segment.offset]
                times[jid] = kept + [(segment.offset + end, ms) for end, ms in segment.times]
            elif segment.kind in (lo.KIND_DROP, lo.KIND_DROP_BELOW):
                below = segment.kind == lo.KIND_DROP_BELOW
                for gone in [j for j in spans if (j < jid if below else j == jid)]:
                    self.dead.append(spans.pop(gone))
        self.live = {jid: JournalState(data, *spans[jid]) for jid, data in journals.items()}
        for jid, state in self.live.items():
            state.ends.extend(end for end, _ in times.get(jid, ()))
            state.stamps.extend(ms for _, ms in times.get(jid, ()))

    def created(
        self, jid: int, header: bytes, seq: int, times: Iterable[tuple[int, int]] = ()
    ) -> JournalState:
        """Journal ``jid`` was (re)created by segment ``seq`` holding ``header`` (drops one before).

        ``times`` are the segment's writes (end offset, epoch ms).
        """
        old = self.live.get(jid)
        if old is not None:
            self.drop(jid)
        state = self.live[jid] = JournalState(header, seq)
        for end, ms in times:
            state.ends.append(end)
            state.stamps.append(ms)
        return state

    def drop(self, jid: int) -> None:
        """Journal ``jid`` is set aside, removed or replaced: its handles stop, its span stays."""
        state = self.live.pop(jid, None)
        if state is not None:
            state.drop()
            self.dead.append((state.first_seq, state.last_seq))

    def close(self) -> None:
        """Let go of every journal's file (the medium is closing)."""
        for state in self.live.values():
            state.drop()

    def wrote(self, seq: int, segment: lo.Segment) -> None:
        """Segment ``seq`` is stored: if it writes a live journal, it is that journal's last."""
        if segment.kind == lo.KIND_WRITE:
            state = self.live.get(segment.journal)
            if state is not None:
                state.last_seq = seq

    def segments_from(self, next_seq: int) -> int:
        """The first segment the fold needs (FORMAT.md O6), ``next_seq`` when none is.

        Not just the oldest live journal's first segment: a journal dropped
        later may still have written segments after it (the old journal's
        last sync lands after the next journal's creation at a rotation),
        and a fold that meets such a write must have seen that journal
        created. So the start moves back over every dropped journal whose
        segments reach past it, until none does; dropped journals wholly
        before the start never matter again and are forgotten.
        """
        start = min([next_seq, *(state.first_seq for state in self.live.values())])
        moved = True
        while moved:
            moved = False
            for first, last in self.dead:
                if first < start <= last:
                    start, moved = first, True
        self.dead = [(first, last) for first, last in self.dead if last >= start]
        return start
