"""A journal file written through a preallocated, shared memory mapping (FileMedium's journals).

From its first record on, a journal is preallocated ahead of its records
(``posix_fallocate``, in steps that double up to 64 MiB) and each record is
copied into a shared mapping of that space: the record is in the page cache,
and survives the process, when the copy ends, with no system call per record.
Where the system or file system cannot preallocate or map a file, records
are appended with ``pwrite`` (:class:`_Appender`), under the same contract.
A clean close cuts the file back to its records, durably; a process that
dies leaves zeros after them, which the next open cuts (FORMAT.md J2, J6).

:class:`_Tail` is one file's end, shared by every handle on it
(:class:`FileJournal`); :class:`~snapkv.media.file.FileMedium` creates and
opens them, and owns the directory they live in.
"""

from __future__ import annotations

import errno
import logging
import mmap
import os
import sys
import weakref
from pathlib import Path

from snapkv import _fs
from snapkv.errors import MediumError, NoSpaceError
from snapkv.media.base import JournalFile

__all__ = ["FileJournal"]

log = logging.getLogger("snapkv")

#: fdatasync where the OS has it: for an append it syncs the data and the
#: new file size, which is all a journal needs, and skips the mtime update.
_datasync = getattr(os, "fdatasync", os.fsync)


#: The first preallocation step of a journal; each later step is as large as
#: the journal already is (it doubles), up to ``_STEP_MAX``. Measured on
#: 105-byte records (ext4): a step's ``posix_fallocate`` and new mapping
#: cost 16 ns a record at 1 MiB steps and 3 ns at 64 MiB, against ~250 ns
#: for the page faults of the fresh pages, which no step size changes; what
#: the size does change is the slack a killed process leaves (cut by the
#: next open) and the disk a small store holds while it is open.
_STEP_MIN = 1 << 20
_STEP_MAX = 64 << 20
#: Linux writes back pages dirtied through a shared mapping on ``fdatasync``
#: of the file; elsewhere POSIX asks for ``msync`` first.
_MSYNC_FIRST = sys.platform != "linux"


class _NoRoom:
    """The mapping of a journal that has none yet, or no longer: every write misses."""

    def write(self, data: bytes) -> int:
        raise ValueError("no mapping")

    def tell(self) -> int:
        return 0

    def flush(self) -> None:
        """Nothing mapped, nothing to flush."""

    def close(self) -> None:
        """Nothing to unmap."""


_NO_ROOM = _NoRoom()
#: What ``posix_fallocate`` says where a file system cannot preallocate (as
#: opposed to a full disk or an I/O error, which fail the write).
_CANNOT_PREALLOCATE = frozenset({errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL, errno.ENODEV})
#: What ``posix_fallocate`` says when the disk (or the user's quota) is full.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


class _Appender:
    """Stands in for the mapping where a file cannot be mapped: ``pwrite`` at the end.

    The record is in the page cache when ``pwrite`` returns, as it is when a
    copy into a mapping ends, so the durability contract is the same; only
    the system call per record comes back (and no space is preallocated).
    """

    def __init__(self, tail: _Tail) -> None:
        self._tail = tail
        self._written = 0

    def write(self, data: bytes) -> int:
        tail = self._tail
        fd = tail.fd
        if fd is None:
            raise ValueError("closed")
        start = tail.base + self._written
        done = 0
        try:
            done = os.pwrite(fd, data, start)
            if done < len(data):
                # pwrite may write less than asked (a full disk, a signal).
                view = memoryview(data)
                while done < len(data):
                    done += os.pwrite(fd, view[done:], start + done)
        except OSError as exc:
            error = NoSpaceError if done == 0 and exc.errno in _DISK_FULL else MediumError
            raise error(f"cannot append to journal {tail.path}: {exc}") from exc
        finally:
            self._written += done  # a partial write is counted: ``size`` stays exact
        return done

    def tell(self) -> int:
        return self._written

    def flush(self) -> None:
        """Nothing is mapped: ``fdatasync`` alone covers ``pwrite``."""

    def close(self) -> None:
        """Nothing to unmap."""


