"""Any source of snapkv data, read-only: a store directory, an object storage prefix, an RDB file.

Why read-only and without the lock: the source may be a running server's
``--dir`` (or a bucket prefix another process writes). The directory is
read as ``snapkv check`` reads it (:class:`~snapkv.media.file.DirectoryReader`,
no lock) and a prefix as ``snapkv check URL`` does
(:class:`~snapkv.objstore.reader.PrefixReader`); either way the state is
built by the recovery rules ``open()`` runs (:func:`snapkv.recovery.choose_snapshot`,
:func:`~snapkv.recovery.plan_journals`, then :mod:`snapkv.rebuild`), so
what is read is what ``open()`` would load at that moment: the newest valid
snapshot plus its journals, a torn tail of a journal still being written
dropped as recovery drops it. Nothing is written anywhere.

An RDB file (a path ending in ``.rdb``, or any file that is not a
directory) is streamed by :class:`snapkv.rdb.file.RDBReader`, in bounded
memory. Keys already expired at reading time are dropped, as Redis drops
them when it loads a file, and counted (:attr:`Source.expired`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from snapkv import rebuild, recovery
from snapkv.errors import MediumError, SnapkvError
from snapkv.rdb.file import RDBReader, Unsupported

__all__ = ["Entry", "Source", "count_by_db", "iter_entries", "open_source"]

#: What ``rebuild.replay`` accepts: more keyspaces than any store has (Redis's limit is 16
#: by default, snapkv's a setting); a plan's own need is taken when larger.
_DATABASES = 1 << 16


class Entry(NamedTuple):
    """One key of a source: keyspace, name, value (``str`` or a container), expiry (epoch ms)."""

    db: int
    key: str
    value: Any
    expire_at_ms: int | None


class Source:
    """A source opened: :meth:`entries` once; then :attr:`expired` and :attr:`skipped` say
    what was left out (keys expired at reading time; with ``skip_unsupported``, what an RDB
    file holds that snapkv cannot)."""

    def __init__(self, location: str, *, skip_unsupported: bool = False) -> None:
        self.location = location
        self.skip_unsupported = skip_unsupported
        self.expired = 0
        self.skipped: list[Unsupported] = []
        self.is_rdb = _is_rdb(location)

    def describe(self) -> str:
        """The source in a message's words."""
        kind = "RDB file" if self.is_rdb else "store"
        return f"{kind} {self.location}"

    def entries(self) -> Iterator[Entry]:
        """Every live key, keyspace by keyspace (an RDB file: in its own order)."""
        if self.is_rdb:
            return self._rdb_entries()
        return self._store_entries()

    def spaces(self) -> dict[int, tuple[dict[str, Any], dict[str, int]]]:
        """Every live key in memory: db -> (entries, expiry times), keyspaces in order.

        A store's are built as recovery builds them; an RDB file's are read whole (a key twice
        in one keyspace: the later one counts, as :meth:`entries` would give both).
        """
        if self.is_rdb:
            collected: dict[int, tuple[dict[str, Any], dict[str, int]]] = {}
            for db, key, value, expire_at_ms in self._rdb_entries():
                entries, expires = collected.setdefault(db, ({}, {}))
                entries[key] = value
                if expire_at_ms is not None:
                    expires[key] = expire_at_ms
            return dict(sorted(collected.items()))
        built = _load(self.location, time.time() * 1000)
        self.expired = built[1]
        return {db: (space[0], space[1]) for db, space in sorted(built[0].items()) if space[0]}

    def _store_entries(self) -> Iterator[Entry]:
        for db, (entries, expires) in self.spaces().items():
            get = expires.get
            for key, value in entries.items():
                yield Entry(db, key, value, get(key))

    def _rdb_entries(self) -> Iterator[Entry]:
        with open(self.location, "rb") as file:
            reader = RDBReader(file, skip_unsupported=self.skip_unsupported)
            now_ms = time.time() * 1000
            try:
                for db, key, value, expire_at_ms in reader:
                    if expire_at_ms is not None and expire_at_ms <= now_ms:
                        self.expired += 1
                        continue
                    yield Entry(db, key, value, expire_at_ms)
            finally:
                self.skipped = reader.skipped


