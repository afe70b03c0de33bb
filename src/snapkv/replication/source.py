"""What the shipper reads: a store's directory, through its files, never through the Store.

Replication ships the local files by reading them, as Litestream reads
SQLite's WAL: the journal's bytes are already the wire format, a published
snapshot file is immutable, and reading needs no hook in the Store, so the
write path pays nothing for replication. The directory's layout (names,
numbers) is :class:`~snapkv.media.file.DirectoryReader`'s; the record frame
is :mod:`snapkv._frame`'s; nothing here knows either a second time.

A journal is read while its writer appends to it, possibly through a shared
mapping into preallocated zeros. What is safe to ship is the longest run of
whole records from where the last segment ended: each record is verified
with :func:`~snapkv._frame.frame_end` (length and CRC), so a record the
writer is still copying in (its body partly there) or the zeros after the
last record end the run, and the rest waits for the next tick. A record is
never shipped twice nor split across segments, so every segment ends at a
record boundary and segments concatenate to the journal itself.
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass
from pathlib import Path

from snapkv import codec
from snapkv._frame import as_view, frame_end
from snapkv.errors import MediumError
from snapkv.journal.format import HEADER_SIZE as JOURNAL_HEADER_SIZE
from snapkv.media.file import DirectoryReader

__all__ = ["LocalSnapshot", "LocalSource"]

#: Enough of a snapshot's start for its header and META record (journal_next).
_SNAPSHOT_HEAD = 4096


@dataclass(frozen=True)
class LocalSnapshot:
    """A published snapshot file: its generation number, path, size and ``journal_next``."""

    number: int
    path: Path
    size: int
    journal_next: int


def journal_next_of(head: bytes | None) -> int | None:
    """The ``journal_next`` a snapshot's first bytes name (``None``: they do not say)."""
    return codec.peek_journal_next(head) if head is not None else None


class LocalSource:
    """The snapshots and journal records of one store directory, read without its lock."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._reader = DirectoryReader(directory)
        self.directory = self._reader.directory

    def newest_snapshot(self) -> LocalSnapshot | None:
        """The newest published snapshot, or ``None`` if there is none (or it vanished).

        A snapshot whose first record does not say which journal it needs
        is skipped for an older one: shipping it would name the wrong
        journals. (A file under its final name is complete: FileMedium
        renames it there only once every byte is written and synced.)
        """
        for name in self._reader.generations():
            path = self._reader.path(name)
            try:
                with path.open("rb") as file:
                    head = file.read(_SNAPSHOT_HEAD)
                    size = os.fstat(file.fileno()).st_size
            except FileNotFoundError:
                continue  # pruned since the listing: an older one may remain
            except OSError as exc:
                raise MediumError(f"cannot read {path}: {exc}") from exc
            journal_next = codec.peek_journal_next(head)
            if journal_next is None:
                continue
            number = int(name.split("-")[1].split(".")[0])
            return LocalSnapshot(number, path, size, journal_next)
        return None

    def journal_ids(self) -> list[int]:
        """The journals in the directory, ascending."""
        return self._reader.journal_ids()

    def whole_records(self, jid: int, start: int, limit: int) -> bytes | None:
        """The journal's bytes from ``start`` up to the end of its last whole record.

        ``start`` is where the previous segment ended (0 for a journal not
        shipped yet: the header comes first). At most ``limit`` bytes are
        returned, cut at a record boundary, unless the first record alone is
        larger (a segment holds at least one record). ``b""`` when nothing
        new is whole yet; ``None`` when the journal is gone (removed after a
        newer snapshot covered it).

        :raises MediumError: the journal exists but cannot be read.
        """
        path = self._reader.journal_path(jid)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise MediumError(f"cannot read journal {path}: {exc}") from exc
        try:
            size = os.fstat(fd).st_size
            if size <= start:
                return b""
            # A read-only mapping: only the pages the walk touches are read,
            # so the megabytes of preallocated zeros after the records cost
            # nothing, and the bytes are the writer's own (one page cache).
            try:
                # Length 0 maps the file as it is now: a close may trim its
                # preallocated tail between the fstat and here, and a length
                # past the end would raise (a spurious failed pass).
                mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
            except ValueError:
                return b""  # cut to nothing meanwhile: the next pass looks again
            with mapped:
                view = as_view(memoryview(mapped))
                try:
                    end = _whole_end(view, start, limit)
                    return bytes(view[start:end])
                finally:
                    view.release()
        except OSError as exc:
            raise MediumError(f"cannot read journal {path}: {exc}") from exc
        finally:
            os.close(fd)


def _whole_end(view: memoryview, start: int, limit: int) -> int:
    """Where the run of whole records from ``start`` ends (at most ``limit`` bytes on)."""
    pos = start
    if pos == 0:
        if len(view) < JOURNAL_HEADER_SIZE:
            return 0  # the header itself is not all there (a file being created)
        pos = JOURNAL_HEADER_SIZE
    while True:
        end = frame_end(view, pos)
        if end is None or (end - start > limit and pos > start):
            return pos
        pos = end
