"""Store: numbered keyspaces in memory, with snapshots, a journal and expiry sweeping.

This is the only stateful class of the core besides the keyspaces it holds.
It knows the medium only through the :class:`~snapkv.media.base.Medium`
interface and the bytes only through :mod:`snapkv.codec` (snapshots) and
:mod:`snapkv.journal` (the log). A Store holds ``databases`` keyspaces
(:mod:`snapkv.keyspace`, the mapping API and expiry); the Store itself is
keyspace 0 and ``store.db(n)`` returns keyspace ``n``.

Concurrency design (why it is shaped this way):

* Reads take no lock: ``get`` loads the space tuple once (one attribute
  load) and does atomic C dict lookups on it; restore, shutdown and swap
  replace a keyspace's space with one attribute store, so a reader sees the
  old or the new keyspace whole, never a mix of old entries and new expiry
  times.
* Every mutation takes ``_lock`` (one lock for the whole store), always
  through ``with``: a bare ``acquire()`` followed by ``try`` is ~90 ns
  cheaper but leaves the lock held forever if Ctrl-C lands between the two.
  With a journal, the record is written to the OS *before* memory changes
  and under the same lock, so the journal's order is memory's order and a
  write the disk refused never reaches memory. With ``fsync="always"`` the
  fsync happens after the lock is released (group commit: one fsync covers
  every thread that appended before it started).
* ``save`` copies references to the entries under ``_lock`` and encodes
  them without it, so writers wait for a copy, not for encoding and fsync.
* ``_publish_lock`` orders publishes and restores, so two concurrent saves
  can never publish an older copy after a newer one.

Expiry works like Redis's: an expired key is invisible to every read at
once (checked on access against the store's clock), and its memory is
reclaimed by an incremental sweep that holds the lock for at most
``SWEEP_SLICE`` keys at a time.

Journal ordering (docs/FORMAT.md, part 2): every snapshot records in
``journal_next`` the first journal it does not contain. ``save`` and
``shutdown`` sync the current journal J and create journal J+1 (the slow
fsyncs, outside the lock), then under the lock sync what was written since,
switch writes to J+1 and copy references, then publish a snapshot with
``journal_next = J+1``, then remove journals no retained snapshot needs. A
crash between any two steps leaves either the old snapshot plus journals J
and J+1, or the new snapshot plus journal J+1: the same data either way.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import operator
import threading
import time
import weakref
from collections.abc import (
    Callable,
    Iterator,
)
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NoReturn

from snapkv import codec, rebuild, recovery
from snapkv import journal as jr
from snapkv import values as vtypes  # Keyspace.values() shadows `values` in the class
from snapkv._frame import frame_end
from snapkv.errors import (
    CorruptJournalError,
    MediumError,
    SnapkvError,
    StoreClosedError,
    StoreShutDownError,
    TransactionError,
)
from snapkv.keyspace import _CLOSED, SWEEP_SLICE, Keyspace, Space, _closed, _new_space
from snapkv.media import JournalFile, Medium, MemoryMedium
from snapkv.tap import FrozenCopy, Tap
from snapkv.transaction import HeldLock, Recorder, committed_anyway

__all__ = [
    "FSYNC_POLICIES",
    "SWEEP_SLICE",
    "FrozenCopy",
    "Keyspace",
    "RestoreReport",
    "Store",
    "check_settings",
]

log = logging.getLogger("snapkv")

#: Journal fsync policies, as Redis's ``appendfsync`` (``never`` is accepted for ``no``).
FSYNC_POLICIES = jr.FSYNC_POLICIES
#: Seconds between background sweeps.
SWEEP_INTERVAL = 0.1
#: The journal options' defaults, for Store and open() alike.
DEFAULT_FSYNC = "everysec"
DEFAULT_COMPACT_RATIO = 2.0
DEFAULT_COMPACT_MIN_BYTES = 4 << 20  # 4 MiB
#: Without a journal each journal option must keep its default: a value
#: given for a journal that does not exist is a mistake (``journal=False,
#: fsync="always"`` promises a durability nothing delivers).
_JOURNAL_DEFAULTS: dict[str, object] = {
    "fsync": DEFAULT_FSYNC,
    "compact_ratio": DEFAULT_COMPACT_RATIO,
    "compact_min_bytes": DEFAULT_COMPACT_MIN_BYTES,
}
#: What save copies under the lock per keyspace: number, keys, values, expires (or None).
_Copied = tuple[int, list[str], list[str], dict[str, int] | None]


@dataclass(frozen=True)
class RestoreReport:
    """What a restore loaded, and what it had to skip or drop to get there."""

    #: The snapshot generation loaded, or ``None`` when the medium had none.
    generation: str | None
    #: Live entries now in memory, over all keyspaces.
    entries: int
    #: ``(generation, reason)`` for each newer snapshot that failed its
    #: checks and was skipped (only ever non-empty with ``fallback=True``).
    skipped: tuple[tuple[str, str], ...] = ()
    #: Journals replayed on top of the snapshot, oldest first.
    journals: tuple[int, ...] = ()
    #: Journal records replayed.
    journal_records: int = 0
    #: One sentence per piece of a journal that recovery dropped (a torn or
    #: garbage tail, a zero-filled one in a journal that is not the newest;
    #: with ``repair=True`` damaged middles).
    journal_dropped: tuple[str, ...] = ()
    #: Keys found already expired, so not loaded.
    expired: int = 0
    #: Bytes of zeros cut after the newest journal's records: the space a
    #: writer preallocated, left by a process that did not close the store
    #: (or what a power loss never made durable). Not a loss: no
    #: acknowledged write the ``fsync`` policy promised to keep was in them,
    #: so neither ``damaged`` nor ``why_empty`` counts them.
    journal_zeros_cut: int = 0

    @property
    def damaged(self) -> bool:
        """Whether anything was skipped or dropped to get here (zeros cut are not a loss)."""
        return bool(self.skipped or self.journal_dropped)

    @property
    def why_empty(self) -> str | None:
        """Why the store came back empty, or ``None`` if it holds entries."""
        if self.entries:
            return None
        if self.damaged:
            return "damage: " + "; ".join(
                [f"{gen}: {reason}" for gen, reason in self.skipped] + list(self.journal_dropped)
            )
        if self.generation is None and not self.journals:
            return "no data yet: no snapshot and no journal"
        if self.expired:
            return f"every stored key ({self.expired}) had expired"
        return "the stored data is empty"


class _Parked:
    """Journal writer of a shut-down journaled store: refuses writes until restore()."""

    def append(self, _record: bytes) -> NoReturn:
        raise StoreShutDownError(
            "the store was shut down: restore() it before writing "
            "(with a journal, a shut-down store takes no writes)"
        )


_PARKED: Any = _Parked()


class _Unsaved:
    """Journal writer of a journal-less store that saves on close, while nothing is unsaved.

    Dirty tracking that costs the set path nothing: memory's first change
    after a publish (or restore) passes its record here, as it would to a
    journal, which marks the store unsaved and uninstalls this object; every
    later write finds no writer at all, exactly the path of a store that
    never saves on close. Publishing installs it again. (A flag set on every
    write would cost each journal-less set an attribute store under the
    lock; this costs one record encoding per publish.)
    """

    __slots__ = ("_store",)

    #: What a transaction reads of a writer (see transaction.committed_anyway).
    failure = None
    written = 0

    def __init__(self, store: Store) -> None:
        # Weak: the sweeper relies on an unclosed Store being collectable.
        self._store = weakref.ref(store)

    def append(self, _record: bytes) -> int:
        """Caller holds the store's lock, and memory changes next."""
        store = self._store()
        if store is not None:
            store._unsaved = True
            if store._real_writer() is self:
                store._install_writer(None)
        return 0

    def commit(self, _lsn: int) -> None:
        """Nothing to wait for."""

    def sync(self) -> None:
        """Nothing to sync: close() publishes a snapshot instead."""

    def close(self) -> None:
        """Nothing to close."""


