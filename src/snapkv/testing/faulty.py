"""A medium that can lose power: :class:`FaultyMedium`, for crash tests.

Like LevelDB's ``FaultInjectionTestEnv`` it keeps "the state of a filesystem
as of the last sync", and like SQLite's crash VFS (``test6.c``) it decides,
on a simulated power loss, what became of every write that was not synced
yet: written correctly, dropped, zero-filled or garbage, one simulated
sector at a time. It can also fail the n-th write, sync, publish, ... with
:class:`~snapkv.errors.MediumError`, and call a hook before every operation
that changes it, so a test can crash "between any two steps".
"""

from __future__ import annotations

import random
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from snapkv.errors import MediumError
from snapkv.media.base import JournalFile, Medium

__all__ = ["CRASH_MODES", "FAULT_KINDS", "FaultyJournal", "FaultyMedium"]

#: What :meth:`FaultyMedium.crash` can do to the bytes that were not synced:
#: ``keep`` them all (a killed process: the OS wrote everything back),
#: ``drop`` them all (LevelDB's ``RESET_DROP_UNSYNCED_DATA``), cut the file
#: at a random byte (``torn``), turn them into zeros or random ``garbage``,
#: or decide sector by sector (``mixed``, SQLite's model).
CRASH_MODES = ("keep", "drop", "torn", "zero", "garbage", "mixed")
#: Operations that change a FaultyMedium: what :meth:`FaultyMedium.fail` can
#: fail and what :attr:`FaultyMedium.on_event` is told about.
FAULT_KINDS = ("create", "open", "write", "sync", "truncate", "remove", "publish", "quarantine")


class _Inode:
    """A journal's bytes as the OS holds them, and how many of them a sync made durable.

    Journals are only appended to (and cut by ``truncate``, which syncs), so
    the durable part is always a prefix: ``data[:durable]``.
    """

    __slots__ = ("data", "durable")

    def __init__(self, data: bytes) -> None:
        self.data = bytearray(data)
        self.durable = len(data)


@dataclass(frozen=True)
class _DirChange:
    """A directory change not yet made durable by a directory sync (``None``: a removal)."""

    number: int
    snapshot: bytes | None = None
    journal: _Inode | None = None
    is_journal: bool = False


@dataclass
class _Fault:
    kind: str
    remaining: int
    torn: bool