def _is_rdb(location: str) -> bool:
    if "://" in location:
        return False
    path = Path(location)
    if path.is_dir():
        return False
    return path.suffix.lower() == ".rdb" or path.exists()


def _reader(location: str) -> recovery.Source:
    """The recovery source of a directory or an object storage URL (no lock, no writes)."""
    if "://" in location:
        try:
            from snapkv.objstore.client import ObjectClient  # noqa: PLC0415 - the cloud extra
            from snapkv.objstore.reader import PrefixReader  # noqa: PLC0415
            from snapkv.objstore.url import parse_url  # noqa: PLC0415
        except ImportError as exc:
            raise MediumError(f"object storage needs the cloud extra (obstore): {exc}") from None
        return PrefixReader(ObjectClient.for_location(parse_url(location)))
    from snapkv.media.file import DirectoryReader  # noqa: PLC0415 - only a directory needs it

    if not os.path.isdir(location):
        raise MediumError(f"{location} is not a store directory (nor an RDB file or a URL)")
    return DirectoryReader(location)


#: Reads of a source that a writer changed meanwhile, before giving up (see :func:`_load`).
_ATTEMPTS = 5


def _load(location: str, now_ms: float) -> tuple[dict[int, Any], int]:
    """The keyspaces recovery builds for ``location`` and how many keys were already expired.

    Why read again: a running server may publish a newer snapshot and prune the journals of
    the one just read, between reading it and reading its journals; recovery would then see
    a hole in the journals and call a healthy store damaged. A failure after which the
    store's snapshots are not the ones seen at the start is a moving target, not damage:
    the read starts over (up to :data:`_ATTEMPTS` times); a failure on an unchanged store
    is raised as it is.
    """
    source = _reader(location)
    for attempt in range(1, _ATTEMPTS + 1):
        before = source.generations()
        try:
            return _load_once(source, now_ms)
        except (SnapkvError, ValueError):
            if attempt == _ATTEMPTS or source.generations() == before:
                raise
    raise AssertionError("unreachable")


def _load_once(source: recovery.Source, now_ms: float) -> tuple[dict[int, Any], int]:
    choice = recovery.choose_snapshot(source)
    assert choice.snapshot is not None  # load=True decodes it
    plan = recovery.plan_journals(source, choice.journal_next)
    databases = max(_DATABASES, choice.keyspaces, rebuild.keyspaces_written(plan.ops))
    spaces = rebuild.snapshot_spaces(choice.snapshot, databases=databases)
    expired = rebuild.replay(spaces, plan.ops, databases=databases, now_ms=now_ms)
    return spaces, expired


def open_source(location: str, *, skip_unsupported: bool = False) -> Source:
    """``location`` opened for reading (nothing is read until :meth:`Source.entries`)."""
    return Source(location, skip_unsupported=skip_unsupported)


def iter_entries(location: str, *, skip_unsupported: bool = False) -> Iterator[Entry]:
    """Every live key of ``location``: a store directory, an ``s3://``/``file://``/``memory://``
    prefix, or an RDB file (see the module docstring).

    :raises MediumError: the location cannot be read; recovery's errors
        (:class:`CorruptSnapshotError`, :class:`CorruptJournalError`) as ``open()`` raises them;
        :class:`snapkv.rdb.file.RDBFileError` for a malformed RDB file.
    """
    return open_source(location, skip_unsupported=skip_unsupported).entries()


def count_by_db(location: str) -> dict[int, int]:
    """Keys per keyspace (live keys only). A store is built to count it; a file is read through."""
    source = open_source(location)
    if not source.is_rdb:
        return {db: len(entries) for db, (entries, _) in source.spaces().items()}
    counts: dict[int, int] = {}
    for entry in source.entries():
        counts[entry.db] = counts.get(entry.db, 0) + 1
    return counts
