"""A snapkv store (a directory or an object-storage prefix) as a migration's source or target.

Reading goes through :func:`snapkv.interop.source.iter_entries`, the one
reader of a store's entries (or an RDB file's) the RDB export uses too:
read-only and without the lock, so the source may be a running server's
``--dir``. Its entries are handed on in pages of one keyspace each.

Writing is one journal record per key, RESTORE's own write
(:meth:`~snapkv.keyspace.Keyspace.restore_value`): a DEL of what the key
held, then the value with its expiry time (a SET for a string, a PUT for a
container). One record,
so a migration killed halfway leaves every key either as it was or whole,
never a container with half its elements: ``--resume`` then needs to look
at each key only once. Keys already expired are not written.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from snapkv import values
from snapkv.interop.migrate_records import Failure, Record, key_bytes, key_text
from snapkv.interop.source import Entry, count_by_db, open_source
from snapkv.opening import open as open_store

if TYPE_CHECKING:
    from snapkv.store import Store

__all__ = ["StoreSource", "StoreTarget"]


class StoreSource:
    """Every entry of a store (or an RDB file), as pages of records of one keyspace.

    A store is built once, as recovery builds it (``Source.spaces``), and
    that one state serves the plan's counts, the copy and ``--verify``: the
    three see the same keys even when the directory is a running server's,
    and a large store is not loaded three times. An RDB file is streamed
    each time instead (it is read in bounded memory).
    """

    def __init__(self, location: str, batch: int) -> None:
        self.location = location
        self.batch = batch
        self.vanished = 0  # one state is read: nothing vanishes from it
        self._source = open_source(location)
        self._spaces: dict[int, tuple[dict[str, Any], dict[str, int]]] | None = None

    def describe(self) -> str:
        return self._source.describe()

    def _entries(self) -> Iterator[Entry]:
        if self._source.is_rdb:
            yield from open_source(self.location).entries()
            return
        if self._spaces is None:
            self._spaces = self._source.spaces()
        for db, (entries, expires) in self._spaces.items():
            get = expires.get
            for key, value in entries.items():
                yield Entry(db, key, value, get(key))

    def read(self) -> Iterator[list[Record]]:
        page: list[Record] = []
        for db, key, value, at in self._entries():
            if page and (len(page) >= self.batch or page[0].db != db):
                yield page
                page = []
            page.append(Record(db, key_bytes(key), at, value=value))
        if page:
            yield page

    def keyspace_counts(self) -> dict[int, int]:
        """Live keys per keyspace (the plan needs them before anything is written)."""
        if self._source.is_rdb:
            return dict(sorted(count_by_db(self.location).items()))
        if self._spaces is None:
            self._spaces = self._source.spaces()
        return {db: len(entries) for db, (entries, _) in sorted(self._spaces.items())}

    def close(self) -> None:
        self._spaces = None


class StoreTarget:
    """A store opened for writing (``snapkv.open``), written one record per key."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.store: Store = open_store(location)

    def describe(self) -> str:
        return f"snapkv store {self.location}"

    @property
    def databases(self) -> int:
        """How many keyspaces the store has (what a migration's plan may use)."""
        return self.store.databases

    def write(self, records: list[Record]) -> list[Failure]:
        failures: list[Failure] = []
        store = self.store
        for record in records:
            try:
                value = record.decoded()
            except (ValueError, TypeError) as exc:
                # A stream or module value from Redis: snapkv's RDB reader refuses it.
                failures.append((record.db, record.key, f"cannot be read into snapkv: {exc}"))
                continue
            if record.payload is None and value.__class__ is not str:
                # A container of another store's memory (a store source): the target
                # takes the value it is handed, so it gets a copy of its own.
                value = values.BY_CLASS[value.__class__].copy(value)
            store.db(record.db).restore_value(key_text(record.key), value, record.expire_at)
        return failures

    def flush(self) -> list[Failure]:
        """Nothing is in flight: each key is written when :meth:`write` is called."""
        return []

    def fetch(
        self, index: int, keys: list[bytes], strings: frozenset[bytes] = frozenset()
    ) -> list[Record | None]:
        """What the store holds now for ``keys`` of keyspace ``index`` (``None``: missing);
        ``strings`` (a server's hint) changes nothing here: every value is at hand."""
        store = self.store
        db = store.db(index)
        out: list[Record | None] = []
        with store._lock:
            for raw in keys:
                key = key_text(raw)
                kind = db.key_type(key)
                if kind is None:
                    out.append(None)
                    continue
                if kind == "string":
                    value: Any = db.get(key)
                else:
                    module = values.BY_NAME[kind]
                    value = module.copy(db._lookup(key, module))
                out.append(Record(index, raw, db.expiry_ms(key), value=value))
        return out

    def keyspace_counts(self) -> dict[int, int]:
        store = self.store
        counts = {i: len(store.db(i)) for i in range(store.databases)}
        return {i: n for i, n in counts.items() if n}

    def type_counts(self, index: int, kinds: list[str]) -> dict[str, int]:
        db = self.store.db(index)
        counts: dict[str, int] = defaultdict(int)
        for key in list(db):
            kind = db.key_type(key)
            if kind in kinds:
                counts[kind] += 1
        return dict(counts)

    def close(self) -> None:
        self.store.close()