def check_settings(
    *,
    databases: int,
    clock: Callable[[], float] | None,
    journal: bool,
    fsync: str,
    compact_ratio: float,
    compact_min_bytes: int,
    sweep_interval: float | None,
    save_on_close: bool,
) -> tuple[int, jr.FsyncPolicy]:
    """Check a Store's settings before anything is built; return databases and fsync, normalised.

    :raises TypeError: a setting of the wrong type.
    :raises ValueError: a setting out of range, or a journal option other
        than its default while the journal is off (or ``save_on_close``
        with a journal).
    """
    try:
        databases = operator.index(databases)
    except TypeError:
        raise TypeError(f"databases must be an int, not {type(databases).__name__}") from None
    if not 1 <= databases <= 2**31:
        raise ValueError(f"databases must be between 1 and 2**31, not {databases}")
    if clock is not None and not callable(clock):
        raise TypeError(f"clock must be callable, not {type(clock).__name__}")
    for name, flag in (("journal", journal), ("save_on_close", save_on_close)):
        if not isinstance(flag, bool):
            raise TypeError(f"{name} must be True or False, not {flag!r}")
    policy = jr.fsync_policy(fsync)
    if isinstance(compact_ratio, bool) or not isinstance(compact_ratio, int | float):
        raise TypeError(f"compact_ratio must be a number, not {type(compact_ratio).__name__}")
    if not compact_ratio > 0:
        raise ValueError(f"compact_ratio must be > 0, not {compact_ratio}")
    if isinstance(compact_min_bytes, bool) or not isinstance(compact_min_bytes, int):
        raise TypeError(f"compact_min_bytes must be an int, not {type(compact_min_bytes).__name__}")
    if compact_min_bytes < 0:
        raise ValueError(f"compact_min_bytes must be >= 0, not {compact_min_bytes}")
    if sweep_interval is not None:
        if isinstance(sweep_interval, bool) or not isinstance(sweep_interval, int | float):
            kind = type(sweep_interval).__name__
            raise TypeError(f"sweep_interval must be a number of seconds or None, not {kind}")
        if not sweep_interval > 0:
            raise ValueError(f"sweep_interval must be > 0 seconds, not {sweep_interval}")
    if journal:
        if save_on_close:
            raise ValueError(
                "save_on_close=True needs journal=False: with a journal, close() syncs it "
                "and loses nothing"
            )
    else:
        given = {
            "fsync": (policy, fsync),
            "compact_ratio": (compact_ratio, compact_ratio),
            "compact_min_bytes": (compact_min_bytes, compact_min_bytes),
        }
        for name, (value, spelled) in given.items():
            if value != _JOURNAL_DEFAULTS[name]:
                raise ValueError(
                    f"{name}={spelled!r} is a journal option, and journal=False: nothing "
                    f"would use it (pass journal=True, or leave {name} out)"
                )
    return databases, policy


