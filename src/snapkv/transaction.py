"""Store transactions: any mix of writes, one journal record, all or nothing.

``with store.transaction():`` holds the Store's lock for the block, and in
that thread every write the Store and its keyspaces make goes to memory at
once (reads inside see it) while its journal record goes to a
:class:`Recorder` instead of the journal writer. At the end of the block the
recorded effects become ONE record (a BATCH when there are several), written
under the lock as any other record: after a crash, recovery replays all of
the transaction or none of it (a torn BATCH is a torn tail). If the block
raises, or the journal refuses the record, the recorder undoes the writes in
reverse order and nothing reaches the journal.

Why record-then-undo and not a private overlay of the writes: the Store's
write paths (and the server's handlers on top of them) stay one code path,
so a transaction behaves exactly like the same calls outside one; and the
undo log is built from the journal records themselves (the effects, decoded
by :func:`snapkv.journal.decode_record`), so it cannot disagree with what
the journal would have said. The cost: another thread's *lock-free* reads
(``get``, ``in``, ``len`` of a keyspace without expiry times) can see a
transaction's writes before it commits, and would see them vanish if it
rolls back; writers and copies (``keys()``, ``items()``, iteration) wait
for the transaction to end. (The server is one thread: no client sees
another's EXEC half done.)

This is what Redis's MULTI/EXEC gives on disk (its AOF wraps a transaction
in MULTI ... EXEC and drops an incomplete one on load), here with the
journal's own all-or-nothing record.
"""

from __future__ import annotations

import heapq
import threading
from typing import TYPE_CHECKING, Any

from snapkv import journal as jr
from snapkv import values
from snapkv._binary import U32_MAX
from snapkv.effects import Space
from snapkv.errors import TransactionError

if TYPE_CHECKING:
    from snapkv.keyspace import Keyspace

__all__ = ["HeldLock", "Recorder", "committed_anyway"]

_ABSENT: Any = object()
#: Largest BATCH body the format can frame (its length is a u32).
_MAX_BODY = U32_MAX


class HeldLock:
    """The Store's lock as every caller sees it while a transaction holds it.

    The Store's lock is a plain ``threading.Lock``, the cheapest lock for the
    path every write takes. A transaction holds it for its whole block and
    puts this object in its place: the transaction's thread, whose writes
    take the lock again, passes straight through; any other thread acquires
    the real lock, so it waits until the transaction ends. (An ``RLock``
    would do the same for ~10 ns more on every write of every store.)
    """

    __slots__ = ("lock", "owner")

    def __init__(self, lock: Any, owner: int) -> None:
        #: The Store's real lock, held by the transaction.
        self.lock = lock
        #: The ident of the transaction's thread.
        self.owner = owner

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        if threading.get_ident() == self.owner:
            return True
        acquired: bool = self.lock.acquire(blocking, timeout)
        return acquired

    def release(self) -> None:
        if threading.get_ident() != self.owner:
            self.lock.release()

    def locked(self) -> bool:
        locked: bool = self.lock.locked()
        return locked

    __enter__ = acquire

    def __exit__(self, *_exc: object) -> None:
        self.release()