class FaultyJournal(JournalFile):
    """An open journal of a :class:`FaultyMedium`.

    Writes land in the journal at once (a killed process loses nothing
    written) but only :meth:`sync` makes them survive a simulated power loss.
    """

    def __init__(self, medium: FaultyMedium, jid: int, inode: _Inode) -> None:
        self.jid = jid
        self._medium = medium
        self._inode = inode
        self._closed = False
        self.size = len(inode.data)

    def _check_open(self) -> None:
        if self._closed:
            raise MediumError(f"faulty journal {self.jid} is closed")

    def write(self, data: bytes) -> None:
        self._check_open()
        torn = self._medium._event("write", f"journal {self.jid}")
        with self._medium._lock:
            if torn:
                # A failed write may still have appended part of the data.
                self._inode.data += data[: len(data) // 2]
                self.size = len(self._inode.data)
                raise MediumError(f"injected failure: torn write to faulty journal {self.jid}")
            self._inode.data += data
            self.size = len(self._inode.data)

    def sync(self) -> None:
        self._check_open()
        self._medium._event("sync", f"journal {self.jid}")
        with self._medium._lock:
            self._inode.durable = len(self._inode.data)

    def truncate(self, size: int) -> None:
        if size < 0:
            raise ValueError(f"cannot truncate to {size} bytes")
        self._check_open()
        self._medium._event("truncate", f"journal {self.jid}")
        with self._medium._lock:
            data = self._inode.data
            del data[size:]
            data.extend(bytes(size - len(data)))  # like ftruncate: a larger size adds zeros
            self._inode.durable = self.size = size

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"<FaultyJournal {self.jid} size={self.size}>"


class FaultyMedium(Medium):
    """A medium in memory that can lose power: for crash tests (see the module docstring).

    It models a file system directory the way FileMedium uses one. A
    snapshot is written, synced and renamed into place, then the directory
    is synced: once :meth:`publish` returns it survives a power loss, and
    until the directory sync it may vanish. A journal is created the same
    way, durable with its header. Journal writes reach the OS at once;
    :meth:`FaultyJournal.sync` makes them durable. Removals (pruned
    snapshots, old journals) are not synced by FileMedium, so until the next
    directory sync a power loss may undo them.

    What a power loss (:meth:`crash`) may do, i.e. the device this models:
    synced journal bytes and published snapshots stay intact (a sector that
    held synced data is never damaged by a later write); every unsynced
    byte may be kept, lost, zero or garbage, decided per ``sector_size``
    sector; directory changes since the last directory sync survive in
    order: some prefix of them (as a journaling file system commits
    metadata in order).

    Faults: :meth:`fail` makes a future operation raise MediumError;
    :attr:`on_event`, if set, is called as ``on_event(number, kind)`` before
    every operation that changes the medium (``kind`` is one of
    :data:`FAULT_KINDS`), outside the medium's lock, so a test can take
    :meth:`crash` images at any step.

    :param keep: older snapshot generations to keep, as for the other media.
    :param sector_size: granularity of torn, zeroed and garbage writes.
    """

    def __init__(self, *, keep: int = 0, sector_size: int = 512) -> None:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, not {keep}")
        if sector_size < 1:
            raise ValueError(f"sector_size must be >= 1, not {sector_size}")
        self.keep = keep
        self.sector_size = sector_size
        #: Called before every change to the medium; see the class docstring.
        self.on_event: Callable[[int, str], None] | None = None
        #: Descriptions of the injected failures that fired, oldest first.
        self.fired: list[str] = []
        self._lock = threading.Lock()
        self._closed = False
        self._events = 0
        self._next = 1
        self._snapshots: dict[int, bytes] = {}
        self._journals: dict[int, _Inode] = {}
        # The directory as of its last sync, and the changes made since.
        self._durable_snapshots: dict[int, bytes] = {}
        self._durable_journals: dict[int, _Inode] = {}
        self._pending: list[_DirChange] = []
        self._faults: list[_Fault] = []
        self._handles: weakref.WeakSet[FaultyJournal] = weakref.WeakSet()

    # ------------------------------------------------------------------ faults

    @property
    def events(self) -> int:
        """Operations that changed (or tried to change) the medium so far."""
        return self._events

    def fail(self, kind: str, *, after: int = 0, torn: bool = False) -> None:
        """Make the ``after + 1``-th ``kind`` operation from now raise MediumError.

        ``torn`` fails it halfway: a ``write`` appends the first half of its
        data; a ``publish`` or ``create`` makes the new snapshot or journal
        visible without syncing the directory (FileMedium's "published but not
        confirmed durable"). Other kinds fail before changing anything.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(FAULT_KINDS)}, not {kind!r}")
        if after < 0:
            raise ValueError(f"after must be >= 0, not {after}")
        with self._lock:
            self._faults.append(_Fault(kind, after, torn))

    def _event(self, kind: str, target: str) -> bool:
        """Count one change; call the hook; apply a due fault. True: fail it halfway."""
        with self._lock:
            if self._closed:
                raise MediumError(f"{self!r} is closed")
            self._events += 1
            number = self._events
        hook = self.on_event
        if hook is not None:
            hook(number, kind)
        with self._lock:
            due = None
            for fault in self._faults:
                if fault.kind != kind:
                    continue
                if fault.remaining:
                    fault.remaining -= 1
                elif due is None:
                    due = fault  # another fault due now waits for the next one
            if due is None:
                return False
            self._faults.remove(due)
            torn = due.torn and kind in ("write", "publish", "create")
            self.fired.append(f"{kind} {target} (event {number}{', torn' if torn else ''})")
        if not torn:
            raise MediumError(f"injected failure: {kind} {target} (event {number})")
        return True

    # -------------------------------------------------------------- power loss

    def synced_size(self, jid: int) -> int:
        """Bytes of journal ``jid`` that survive any power loss.

        :raises KeyError: there is no journal ``jid``.
        """
        with self._lock:
            return self._journals[jid].durable

    def crash(self, mode: str = "mixed", rng: random.Random | None = None) -> FaultyMedium:
        """What a power loss now could leave: a new medium, everything on it durable.

        This medium is left as it is (a test may take several images of one
        instant). ``mode`` is one of :data:`CRASH_MODES`; ``rng`` makes the
        random choices reproducible. Works on a closed medium too.
        """
        if mode not in CRASH_MODES:
            raise ValueError(f"mode must be one of {', '.join(CRASH_MODES)}, not {mode!r}")
        rng = rng if rng is not None else random.Random()
        with self._lock:
            pending = self._pending
            kept = {"keep": len(pending), "drop": 0}.get(mode)
            if kept is None:
                kept = rng.randint(0, len(pending))
            snapshots = dict(self._durable_snapshots)
            journals = dict(self._durable_journals)
            for change in pending[:kept]:
                if change.is_journal:
                    if change.journal is None:
                        journals.pop(change.number, None)
                    else:
                        journals[change.number] = change.journal
                elif change.snapshot is None:
                    snapshots.pop(change.number, None)
                else:
                    snapshots[change.number] = change.snapshot
            survivor = FaultyMedium(keep=self.keep, sector_size=self.sector_size)
            survivor._next = self._next
            survivor._snapshots = snapshots
            survivor._journals = {
                jid: _Inode(self._after_power_loss(journals[jid], mode, rng))
                for jid in sorted(journals)
            }
        survivor._sync_directory()
        return survivor

    def _after_power_loss(self, inode: _Inode, mode: str, rng: random.Random) -> bytes:
        data = bytes(inode.data)
        durable = min(inode.durable, len(data))
        if mode == "keep" or durable == len(data):
            return data
        if mode == "drop":
            return data[:durable]
        if mode == "torn":
            return data[: rng.randint(durable, len(data))]
        out = bytearray(data[:durable])
        end = start = durable
        while start < len(data):
            stop = min((start // self.sector_size + 1) * self.sector_size, len(data))
            fate = mode if mode != "mixed" else rng.choice(("keep", "drop", "zero", "garbage"))
            if fate == "keep":
                out += data[start:stop]
            elif fate == "garbage":
                out += rng.randbytes(stop - start)
            else:  # zero, or dropped: a hole reads as zeros if a later sector lands
                out += bytes(stop - start)
            if fate != "drop":
                end = stop
            start = stop
        if mode == "mixed" and rng.random() < 0.25:
            end = rng.randint(durable, end)  # the size reached the disk only partly
        return bytes(out[:end])

    def _sync_directory(self) -> None:
        """Make every directory change so far durable; caller holds the lock or owns self."""
        self._durable_snapshots = dict(self._snapshots)
        self._durable_journals = dict(self._journals)
        self._pending = []

    # --------------------------------------------------------------- snapshots

    def publish(self, pieces: Iterable[bytes]) -> None:
        data = b"".join(pieces)
        torn = self._event("publish", "snapshot")
        with self._lock:
            number = self._next
            self._next += 1
            self._snapshots[number] = data
            self._pending.append(_DirChange(number, snapshot=data))
            if torn:
                raise MediumError(
                    f"injected failure: faulty snapshot {number} is published but not "
                    "confirmed durable (directory sync failed); publish again"
                )
            self._sync_directory()
            # Pruning is not followed by a directory sync (as in FileMedium):
            # a power loss may bring the pruned generations back.
            for old in sorted(self._snapshots, reverse=True)[self.keep + 1 :]:
                del self._snapshots[old]
                self._pending.append(_DirChange(old))

    def generations(self) -> list[str]:
        with self._lock:
            self._check_open()
            return [str(number) for number in sorted(self._snapshots, reverse=True)]

    def read(self, generation: str | None = None) -> bytes | None:
        with self._lock:
            self._check_open()
            if generation is None:
                return self._snapshots[max(self._snapshots)] if self._snapshots else None
            number = int(generation) if generation.isdigit() else -1
            return self._snapshots.get(number)

    def quarantine(self, generation: str) -> str:
        self._event("quarantine", f"snapshot {generation}")
        with self._lock:
            number = int(generation) if generation.isdigit() else -1
            if self._snapshots.pop(number, None) is None:
                raise MediumError(f"cannot set aside faulty snapshot {generation}: no such one")
            self._pending.append(_DirChange(number))
            self._sync_directory()
        return f"faulty snapshot {generation} (dropped)"

    def describe(self, generation: str | None = None) -> str:
        return f"faulty snapshot {generation or '(newest)'}"

    # ---------------------------------------------------------------- journals

    def journal_ids(self) -> list[int]:
        with self._lock:
            self._check_open()
            return sorted(self._journals)

    def read_journal(self, jid: int) -> bytes | None:
        with self._lock:
            self._check_open()
            inode = self._journals.get(jid)
            return None if inode is None else bytes(inode.data)

    def create_journal(self, jid: int, header: bytes) -> JournalFile:
        if not 0 < jid < 10**16:
            raise ValueError(f"journal ids are 1 to 10**16-1, not {jid}")
        torn = self._event("create", f"journal {jid}")
        with self._lock:
            inode = _Inode(header)  # written and synced before the rename
            self._journals[jid] = inode
            self._pending.append(_DirChange(jid, journal=inode, is_journal=True))
            if torn:
                raise MediumError(
                    f"injected failure: faulty journal {jid} is created but not "
                    "confirmed durable (directory sync failed)"
                )
            self._sync_directory()
            return self._handle(jid, inode)

    def open_journal(self, jid: int) -> JournalFile:
        self._event("open", f"journal {jid}")
        with self._lock:
            inode = self._journals.get(jid)
            if inode is None:
                raise MediumError(f"cannot open faulty journal {jid}: it does not exist")
            inode.durable = len(inode.data)  # open_journal syncs what a killed process left
            return self._handle(jid, inode)

    def _handle(self, jid: int, inode: _Inode) -> FaultyJournal:
        journal = FaultyJournal(self, jid, inode)
        self._handles.add(journal)
        return journal

    def remove_journals(self, below: int) -> None:
        self._event("remove", f"journals below {below}")
        with self._lock:
            for jid in sorted(self._journals):
                if jid < below:
                    del self._journals[jid]
                    self._pending.append(_DirChange(jid, is_journal=True))

    def quarantine_journal(self, jid: int) -> str:
        self._event("quarantine", f"journal {jid}")
        with self._lock:
            if self._journals.pop(jid, None) is not None:
                self._pending.append(_DirChange(jid, is_journal=True))
                self._sync_directory()  # FileMedium renames, then syncs the directory
        return f"faulty journal {jid} (dropped)"

    def describe_journal(self, jid: int) -> str:
        return f"faulty journal {jid}"

    # --------------------------------------------------------------- lifecycle

    def _check_open(self) -> None:
        if self._closed:
            raise MediumError(f"{self!r} is closed")

    def close(self) -> None:
        """Close every journal opened through this medium; later changes raise. Idempotent.

        :meth:`crash` still works, which is how a test "reboots": a new
        FaultyMedium from ``crash("keep")`` is the same disk opened again.
        """
        with self._lock:
            self._closed = True
            handles = list(self._handles)
        for journal in handles:
            journal.close()

    def __repr__(self) -> str:
        return f"FaultyMedium(keep={self.keep}, sector_size={self.sector_size})"
