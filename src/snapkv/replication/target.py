"""The shipper's writes: the local files replayed into an object medium.

A replica is written by the object medium itself, through the Medium
contract a Store uses (``publish``, ``create_journal``, ``write``, ``sync``,
``remove_journals``), so the layout's rules live in one place
(:mod:`snapkv.objstore.medium`): claiming an epoch and fencing, segments
created if absent at consecutive numbers, manifests advanced only by
create-if-absent, retention, the released manifest at close. It follows
that a replica is also an ordinary object-stored database:
``snapkv.open("s3://...")`` opens it (a failover), ``snapkv check`` checks
it, ``snapkv restore`` restores it.

Each tick costs one PUT per journal that has new records (one segment,
its records stamped with the time they were handed over: at most one
interval after they were written), plus, per new snapshot, its upload and
one manifest. The target opens the medium on its first use, as writer
``replica`` (the directory's stable id, :func:`~snapkv.replication.replicator.replica_id`)
and with ``takeover_from=replica``: the directory's own lock already makes
its shipper the only one, so a prefix its previous (killed) run still
holds is taken over at once instead of waiting out a heartbeat timeout.
A live holder other than its own earlier run is never taken over: a
replica promoted after a failover (opened directly and written to) stays
its writer's, and every tick fails with
:class:`~snapkv.errors.StoreLockedError` naming it (``status.last_error``
and the log) until that writer closes or the operator decides. Another
directory that takes the prefix over fences this one: every later tick
fails with :class:`~snapkv.errors.StoreFencedError` and writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from snapkv.journal.format import HEADER_SIZE as JOURNAL_HEADER_SIZE
from snapkv.media.base import JournalFile
from snapkv.objstore.client import ObjectClient
from snapkv.objstore.medium import DEFAULT_RETENTION, ObjectMedium
from snapkv.replication.source import LocalSnapshot, journal_next_of

__all__ = ["MediumTarget"]

#: Bytes read from a snapshot file at a time, as it is published.
_CHUNK = 1 << 20
#: A snapshot's first bytes, enough for its first record (what names ``journal_next``).
_HEAD = 4096


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:  # open already: a pruned file stays readable
        while chunk := file.read(_CHUNK):
            yield chunk


class MediumTarget:
    """Writes one directory's replica through an ObjectMedium on ``client``'s prefix."""

    def __init__(
        self, client: ObjectClient, *, replica: str, retention: float = DEFAULT_RETENTION
    ) -> None:
        self.client = client
        self.replica = replica
        self.retention = retention
        self._medium: ObjectMedium | None = None
        self._files: dict[int, JournalFile] = {}
        self._dirty: set[int] = set()

    @property
    def medium(self) -> ObjectMedium:
        """The medium, opened (claiming the prefix) on first use."""
        if self._medium is None:
            self._medium = ObjectMedium(
                self.client,
                retention=self.retention,
                writer_id=self.replica,
                takeover_from=self.replica,
            )
        return self._medium

    def put_snapshot(self, snapshot: LocalSnapshot) -> int:
        """Publish the snapshot file; drop the journals no snapshot kept needs. Return its size.

        The manifest keeps older snapshots too (``keep``), and a fallback to
        the oldest needs every journal from its ``journal_next`` on: only the
        journals below that go, as :meth:`Store._prune_journals` prunes a
        directory. (The shipper still ships journals from the newest
        snapshot's on; the ones between stay as the replica holds them.)
        """
        medium = self.medium
        medium.publish(_chunks(snapshot.path))
        kept = medium.generations()
        needed = journal_next_of(medium.read_head(kept[-1], _HEAD)) if kept else None
        if needed is None:
            return snapshot.size  # cannot tell: keep every journal (costs only storage)
        needed = min(needed, snapshot.journal_next)
        for jid in [jid for jid in self._files if jid < needed]:
            self._files.pop(jid).close()
            self._dirty.discard(jid)
        medium.remove_journals(needed)
        return snapshot.size

    def held(self, jid: int) -> bytes | None:
        """The bytes of journal ``jid`` the replica holds (``None``: it holds no such journal)."""
        return self.medium.read_journal(jid)

    def journal_ids(self) -> list[int]:
        """The journals the replica holds, ascending."""
        return self.medium.journal_ids()

    def drop(self, jid: int) -> None:
        """Set journal ``jid`` aside in the replica (one DROP segment), as a repair did locally."""
        file = self._files.pop(jid, None)
        if file is not None:
            file.close()
        self._dirty.discard(jid)
        self.medium.quarantine_journal(jid)

    def append(self, jid: int, offset: int, data: bytes) -> None:
        """Hand journal ``jid``'s bytes ``data``, found at ``offset``, to the medium (buffered).

        Offset 0 starts the journal anew (its header first). Bytes the
        medium already holds from a tick that failed after handing them
        over are skipped, so they are neither lost nor doubled.
        """
        medium = self.medium
        file = self._files.get(jid)
        if offset == 0:
            if file is not None:
                file.close()
            file = self._files[jid] = medium.create_journal(jid, data[:JOURNAL_HEADER_SIZE])
            data = data[JOURNAL_HEADER_SIZE:]
            offset = JOURNAL_HEADER_SIZE
        elif file is None:
            file = self._files[jid] = medium.open_journal(jid)
        if file.size > offset:
            data = data[file.size - offset :]
        elif file.size < offset:
            raise RuntimeError(
                f"journal {jid}: the replica holds {file.size} bytes, the next are at {offset}"
            )
        if data:
            file.write(data)
            self._dirty.add(jid)

    def commit(self) -> int:
        """One segment PUT per journal written since the last commit; return how many."""
        synced = 0
        for jid in sorted(self._dirty):
            self._files[jid].sync()
            self._dirty.discard(jid)
            synced += 1
        return synced

    def counters(self) -> tuple[int, int, int]:
        """Requests, retries and bytes sent by the client so far."""
        stats = self.client.stats
        return stats.total_requests, stats.retries, stats.bytes_sent

    def close(self) -> None:
        """Close the journals (synced by the last commit) and let the prefix go."""
        for file in self._files.values():
            file.close()
        self._files.clear()
        if self._medium is not None:
            self._medium.close()