class Recorder:
    """Stands in for the Store's journal writer while a transaction runs.

    ``append`` is called under the Store's lock *before* memory changes, as
    the writer's is; it keeps the record and, from the state memory holds
    right then, what undoes it. The returned lsn is 0, so nothing waits for
    durability and no compaction starts inside the block.

    :param spaces: the Store's keyspaces, by number.
    :param writer: the Store's journal writer: a
        :class:`~snapkv.journal.JournalWriter`, ``None`` without a journal,
        or the parked stand-in of a shut-down journaled store.
    :param parked: ``writer`` is that stand-in: its ``append`` raises, and
        so does every write of the transaction.
    """

    __slots__ = ("_parked", "_size", "_spaces", "_undo", "records", "writer")

    #: ``Keyspace._write`` appends a multi-effect record effect by effect to a
    #: writer with this set (the transaction's record is one BATCH anyway).
    per_effect = True

    def __init__(self, spaces: list[Keyspace], writer: Any, *, parked: bool = False) -> None:
        self._spaces = spaces
        self.writer = writer
        self._parked = parked
        #: The transaction's records, flattened (a BATCH cannot hold a BATCH).
        self.records: list[bytes] = []
        self._undo: list[tuple[Any, ...]] = []
        self._size = 0

    # The writer's interface, as the Store and its keyspaces use it.

    @property
    def failure(self) -> str | None:
        """The real writer's failure, if any."""
        if self.writer is None or self._parked:
            return None
        failure: str | None = self.writer.failure
        return failure

    def append(self, record: bytes) -> int:
        """Keep ``record`` and what undoes it; memory changes after this returns."""
        if self._parked:
            self.writer.append(record)  # raises StoreShutDownError
        op: Any = jr.decode_record(record)
        if op[0] == "batch":
            inner = op[1]
            pieces = [jr.encode(each) for each in inner]
        else:
            inner = (op,)
            pieces = [record]
        size = self._size + sum(len(piece) - 4 for piece in pieces)  # entries carry no CRC
        if size > _MAX_BODY:
            raise TransactionError(
                f"the transaction's writes take {size:,} bytes, more than one journal "
                f"record holds ({_MAX_BODY:,}): split it"
            )
        self._size = size
        # Undo entries are taken before any of the batch applies: undone in
        # reverse, the first one restores the state before the batch.
        # (A BATCH whose effects could change one key twice does not come
        # here whole: Keyspace._write appends its effects one by one to a
        # recorder (``per_effect``), so each inverse is taken just before its
        # effect applies. The BATCHes that do come, update() and a string
        # rename, change each key once.)
        self._undo.extend(self._prior(each) for each in inner)
        self.records.extend(pieces)
        return 0

    def reclaimed(self, space: Space, gone: list[tuple[str, Any, int]]) -> None:
        """Keys the transaction's own reads reclaimed as expired: a rollback puts them back.

        Reclaiming writes no record (replay drops expired keys by their
        times), so this is the only way the undo log hears of it; without it,
        undoing an EXPIRE made earlier in the block would leave an expiry
        time for a key that no longer exists.
        """
        self._undo.extend(
            ("key", space, key, value, at) for key, value, at in gone if value is not None
        )

    def commit(self, _lsn: int) -> None:
        """Nothing to wait for: the transaction's record is written at its end."""

    def sync(self) -> None:
        """Another thread's ``store.sync()``: sync what the real writer holds."""
        if self.writer is not None and not self._parked:
            self.writer.sync()

    # What the transaction does at its end.

    def record(self) -> bytes | None:
        """The one record that commits the transaction (``None``: nothing to write)."""
        if not self.records:
            return None
        if len(self.records) == 1:
            return self.records[0]
        return jr.batch_record(self.records)

    def rollback(self) -> None:
        """Undo every recorded write, newest first; caller holds the Store's lock."""
        spaces = self._spaces
        for entry in reversed(self._undo):
            kind = entry[0]
            if kind == "key":
                _, space, key, value, at = entry
                _restore_key(space, key, value, at)
            elif kind == "edit":
                _undo_edit(entry)
            elif kind == "expiry":
                _, space, key, at = entry
                _restore_expiry(space, key, at)
            elif kind == "pair":
                for _, space, key, value, at in (entry[2], entry[1]):
                    _restore_key(space, key, value, at)
            elif kind == "space":
                spaces[entry[1]]._space = entry[2]
            elif kind == "all":
                for keyspace, space in zip(spaces, entry[1], strict=True):
                    keyspace._space = space
            else:  # swap
                a, b = spaces[entry[1]], spaces[entry[2]]
                a._space, b._space = b._space, a._space
        self._undo.clear()
        self.records.clear()

    def _prior(self, op: tuple[Any, ...]) -> tuple[Any, ...]:
        kind = op[0]
        if kind == "clear":
            if op[1] == jr.ALL_KEYSPACES:
                return ("all", [keyspace._space for keyspace in self._spaces])
            return ("space", op[1], self._spaces[op[1]]._space)
        if kind == "swap":
            return ("swap", op[1], op[2])
        space = self._spaces[op[1]]._space
        key = op[2]
        if kind == "edit":
            # The container is changed in place: keep the effects that undo
            # this one (a reference to it would see the change).
            kind_of = values.BY_CODE[op[3]]
            value = space[0].get(key)
            undo = kind_of.inverse(value, op[4], op[5])
            return ("edit", space, key, kind_of, undo, value, space[1].get(key))
        if kind == "expire":
            # Only the expiry changes: keeping the value (a container a later
            # effect changes in place) would put its later state back.
            return ("expiry", space, key, space[1].get(key))
        if kind == "rename":
            target = self._spaces[op[3]]._space
            return (
                "pair",
                self._key_entry(space, key),
                self._key_entry(target, op[4]),
            )
        return self._key_entry(space, key)

    @staticmethod
    def _key_entry(space: Space, key: str) -> tuple[Any, ...]:
        return ("key", space, key, space[0].get(key, _ABSENT), space[1].get(key))


