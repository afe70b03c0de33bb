"""The shipper: a background thread that keeps a bucket at most one interval behind a directory.

Each tick reads the directory (:class:`~snapkv.replication.source.LocalSource`)
and hands what the bucket lacks to a :class:`Target` (the object medium):
first the newest published snapshot if it is new, then, journal by journal
from the one that snapshot needs, the whole records written since the last
tick; then one commit, a segment per journal that got records. A tick that
finds nothing new sends nothing: an idle store makes no requests.

Never in the write path: the Store does not know the shipper exists, so an
unreachable bucket cannot block or fail a local write. A failed tick keeps
what it handed over (the next commit sends it), counts the failure, logs it
once, and the next tick comes after a backoff that doubles up to
:data:`MAX_BACKOFF`; the lag grows meanwhile
(:class:`~snapkv.replication.status.ReplicationStatus`), and the first tick
that gets through brings it back down and says so in the log.

Why the replica is always a prefix of the writes, never one with a gap:
journals are read newest first (:meth:`Shipper._read_journals` says why),
and records of journal J are only ever removed with J itself, once a newer
snapshot covers them, so a tick that finds a journal gone ships no journal
at all and the next one starts from the newer snapshot.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Protocol

from snapkv.journal.format import HEADER_SIZE as JOURNAL_HEADER_SIZE
from snapkv.replication.source import LocalSnapshot, LocalSource
from snapkv.replication.status import ReplicationStatus

__all__ = ["MAX_BACKOFF", "SEGMENT_LIMIT", "Shipper", "Target"]

log = logging.getLogger("snapkv.replication")

#: The longest wait between two attempts while the bucket is unreachable:
#: long enough not to hammer a failing service, short enough that the lag
#: comes back down soon after it recovers.
MAX_BACKOFF = 10.0
#: The most journal bytes copied out of the file by one read (one record may
#: exceed it); a journal's backlog is read in pieces of this size.
SEGMENT_LIMIT = 64 << 20


class Target(Protocol):
    """Where the shipper writes (:class:`~snapkv.replication.target.MediumTarget`)."""

    def put_snapshot(self, snapshot: LocalSnapshot) -> int:
        """Publish ``snapshot``'s file and drop the journals it covers; return its size."""

    def held(self, jid: int) -> bytes | None:
        """The bytes of journal ``jid`` the replica holds (``None``: none)."""

    def journal_ids(self) -> list[int]:
        """The journals the replica holds, ascending."""

    def drop(self, jid: int) -> None:
        """Set journal ``jid`` aside in the replica (the directory's repair did)."""

    def append(self, jid: int, offset: int, data: bytes) -> None:
        """Hand over journal ``jid``'s whole records ``data`` found at ``offset`` (buffered)."""

    def commit(self) -> int:
        """Make what was handed over durable in the bucket; return the objects written."""

    def counters(self) -> tuple[int, int, int]:
        """Requests made, retries among them, and bytes sent so far (every kind)."""

    def close(self) -> None:
        """Release what the target holds (and the prefix)."""