class Store(Keyspace):
    """Numbered keyspaces of str to str in memory, with snapshots and an optional journal.

    The Store is keyspace 0; ``store.db(n)`` gives keyspace ``n`` (``0 <= n <
    databases``). ``Store()`` snapshots to memory; :func:`snapkv.open` gives a
    Store on a directory, restored. ``Store(medium)`` starts EMPTY even if
    the medium holds snapshots: call :meth:`restore` first, or the next
    shutdown will publish the empty store as the newest snapshot.

    Safe for concurrent use from several threads: every operation is atomic,
    and a snapshot is a point-in-time view of every keyspace.

    The defaults here are those of the seed contract (no journal, nothing
    published by :meth:`close`), which ``run_operations`` and ``snapkv run``
    keep; :func:`snapkv.open` defaults to a journal instead.

    :param databases: number of keyspaces (Redis's ``databases``).
    :param clock: wall-clock time in seconds, for expiry (injectable for tests).
    :param journal: log every write to the medium before it is acknowledged,
        so a killed process loses nothing (see :func:`snapkv.open`).
    :param fsync: ``"always"``, ``"everysec"`` or ``"no"`` (``"never"`` is an alias): when journal
        writes are forced to the disk.
    :param compact_ratio: with a journal, snapshot (and start a new journal)
        once the journal is this many times the last snapshot's size.
    :param compact_min_bytes: ... and at least this large.
    :param sweep_interval: seconds between background expiry sweeps; ``None``
        disables the thread (call :meth:`sweep` yourself).
    :param save_on_close: without a journal, make :meth:`close` publish a
        snapshot if memory changed since the last save, shutdown or restore
        (what :func:`snapkv.open` does without a journal).
    :raises ValueError: a setting is out of range; ``fsync``,
        ``compact_ratio`` or ``compact_min_bytes`` differs from its default
        while ``journal`` is off (it would have no effect); ``save_on_close``
        with a journal.
    :raises TypeError: a setting has the wrong type.
    """

    def __init__(
        self,
        medium: Medium | None = None,
        *,
        databases: int = recovery.DEFAULT_DATABASES,
        clock: Callable[[], float] | None = None,
        journal: bool = False,
        fsync: str = DEFAULT_FSYNC,
        compact_ratio: float = DEFAULT_COMPACT_RATIO,
        compact_min_bytes: int = DEFAULT_COMPACT_MIN_BYTES,
        sweep_interval: float | None = SWEEP_INTERVAL,
        save_on_close: bool = False,
    ) -> None:
        databases, fsync = check_settings(
            databases=databases,
            clock=clock,
            journal=journal,
            fsync=fsync,
            compact_ratio=compact_ratio,
            compact_min_bytes=compact_min_bytes,
            sweep_interval=sweep_interval,
            save_on_close=save_on_close,
        )
        self._store = self
        self._index = 0
        self._space = _new_space()
        self._make_views()
        self._medium: Medium = medium if medium is not None else MemoryMedium()
        # A plain Lock: every write takes it, and an RLock costs ~10 ns more
        # (3-5% of a set). A transaction swaps in a HeldLock for its duration
        # (see transaction()), which makes the lock reentrant for its thread.
        self._lock: Any = threading.Lock()
        self._publish_lock = threading.Lock()
        self._tx_thread: int | None = None
        self._frozen_below = 0  # see save() and values.base's epoch
        self._freezes = 0  # saves and frozen copies holding the epoch (see _freeze)
        self._closed = False
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._spaces: list[Keyspace] = [self, *(Keyspace(self, i) for i in range(1, databases))]
        self._journaling = bool(journal)
        self._fsync = fsync
        self._writer: Any = None  # JournalWriter | _PARKED | None
        #: The continuous replication of this store's directory to object
        #: storage (``snapkv.replication``'s ``Replicator``), if any: ``open(...,
        #: replicate=URL)`` starts it, :meth:`close` ends it with a last upload.
        self.replication: Any = None
        #: Told ``(keyspace index, keys)`` whenever expired keys are removed
        #: (by the sweeper, a locked read or a write), under the Store's lock
        #: and on the thread that removed them: the server publishes Redis's
        #: ``expired`` keyspace events through it. It must not call the Store.
        self.expired_listener: Callable[[int, list[str]], None] | None = None
        self._journal_id = 0
        self._journal_next = 0  # journals below this are in memory's base snapshot
        self._compact_ratio = compact_ratio
        self._compact_min = compact_min_bytes
        self._compact_at = 2**63
        self._compacting = False
        #: The error of the last background compaction, if it failed.
        self.last_compaction_error: BaseException | None = None
        self._sweep_interval = sweep_interval
        self._sweeper: threading.Thread | None = None
        self._sweep_wake = threading.Event()
        #: The report of the last :meth:`restore`, or ``None`` before any.
        self.last_restore: RestoreReport | None = None
        #: Whether memory was emptied by shutdown and nothing written since; see __exit__.
        self._emptied: tuple[Space, ...] | None = None
        #: Whether memory changed since the last publish or restore (kept
        #: only with ``save_on_close``, by the _Unsaved writer; see close()).
        self._unsaved = False
        self._saved_marker: _Unsaved | None = _Unsaved(self) if save_on_close else None
        if self._journaling:
            # Writes wait for restore(): the journal must continue the one
            # the medium already has, and new writes must land on top of
            # the restored data, not under it.
            self._writer = _PARKED
        else:
            self._writer = self._saved_marker

    # ------------------------------------------------------------ keyspaces

    @property
    def databases(self) -> int:
        """Number of keyspaces."""
        return len(self._spaces)

    def db(self, index: int) -> Keyspace:
        """Keyspace ``index``; ``db(0)`` is the store itself.

        :raises ValueError: ``index`` is out of range.
        """
        if type(index) is not int:
            index = operator.index(index)
        if not 0 <= index < len(self._spaces):
            raise ValueError(f"keyspace {index} is out of range 0..{len(self._spaces) - 1}")
        return self._spaces[index]

    def flush(self, db: int) -> None:
        """Empty keyspace ``db`` (Redis's FLUSHDB)."""
        self.db(db).clear()

    def flush_all(self) -> None:
        """Empty every keyspace in one atomic step (Redis's FLUSHALL)."""
        with self._lock:
            self._check_open()
            ticket = self._log(jr.clear_record, jr.ALL_KEYSPACES)
            for space in self._spaces:
                space._space = _new_space()
        self._commit(ticket)

    def swap(self, a: int, b: int) -> None:
        """Swap the contents of keyspaces ``a`` and ``b`` atomically (Redis's SWAPDB)."""
        first, second = self.db(a), self.db(b)
        with self._lock:
            self._check_open()
            ticket = self._log(jr.swap_record, first._index, second._index)
            first._space, second._space = second._space, first._space
        self._commit(ticket)

    def now_ms(self) -> int:
        """The store's clock, in epoch milliseconds (what expiry times are compared with)."""
        return int(self._clock() * 1000)

    def _exclusive_dict(self) -> dict[str, str]:
        """Keyspace 0's live dict, for a caller that owns this Store outright.

        Valid until the next shutdown, restore or close, which install
        another. Only for a store without expiry times or journal.
        """
        return self._space[0]

    @property
    def medium(self) -> Medium:
        """The medium snapshots (and the journal) are written to."""
        return self._medium

    # ------------------------------------------------------------ record tap

    def tap(
        self,
        listener: Callable[[bytes], None] | None,
        settled: Callable[[], None] | None = None,
    ) -> None:
        """Have ``listener`` hear every record the Store commits, in commit order; ``None`` stops.

        Called under the Store's lock on the writing thread, with the very
        record the journal gets (journaled or not: a store without a journal
        encodes its records only while tapped), a transaction's as its one
        record at its end; it must not call the Store nor raise. Replication
        to a Redis replica is built on it. A Store nobody taps pays nothing.

        A record outside a transaction is heard *before* memory changes;
        ``settled()``, if given, is called on the writing thread once the
        write is in memory and the lock released (with the journal's commit),
        so a listener that must read memory as a record left it can do so
        then, before the writer's next command (:meth:`under_lock`).
        """
        self._not_in_transaction("tap()")
        lock = self._lock
        if isinstance(lock, HeldLock):
            lock = lock.lock
        with lock:
            writer = self._writer
            if writer.__class__ is Tap:
                writer = writer.inner
            self._writer = writer if listener is None else Tap(writer, listener, settled)

    def frozen_copy(self, mark: Callable[[], Any] | None = None) -> FrozenCopy:
        """Every keyspace as of now, for a reader on another thread; :meth:`FrozenCopy.release` it.

        BGSAVE's point-in-time copy (references under the lock, containers
        copied on write until released), with ``mark()`` called under the
        same lock: a tap listener's position there is exactly where the
        records after the copy begin. Keys already due are reclaimed first
        (the expired listener hears them before ``mark``).
        """
        self._not_in_transaction("frozen_copy()")
        with self._lock:
            self._check_open()
            columns = self._columns()
            self._freeze()
            marked = mark() if mark is not None else None
        return FrozenCopy(list(columns), marked, self)

    def under_lock(self, call: Callable[[], Any], *, blocking: bool = True) -> bool:
        """Run ``call()`` holding the Store's lock, as a tap listener runs; ``False``: not run.

        With ``blocking=False`` it is not run while another thread holds the
        lock (a transaction, a write between its record and memory).
        """
        lock = self._lock
        if not lock.acquire(blocking):
            return False
        try:
            call()
        finally:
            lock.release()
        return True

    def _freeze(self) -> None:
        """A save or copy starts holding the epoch; caller holds the lock."""
        self._freezes += 1
        self._frozen_below = vtypes.next_epoch()

    def _thaw(self) -> None:
        with self._lock:
            self._freezes -= 1
            if self._freezes <= 0:
                self._freezes = 0
                self._frozen_below = 0

    def _real_writer(self) -> Any:
        """The writer under a tap (the one the Store's own rules look at)."""
        writer = self._writer
        return writer.inner if writer.__class__ is Tap else writer

    def _install_writer(self, writer: Any) -> None:
        """Make ``writer`` the Store's writer, under the tap if any; caller holds the lock."""
        current = self._writer
        if current.__class__ is Tap:
            current.inner = writer
        else:
            self._writer = writer

    # ---------------------------------------------------------------- expiry

    def sweep(self, *, limit: int | None = None) -> int:
        """Reclaim the memory of expired keys now; return how many were removed.

        Holds the lock for at most ``SWEEP_SLICE`` keys at a time. The
        background sweeper calls this; tests with an injected clock call it
        directly.
        """
        removed = 0
        for space in self._spaces:
            more = True
            while more and (limit is None or removed < limit):
                with self._lock:
                    if self._closed:
                        return removed
                    budget = SWEEP_SLICE if limit is None else min(SWEEP_SLICE, limit - removed)
                    n, more = space._reclaim(budget)
                removed += n
        return removed

    def _wake_sweeper(self) -> None:
        if self._sweeper is None and self._sweep_interval is not None and not self._closed:
            thread = threading.Thread(
                target=_sweep_loop,
                args=(weakref.ref(self), self._sweep_wake, self._sweep_interval),
                name="snapkv-sweeper",
                daemon=True,
            )
            self._sweeper = thread
            thread.start()

    # --------------------------------------------------------------- journal

    def _log(self, make: Callable[..., bytes], *args: Any) -> tuple[Any, int] | None:
        """Write the record ``make(*args)`` to the journal; caller holds the lock.

        Returns a ticket for :meth:`_commit` (``None`` without a journal).
        Called before memory changes: if the journal refuses the write, this
        raises and memory is untouched.
        """
        writer = self._writer
        if writer is None:
            if self._closed:
                _closed()
            return None
        return writer, writer.append(make(*args))

    def _commit(self, ticket: tuple[Any, int] | None) -> None:
        """After the lock is released: wait for durability as the fsync policy says."""
        if ticket is not None:
            self._after_append(*ticket)

    def _after_append(self, writer: Any, lsn: int) -> None:
        writer.commit(lsn)
        if lsn >= self._compact_at and not self._compacting:
            self._start_compaction()

    def sync(self) -> None:
        """Force every journal write made so far to the disk (no-op without a journal)."""
        writer = self._writer
        if writer is not None and writer is not _PARKED:
            writer.sync()

    def _next_journal_id(self) -> int:
        ids = self._medium.journal_ids()
        return max([self._journal_id + 1, self._journal_next, 1, *(i + 1 for i in ids)])

    def _start_journal(
        self, jid: int, *, existing: bool = False, file: JournalFile | None = None
    ) -> None:
        """Switch writes to journal ``jid``; caller holds both locks.

        The journal is ``file`` (created beforehand by :meth:`_prepare_journal`),
        or opened if ``existing``, or created here. The previous journal is
        synced first, so only the newest journal that holds records can ever
        have a torn tail (recovery relies on it).
        """
        old = self._real_writer()
        live = old is not None and old is not _PARKED
        if live and old.failure is None:
            old.sync()
        if file is None:
            if existing:
                file = self._medium.open_journal(jid)
            else:
                file = self._medium.create_journal(jid, jr.header(jid))
        self._install_writer(jr.JournalWriter(file, self._fsync))
        self._journal_id = jid
        if live:
            _retire(old)

    def _prepare_journal(self) -> tuple[int, JournalFile] | None:
        """Before a rotation, outside ``_lock`` (caller holds ``_publish_lock``).

        Syncs the current journal and creates the next one, so that under the
        lock only the bytes written since are synced and writes are switched:
        the fsyncs that take milliseconds happen while writers go on.
        An empty journal left by a failure later is harmless (recovery
        replays it as nothing; the next id skips it).
        """
        writer = self._writer
        if isinstance(writer, Recorder):  # a transaction runs: its writer is the real one
            writer = writer.writer
        if writer.__class__ is Tap:
            writer = writer.inner
        if not self._journaling or writer is None or writer is _PARKED:
            return None
        if writer.failure is None:
            writer.sync()
        jid = self._next_journal_id()
        return jid, self._medium.create_journal(jid, jr.header(jid))

    def _rotate(self, prepared: tuple[int, JournalFile] | None) -> None:
        """Switch writes to the prepared journal; caller holds both locks."""
        if prepared is not None:
            self._start_journal(prepared[0], file=prepared[1])
            self._journal_next = self._journal_id

    def _start_compaction(self) -> None:
        with self._lock:
            if self._compacting or self._closed:
                return
            self._compacting = True
        threading.Thread(target=self._compact, name="snapkv-compaction", daemon=True).start()

    def _compact(self) -> None:
        try:
            self.save()
            self.last_compaction_error = None
        except BaseException as exc:  # a thread has no caller to raise to
            self.last_compaction_error = exc
            log.error("journal compaction failed: %s", exc)
        finally:
            self._compacting = False

    # ---------------------------------------------------------- transactions

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run a block of writes as one: all of them, or none, in memory and on disk.

        ::

            with store.transaction() as tx:     # tx is the store itself
                tx.set("balance:a", "90")
                tx.db(1).set("balance:b", "110")
                tx.db(2).delete("pending")

        The block may use any method of the store and its keyspaces, across
        keyspaces. Its writes reach memory at once (reads in the block see
        them), and their journal records become ONE record written when the
        block ends: after a crash, recovery has all of the transaction or
        none of it. If the block raises, every write in it is undone and
        the exception propagates; with ``fsync="always"`` leaving the block
        waits until the record is durable.

        The block holds the store's lock: other threads' writes, their
        copies (``keys()``, ``items()``, iteration) and the moment a
        ``save`` copies references wait until it ends; a background save's
        encoding and fsync do not hold the block back. Their lock-free
        reads (``get``, ``in``, and ``len`` of a keyspace without expiry
        times) are not held back, so they can see a transaction's writes
        before it ends (and see them undone if it raises). Keep
        transactions short.

        :raises TransactionError: transactions do not nest; ``save``,
            ``shutdown``, ``restore`` and ``close`` cannot run inside one;
            the transaction's records do not fit in one journal record.
        :raises MediumError: the journal refused the record: every write of
            the block was undone (as :meth:`set` leaves nothing when the
            journal refuses it).
        :raises StoreShutDownError: a write in the block, on a journaled
            store that was shut down and not restored.
        """
        self._not_in_transaction("a transaction")
        # Only _lock, not _publish_lock: a save running in another thread
        # holds _publish_lock while it encodes and fsyncs (seconds for a big
        # store) and needs _lock only to switch journals and copy references.
        # What it reads outside _lock (the writer, to sync it) the Recorder
        # forwards to the real writer.
        lock = self._lock
        if isinstance(lock, HeldLock):  # another thread's transaction: wait for the real lock
            lock = lock.lock
        with lock:
            self._check_open()
            writer = self._writer
            owner = threading.get_ident()
            recorder = Recorder(self._spaces, writer, parked=self._real_writer() is _PARKED)
            # The block's own writes take the lock again: a HeldLock lets
            # this thread through and makes every other thread wait.
            held = HeldLock(lock, owner)
            ticket = None
            committed = False
            try:
                # Installed inside the try: an interrupt anywhere from here on
                # reaches the finally, which puts the real writer and lock back.
                self._writer = recorder
                self._tx_thread = owner
                self._lock = held
                yield self
                record = recorder.record()
                self._writer = writer
                if record is not None and writer is not None:
                    written, failure = writer.written, writer.failure
                    try:
                        ticket = writer, writer.append(record)
                    except BaseException as exc:
                        committed = committed_anyway(writer, written, failure, exc)
                        raise
            except BaseException:
                if not committed:
                    recorder.rollback()
                raise
            finally:
                self._lock = lock
                self._tx_thread = None
                self._writer = writer
        self._commit(ticket)

    @property
    def in_transaction(self) -> bool:
        """Whether the calling thread is inside this store's :meth:`transaction` block."""
        return self._tx_thread is not None and self._tx_thread == threading.get_ident()

    def _not_in_transaction(self, what: str) -> None:
        """Refuse ``what`` in the thread of a running transaction (it would deadlock or leak)."""
        if self._tx_thread is not None and self._tx_thread == threading.get_ident():
            raise TransactionError(f"{what} cannot run inside a transaction")

    # ----------------------------------------------------------- persistence

    def _columns(self) -> list[_Copied]:
        """References to every keyspace's entries; caller holds the lock.

        Due keys are reclaimed first (they are never written), so what is
        left copies at C speed: lists of keys and values, and a copy of the
        expires dict where there is one. The expiry column itself (a lookup
        per key) is built by :meth:`_publish`, after the lock is released.
        """
        columns: list[_Copied] = []
        for space in self._spaces:
            if space._space[1]:
                space._reclaim(None)
            data, expires, _ = space._space
            if data:
                copied = expires.copy() if expires else None
                columns.append((space._index, list(data), list(data.values()), copied))
        return columns

    def _publish(self, columns: list[_Copied]) -> None:
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            spaces = (
                (index, keys, values, _expiry_column(keys, expires))
                for index, keys, values, expires in columns
            )
            for piece in codec.iter_encode_snapshot(spaces, journal_next=self._journal_next):
                size += len(piece)
                yield piece

        self._medium.publish(counted())
        if self._journaling:
            self._compact_at = max(self._compact_min, int(size * self._compact_ratio))
            self._prune_journals()

    def _prune_journals(self) -> None:
        """Remove journals that no retained snapshot needs (tolerates failure: costs only disk)."""
        try:
            oldest = self._medium.generations()[-1]
            # The first record is all peek_journal_next reads (a header, a
            # frame and META's 8 bytes); a head cut short keeps the journals.
            blob = self._medium.read_head(oldest, 4096)
            needed = codec.peek_journal_next(blob) if blob is not None else None
            if needed is not None:
                self._medium.remove_journals(needed)
        except (SnapkvError, IndexError) as exc:
            log.warning("cannot remove old journals: %s", exc)

    def _mark_saved(self) -> None:
        """Memory is what the medium holds now; caller holds the lock. See :class:`_Unsaved`."""
        marker = self._saved_marker
        if marker is not None:
            self._unsaved = False
            self._install_writer(marker)

    def _mark_unsaved(self) -> None:
        """A publish that was to cover memory failed; caller holds the lock."""
        if self._saved_marker is not None:
            self._unsaved = True
            if self._real_writer() is self._saved_marker:
                self._install_writer(None)

    def save(self) -> None:
        """Publish a snapshot of every keyspace without clearing memory (like Redis SAVE).

        Writers wait only while references are copied (and, with a journal,
        while the next journal is created); the snapshot is the store as of
        that copy. With a journal this is also compaction: journals the new
        snapshot covers are removed.

        :raises MediumError: publishing failed; memory and older snapshots are unchanged.
        """
        self._not_in_transaction("save()")
        with self._publish_lock:
            self._check_open()
            prepared = self._prepare_journal()
            try:
                with self._lock:
                    self._check_open()
                    if self._real_writer() is _PARKED:
                        raise StoreShutDownError(
                            "the store was shut down: restore() it before saving (its "
                            "snapshot is already published; saving the emptied memory would "
                            "replace it)"
                        )
                    self._rotate(prepared)
                    prepared = None
                    columns = self._columns()
                    # The containers just referenced are encoded after the
                    # lock is released: until then a write copies one before
                    # changing it (values.base, "the epoch").
                    self._freeze()
                    # Writes from here on are not in this snapshot: they mark
                    # the store unsaved again.
                    self._mark_saved()
            finally:
                if prepared is not None:
                    prepared[1].close()
            try:
                self._publish(columns)
            except BaseException:
                with self._lock:
                    self._mark_unsaved()
                raise
            finally:
                self._thaw()

    def shutdown(self) -> None:
        """Publish a snapshot of every keyspace as one atomic snapshot, then clear memory.

        An empty store publishes a valid empty snapshot. The store stays
        usable afterwards. If publishing fails, memory is left intact.
        With a journal, the store then takes no writes (and no ``save``)
        until :meth:`restore` (:class:`StoreShutDownError`): a write there
        would have no snapshot to belong to. A second ``shutdown`` is then a
        no-op: the snapshot already published stands.

        :raises MediumError: publishing failed.
        """
        self._not_in_transaction("shutdown()")
        with self._publish_lock:
            self._check_open()
            prepared = self._prepare_journal()
            try:
                with self._lock:
                    self._check_open()
                    if self._real_writer() is _PARKED:
                        return  # already shut down, nothing written since: the snapshot stands
                    self._rotate(prepared)
                    prepared = None
                    self._publish(self._columns())
                    published = [space._space for space in self._spaces]
                    for space in self._spaces:
                        space._space = _new_space()
                    self._emptied = tuple(space._space for space in self._spaces)
                    self._mark_saved()
                    if self._journaling:
                        # The journal just created holds nothing yet.
                        writer = self._real_writer()
                        self._install_writer(_PARKED)
                        _retire(writer)
            finally:
                if prepared is not None:
                    prepared[1].close()
        # ``published`` is freed here, after the locks: writers need not wait
        # while a million strings are deallocated.
        del published

    def restore(self, *, fallback: bool = False, repair: bool = False) -> RestoreReport:
        """Replace memory with the newest snapshot plus its journals. Never merges with memory.

        Without a journal on the medium this is exactly "the most recent
        snapshot; empty if there is none".

        :param fallback: if the newest snapshot fails its checks, load the
            newest older generation that passes them, set the failed ones
            aside (``Medium.quarantine``), and report what was skipped.
        :param repair: if a journal is damaged in the middle, keep what comes
            before the damage instead of raising, and report what was lost.
        :raises CorruptSnapshotError: the newest snapshot (with ``fallback``,
            every generation) failed a check; memory is left unchanged.
        :raises CorruptJournalError: a journal is damaged before its tail
            (and ``repair`` is off); memory is left unchanged.
        :raises MediumError: the medium could not be read; memory is unchanged.
        """
        self._not_in_transaction("restore()")
        fallback = fallback or repair
        with self._publish_lock:
            self._check_open()
            choice = recovery.choose_snapshot(self._medium, fallback=fallback)
            snapshot = choice.snapshot
            assert snapshot is not None  # load=True decodes it
            # Built before writers are stopped: the expiry heaps are the slow part.
            spaces = rebuild.snapshot_spaces(snapshot, databases=len(self._spaces))
            # From here writers wait: the journal replayed must be exactly the
            # journal that new writes continue, with nothing appended between.
            with self._lock:
                self._check_open()
                plan = recovery.plan_journals(self._medium, choice.journal_next, repair=repair)
                try:
                    expired = rebuild.replay(
                        spaces, plan.ops, databases=len(self._spaces), now_ms=self._clock() * 1000
                    )
                except rebuild.ReplayError as exc:
                    raise self._unappliable(plan, exc) from None
                for line in plan.dropped:
                    log.warning("journal recovery: %s", line)
                for line in plan.notes:  # zeros cut: no loss, so no warning
                    log.info("journal recovery: %s", line)
                for _name, reason in choice.skipped:
                    log.warning("skipping unusable snapshot: %s", reason)
                # Everything loaded: only now change the medium.
                skipped = tuple(
                    (name, self._set_aside(name, reason)) for name, reason in choice.skipped
                )
                if skipped:
                    log.warning("restored older snapshot %s instead", choice.generation)
                for jid in plan.aside:
                    self._medium.quarantine_journal(jid)
                if plan.cut is not None:
                    # Cut the dropped tail, so that new records follow the
                    # last good one instead of the damage.
                    file = self._medium.open_journal(plan.cut[0])
                    try:
                        file.truncate(plan.cut[1])
                    finally:
                        file.close()
                jids = plan.journals
                if self._journaling:
                    # Journals from the snapshot's journal_next on stay
                    # needed: new writes continue the newest of them.
                    self._journal_next = choice.journal_next
                    if jids:
                        self._start_journal(jids[-1], existing=True)
                    else:
                        self._start_journal(self._next_journal_id())
                    # The ids of journals set aside are free again: the next
                    # journal follows the last one replayed, so the chain stays
                    # consecutive (a gap would make the next open refuse if a
                    # crash came before the next snapshot).
                else:
                    # Memory now holds the replayed journals: the next
                    # snapshot contains them, so it must say so.
                    self._journal_next = jids[-1] + 1 if jids else choice.journal_next
                if self._journaling:
                    self._compact_at = max(
                        self._compact_min, int(choice.size * self._compact_ratio)
                    )
                for index, keyspace in enumerate(self._spaces):
                    keyspace._space = spaces.get(index) or _new_space()
                self._emptied = None
                self._mark_saved()
                if any(space[1] for space in spaces.values()):
                    self._wake_sweeper()
            report = RestoreReport(
                generation=choice.generation,
                entries=sum(len(space[0]) for space in spaces.values()),
                skipped=skipped,
                journals=jids,
                journal_records=plan.records,
                journal_dropped=plan.dropped,
                expired=expired,
                journal_zeros_cut=plan.zeros_cut,
            )
            self.last_restore = report
            return report

    def _unappliable(
        self, plan: recovery.JournalPlan, exc: rebuild.ReplayError
    ) -> CorruptJournalError:
        """The error for a replayed record whose effect cannot apply: its journal and offset.

        Found on the error path only, by walking that journal's record frames
        again (the scan keeps effects, not offsets).
        """
        index = exc.record
        for scan in plan.scans:
            if index >= len(scan.ops):
                index -= len(scan.ops)
                continue
            offset = jr.HEADER_SIZE
            data = self._medium.read_journal(scan.jid) or b""
            view = memoryview(data)
            for _ in range(index):
                end = frame_end(view, offset)
                if end is None:
                    break
                offset = end
            return CorruptJournalError(
                f"a record whose checksum holds cannot apply: {exc} (a writer of this "
                "format cannot have made it); open(repair=True) does not cut it: set the "
                "journal aside to open the data before it",
                offset=offset,
                check="record-effect",
                source=f"journal {scan.jid}",
            )
        return CorruptJournalError(str(exc), offset=0, check="record-effect")

    def _set_aside(self, generation: str, reason: str) -> str:
        # Left in place, a bad generation would stay "newest" and count
        # toward keep, so the next publishes would prune the good generation
        # just loaded. Failing to move it is reported, not fatal: the data
        # was restored.
        try:
            return f"{reason}; moved aside: {self._medium.quarantine(generation)}"
        except MediumError as exc:
            log.warning("cannot set aside %s: %s", generation, exc)
            return f"{reason}; could not be moved aside: {exc}"

    # -------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("the store is closed")

    def close(self) -> None:
        """Release the medium (and its directory lock), losing no acknowledged write. Idempotent.

        * With a journal, every write acknowledged so far is already in it;
          close syncs it (whatever the ``fsync`` policy) and publishes no
          snapshot: the next open replays the journal.
        * Without a journal, with ``save_on_close`` (the default of
          :func:`snapkv.open`), close first publishes a snapshot of memory
          if anything changed since the last ``save``, ``shutdown`` or
          ``restore``; if nothing changed it publishes nothing. Writes made
          after a ``shutdown`` count as changes: memory (which then holds
          only them) is published, as leaving a ``with`` block does, so
          the next open finds what the store held when it was closed, as
          with ``dbm`` or ``shelve``. If that snapshot cannot be published,
          close raises :class:`MediumError` and the store stays open with
          memory intact: close again once the disk is fixed, or call
          ``restore()`` first to drop the unsaved writes.
        * Without a journal and without ``save_on_close`` (``Store()``,
          ``run_operations``, ``snapkv run``), close publishes nothing:
          writes since the last ``save`` or ``shutdown`` are dropped.

        Any later operation raises :class:`StoreClosedError`.
        """
        self._not_in_transaction("close()")
        with self._publish_lock, self._lock:
            if self._closed:
                return
            if self._unsaved:
                self._publish(self._columns())
                self._unsaved = False
            self._closed = True
            writer, self._writer = self._real_writer(), None
            for space in self._spaces:
                space._space = _CLOSED
            self._sweep_wake.set()
            try:
                if writer is not None and writer is not _PARKED:
                    writer.close()
            finally:
                self._medium.close()
        # Outside the locks: the replica's last upload reads the closed files.
        replication, self.replication = self.replication, None
        if replication is not None:
            replication.close()  # one last upload; never raises for the bucket

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def fsync(self) -> str:
        """The journal's fsync policy (``"always"``, ``"everysec"`` or ``"no"``)."""
        return self._fsync

    def set_fsync(self, fsync: str) -> None:
        """Switch the journal's fsync policy; writes from now on follow ``fsync``.

        A journal's writer keeps the policy it was made with (``everysec``
        is its own thread), so the switch is a rotation without a snapshot:
        the current journal is synced and the next one is started under the
        new policy, as :meth:`save` does before it snapshots. Recovery
        replays both, in order; nothing acknowledged is lost. Compaction
        still counts the old journal's records, so switching often cannot
        grow the journals without a snapshot. A no-op if ``fsync`` is the
        current policy.

        :raises ValueError: ``fsync`` is no policy, or the store has no journal.
        :raises MediumError: the journal failed, or the next one could not
            be created; the policy is unchanged.
        """
        policy = jr.fsync_policy(fsync)
        if not self._journaling:
            raise ValueError("the store has no journal: its fsync policy cannot change")
        self._not_in_transaction("set_fsync()")
        with self._publish_lock:
            self._check_open()
            if policy == self._fsync:
                return
            failure = getattr(self._real_writer(), "failure", None)
            if failure is not None:  # a new journal must not hide the failed one
                raise MediumError(f"the journal failed ({failure}): its policy cannot change")
            prepared = self._prepare_journal()  # None while parked (restore() starts one)
            try:
                with self._lock:
                    self._check_open()
                    self._fsync = policy
                    real = self._real_writer()
                    if prepared is not None and real is not _PARKED:
                        written = real.written if real is not None else 0
                        self._start_journal(prepared[0], file=prepared[1])
                        prepared = None
                        # Compaction measures the journal being written: it
                        # now starts empty, so what the old one held since
                        # the snapshot still counts towards the next one.
                        self._compact_at = max(0, self._compact_at - written + jr.HEADER_SIZE)
            finally:
                if prepared is not None:
                    prepared[1].close()

    @property
    def journal_failure(self) -> str | None:
        """Why the journal refuses every write (its first failure), or ``None`` while it takes them.

        ``None`` also without a journal. A write refused for want of room
        (:class:`~snapkv.errors.NoSpaceError`) is no failure: the journal
        takes the next write that fits.
        """
        failure = getattr(self._real_writer(), "failure", None)
        return failure if isinstance(failure, str) else None

    @property
    def journal_size(self) -> int:
        """Bytes of the journal being written, its header included (read-only).

        The journal a save or a compaction starts, so it holds the writes
        since the newest snapshot (plus, right after :meth:`restore`, the
        records of the journal it continues). 0 without a journal, before
        :meth:`restore` and after :meth:`close`. Read without the lock: the
        number can lag a write that is being appended at the same moment.
        """
        writer = self._real_writer()
        return writer.written if isinstance(writer, jr.JournalWriter) else 0

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Shut down (publish, clear) and close, so another process can open the directory.

        The shutdown happens even if the block raised: every write in it was
        acknowledged. It is skipped when nothing was written since an explicit
        ``shutdown()``: publishing that empty memory would only hide, and
        with ``keep`` eventually prune, the snapshot just written.

        If the final shutdown fails, the store is NOT closed: memory stays
        intact and the directory stays locked, so the caller can retry
        ``shutdown()`` (or give up with ``close()``).
        """
        if self._closed:
            return
        emptied = self._emptied
        untouched = emptied is not None and all(
            space._space is mine and not mine[0]
            for space, mine in zip(self._spaces, emptied, strict=True)
        )
        if not untouched:
            try:
                self.shutdown()
            except StoreClosedError:
                return  # closed concurrently: nothing left to do
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"<Store closed on {self._medium!r}>"
        return f"<Store {len(self._space[0])} keys in keyspace 0 on {self._medium!r}>"


def _retire(writer: Any) -> None:
    """Close a journal writer that writes have moved away from.

    A writer that failed is closed without a word: its failure was raised
    to the caller that met it, and what it could not make durable is either
    in memory (and in the snapshot that replaces it) or re-read from disk by
    the restore that replaces memory.
    """
    if writer.failure is None:
        writer.close()
        return
    try:
        writer.close()
    except MediumError as exc:
        log.info("closed a failed journal writer: %s", exc)


def _expiry_column(keys: list[str], expires: dict[str, int] | None) -> list[int] | None:
    """The expiry time of each key (0: none), by a C-level ``map``; ``None`` if none expire."""
    if not expires:
        return None
    return list(map(expires.get, keys, itertools.repeat(0)))


def _sweep_loop(ref: weakref.ref[Store], wake: threading.Event, interval: float) -> None:
    """Background sweeper: holds only a weak reference, so an unclosed Store can still be freed."""
    while not wake.wait(interval):
        store = ref()
        if store is None or store.closed:
            return
        try:
            store.sweep()
        except StoreClosedError:
            return
        del store
