"""ObjectMedium: snapshots and journals as immutable objects, one writer per prefix.

The layout is :mod:`snapkv.objstore.layout`'s (docs/FORMAT.md part 3); this
module is the writer that keeps its rules:

* **A write is durable when its segment is.** :meth:`ObjectJournal.write`
  only buffers (with the time it was appended); :meth:`ObjectJournal.sync`
  is ONE PUT: a segment holding every byte buffered since the last one,
  created if absent at the next segment number. The journal writer's group
  commit (``fsync="always"``) makes concurrent writers share that PUT as
  they share an fsync on a disk; ``everysec`` syncs at most a second apart.
  Unlike a file, an unsynced write does not survive the process: under
  ``fsync="no"`` writes reach the bucket only at a rotation or close.
* **One writer per prefix, by epochs.** Opening reads the newest manifest
  and its tail, refuses a prefix whose writer's heartbeat (its newest
  manifest or segment) is younger than ``heartbeat_timeout`` unless
  ``takeover``, then claims the next epoch by creating the next manifest,
  then creates a FENCE segment at the next free segment number. From then
  on an older writer's next segment (its numbers are consecutive, so it
  must try that number) or manifest finds the name taken by another's
  bytes: :class:`~snapkv.errors.StoreFencedError`, and it acknowledges
  nothing more. Everything this writer makes is created if absent (or, a
  snapshot's body, at a name only its epoch uses), so it never overwrites
  another's object.
* **The manifest moves only by create-if-absent of the next number**:
  when a snapshot is published or set aside, at open, after a
  consolidation (every ``consolidate_after`` segments the journals are put
  again whole, so that an open reads a bounded number of segments), at a
  clean close (``released``: the next opener needs no takeover). Journal
  changes other than appends (create, cut, set aside, remove) are
  segments, so the journals are the fold of the segments, in order
  (:mod:`snapkv.objstore.journals` keeps their books; the claim at open is
  :mod:`snapkv.objstore.claim`'s; every numbered create, and the fencing it
  detects, :mod:`snapkv.objstore.sequence`'s).
* **An idle store makes no requests**: no heartbeat thread; a segment is
  put only when there is something to sync, a manifest only for the events
  above, retention only after a publish (at most every
  ``retention_interval``).

While the medium is open, a journal's durable bytes wait in an unnamed
temporary file (what ``read_journal`` and a consolidation read back) and
only its unsynced writes in memory.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping

from snapkv.errors import MediumError
from snapkv.media.base import JournalFile, Medium
from snapkv.objstore import layout as lo
from snapkv.objstore.claim import claim_prefix
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.journals import JournalBook, JournalState, ObjectJournal
from snapkv.objstore.reader import PrefixReader
from snapkv.objstore.retention import apply_retention
from snapkv.objstore.sequence import Sequence

__all__ = ["DEFAULT_HEARTBEAT_TIMEOUT", "DEFAULT_RETENTION", "ObjectMedium"]

log = logging.getLogger("snapkv")

#: Seconds a closed-or-dead writer's snapshots and segments stay restorable.
DEFAULT_RETENTION = 24 * 3600.0
#: A writer whose newest manifest or segment is younger holds the prefix.
DEFAULT_HEARTBEAT_TIMEOUT = 30.0
#: Segments after which the journals are put again whole (see ObjectMedium._consolidate).
DEFAULT_CONSOLIDATE_AFTER = 1000
#: A consolidation puts each journal in write segments of about this many bytes.
CONSOLIDATE_PIECE = 16 << 20
#: Journals up to this size are consolidated whatever was written since.
CONSOLIDATE_FLOOR = 64 << 10
#: Seconds between retention passes (each a few LISTs; only after a publish).
DEFAULT_RETENTION_INTERVAL = 300.0
#: A snapshot up to this size is one PUT; larger ones are spooled to a
#: temporary file and sent in parts (bounded memory either way).
_SPOOL = 8 << 20


class ObjectMedium(Medium):
    """Snapshots and journals under one object-store prefix (see the module docstring).

    :param client: the prefix's :class:`ObjectClient`.
    :param keep: older snapshots the newest manifest keeps besides the newest.
    :param takeover: open even if a live writer holds the prefix (it is fenced).
    :param repair: a missing or damaged journal segment stops history before
        it (what is dropped is in :attr:`repaired` and logged) instead of
        refusing to open; the journals kept are written again after it.
    :param retention: seconds old snapshots and segments stay (point-in-time reach).
    :param heartbeat_timeout: seconds after which a silent writer no longer holds the prefix.
    :param consolidate_after: segments an open may have to read before the
        journals are put again whole (bounds the next open's requests).
    :param writer_id: this writer's id in the manifests (default: random per open).
    :param takeover_from: take over at once a prefix this writer id holds
        (a killed earlier run of the same replica); any other live holder is
        refused as without ``takeover``.
    :raises StoreLockedError: a live writer holds the prefix and ``takeover`` is off.
    :raises MediumError: the prefix cannot be read or claimed (named objects, checks).
    """

    def __init__(
        self,
        client: ObjectClient,
        *,
        keep: int = 1,
        takeover: bool = False,
        repair: bool = False,
        retention: float = DEFAULT_RETENTION,
        heartbeat_timeout: float = DEFAULT_HEARTBEAT_TIMEOUT,
        retention_interval: float = DEFAULT_RETENTION_INTERVAL,
        consolidate_after: int = DEFAULT_CONSOLIDATE_AFTER,
        clock: Callable[[], float] = time.time,
        writer_id: str | None = None,
        takeover_from: str | None = None,
    ) -> None:
        if keep < 0:
            raise ValueError(f"keep must be >= 0, not {keep}")
        if not retention >= 0:
            raise ValueError(f"retention must be >= 0 seconds, not {retention}")
        self.client = client
        self.keep = keep
        self.retention = float(retention)
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.consolidate_after = consolidate_after
        self.retention_interval = float(retention_interval)
        self._clock = clock
        self.writer = lo.Writer(
            writer_id or uuid.uuid4().hex[:16], socket.gethostname(), os.getpid()
        )
        self._takeover_from = takeover_from
        self._state_lock = threading.Lock()  # journals, snapshots, counters
        self._book = JournalBook()
        self._closed = False
        self._last_retention = 0.0
        self._clock_ms = 0
        self._written_since = 0  # journal bytes put since the last consolidation
        #: Bytes per segment a consolidation puts (about; cut at record ends).
        self.consolidate_piece = CONSOLIDATE_PIECE
        self._open(takeover, repair)

    @classmethod
    def from_url(
        cls, url: str, *, storage_options: Mapping[str, object] | None = None, **kwargs: object
    ) -> ObjectMedium:
        """The medium of ``url`` (``s3://bucket/prefix``, ...; see :mod:`snapkv.objstore.url`)."""
        from snapkv.objstore.url import parse_url  # noqa: PLC0415 - obstore only when used

        client = ObjectClient.for_location(parse_url(url, storage_options))
        return cls(client, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ opening

    def _now_ms(self) -> int:
        """Epoch ms, never below one already given out (records' times never decrease).

        Under the state lock (which :meth:`_append` holds for its inlined
        copy of this): two threads racing here must not set the high mark
        back, or a later record would get an earlier time than one already
        written (and its segment would be refused as unordered).
        """
        with self._state_lock:
            now = self._clock_ms = max(int(self._clock() * 1000), self._clock_ms)
            return now

    def _rebase(self) -> None:
        """After a repair: the journals kept put again whole after the fence, a manifest from there.

        The history read stopped before a missing or damaged segment, which
        stays where it is (for the post-mortem, until retention): so that no
        reader of the newest state meets it again, the next manifest starts
        at the rewrite (:meth:`_consolidate`).
        """
        for line in self.repaired:
            log.warning("object recovery: %s", line)
        with self._seq.lock:
            self._consolidate()

    def _open(self, takeover: bool, repair: bool) -> None:
        # One reader for the medium's life: manifests are immutable, so the
        # ones it decoded stay valid (retention reads each one only once).
        self._reader = PrefixReader(self.client)
        claim = claim_prefix(
            self.client,
            self._reader,
            writer=self.writer,
            takeover=takeover,
            heartbeat_timeout=self.heartbeat_timeout,
            retention_ms=int(self.retention * 1000),
            clock=self._clock,
            repair=repair,
            takeover_from=self._takeover_from,
        )
        self.epoch = claim.manifest.epoch
        self._seq = Sequence(self.client, self.writer, claim, self._stored)
        self._snapshots = list(claim.manifest.snapshots)
        self._next_generation = claim.manifest.next_generation
        self._clock_ms = claim.clock_ms
        journals = lo.fold_segments(claim.pairs, describe=self.client.describe("segment"))
        self._book.load(claim.pairs, journals)
        #: What ``repair`` dropped to open (empty: nothing).
        self.repaired: tuple[str, ...] = claim.lost
        if claim.lost:
            self._rebase()
        log.info("opened %s as %s, epoch %d", self.client.describe(), self.writer, self.epoch)

    # ------------------------------------------------------------- creating

    def _check_writable(self) -> None:
        if self._closed:
            raise MediumError(f"the medium of {self.client.describe()} is closed")
        self._seq.check()

    def _stored(self, seq: int, segment: lo.Segment) -> None:
        """Segment ``seq`` is stored (the Sequence says so): it is its journal's last."""
        with self._state_lock:
            self._book.wrote(seq, segment)

    def _write_manifest(self, *, released: bool = False, **changes: object) -> lo.Manifest:
        """Create the next manifest: the state plus ``changes``; caller holds the sequence lock."""
        with self._state_lock:
            segments_from = self._book.segments_from(self._seq.next_seq)
        fields: dict[str, object] = {
            "heartbeat_ms": self._now_ms(),
            "released": released,
            "snapshots": tuple(self._snapshots),
            "next_generation": self._next_generation,
            "retention_ms": int(self.retention * 1000),
            "clock_ms": self._clock_ms,
        }
        fields.update(changes)
        return self._seq.create_manifest(fields, segments_from)

    # ----------------------------------------------------------------- snapshots

    def publish(self, pieces: Iterable[bytes]) -> None:
        """See :meth:`Medium.publish`: the body at a name only this epoch uses, then a manifest.

        The snapshot is spooled first (memory up to 8 MiB, then a temporary
        file), so a failing encoder uploads nothing, and a retry can send it
        again. It is visible only once the next manifest names it.
        """
        self._check_writable()
        with self._state_lock:
            generation = self._next_generation
            self._next_generation += 1
        time_ms = self._now_ms()
        ref = self._upload_snapshot(generation, time_ms, pieces)
        with self._seq.lock:
            snapshots = [ref, *self._snapshots][: self.keep + 1]
            self._write_manifest(snapshots=tuple(snapshots))
            self._snapshots = snapshots
        self._maybe_retain()

    def _upload_snapshot(
        self, generation: int, time_ms: int, pieces: Iterable[bytes]
    ) -> lo.SnapshotRef:
        name = lo.snapshot_name(generation, self.epoch)
        crc = size = 0
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL) as spool:
            for piece in pieces:
                crc = zlib.crc32(piece, crc)
                size += len(piece)
                spool.write(piece)
            if size <= _SPOOL:
                spool.seek(0)
                self.client.put(name, spool.read())
            else:
                self.client.upload(name, spool, size)
        return lo.SnapshotRef(generation, self.epoch, size, crc, time_ms)

    def generations(self) -> list[str]:
        with self._state_lock:
            return [ref.name for ref in self._snapshots]

    def read(self, generation: str | None = None) -> bytes | None:
        with self._state_lock:
            refs = [r for r in self._snapshots if generation is None or r.name == generation]
        if not refs:
            return None
        data = self.client.get(refs[0].name)
        if data is None:
            raise MediumError(
                f"{self.client.describe(refs[0].name)} is missing (named by the manifest)"
            )
        return data

    def read_head(self, generation: str, size: int) -> bytes | None:
        """The first ``size`` bytes of ``generation`` (one ranged GET); ``None`` if it is not named.

        What a Store needs to learn a snapshot's ``journal_next`` (its first
        record) without downloading the whole snapshot.
        """
        with self._state_lock:
            refs = [r for r in self._snapshots if r.name == generation]
        if not refs:
            return None
        end = min(size, refs[0].size)
        return self.client.get_range(refs[0].name, 0, end) if end > 0 else b""

    def quarantine(self, generation: str) -> str:
        """Unlist ``generation`` (a manifest without it); the object stays for the window."""
        with self._seq.lock:
            snapshots = [ref for ref in self._snapshots if ref.name != generation]
            self._write_manifest(snapshots=tuple(snapshots))
            self._snapshots = snapshots
        return f"{self.client.describe(generation)} (unlisted, kept for the retention window)"

    def describe(self, generation: str | None = None) -> str:
        return self.client.describe(generation or "")

    # ----------------------------------------------------------------- journals

    def journal_ids(self) -> list[int]:
        with self._state_lock:
            return sorted(self._book.live)

    def read_journal(self, jid: int) -> bytes | None:
        with self._state_lock:
            state = self._book.live.get(jid)
            return None if state is None else state.read()

    def describe_journal(self, jid: int) -> str:
        return f"{self.client.describe(lo.SEGMENT_DIR)} (journal {jid})"

    def create_journal(self, jid: int, header: bytes) -> JournalFile:
        if not 0 < jid < 10**16:
            raise ValueError(f"journal ids are 1 to 10**16-1, not {jid}")
        with self._seq.lock:
            self._flush_others()
            now = self._now_ms()
            segment = lo.Segment(
                lo.KIND_WRITE, self.epoch, jid, 0, now, bytes(header), ((len(header), now),)
            )
            self._seq.put_segment(segment)
            with self._state_lock:
                state = self._book.created(jid, header, self._seq.next_seq - 1, segment.times)
        return ObjectJournal(self, jid, state)

    def open_journal(self, jid: int) -> JournalFile:
        self._check_writable()
        with self._state_lock:
            state = self._book.live.get(jid)
        if state is None:
            raise MediumError(f"cannot open {self.describe_journal(jid)}: it does not exist")
        return ObjectJournal(self, jid, state)

    def remove_journals(self, below: int) -> None:
        with self._state_lock:
            doomed = [jid for jid in self._book.live if jid < below]
        if not doomed:
            return  # nothing to say: no request
        with self._seq.lock:
            self._flush_others()
            self._seq.put_segment(
                lo.Segment(lo.KIND_DROP_BELOW, self.epoch, below, written_ms=self._now_ms())
            )
            with self._state_lock:
                for jid in doomed:
                    self._book.drop(jid)

    def quarantine_journal(self, jid: int) -> str:
        with self._seq.lock:
            self._flush_others(skip=jid)
            self._seq.put_segment(
                lo.Segment(lo.KIND_DROP, self.epoch, jid, written_ms=self._now_ms())
            )
            with self._state_lock:
                self._book.drop(jid)
        return f"{self.describe_journal(jid)} (unlisted, kept for the retention window)"

    def journal_write(self, jid: int, state: JournalState, data: bytes) -> None:
        """:meth:`ObjectJournal.write`: buffer ``data`` with the time it was appended."""
        if self._seq.fenced is not None or self._closed:
            self._check_writable()  # raises
        if not data:
            return
        # Every journaled write's path: _now_ms inlined, no call it can spare.
        with self._state_lock:
            state.pending += data
            now = int(self._clock() * 1000)
            if now < self._clock_ms:  # noqa: PLR1730 - max() costs a call on every write
                now = self._clock_ms
            self._clock_ms = now
            state.times.append((state.durable + len(state.pending), now))

    def journal_sync(self, jid: int, state: JournalState) -> None:
        """:meth:`ObjectJournal.sync`: one segment of everything buffered (none if nothing is).

        Other journals' buffered writes go first (:meth:`_flush_others`).
        """
        self._check_writable()
        with self._seq.lock:
            self._flush_others(skip=jid)
            self._sync_locked(jid, state)
            if self._seq.next_seq - self._seq.manifest.segments_from > self.consolidate_after:
                self._maybe_consolidate()

    def _sync_locked(self, jid: int, state: JournalState) -> None:
        """Put journal ``jid``'s buffered bytes as one write segment (sequence lock held)."""
        with self._state_lock:
            if not state.live:
                raise MediumError(f"{self.describe_journal(jid)} was replaced or removed")
            start = state.durable
            if not state.pending:
                return  # nothing buffered: no request
            payload = bytes(state.pending)
            end = start + len(payload)
            times = tuple((e - start, ms) for e, ms in state.times if e <= end)
        segment = lo.Segment(lo.KIND_WRITE, self.epoch, jid, start, self._now_ms(), payload, times)
        self._seq.put_segment(segment)
        with self._state_lock:
            state.synced(len(payload))
            self._written_since += len(payload)

    def _flush_others(self, skip: int | None = None) -> None:
        """Put every live journal's buffered writes but ``skip``'s (sequence lock held).

        Before any segment is put, so that times never decrease along the
        segment sequence (FORMAT.md O5): a segment stamped now (a journal's
        creation, a cut, a drop) or holding later writes must not go ahead
        of writes appended earlier that another journal still buffers, or a
        point-in-time fold, which stops at the first time past ``T``, would
        stop before them and miss records appended at or before ``T``.
        Buffered writes of different journals are put oldest first.
        """
        with self._state_lock:
            waiting = sorted(
                (state.times[0][1] if state.times else 0, jid, state)
                for jid, state in self._book.live.items()
                if state.pending and jid != skip
            )
        for _, jid, state in waiting:
            self._sync_locked(jid, state)

    def _maybe_consolidate(self) -> None:
        """Consolidate unless it would put much more than was written since the last one.

        Putting the journals again costs their size; they grow between
        snapshots, so doing it every ``consolidate_after`` segments whatever
        their size would send bytes quadratic in those written. Doing it
        only once the bytes written since are at least half the journals'
        size (or the journals are tiny) bounds what consolidations send to
        twice what was written; meanwhile an open reads the segments since
        the last one (more than ``consolidate_after`` only while the
        journals are large compared to the writes).
        """
        with self._state_lock:
            size = sum(state.durable for state in self._book.live.values())
            written = self._written_since
        if size <= max(CONSOLIDATE_FLOOR, 2 * written):
            self._consolidate()

    def _consolidate(self) -> None:
        """Put every journal again whole, then a manifest; caller holds the sequence lock.

        What an open reads is every segment from the newest manifest's
        ``segments_from``: one per sync since the journal began, which with
        ``fsync="always"`` can be tens of thousands before the Store's
        compaction snapshots. So each journal's durable bytes are put again
        as writes from offset 0 on, in pieces of about :attr:`consolidate_piece`
        bytes cut at record ends (one PUT each, created if absent like every
        segment; memory holds one piece), carrying every record's own time
        (point-in-time restore stays exact), and the next manifest starts
        there: the next open reads a few segments.
        """
        for jid, state in sorted(self._book.live.items()):
            first = 0
            for offset, data, times in state.pieces(self.consolidate_piece):
                segment = lo.Segment(
                    lo.KIND_WRITE, self.epoch, jid, offset, self._now_ms(), data, times
                )
                seq = self._seq.put_segment(segment)
                first = first or seq
            with self._state_lock:
                # The same journal, now written whole from these segments on
                # (its handles keep the state: nothing changes for them).
                state.first_seq, state.last_seq = first, self._seq.next_seq - 1
        with self._state_lock:
            self._book.dead = []  # every journal dropped before now lies before the rewrite
            self._written_since = 0
        self._write_manifest()

    def journal_truncate(self, jid: int, state: JournalState, size: int) -> None:
        """:meth:`ObjectJournal.truncate`: an empty write at the cut, then what is buffered."""
        if size < 0:
            raise ValueError(f"cannot truncate to {size} bytes")
        with self._seq.lock:
            self._flush_others(skip=jid)
            with self._state_lock:
                cut = state.cut(size)
            if cut:
                self._seq.put_segment(
                    lo.Segment(lo.KIND_WRITE, self.epoch, jid, size, self._now_ms())
                )
        self.journal_sync(jid, state)

    # ---------------------------------------------------------------- lifecycle

    @property
    def fenced(self) -> bool:
        """Whether a newer writer took the prefix over (every write now raises StoreFencedError)."""
        return self._seq.fenced is not None

    def apply_retention(self, *, now: float | None = None) -> list[str]:
        """Delete what the retention window lets go (FORMAT.md O8); return the names deleted."""
        self._check_writable()
        # Not under the sequence lock: a pass of LISTs and DELETEs must not hold back
        # the segment PUTs that acknowledge writes (see the retention module).
        with self._state_lock:
            protected = {ref.name for ref in self._snapshots}
        deleted = apply_retention(
            self._reader,
            now_ms=int((self._clock() if now is None else now) * 1000),
            window_ms=int(self.retention * 1000),
            newest=self._seq.manifest,
            protected=protected,
        )
        self._last_retention = time.monotonic()
        return deleted

    def _maybe_retain(self) -> None:
        if time.monotonic() - self._last_retention < self.retention_interval:
            return
        try:
            deleted = self.apply_retention()
        except (MediumError, OSError) as exc:  # costs storage, not correctness
            log.warning("retention pass on %s failed: %s", self.client.describe(), exc)
            return
        if deleted:
            log.info("retention deleted %d objects under %s", len(deleted), self.client.describe())

    def close(self) -> None:
        """Let the prefix go: a released manifest, so the next opener needs no takeover. Idempotent.

        Buffered journal bytes are not synced here (the journal writer's
        close does that); a fenced medium writes nothing. The journals'
        temporary files are closed: the medium reads and writes nothing more.
        """
        if self._closed:
            return
        try:
            if self._seq.fenced is None:
                with self._seq.lock:
                    self._write_manifest(released=True)
        except MediumError as exc:
            log.warning(
                "closing %s: cannot write the released manifest: %s", self.client.describe(), exc
            )
        finally:
            self._closed = True
            with self._state_lock:
                self._book.close()

    def __repr__(self) -> str:
        return f"ObjectMedium({self.client.describe()!r}, epoch={getattr(self, 'epoch', None)})"