class Shipper:
    """Ships ``source`` to ``target`` every ``interval`` seconds on a daemon thread."""

    def __init__(
        self, source: LocalSource, target: Target, status: ReplicationStatus, interval: float
    ) -> None:
        self.source = source
        self.target = target
        self.status = status
        self.interval = interval
        self._snapshot: int | None = None  # generation number in the bucket
        self._base = 1  # the first journal the bucket's snapshot needs
        self._positions: dict[int, int] = {}  # journal id -> bytes handed to the target
        self._reconciled = False  # the replica's journals checked against the directory's
        self._stop = threading.Event()
        self._tick_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (the first tick runs at once)."""
        thread = threading.Thread(target=self._run, name="snapkv-replication", daemon=True)
        self._thread = thread
        self.status.running = True
        thread.start()

    def stop(self, *, final: bool = True, timeout: float = 30.0) -> None:
        """Stop the thread; with ``final``, run one last tick to ship what is left.

        The last tick runs after the thread has ended, so it ships what the
        store wrote before it closed; its failure is logged and counted,
        never raised (closing a store must not fail because a bucket does).
        """
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if final:
            self.tick()
        self.status.running = False
        try:
            self.target.close()
        except Exception as exc:  # the prefix is let go of at the latest when it times out
            log.warning("replication to %s: closing failed: %s", self.status.url, exc)

    def _run(self) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            ok = self.tick()
            if ok:
                delay = self.interval
            else:
                backoff = self.interval * 2 ** min(self.status.consecutive_failures, 16)
                delay = min(max(self.interval, MAX_BACKOFF), backoff)

    def tick(self) -> bool:
        """Ship what the bucket lacks, once; return whether the bucket is now up to date."""
        with self._tick_lock:
            status = self.status
            began = time.monotonic()
            try:
                behind, shipped = self._ship()
            except Exception as exc:  # every failure of a bucket: counted, logged, retried
                status.failures += 1
                status.consecutive_failures += 1
                status.behind = True
                status.last_error = f"{type(exc).__name__}: {exc}"
                if status.consecutive_failures == 1:
                    log.warning("replication to %s failed (will retry): %s", status.url, exc)
                return False
            finally:
                status.requests, status.retries, status.bytes_sent = self.target.counters()
            if status.consecutive_failures:
                log.warning(
                    "replication to %s works again after %d failed attempt(s)",
                    status.url,
                    status.consecutive_failures,
                )
            status.consecutive_failures = 0
            status.last_error = ""
            if not behind:
                # Everything written before this pass began is in the bucket
                # now. A pass that found writes to ship says writes are
                # coming in: those since it began are not there yet.
                status.caught_up_at = began
                status.behind = shipped
            else:
                status.behind = True
            return not behind

    def _ship(self) -> tuple[bool, bool]:
        """One pass; return whether something was left (a vanished journal), whether any went."""
        status = self.status
        target = self.target
        snapshot = self.source.newest_snapshot()
        published = snapshot is not None and snapshot.number != self._snapshot
        written = 0
        if snapshot is not None and published:
            if self._snapshot is not None:
                # The records written between the last pass and the snapshot:
                # the replica keeps the older snapshot too (a fallback), which
                # needs the journals up to the new one whole.
                for jid, pieces in (self._read_journals(below=snapshot.journal_next) or {}).items():
                    for start, data in pieces:
                        target.append(jid, start, data)
                        self._positions[jid] = start + len(data)
                written = target.commit()
            target.put_snapshot(snapshot)
            status.uploads += 1
            status.last_upload = time.time()
            self._snapshot = status.snapshot = snapshot.number
            self._base = snapshot.journal_next
        positions = self._positions
        for jid in [j for j in positions if j < self._base]:
            del positions[jid]
        reads = self._read_journals()
        behind = reads is None
        for jid, pieces in (reads or {}).items():
            for start, data in pieces:
                # Handed over, the bytes are the target's: a failed commit
                # sends them with the next one, never twice.
                target.append(jid, start, data)
                positions[jid] = start + len(data)
        written += target.commit()
        shipped = published or bool(written)
        if written:
            status.uploads += written
            status.last_upload = time.time()
        if positions:
            last = max(positions)
            status.journal, status.journal_offset = last, positions[last]
        return behind, shipped

    def _read_journals(self, below: int | None = None) -> dict[int, list[tuple[int, bytes]]] | None:
        """The whole records each journal has past what was handed over, oldest journal first.

        Only journals below ``below`` if it is given.

        Read newest journal first: records in journal J+1 mean the Store
        had switched its writes away from J before they were written (it
        switches under its lock, after syncing J), so J, read after them, is
        read to its very end. Read the other way round, a write that went
        to J between the two reads would be missing while later ones in
        J+1 were shipped: a replica that is not a prefix of the writes.
        ``None`` when a journal vanished meanwhile (a newer snapshot covers
        it: the next pass starts from that snapshot, shipping nothing now).
        """
        positions = self._positions
        reads: dict[int, list[tuple[int, bytes]]] = {}
        local = self.source.journal_ids()
        if not self._reconciled:
            if not self._drop_set_aside(local):
                return None
            self._reconciled = True
        wanted = (j for j in local if j >= self._base and (below is None or j < below))
        for jid in sorted(wanted, reverse=True):
            start = positions.get(jid)
            if start is None:
                start = positions[jid] = self._resume(jid)
            pieces = reads[jid] = []
            while True:
                data = self.source.whole_records(jid, start, SEGMENT_LIMIT)
                if data is None:
                    return None
                if not data or (start == 0 and len(data) <= JOURNAL_HEADER_SIZE):
                    break  # nothing new; a journal's header waits for its first record
                pieces.append((start, data))
                start += len(data)
        return dict(sorted(reads.items()))

    def _drop_set_aside(self, local: list[int]) -> bool:
        """Once, before the first journal is shipped: drop what the directory no longer has.

        ``open(dir, repair=True)`` cuts a damaged journal and sets every
        later one aside before the shipper starts; the cut one is sent again
        whole (:meth:`_resume` finds other bytes), and the later ones the
        replica still holds are dropped here, or the replica would replay
        writes the directory dropped. A journal can also vanish because a
        newer snapshot covers it: then the directory's newest snapshot is
        no longer the one shipped, nothing is dropped, and ``False`` makes
        the next pass start from that snapshot.
        """
        stale = [j for j in self.target.journal_ids() if j >= self._base and j not in local]
        if not stale:
            return True
        snapshot = self.source.newest_snapshot()
        if (snapshot.number if snapshot is not None else None) != self._snapshot:
            return False
        for jid in stale:
            self.target.drop(jid)
            self._positions.pop(jid, None)
            log.warning(
                "replication to %s: journal %d is no longer in %s (set aside by a repair); "
                "dropped from the replica",
                self.status.url,
                jid,
                self.source.directory,
            )
        return True

    def _resume(self, jid: int) -> int:
        """Where journal ``jid`` continues: after what the replica holds, if the same bytes.

        A shipper that starts again (the process restarted) finds the
        replica holding a prefix of the local journal and goes on from its
        end instead of sending it all again; different bytes (another
        history) start the journal anew.
        """
        held = self.target.held(jid)
        if not held:
            return 0
        local = self.source.whole_records(jid, 0, len(held))
        return len(held) if local == held else 0
