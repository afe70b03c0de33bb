"""FileMedium: numbered snapshot files in one directory, published atomically.

Directory layout::

    LOCK                          flock()ed while a Store has the directory open
    snapshot-0000000000000007.skv newest generation
    snapshot-0000000000000006.skv kept for fallback (``keep=1``)
    .tmp-0000000000000008-4242    a publish in progress (removed on failure
                                  or on the next open)
    snapshot-0000000000000005.skv.corrupt
                                  set aside by restore(fallback=True), kept
                                  for post-mortem, never read or pruned
    journal-0000000000000003.skj  journals (ids from 1, never reused): the
                                  writes since a snapshot, appended in place
    .tmp-journal-0000000000000004-4242
                                  a journal being created (removed on failure
                                  or on the next open)

The publish recipe, as Redis's ``rdbSave`` and LevelDB's ``SetCurrentFile``
do it: write a temporary file in the same directory, ``fsync`` it, rename it
to its final name, ``fsync`` the directory. A snapshot file exists under its
final name only once every byte of it is on disk, and rename is atomic, so a
crash at any instant leaves the previous newest generation or the new one,
never a torn file. The newest generation is simply the highest number: no
pointer file that could disagree with the directory.

One writer per directory: ``LOCK`` is held with ``flock``, which conflicts
between two opens of the file even inside one process, so a second Store on
the same directory fails fast with :class:`~snapkv.errors.StoreLockedError`.
The lock dies with the process, so a crash never leaves a stale lock; a
forked child closes its copy at once, so it neither keeps the directory
locked after the parent closes it nor acts as a second writer. POSIX only
(``fcntl``).

Journals are the one thing written in place, by appending. A journal is
created by the publish recipe (its header in a temporary file, synced,
renamed, directory synced), so it never exists under its final name without
a complete, durable header. How records are written into it (preallocated,
through a shared mapping, cut back to its records on a clean close) is
:mod:`snapkv.media.journal_file`'s.
Journal numbers are separate from snapshot numbers and never disturb them.
Closing the medium closes its journal handles, so no write can land after
the lock is released; a forked child lets go of its copies of the mappings
without touching the files.
"""

from __future__ import annotations

import contextlib
import logging
import operator
import os
import re
import sys
import weakref
from collections.abc import Iterable
from pathlib import Path

from snapkv import _fs
from snapkv.errors import MediumError, StoreLockedError
from snapkv.media.base import JournalFile, Medium
from snapkv.media.journal_file import FileJournal, _Tail

if sys.platform != "win32":  # imported only where it exists, so `import snapkv` works anywhere
    import fcntl

__all__ = ["DirectoryReader", "FileMedium", "list_snapshots"]

log = logging.getLogger("snapkv")

LOCK_NAME = "LOCK"
#: The file ``snapkv.replication`` keeps the directory's replica writer id in
#: (next to ``LOCK``); a FileMedium never removes it, ``snapkv check`` skips it.
REPLICA_NAME = "REPLICA"
CORRUPT_SUFFIX = ".corrupt"
_SNAPSHOT = re.compile(r"snapshot-(\d{16})\.skv")
#: Any name that used a generation number: numbers are never reused, so a
#: quarantined ``.corrupt`` file is never overwritten by a later incident.
_NUMBERED = re.compile(r"snapshot-(\d{16})\.skv(?:\.corrupt)?|\.tmp-(\d{16})-\d+")
_TEMP_PREFIX = ".tmp-"
#: The temporaries a publish or a journal creation names (``_TEMP_PREFIX``,
#: then the number, then the writer's pid): the only files an open removes.
_TEMPORARY = re.compile(r"\.tmp-(?:journal-)?\d{16}-\d+")
_JOURNAL = re.compile(r"journal-(\d{16})\.skj")


def _journal_name(jid: int) -> str:
    if not 0 < jid < 10**16:
        raise ValueError(f"journal ids are 1 to 10**16-1, not {jid}")
    return f"journal-{jid:016d}.skj"


def _snapshot_name(generation: int) -> str:
    return f"snapshot-{generation:016d}.skv"


def _numbers(directory: Path) -> list[int]:
    return sorted(
        (int(m.group(1)) for m in map(_SNAPSHOT.fullmatch, os.listdir(directory)) if m),
        reverse=True,
    )


def list_snapshots(directory: str | os.PathLike[str]) -> list[Path]:
    """Snapshot files in ``directory``, newest first, without locking it (for inspection).

    :raises OSError: the directory cannot be listed.
    """
    path = Path(directory)
    return [path / _snapshot_name(n) for n in _numbers(path)]