def committed_anyway(writer: Any, written: int, failure: str | None, exc: BaseException) -> bool:
    """Whether a transaction whose record append raised ``exc`` must keep its writes.

    * The record is in the journal (``written`` moved: an interrupt after
      append returned): recovery would replay it, so memory keeps it.
    * The writer failed on this append because of an interrupt (Ctrl-C,
      SystemExit) rather than an error of the disk: the bytes may or may not
      be there, as for any interrupted write. Memory keeps the transaction;
      the writer now refuses every write until ``save()`` (which makes memory
      durable) or ``restore()`` (which reloads what the disk holds), so the
      two cannot silently disagree.
    * Otherwise (refused before writing, or the disk failed the write, which
      leaves at most a torn record that recovery drops) nothing of it is on
      disk: undo.
    """
    if writer.written != written:
        return True
    newly_failed = failure is None and writer.failure is not None
    return newly_failed and not isinstance(exc, Exception)


def _undo_edit(entry: tuple[Any, ...]) -> None:
    """Put back a container an EDIT changed: its inverse effects, then its expiry.

    ``entry`` is ``("edit", space, key, type module, inverse effects, the
    container before the effect (``None``: none), its expiry)``, as
    ``Recorder._prior`` made it. The inverse effects are applied to the very
    object the effect changed, so that other undo entries holding it (a
    RENAME's, a DEL's) put back the right state: an effect that emptied it
    in place removed the key, so that object is found again through the
    entry (an empty one, it was changed in place; one that is not empty was
    left alone by a copy on write, and is put back as it is).
    """
    _, space, key, kind_of, undo, original, at = entry
    value = space[0].get(key)
    if value is None and original is not None:
        if kind_of.size(original):
            _restore_key(space, key, original, at)
            return
        value = original
    for opcode, items in undo:
        value = kind_of.apply(value, opcode, items)
    _restore_key(space, key, _ABSENT if value is None or original is None else value, at)


def _restore_expiry(space: Space, key: str, at: int | None) -> None:
    data, expires, heap = space
    if at is None or key not in data:  # an expiry only ever belongs to a key that exists
        expires.pop(key, None)
    else:
        expires[key] = at
        heapq.heappush(heap, (at, key))


def _restore_key(space: Space, key: str, value: Any, at: int | None) -> None:
    data, expires, _ = space
    if value is _ABSENT:
        data.pop(key, None)
        expires.pop(key, None)
        return
    data[key] = value
    _restore_expiry(space, key, at)