class _Tail:
    """One journal file's end, shared by every handle on it (so appends never overwrite).

    The file is preallocated ahead of its records and written through a
    shared mapping of the preallocated part: a store into a ``MAP_SHARED``
    mapping is in the page cache at once, so a record survives a crash of
    the process as soon as it is copied, as with ``write``, without a
    system call per record. ``size`` is where the records end (the next
    write's offset), ``capacity`` the file's length; the bytes between are
    zeros (FORMAT.md section J2). ``size`` is not counted per write: it is
    the mapping's position past ``base``, the file offset the mapping starts
    at (``size`` itself while nothing is mapped).
    """

    __slots__ = ("base", "capacity", "fd", "handles", "map", "path")

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path = path
        self.fd: int | None = fd
        self.base = self.capacity = size
        self.map: mmap.mmap | _NoRoom | _Appender = _NO_ROOM
        self.handles = 0

    @property
    def size(self) -> int:
        return self.base + self.map.tell()

    def grow(self, need: int) -> None:
        """Allocate and map room for ``need`` more bytes at ``size``.

        The space is allocated for real (``posix_fallocate``) before it is
        mapped: a store into a sparse mapping that the disk cannot back is a
        SIGBUS, which would kill the process; a failed allocation is a
        MediumError, and nothing is written. A system or file system that
        cannot allocate ahead or map files gets ``pwrite`` (:class:`_Appender`).
        """
        fd = self.fd
        assert fd is not None, "a closed tail has no handle left to write through it"
        size = self.size
        step = min(max(size, _STEP_MIN), _STEP_MAX)
        capacity = -(-(size + max(step, need)) // _PAGE) * _PAGE
        allocate = getattr(os, "posix_fallocate", None)
        try:
            if allocate is None:
                raise OSError(errno.EOPNOTSUPP, "posix_fallocate is not available")
            try:
                allocate(fd, size, capacity - size)
            except OSError as exc:
                if exc.errno not in _DISK_FULL:
                    raise
                # A nearly full disk still takes this record: ask for the
                # pages it needs, not a whole step (the step is a speed-up,
                # never a condition of writing).
                capacity = -(-(size + need) // _PAGE) * _PAGE
                allocate(fd, size, capacity - size)
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                raise NoSpaceError(
                    f"cannot allocate {capacity - size} bytes for journal {self.path}: {exc}; "
                    "nothing was written, and writes resume once there is room"
                ) from exc
            if exc.errno not in _CANNOT_PREALLOCATE:
                raise MediumError(
                    f"cannot allocate {capacity - size} bytes for journal {self.path}: {exc}"
                ) from exc
            self._append_instead(size, exc)
            return
        self.capacity = max(self.capacity, capacity)  # the file's length from here on
        # Only the unwritten part is mapped, from the page that holds ``size``.
        base = size - size % mmap.ALLOCATIONGRANULARITY
        try:
            mapped = mmap.mmap(fd, capacity - base, offset=base)
        except OSError as exc:
            self._append_instead(size, exc)
            return
        mapped.seek(size - base)
        old, self.map = self.map, mapped
        self.base = base
        old.close()

    def _append_instead(self, size: int, why: OSError) -> None:
        log.info("journal %s is written with pwrite, not mapped: %s", self.path, why)
        old, self.map = self.map, _Appender(self)
        self.base = size
        old.close()

    def sync(self) -> None:
        fd = self.fd
        if fd is None:
            raise MediumError(f"journal {self.path} is closed")
        try:
            if _MSYNC_FIRST:
                self.map.flush()
            _datasync(fd)
        except (OSError, ValueError) as exc:
            raise MediumError(f"cannot sync journal {self.path}: {exc}") from exc

    def truncate(self, size: int) -> None:
        fd = self.fd
        if fd is None:
            raise MediumError(f"journal {self.path} is closed")
        self.unmap()
        try:
            _fs.truncate_durably(fd, size)
        except OSError as exc:
            raise MediumError(f"cannot truncate journal {self.path} to {size}: {exc}") from exc
        self.base = self.capacity = size

    def unmap(self) -> None:
        self.base = self.size
        old, self.map = self.map, _NO_ROOM
        old.close()

    def release(self, *, trim: bool) -> None:
        """Unmap and close; with ``trim``, first cut the unused preallocated space, durably.

        A clean close leaves the file as long as its records, as if it had
        been appended to: only a process that dies leaves zeros after them
        (a zero-filled tail, which the next open cuts). ``trim`` is off in a
        forked child: the parent still writes to the file.
        """
        fd, self.fd = self.fd, None
        if fd is None:
            return
        try:
            self.unmap()
            if trim and self.capacity > self.base:
                _fs.truncate_durably(fd, self.base)
                self.capacity = self.base
        except OSError as exc:
            raise MediumError(f"cannot cut journal {self.path} to {self.size}: {exc}") from exc
        finally:
            os.close(fd)


_PAGE = mmap.PAGESIZE


class FileJournal(JournalFile):
    """An open journal file: appends go to the shared end of the file (see :class:`_Tail`)."""

    def __init__(self, tail: _Tail) -> None:
        self.path = tail.path
        self._tail = tail
        tail.handles += 1
        # An unclosed journal's handle is released when the object is collected.
        self._finalizer = weakref.finalize(self, _let_go, tail, False)

    @property
    def size(self) -> int:  # type: ignore[override]
        return self._tail.size

    def write(self, data: bytes) -> None:
        # Every set's path: one copy into the mapping (``mmap.write`` writes
        # all of ``data`` at the mapping's position, or nothing and raises
        # ValueError when it does not fit or the journal is closed).
        try:
            self._tail.map.write(data)
        except ValueError:
            self._write_slow(data)

    def _write_slow(self, data: bytes) -> None:
        tail = self._tail
        if not self._finalizer.alive or tail.fd is None:
            raise MediumError(f"journal {self.path} is closed")
        tail.grow(len(data))
        tail.map.write(data)

    def sync(self) -> None:
        if not self._finalizer.alive:
            raise MediumError(f"journal {self.path} is closed")
        self._tail.sync()

    def truncate(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"cannot truncate to {size} bytes")
        if not self._finalizer.alive:
            raise MediumError(f"journal {self.path} is closed")
        self._tail.truncate(size)

    def close(self) -> None:
        """Release this handle; the last one cuts the preallocated space (see :class:`_Tail`)."""
        if self._finalizer.detach() is not None:
            tail, self._tail = self._tail, _closed_tail(self._tail)
            _let_go(tail, True)

    def _forget(self) -> None:
        """In a forked child: let go of the mapping and descriptor, never touching the file."""
        if self._finalizer.detach() is not None:
            tail, self._tail = self._tail, _closed_tail(self._tail)
            tail.handles = 0
            tail.release(trim=False)

    def __repr__(self) -> str:
        return f"<FileJournal {str(self.path)!r} size={self.size}>"


def _closed_tail(tail: _Tail) -> _Tail:
    """What a closed handle keeps: its size, and no way to write."""
    closed = _Tail(tail.path, -1, tail.size)
    closed.fd = None
    return closed


def _let_go(tail: _Tail, trim: bool) -> None:
    tail.handles -= 1
    if tail.handles <= 0:
        tail.release(trim=trim)
