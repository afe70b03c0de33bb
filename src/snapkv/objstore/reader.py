"""A prefix read back: its manifests, the segments they name, and the journals they add up to.

What every reader of a bucket shares, so the layout's reading rules
(docs/FORMAT.md part 3, O6 and O7) exist once: :class:`ObjectMedium` loads
its state through it when it opens, recovery reads it as a
:class:`snapkv.recovery.Source` (``snapkv check s3://...`` predicts what
``open()`` does by running recovery over it, as it does over a directory),
and ``snapkv restore`` rebuilds a directory from :meth:`PrefixReader.at`.

Read only: nothing here writes, so it can run while a writer holds the
prefix. A writer that appends a segment while a reader reads finds the
reader's view one segment short, never torn (each segment is one PUT).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from snapkv.errors import MediumError
from snapkv.objstore import layout as lo
from snapkv.objstore.client import ObjectClient

__all__ = ["PointInTime", "PrefixReader", "SegmentRun", "state_numbers"]

#: Segments fetched at once (small objects: latency, not bandwidth, bounds a restore).
_PARALLEL = 16


@dataclass
class PointInTime:
    """What a prefix held at one moment (or now): a snapshot and the journals after it.

    ``snapshot`` is the newest snapshot published at or before the moment
    (``None``: the journals alone, from journal 1). ``journals`` hold every
    record appended at or before it (all of them for "now"), by journal id:
    written as ``journal-N.skj`` files next to the snapshot, a plain
    directory opens to exactly that state. ``segments`` are the segment
    numbers read, ``tail_end`` the first number that did not exist.
    """

    manifest: lo.Manifest | None
    snapshot: lo.SnapshotRef | None
    journals: dict[int, bytes] = field(default_factory=dict)
    segments: tuple[int, ...] = ()
    #: The segments read (number and content) and how a manifest names each.
    pairs: tuple[tuple[int, lo.Segment], ...] = field(default=(), repr=False)
    refs: tuple[lo.SegmentRef, ...] = field(default=(), repr=False)
    tail_end: int = 1
    #: The first number after every segment that exists.
    end: int = 1
    #: With ``repair``: what was dropped to get here, in words (empty: nothing).
    lost: tuple[str, ...] = ()
    #: The highest record or PUT time in what was read (epoch ms).
    clock_ms: int = 0
    #: The last segment's PUT time: the writer's latest heartbeat.
    last_put_ms: int = 0


@dataclass
class SegmentRun:
    """Segments read in order: their numbers and contents, their refs, and where they end."""

    pairs: list[tuple[int, lo.Segment]] = field(default_factory=list)
    refs: list[lo.SegmentRef] = field(default_factory=list)
    #: The first number after the segments read (where the tail would continue).
    tail_end: int = 1
    #: The first number after every segment that exists (where a new one can go).
    end: int = 1
    #: With ``repair``: what the run stopped short of, in words (empty if nothing).
    lost: tuple[str, ...] = ()


def state_numbers(numbers: list[int]) -> list[int]:
    """The manifests among ``numbers`` (ascending) that are states: the run ending at the newest.

    Retention deletes every manifest below the ones it keeps except each
    epoch's claim (FORMAT.md O9), so a manifest below a missing number is a
    marker kept only to fence an old writer: what it names may be deleted.
    """
    run = numbers[-1:]
    for number in reversed(numbers[:-1]):
        if number != run[0] - 1:
            break
        run.insert(0, number)
    return run


def _held(ref: lo.SegmentRef | None) -> str:
    if ref is None:
        return ""
    return (
        f": journal {ref.journal} bytes {ref.offset} to {ref.offset + ref.length} "
        f"(written {ref.first_ms} to {ref.last_ms} ms) are lost"
    )


def _advised(problem: BaseException, option: str) -> BaseException:
    """``problem`` saying what ``option`` (``open(repair=True)``, ``--repair``) would keep."""
    advice = (
        f"; {option} keeps the journals up to the segment before it and "
        "drops it and every later one"
    )
    return type(problem)(f"{problem}{advice}")


def _lost_from(
    seq: int, problem: BaseException, refs: dict[int, lo.SegmentRef], last: int
) -> tuple[str, ...]:
    dropped = f"segments {seq} to {last}" if last > seq else f"segment {seq}"
    named = [ref for n, ref in sorted(refs.items()) if n >= seq and ref.kind == lo.KIND_WRITE]
    journals = sorted({ref.journal for ref in named})
    what = f" (writes to journals {', '.join(map(str, journals))})" if journals else ""
    return (f"{problem}", f"history stops before it: {dropped} dropped{what}")


class PrefixReader:
    """Read-only access to the database under ``client``'s prefix.

    Also a :class:`snapkv.recovery.Source` of its newest state (loaded on
    first use, or again after :meth:`refresh`).
    """

    def __init__(self, client: ObjectClient, *, repair_option: str = "open(repair=True)") -> None:
        self.client = client
        #: How a refusal names the repair choice (``snapkv restore`` says ``--repair``).
        self.repair_option = repair_option
        self._manifests: dict[int, lo.Manifest] = {}  # immutable objects: cached forever
        self._now: PointInTime | None = None

    # ---------------------------------------------------------------- manifests

    def manifest_numbers(self) -> list[int]:
        """Every manifest number under the prefix, ascending (one LIST)."""
        numbers = (lo.manifest_number(info.name) for info in self.client.list(lo.MANIFEST_DIR))
        return sorted(n for n in numbers if n is not None)

    def manifest(self, number: int) -> lo.Manifest:
        """Manifest ``number``, checked.

        :raises LayoutError: it fails a check (named, with the check).
        :raises MediumError: it is missing or cannot be read.
        """
        cached = self._manifests.get(number)
        if cached is not None:
            return cached
        name = lo.manifest_name(number)
        data = self.client.get(name)
        if data is None:
            raise MediumError(f"{self.client.describe(name)} is missing")
        manifest = lo.decode_manifest(data, self.client.describe(name))
        if manifest.number != number:
            raise lo.LayoutError(
                f"{self.client.describe(name)}: says it is manifest {manifest.number} "
                "(check manifest-body)"
            )
        self._manifests[number] = manifest
        return manifest

    def forget(self, numbers: Iterable[int]) -> None:
        """Drop deleted manifests from the cache (retention calls it with what it deleted)."""
        for number in numbers:
            self._manifests.pop(number, None)

    def newest_manifest(self) -> lo.Manifest | None:
        """The newest manifest (the state), or ``None`` for a prefix never written."""
        numbers = self.manifest_numbers()
        return self.manifest(numbers[-1]) if numbers else None

    # ----------------------------------------------------------------- segments

    def segment(
        self, seq: int, expected: lo.SegmentRef | None = None
    ) -> tuple[lo.Segment, lo.SegmentRef] | None:
        """Segment ``seq`` and its ref, checked (against ``expected`` too); ``None`` if absent."""
        name = lo.segment_name(seq)
        where = self.client.describe(name)
        data = self.client.get(name)
        if data is None:
            return None
        if expected is not None and (len(data), zlib.crc32(data)) != (
            expected.size,
            expected.crc32,
        ):
            raise lo.LayoutError(
                f"{where}: {len(data)} bytes (CRC-32 {zlib.crc32(data):08x}) where the "
                f"manifest names {expected.size} bytes (CRC-32 {expected.crc32:08x}) "
                "(check segment-manifest)"
            )
        segment = lo.decode_segment(data, where)
        return segment, segment.ref(seq, data)

    def segments(
        self,
        manifest: lo.Manifest | None,
        *,
        until_ms: int | None = None,
        repair: bool = False,
    ) -> SegmentRun:
        """The segments ``manifest`` names, then its tail (see :class:`SegmentRun`).

        The named ones must all exist (a missing one is an error naming it
        and the journal bytes it held); the tail runs while numbers exist,
        and a number missing while later ones exist is a gap, an error too.
        With ``until_ms``, segments are fetched a window at a time and
        reading stops after the first one holding a later time (the fold
        stops in it, as times never decrease, FORMAT.md O5), so a
        point-in-time read fetches and holds only what it folds, not the
        history after. With ``repair``, the first missing or damaged segment
        ends the run instead, and what it and every later one held is in
        ``lost``: history stops there, as a directory's repair stops it at a
        damaged journal.

        :raises LayoutError: a segment failed a check, or disagrees with its manifest.
        :raises MediumError: a segment is missing, or the store failed.
        """
        start = manifest.segments_from if manifest else 1
        refs = {ref.seq: ref for ref in manifest.segments} if manifest else {}
        existing = {
            n
            for n in map(lo.segment_number, (i.name for i in self.client.list(lo.SEGMENT_DIR)))
            if n is not None
        }
        last = max([*existing, *refs, start - 1])
        wanted: list[int] = []
        seq = start
        stopped = False
        while seq <= last:
            ref = refs.get(seq)
            if until_ms is not None and ref is not None and ref.first_ms > until_ms:
                stopped = True
                break
            if seq not in existing and seq not in refs and not repair:
                break
            wanted.append(seq)
            seq += 1
        holes = sorted(n for n in existing if n > seq) if not stopped and seq <= last else []
        run = SegmentRun(end=last + 1)
        with ThreadPoolExecutor(_PARALLEL) as pool:
            # A moment in the past goes a window at a time: it stops at the
            # first segment past it, and what lies after is neither fetched
            # nor held. The state now needs them all: one pass, no waits.
            step = _PARALLEL if until_ms is not None else max(len(wanted), 1)
            for at in range(0, len(wanted), step):
                window = wanted[at : at + step]
                fetched = list(pool.map(lambda n: self._fetch(n, refs.get(n)), window))
                for number, got in zip(window, fetched, strict=True):
                    taken = self._take(
                        run,
                        number,
                        got,
                        manifest=manifest,
                        refs=refs,
                        last=last,
                        until_ms=until_ms,
                        repair=repair,
                    )
                    if not taken:
                        return run
        run.tail_end = start + len(run.pairs)
        if holes:
            gap = MediumError(
                f"{self.client.describe(lo.segment_name(seq))} is missing but segments "
                f"{holes[0]} to {holes[-1]} exist after it: a gap in the journal segments, "
                "what the missing one held is lost (check segment-missing)"
            )
            if not repair:
                raise _advised(gap, self.repair_option)
            run.lost = _lost_from(seq, gap, refs, last)
        return run

    def _take(
        self,
        run: SegmentRun,
        number: int,
        got: tuple[lo.Segment, lo.SegmentRef] | BaseException | None,
        *,
        manifest: lo.Manifest | None,
        refs: dict[int, lo.SegmentRef],
        last: int,
        until_ms: int | None,
        repair: bool,
    ) -> bool:
        """Add segment ``number`` to ``run``; ``False``: the run ends here (:meth:`segments`)."""
        problem: BaseException | None = None
        if isinstance(got, BaseException):
            problem = got
        elif got is None:
            problem = MediumError(
                f"{self.client.describe(lo.segment_name(number))} is missing but "
                f"{manifest.name if manifest and number in refs else 'the tail'} names it"
                f"{_held(refs.get(number))} (check segment-missing)"
            )
        elif run.pairs and got[0].epoch < run.pairs[-1][1].epoch:
            problem = lo.LayoutError(
                f"{self.client.describe(lo.segment_name(number))}: epoch {got[0].epoch} "
                f"after epoch {run.pairs[-1][1].epoch} (check segment-epoch)"
            )
        if problem is not None:
            if not repair:
                raise _advised(problem, self.repair_option)
            run.lost = _lost_from(number, problem, refs, last)
            run.tail_end = number
            return False
        assert got is not None and not isinstance(got, BaseException)
        segment, ref = got
        if until_ms is not None and segment.first_ms > until_ms:
            run.tail_end = number
            return False
        run.pairs.append((number, segment))
        run.refs.append(ref)
        if until_ms is not None and segment.last_ms > until_ms:
            # The fold stops inside this one (times never decrease, O5).
            run.tail_end = number + 1
            return False
        return True

    def _fetch(
        self, seq: int, ref: lo.SegmentRef | None
    ) -> tuple[lo.Segment, lo.SegmentRef] | BaseException | None:
        try:
            return self.segment(seq, ref)
        except lo.LayoutError as exc:
            return exc

    # ----------------------------------------------------------------- a moment

    def at(self, at_ms: int | None = None, *, repair: bool = False) -> PointInTime:
        """The state now (``None``) or as it was at epoch millisecond ``at_ms``.

        For a past moment: the newest manifest written at or before it, the
        newest of its snapshots published at or before it, and every segment
        from that manifest on folded up to the moment (FORMAT.md O7). A
        moment before anything retained is an error, never a silently
        empty or partial state.

        :raises MediumError: nothing retained reaches back to ``at_ms``, or
            a named object is missing or fails its checks (named).
        """
        if at_ms is None:
            manifest = self.newest_manifest()
        else:
            manifest = None
            numbers = state_numbers(self.manifest_numbers())
            for number in reversed(numbers):
                candidate = self.manifest(number)
                if candidate.heartbeat_ms <= at_ms:
                    manifest = candidate
                    break
            if manifest is None and numbers:
                # Before the oldest retained state (or before the prefix's
                # first manifest): never an empty or partial state instead.
                oldest = self.manifest(numbers[0])
                raise MediumError(
                    f"{self.client.describe()}: nothing retained reaches back to {at_ms} ms "
                    f"(the oldest retained manifest, {oldest.name}, was written at "
                    f"{oldest.heartbeat_ms} ms)"
                )
        run = self.segments(manifest, until_ms=at_ms, repair=repair)
        pairs, refs = run.pairs, run.refs
        describe = self.client.describe("segment")
        try:
            journals = lo.fold_segments(pairs, until_ms=at_ms, describe=describe)
        except lo.LayoutError as exc:
            if not repair:
                raise _advised(exc, self.repair_option) from None
            # Find the segment the fold refuses; history stops before it.
            journals = {}
            for index, (number, segment) in enumerate(pairs):
                try:
                    lo.fold_segments([(number, segment)], journals=journals, describe=describe)
                except lo.LayoutError as refused:
                    run.lost = _lost_from(number, refused, {}, run.end - 1)
                    run.tail_end = number
                    del pairs[index:], refs[index:]
                    break
        snapshots = manifest.snapshots if manifest else ()
        if at_ms is not None:
            snapshots = tuple(s for s in snapshots if s.time_ms <= at_ms)
        clock = max([manifest.clock_ms if manifest else 0, *(s.last_ms for _, s in pairs)])
        return PointInTime(
            manifest=manifest,
            snapshot=snapshots[0] if snapshots else None,
            journals={jid: bytes(data) for jid, data in sorted(journals.items())},
            segments=tuple(seq for seq, _ in pairs),
            pairs=tuple(pairs),
            refs=tuple(refs),
            tail_end=run.tail_end,
            end=run.end,
            lost=run.lost,
            clock_ms=clock,
            last_put_ms=max((s.written_ms for _, s in pairs), default=0),
        )

    def snapshot_chunks(self, ref: lo.SnapshotRef, chunk_size: int = 8 << 20) -> Iterator[bytes]:
        """Snapshot ``ref``'s bytes in chunks (bounded memory), size and CRC-32 checked at the end.

        :raises MediumError: the object is missing or shorter than the manifest says.
        :raises LayoutError: its CRC-32 differs from the manifest's.
        """
        crc = 0
        for chunk in self.client.stream(ref.name, ref.size, chunk_size):
            crc = zlib.crc32(chunk, crc)
            yield chunk
        if crc != ref.crc32:
            raise lo.LayoutError(
                f"{self.client.describe(ref.name)}: CRC-32 {crc:08x} where the manifest "
                f"names {ref.crc32:08x} (check snapshot-manifest)"
            )

    # ------------------------------------------------- recovery.Source, of now

    def refresh(self) -> PointInTime:
        """Read the newest state again (the Source methods answer from it)."""
        self._now = self.at(None)
        return self._now

    def _state(self) -> PointInTime:
        return self._now if self._now is not None else self.refresh()

    def generations(self) -> list[str]:
        """The newest manifest's snapshots (object names), newest first."""
        manifest = self._state().manifest
        return [ref.name for ref in manifest.snapshots] if manifest else []

    def _ref(self, generation: str | None) -> lo.SnapshotRef | None:
        manifest = self._state().manifest
        for ref in manifest.snapshots if manifest else ():
            if generation is None or ref.name == generation:
                return ref
        return None

    def read(self, generation: str | None = None) -> bytes | None:
        """A snapshot's bytes (the newest by default); ``None`` if the manifest names none.

        The bytes are returned even when they disagree with the manifest's
        size or CRC-32: the snapshot's own checks then say what is wrong,
        where, as they do for a file (``check`` compares both).

        :raises MediumError: the manifest names it but the object is missing.
        """
        ref = self._ref(generation)
        if ref is None:
            return None
        data = self.client.get(ref.name)
        if data is None:
            raise MediumError(
                f"{self.client.describe(ref.name)} is missing but the newest manifest names "
                f"it (check snapshot-missing)"
            )
        return data

    def describe(self, generation: str | None = None) -> str:
        """A snapshot's URL (or the prefix's), for messages."""
        return self.client.describe(generation or "")

    def journal_ids(self) -> list[int]:
        """The journals the newest state holds, ascending."""
        return sorted(self._state().journals)

    def read_journal(self, jid: int) -> bytes | None:
        """Journal ``jid``'s bytes as its segments add up; ``None`` if there is none."""
        return self._state().journals.get(jid)

    def describe_journal(self, jid: int) -> str:
        """Journal ``jid`` as messages name it: the prefix's segments that hold it."""
        return f"{self.client.describe(lo.SEGMENT_DIR)} (journal {jid})"
