"""The shipper's writes in the object layout (:mod:`snapkv.objstore.layout`).

What a replica in the bucket is, in the layout's terms:

* On start the target claims the prefix: it reads the newest manifest and
  creates the next one (create-if-absent) with the next epoch, its own
  writer identity and no snapshot yet; its segments start at the first
  number no segment uses.
* A shipped snapshot is uploaded (streamed from the local file, named by
  generation and this epoch, so no other writer's name is ever touched),
  then a new manifest names it with ``segments_from = tail_from =`` the
  next segment number: from there on the journals are rebuilt from the
  segments the tail finds. The shipper re-sends the journals that snapshot
  needs from their start (:class:`~snapkv.replication.shipper.Shipper`), so
  the tail is complete on its own.
* Journal bytes go into write segments, each created if absent at the next
  number. A tick costs one PUT per journal with new records and no
  manifest: a reader finds the tail by listing from ``tail_from`` to the
  first missing number (the layout's rule), which is what makes a busy
  replica cost about one PUT per interval.
* A segment number found taken by different bytes means another writer
  claimed the prefix since: the target is fenced, says so
  (:class:`~snapkv.errors.StoreFencedError` when that error exists, else
  MediumError) and never writes there again.

Replication records one time per segment: when the shipper's read of the
journal ended, an upper bound of its records' append times. So a
point-in-time restore lands on a segment boundary at or before the instant
asked: a consistent prefix of the writes, at most an interval short.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
import zlib

from snapkv.errors import MediumError
from snapkv.objstore import layout as lay
from snapkv.objstore.client import ObjectClient
from snapkv.replication.source import LocalSnapshot

__all__ = ["ObjectTarget", "newest_manifest"]

#: Bytes read from a snapshot file at a time (its CRC-32, its upload).
_CHUNK = 1 << 20


def _fenced(message: str) -> MediumError:
    from snapkv import errors  # noqa: PLC0415 - StoreFencedError arrives with the object medium

    error = getattr(errors, "StoreFencedError", MediumError)
    made: MediumError = error(message)
    return made


def newest_manifest(client: ObjectClient) -> lay.Manifest | None:
    """The newest manifest under the client's prefix (``None`` if there is none)."""
    numbers = sorted(
        n for n in (lay.manifest_number(i.name) for i in client.list(lay.MANIFEST_DIR)) if n
    )
    for number in reversed(numbers):
        name = lay.manifest_name(number)
        data = client.get(name)
        if data is not None:
            return lay.decode_manifest(data, client.describe(name))
    return None


def next_segment(client: ObjectClient, start: int) -> int:
    """The first segment number at or after ``start`` that no object uses."""
    used = {n for n in (lay.segment_number(i.name) for i in client.list(lay.SEGMENT_DIR)) if n}
    seq = max(start, 1)
    while seq in used:
        seq += 1
    return max([seq, *(n + 1 for n in used)])


class ObjectTarget:
    """Writes one directory's replica under ``client``'s prefix (see the module docstring)."""

    def __init__(self, client: ObjectClient, *, retention_ms: int = 24 * 3600 * 1000) -> None:
        self.client = client
        self.retention_ms = retention_ms
        self.writer = lay.Writer(secrets.token_hex(8), socket.gethostname(), os.getpid())
        self.epoch = 0
        self._manifest: lay.Manifest | None = None
        self._seq = 1
        self._fenced: str | None = None

    # ----------------------------------------------------------- manifests

    def _claim(self) -> None:
        """Create the next manifest with the next epoch: this target's first write."""
        newest = newest_manifest(self.client)
        number = newest.number + 1 if newest else 1
        self.epoch = newest.epoch + 1 if newest else 1
        self._seq = next_segment(self.client, newest.tail_from if newest else 1)
        self._advance(
            lay.Manifest(
                number=number,
                epoch=self.epoch,
                writer=self.writer,
                heartbeat_ms=_now_ms(),
                snapshots=(),
                next_generation=newest.next_generation if newest else 1,
                segments_from=self._seq,
                tail_from=self._seq,
                retention_ms=self.retention_ms,
                clock_ms=newest.clock_ms if newest else 0,
            )
        )

    def _advance(self, manifest: lay.Manifest) -> None:
        data = lay.encode_manifest(manifest)
        if self.client.create(manifest.name, data) is not None:
            self._fence(f"{self.client.describe(manifest.name)} was created by another writer")
        self._manifest = manifest

    def _fence(self, why: str) -> None:
        self._fenced = (
            f"replication to {self.client.describe()} stopped: {why}; another writer "
            "holds the prefix now and nothing of its was overwritten"
        )
        raise _fenced(self._fenced)

    def _ready(self) -> lay.Manifest:
        if self._fenced is not None:
            raise _fenced(self._fenced)
        if self._manifest is None:
            self._claim()
        assert self._manifest is not None
        return self._manifest

    # ------------------------------------------------------------- Target

    def put_snapshot(self, snapshot: LocalSnapshot) -> int:
        """Upload ``snapshot``'s file and a manifest that names it (tail from the next segment)."""
        manifest = self._ready()
        generation = manifest.next_generation
        name = lay.snapshot_name(generation, self.epoch)
        with snapshot.path.open("rb") as file:
            # The file may be pruned locally while it uploads: the open file stays readable.
            size = os.fstat(file.fileno()).st_size
            crc = 0
            while chunk := file.read(_CHUNK):
                crc = zlib.crc32(chunk, crc)
            self.client.upload(name, file, size)
        published_ms = int(os.stat(snapshot.path).st_mtime * 1000) if snapshot.path.exists() else 0
        ref = lay.SnapshotRef(generation, self.epoch, size, crc, published_ms or _now_ms())
        self._advance(
            lay.Manifest(
                number=manifest.number + 1,
                epoch=self.epoch,
                writer=self.writer,
                heartbeat_ms=_now_ms(),
                snapshots=(ref,),
                next_generation=generation + 1,
                segments_from=self._seq,
                tail_from=self._seq,
                retention_ms=self.retention_ms,
                clock_ms=max(manifest.clock_ms, ref.time_ms),
            )
        )
        return size

    def put_segment(self, jid: int, offset: int, data: bytes, first_ms: int, last_ms: int) -> None:
        """One write segment at the next number, created if absent; its one time is ``last_ms``."""
        self._ready()
        del first_ms  # the layout's times are per write; replication knows one bound per read
        segment = lay.Segment(
            lay.KIND_WRITE,
            self.epoch,
            journal=jid,
            offset=offset,
            written_ms=_now_ms(),
            payload=data,
            times=((len(data), last_ms),),
        )
        name = lay.segment_name(self._seq)
        if self.client.create(name, lay.encode_segment(segment)) is not None:
            self._fence(f"{self.client.describe(name)} was written by another writer")
        self._seq += 1

    def commit(self) -> None:
        """Nothing to do: segments join the manifest's tail as they are created."""

    def counters(self) -> tuple[int, int, int]:
        """Requests, retries and bytes sent by the client so far."""
        stats = self.client.stats
        return stats.total_requests, stats.retries, stats.bytes_sent

    def close(self) -> None:
        """Nothing is held between requests."""


def _now_ms() -> int:
    return int(time.time() * 1000)
