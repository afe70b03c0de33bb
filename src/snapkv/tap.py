"""The Store's record tap and point-in-time copy: what a replication source reads it by.

:class:`Tap` stands in for the Store's journal writer while a listener
hears every committed record (``Store.tap``); :class:`FrozenCopy` is
BGSAVE's copy handed to a reader on another thread (``Store.frozen_copy``).
Kept apart from :mod:`snapkv.store` so the Store's module holds the life of
the keyspaces on a medium and nothing a replica needs of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["FrozenCopy", "Tap"]


class Tap:
    """The journal writer's stand-in while a listener hears every record (see Store.tap).

    Installed over the real writer (a JournalWriter, ``None`` without a
    journal, the parked or unsaved stand-ins), so every write path of the
    Store and its keyspaces, which all append their record to ``_writer``
    under the lock, passes its record here after the real writer took it:
    no write path changes, and a Store nobody listens to has no tap at all.
    A record the real writer refused (raised) is never heard; a
    transaction's records reach the Store's writer only as its one record
    at its end, so a rolled-back transaction is never heard either.
    """

    __slots__ = ("count", "inner", "listener", "settled")

    def __init__(
        self,
        inner: Any,
        listener: Callable[[bytes], None],
        settled: Callable[[], None] | None = None,
    ) -> None:
        self.inner = inner
        self.listener = listener
        self.settled = settled
        #: Records heard so far (the position a frozen copy is taken at).
        self.count = 0

    @property
    def failure(self) -> str | None:
        failure: str | None = getattr(self.inner, "failure", None)
        return failure

    @property
    def written(self) -> int:
        written: int = getattr(self.inner, "written", 0)
        return written

    def append(self, record: bytes) -> int:
        """Caller holds the Store's lock; the listener hears the record in commit order."""
        inner = self.inner
        lsn: int = 0 if inner is None else inner.append(record)
        self.count += 1
        self.listener(record)
        return lsn

    def commit(self, lsn: int) -> None:
        """After a write's memory change, the lock released: the real commit, then ``settled``."""
        if self.inner is not None:
            self.inner.commit(lsn)
        if self.settled is not None:
            self.settled()

    def sync(self) -> None:
        # The parked stand-in (a shut-down store's) has no sync or close.
        sync = getattr(self.inner, "sync", None)
        if sync is not None:
            sync()

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


@dataclass
class FrozenCopy:
    """Every keyspace as of one instant, held still until :meth:`release` (Store.frozen_copy).

    ``spaces`` is ``(keyspace index, keys, values, expiry times or None)``
    per non-empty keyspace, as a save copies them: strings are immutable,
    and a container of the copy is copied before a later write changes it
    (the save epoch), so the copy can be read on any thread while writes go on.
    """

    spaces: list[tuple[int, list[str], list[Any], dict[str, int] | None]]
    #: What ``mark`` returned, called under the lock right after the copy.
    mark: Any
    _store: Any

    def release(self) -> None:
        """The copy has been read: writes stop copying containers for it. Idempotent."""
        store, self._store = self._store, None
        if store is not None:
            store._thaw()