def _next_number(directory: Path) -> int:
    highest = 0
    for name in os.listdir(directory):
        match = _NUMBERED.fullmatch(name)
        if match:
            highest = max(highest, int(match.group(1) or match.group(2)))
    return highest + 1


# Media whose lock a forked child must drop (see the module docstring).
_OPEN_MEDIA: weakref.WeakSet[FileMedium] = weakref.WeakSet()


def _drop_locks_in_child() -> None:
    for medium in list(_OPEN_MEDIA):
        medium._forget_lock()


if sys.platform != "win32":
    os.register_at_fork(after_in_child=_drop_locks_in_child)


class DirectoryReader:
    """The read side of a :class:`FileMedium`, without its lock.

    What recovery reads (:class:`snapkv.recovery.Source`), with the same
    names and errors as the medium a Store opens, so that ``snapkv check``
    judges a directory exactly as ``open()`` would, even while a Store has
    it open. :class:`FileMedium` is this plus the lock and the writes.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _check_open(self) -> None:
        """A hook: :class:`FileMedium` refuses every call once it is closed."""

    def _numbers(self) -> list[int]:
        try:
            return _numbers(self.directory)
        except OSError as exc:
            raise MediumError(f"cannot list {self.directory}: {exc}") from exc

    def generations(self) -> list[str]:
        """Snapshot generations (file names), newest first."""
        return [_snapshot_name(n) for n in self._numbers()]

    def read(self, generation: str | None = None) -> bytes | None:
        """The bytes of ``generation`` (default: the newest); ``None`` if it is gone."""
        self._check_open()
        if generation is None:
            numbers = self._numbers()
            if not numbers:
                return None
            generation = _snapshot_name(numbers[0])
        elif not _SNAPSHOT.fullmatch(generation):
            raise ValueError(f"not a snapshot generation name: {generation!r}")
        return _read(self.directory / generation, "")

    def path(self, generation: str) -> Path:
        """The file that holds ``generation``."""
        return self.directory / generation

    def describe(self, generation: str | None = None) -> str:
        """The path of ``generation`` (or of the directory), for messages."""
        return str(self.directory / generation) if generation else str(self.directory)

    def journal_ids(self) -> list[int]:
        """Every journal id in the directory, ascending."""
        self._check_open()
        try:
            names = os.listdir(self.directory)
        except OSError as exc:
            raise MediumError(f"cannot list {self.directory}: {exc}") from exc
        return sorted(int(m.group(1)) for m in map(_JOURNAL.fullmatch, names) if m)

    def journal_path(self, jid: int) -> Path:
        """The file that holds journal ``jid``."""
        return self.directory / _journal_name(jid)

    def describe_journal(self, jid: int) -> str:
        """The path of journal ``jid``, for messages."""
        return str(self.journal_path(jid))

    def read_journal(self, jid: int) -> bytes | None:
        """The bytes of journal ``jid``; ``None`` if it is gone."""
        self._check_open()
        return _read(self.journal_path(jid), "journal ")


def _read(path: Path, what: str) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MediumError(f"cannot read {what}{path}: {exc}") from exc


class FileMedium(DirectoryReader, Medium):
    """Snapshots as files in ``directory``; keeps the newest and ``keep`` older ones.

    :param directory: created if missing (with its parents).
    :param keep: older generations to keep besides the newest, for
        ``Store.restore(fallback=True)``.
    :raises StoreLockedError: another FileMedium holds the directory.
    :raises MediumError: the directory cannot be created or locked.
    """

    def __init__(self, directory: str | os.PathLike[str], *, keep: int = 1) -> None:
        keep = operator.index(keep)
        if keep < 0:
            raise ValueError(f"keep must be >= 0, not {keep}")
        if sys.platform == "win32":
            raise MediumError("FileMedium needs POSIX file locking (fcntl); use MemoryMedium")
        super().__init__(directory)
        self.keep = keep
        self._lock_fd: int | None = None
        #: The open journals' shared ends, by path (see :class:`_Tail`).
        self._tails: dict[Path, _Tail] = {}
        self._open_journals: weakref.WeakSet[FileJournal] = weakref.WeakSet()
        try:
            if not self.directory.is_dir():
                self.directory.mkdir(parents=True, exist_ok=True)
                # A new directory entry is durable only once its parent is synced.
                _fs.fsync_directory(self.directory.parent)
            fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise MediumError(f"cannot open snapshot directory {self.directory}: {exc}") from exc
        fd = self._lock(fd)
        # From here on the descriptor holds the lock: a failure must close it,
        # and garbage collection of an unclosed medium closes it too.
        self._lock_fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)
        try:
            # The pid is only for the message above; the flock is the lock.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            self._remove_temporaries()
        except OSError as exc:
            self.close()
            raise MediumError(f"cannot prepare {self.directory}: {exc}") from exc
        _OPEN_MEDIA.add(self)

    def _lock(self, fd: int) -> int:
        """``flock`` the lock file open on ``fd``; return the descriptor that holds it.

        A failed ``open()`` removes a lock file it created, while holding its
        lock. An opener that opened that file just before, and locks it just
        after, would hold a lock on a file no longer in the directory, beside
        the next opener's: so a lock counts only if the file locked is still
        the one named ``LOCK``, else the lock file is opened again.
        """
        path = self.directory / LOCK_NAME
        for _ in range(100):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    return fd
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                raise StoreLockedError(
                    f"{self.directory} is already open in another Store (lock held by pid {holder})"
                ) from None
            except FileNotFoundError:
                pass  # removed after we opened it: open the one there now
            except OSError as exc:
                os.close(fd)
                raise MediumError(f"cannot lock {path}: {exc}") from exc
            os.close(fd)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise MediumError(
                    f"cannot open snapshot directory {self.directory}: {exc}"
                ) from exc
        os.close(fd)
        raise MediumError(f"cannot lock {path}: it keeps being replaced")

    # ------------------------------------------------------------------ writing

    def publish(self, pieces: Iterable[bytes]) -> None:
        """See :meth:`Medium.publish`.

        One failure is special: if the directory cannot be synced after the
        rename, the new snapshot is already the newest one visible (a
        rename cannot be undone safely), but its durability across a power
        loss is unconfirmed. The MediumError then says so; the caller keeps
        its memory and should publish again.
        """
        self._check_open()
        try:
            generation = _next_number(self.directory)
        except OSError as exc:
            raise MediumError(f"cannot list {self.directory}: {exc}") from exc
        name = _snapshot_name(generation)
        final = self.directory / name
        temp_name = f"{_TEMP_PREFIX}{generation:016d}-{os.getpid()}"
        try:
            # Whatever fails before the rename (disk full, encoder error,
            # KeyboardInterrupt) leaves no temporary file and older
            # snapshots intact; the error propagates.
            _fs.atomic_write(self.directory, name, pieces, temp_name=temp_name)
        except _fs.DirectorySyncError as exc:
            raise MediumError(
                f"snapshot {final} is published but not confirmed durable "
                f"(directory sync failed: {exc.__cause__}); publish again"
            ) from exc
        except OSError as exc:
            raise MediumError(f"cannot publish snapshot to {final}: {exc}") from exc
        self._prune()

    def _prune(self) -> None:
        # Tolerated: an old generation that cannot be removed costs disk
        # space, not correctness; the next publish tries again.
        try:
            numbers = _numbers(self.directory)
        except OSError as exc:
            log.warning("cannot list %s to remove old snapshots: %s", self.directory, exc)
            return
        for number in numbers[self.keep + 1 :]:
            try:
                (self.directory / _snapshot_name(number)).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("cannot remove old snapshot %s: %s", _snapshot_name(number), exc)

    def _remove_temporaries(self) -> None:
        # Safe only because we hold the lock: no other writer can own them.
        for name in os.listdir(self.directory):
            if _TEMPORARY.fullmatch(name):
                with contextlib.suppress(OSError):
                    (self.directory / name).unlink()
                    log.info("removed unfinished snapshot or journal %s", name)

    def quarantine(self, generation: str) -> str:
        """Rename ``generation`` to ``<name>.corrupt``: kept for post-mortem, no longer listed."""
        self._check_open()
        if not _SNAPSHOT.fullmatch(generation):
            raise ValueError(f"not a snapshot generation name: {generation!r}")
        source = self.directory / generation
        target = source.with_name(generation + CORRUPT_SUFFIX)
        try:
            _fs.rename_durably(source, target)
        except OSError as exc:
            raise MediumError(f"cannot move corrupt snapshot {source} aside: {exc}") from exc
        return str(target)

    # ------------------------------------------------------------------ journals

    def quarantine_journal(self, jid: int) -> str:
        """Rename journal ``jid`` to ``<name>.corrupt`` (``.corrupt-N`` if that exists)."""
        self._check_open()
        source = self.journal_path(jid)
        target = self.directory / _fs.unused_name(self.directory, source.name + CORRUPT_SUFFIX)
        self._tails.pop(source, None)  # open handles keep writing to the file set aside
        try:
            _fs.rename_durably(source, target)
        except OSError as exc:
            raise MediumError(f"cannot move journal {source} aside: {exc}") from exc
        return str(target)

    def create_journal(self, jid: int, header: bytes) -> JournalFile:
        """See :meth:`Medium.create_journal`: temp file, fsync, rename, directory fsync.

        The rename replaces a leftover journal of the same id atomically, and
        a crash before it leaves only a temporary file, removed at next open.
        """
        self._check_open()
        final = self.journal_path(jid)
        temp_name = f"{_TEMP_PREFIX}journal-{jid:016d}-{os.getpid()}"
        try:
            _fs.atomic_write(self.directory, final.name, [header], temp_name=temp_name)
            # Opened after the rename: the name holds a complete, synced
            # header before any record can be appended to it. Read and
            # write: a shared writable mapping needs both. Nothing is
            # preallocated until the first record (see _Tail.grow): so
            # only a journal that holds records ever ends in zeros.
            fd = os.open(final, os.O_RDWR)
        except OSError as exc:
            raise MediumError(f"cannot create journal {final}: {exc}") from exc
        # A replaced leftover's handles keep its old file, as descriptors would.
        tail = self._tails[final] = _Tail(final, fd, len(header))
        return self._handle(tail)

    def _handle(self, tail: _Tail) -> FileJournal:
        journal = FileJournal(tail)
        self._open_journals.add(journal)
        return journal

    def open_journal(self, jid: int) -> JournalFile:
        self._check_open()
        path = self.journal_path(jid)
        tail = self._open_tail(path)
        if tail is not None:
            # Open here already: share its end, so neither handle overwrites
            # the other (as two O_APPEND descriptors would not).
            return self._handle(tail)
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError as exc:
            raise MediumError(f"cannot open journal {path}: {exc}") from exc
        try:
            # Bytes that survived a process crash may still be unsynced.
            os.fsync(fd)
            size = os.fstat(fd).st_size
        except OSError as exc:
            os.close(fd)
            raise MediumError(f"cannot open journal {path}: {exc}") from exc
        tail = self._tails[path] = _Tail(path, fd, size)
        return self._handle(tail)

    def _open_tail(self, path: Path) -> _Tail | None:
        """The shared end of ``path`` while a handle of this medium has it open."""
        tail = self._tails.get(path)
        if tail is None:
            return None
        try:
            # Still the file under that name (not closed, removed or replaced)?
            same = tail.fd is not None and os.path.samestat(os.fstat(tail.fd), os.stat(path))
        except OSError:
            same = False
        if not same:
            del self._tails[path]
            return None
        return tail

    def read_journal(self, jid: int) -> bytes | None:
        """See :meth:`DirectoryReader.read_journal`; a journal open here ends at its records.

        Its preallocated space is no data of the journal while it is open
        (a reader without the lock sees it as a zero-filled tail, which is
        what the next open would find if the process died now).
        """
        data = super().read_journal(jid)
        tail = self._open_tail(self.journal_path(jid))
        if data is not None and tail is not None:
            return data[: tail.size]
        return data

    def remove_journals(self, below: int) -> None:
        """See :meth:`Medium.remove_journals`. Tries every one, then raises the first failure.

        The directory is not synced afterwards, on purpose: a journal that
        reappears after a power loss is below the ``journal_next`` of the
        snapshot that made it obsolete, and recovery never reads it.
        """
        self._check_open()
        failure: OSError | None = None
        for jid in self.journal_ids():
            if jid >= below:
                break
            try:
                self._tails.pop(self.journal_path(jid), None)
                self.journal_path(jid).unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                failure = failure or exc
        if failure is not None:
            raise MediumError(f"cannot remove old journal: {failure}") from failure

    # ---------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._lock_fd is None:
            raise MediumError(f"FileMedium for {self.directory} is closed")

    def close(self) -> None:
        """Close the journals opened through this medium, then release the lock. Idempotent.

        :raises MediumError: a journal could not be cut back to its records
            (see :meth:`FileJournal.close`); every journal is closed and the
            lock released all the same.
        """
        failure: MediumError | None = None
        for journal in list(self._open_journals):
            try:
                journal.close()
            except MediumError as exc:
                failure = failure or exc
        self._tails.clear()
        if self._lock_fd is not None:
            self._lock_fd = None
            self._finalizer()  # closes the descriptor, which releases the flock
        if failure is not None:
            raise failure

    def _forget_lock(self) -> None:
        """In a forked child: close this process's copy of the lock, keep the parent's.

        Closing a copy leaves the flock with the parent (it belongs to the
        shared open file); ``flock(LOCK_UN)`` here would release it for both.
        The journals' mappings and descriptors are let go of without a
        word to the files: cutting a journal's preallocated space here would
        cut it under the parent, whose next write there would be a SIGBUS.
        """
        for journal in list(self._open_journals):
            journal._forget()
        self.close()

    def __repr__(self) -> str:
        return f"FileMedium({str(self.directory)!r}, keep={self.keep})"
