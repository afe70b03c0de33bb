"""One writer's numbered creates: segments and manifests, one at a time, fenced (FORMAT.md O8).

Everything a writer makes at a number (a segment at the next segment
number, a manifest at the next manifest number) goes through
:class:`Sequence`, so numbering, fencing and the ambiguous PUT are decided
in one place:

* numbers are consecutive: ``lock`` makes the creates one at a time, and a
  number is taken only once its create succeeded;
* a create that finds the name taken by another's bytes means a newer
  writer claimed the prefix: the writer is *fenced* (:meth:`Sequence.fence`)
  and every later create raises :class:`~snapkv.errors.StoreFencedError`
  without a request;
* a create that failed for good may still have landed (its reply lost
  every time): before the next create, the number is read back; our bytes
  there mean it landed and is recorded, nothing there means the number is
  free again. A manifest of ours found at the next number the same way is
  history, and the new one goes to the number after.

Split from :mod:`snapkv.objstore.medium` at this seam: the medium decides
what to write, this decides whether and where it was written.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from snapkv.errors import MediumError, StoreFencedError
from snapkv.objstore import layout as lo
from snapkv.objstore.claim import Claim
from snapkv.objstore.client import ObjectClient

__all__ = ["Sequence"]

log = logging.getLogger("snapkv")


class Sequence:
    """The numbered creates of the writer that made ``claim`` (see the module docstring).

    :param on_stored: called with each segment stored and its number,
        under :attr:`lock` (the medium notes which journal it wrote).
    """

    def __init__(
        self,
        client: ObjectClient,
        writer: lo.Writer,
        claim: Claim,
        on_stored: Callable[[int, lo.Segment], None],
    ) -> None:
        self.client = client
        self.writer = writer
        self.epoch = claim.manifest.epoch
        #: The newest manifest this writer made.
        self.manifest = claim.manifest
        #: How a manifest names each segment from the newest one's ``segments_from`` on.
        self.refs = list(claim.refs)
        #: The next segment number.
        self.next_seq = claim.next_seq
        #: Held for every create: numbers are taken one at a time.
        self.lock = threading.Lock()
        #: Why this writer is fenced, or ``None`` while it holds the prefix.
        self.fenced: str | None = None
        self._uncertain: tuple[int, bytes] | None = None
        self._on_stored = on_stored

    def check(self) -> None:
        """Raise :class:`StoreFencedError` if this writer was fenced."""
        if self.fenced is not None:
            raise StoreFencedError(self.fenced)

    def fence(self, why: str) -> StoreFencedError:
        """Note that a newer writer holds the prefix; the error to raise."""
        self.fenced = (
            f"{self.client.describe()}: {why}; this store (epoch {self.epoch}) acknowledges "
            "no further write: reopen the prefix to continue from the new writer's state"
        )
        log.error("%s", self.fenced)
        return StoreFencedError(self.fenced)

    def put_segment(self, segment: lo.Segment) -> int:
        """Create ``segment`` at the next number and return it; caller holds :attr:`lock`."""
        self.check()
        self._resolve_uncertain()
        seq = self.next_seq
        data = lo.encode_segment(segment)
        try:
            theirs = self.client.create(lo.segment_name(seq), data)
        except MediumError:
            self._uncertain = (seq, data)
            raise
        if theirs is not None:
            try:
                other = f"epoch {lo.decode_segment(theirs).epoch}"
            except lo.LayoutError:
                other = "another writer"
            raise self.fence(f"{lo.segment_name(seq)} was created by {other}")
        self._record(seq, segment, data)
        return seq

    def _record(self, seq: int, segment: lo.Segment, data: bytes) -> None:
        self.refs.append(segment.ref(seq, data))
        self.next_seq = seq + 1
        self._on_stored(seq, segment)

    def _resolve_uncertain(self) -> None:
        """After a create that failed for good: did it land? (The ambiguous PUT, at the end.)"""
        if self._uncertain is None:
            return
        seq, data = self._uncertain
        there = self.client.get(lo.segment_name(seq))
        self._uncertain = None
        if there == data:
            self._record(seq, lo.decode_segment(data), data)
        elif there is not None:
            raise self.fence(f"{lo.segment_name(seq)} was created by another writer")

    def create_manifest(self, fields: dict[str, object], segments_from: int) -> lo.Manifest:
        """Create the next manifest of ``fields`` (numbers and segments filled in here).

        Caller holds :attr:`lock`.
        """
        self.check()
        self._resolve_uncertain()
        refs = [ref for ref in self.refs if ref.seq >= segments_from]
        fields = {
            **fields,
            "number": self.manifest.number + 1,
            "epoch": self.epoch,
            "writer": self.writer,
            "segments_from": segments_from,
            "segments": tuple(refs),
            "tail_from": self.next_seq,
        }
        while True:
            manifest = lo.Manifest(**fields)  # type: ignore[arg-type]
            theirs = self.client.create(manifest.name, lo.encode_manifest(manifest))
            if theirs is None:
                break
            try:
                there = lo.decode_manifest(theirs)
            except lo.LayoutError:
                raise self.fence(f"{manifest.name} was created by another writer") from None
            if there.writer != self.writer or there.epoch != self.epoch:
                raise self.fence(f"{manifest.name} was created by {there.writer}")
            # Ours: an earlier create whose reply was lost for good landed
            # after all (the ambiguous PUT, found at the next one). It is
            # history now; this one goes to the next number.
            fields["number"] = there.number + 1
        self.manifest = manifest
        self.refs = refs
        return manifest
