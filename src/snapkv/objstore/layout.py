"""The object layout under a prefix: names, the manifest and the segment, as bytes. Pure.

Specified in docs/FORMAT.md part 3; every constant here mirrors a name
there. Under a database's prefix::

    manifest/00000000000000000007            manifests, numbered from 1, each created
                                             if absent and never overwritten
    snapshot/00000000000000000003-00000000000000000002.skv
                                             a snapshot (generation 3, written in
                                             epoch 2): its bytes exactly as the
                                             snapshot format (part 1) defines them
    segment/00000000000000000042             journal segments, numbered from 1,
                                             consecutive, each created if absent

A **manifest** is the database's state: the writer's epoch and identity
and heartbeat, the snapshots it retains (newest first, with size, CRC-32
and time), and the journal segments that state needs: ``segments`` (the
ones known when it was written, each with its journal, offset, length,
first and last record time and CRC-32) from ``segments_from`` to
``tail_from - 1``, then the *tail*: every segment from ``tail_from`` on,
consecutive, up to the first number that does not exist. The newest
manifest (highest number) is the state; the tail is how a write is made
durable with one PUT, as SlateDB's WAL objects are named by the manifest's
``next_wal_sst_id`` and found by listing from it.

A **segment** holds a run of one journal's bytes (its records, unchanged
from part 2) and the time each write was appended, or a change to the set
of journals (a fence, a journal set aside, journals removed). Folding the
segments from ``segments_from`` in order gives the journals
(:func:`fold_segments`); folding only the writes at or before a time gives
them as they were then (point-in-time restore).

What is read is only ever what a manifest names (its snapshots, its
segments, its tail), so an object a writer left half-done, or an old
writer's snapshot whose manifest was refused, is never read; retention
deletes it once it is older than the window.
"""

from __future__ import annotations

import json
import re
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from snapkv._binary import crc32
from snapkv.errors import MediumError

__all__ = [
    "KIND_DROP",
    "KIND_DROP_BELOW",
    "KIND_FENCE",
    "KIND_WRITE",
    "MANIFEST_DIR",
    "MANIFEST_MAGIC",
    "SEGMENT_DIR",
    "SEGMENT_HEADER",
    "SEGMENT_MAGIC",
    "SNAPSHOT_DIR",
    "LayoutError",
    "Manifest",
    "Segment",
    "SegmentRef",
    "SnapshotRef",
    "Writer",
    "decode_manifest",
    "decode_segment",
    "encode_manifest",
    "encode_segment",
    "fold_segments",
    "manifest_name",
    "manifest_number",
    "segment_name",
    "segment_number",
    "snapshot_name",
]

MANIFEST_DIR = "manifest"
SNAPSHOT_DIR = "snapshot"
SEGMENT_DIR = "segment"
_NUMBER_WIDTH = 20
_MANIFEST = re.compile(r"manifest/(\d{20})")
_SEGMENT = re.compile(r"segment/(\d{20})")
_SNAPSHOT = re.compile(r"snapshot/(\d{20})-(\d{20})\.skv")

#: Manifest bytes: magic, version u8, 3 reserved zero bytes, body length
#: u32, CRC-32 of the body u32, then the body (UTF-8 JSON object).
MANIFEST_MAGIC = b"SKVM"
MANIFEST_VERSION = 1
_MANIFEST_HEAD = struct.Struct("<4sB3sII")

#: Segment bytes: this header, the payload, the times table, CRC-32 u32 of all before it.
SEGMENT_MAGIC = b"SKVG"
SEGMENT_VERSION = 1
#: magic, version, kind, reserved u16, epoch, journal, offset, written_ms,
#: first_ms, last_ms (u64 each), payload length u32, times length u32.
SEGMENT_HEADER = struct.Struct("<4sBBHQQQQQQII")
_CRC = struct.Struct("<I")

#: Segment kinds (FORMAT.md part 3, O5).
KIND_WRITE = 1  # journal `journal`'s bytes from `offset` on are the payload (cut there first)
KIND_FENCE = 2  # a writer claimed `epoch`: older writers' next segment number is taken
KIND_DROP = 3  # journal `journal` set aside (recovery cut history before it)
KIND_DROP_BELOW = 4  # every journal below `journal` removed (a snapshot covers them)
_KINDS = {
    KIND_WRITE: "write",
    KIND_FENCE: "fence",
    KIND_DROP: "drop",
    KIND_DROP_BELOW: "drop-below",
}


class LayoutError(MediumError):
    """An object of the layout failed a check; the message names the object and the check."""


def manifest_name(number: int) -> str:
    """The object name of manifest ``number`` (from 1)."""
    return f"{MANIFEST_DIR}/{_check_number(number):0{_NUMBER_WIDTH}d}"


def manifest_number(name: str) -> int | None:
    """The number of manifest object ``name``; ``None`` if it is not one."""
    match = _MANIFEST.fullmatch(name)
    return int(match.group(1)) if match else None


def segment_name(seq: int) -> str:
    """The object name of segment ``seq`` (from 1)."""
    return f"{SEGMENT_DIR}/{_check_number(seq):0{_NUMBER_WIDTH}d}"


def segment_number(name: str) -> int | None:
    """The number of segment object ``name``; ``None`` if it is not one."""
    match = _SEGMENT.fullmatch(name)
    return int(match.group(1)) if match else None


def snapshot_name(generation: int, epoch: int) -> str:
    """The object name of snapshot ``generation`` written in ``epoch``."""
    gen, ep = _check_number(generation), _check_number(epoch, low=0)
    return f"{SNAPSHOT_DIR}/{gen:0{_NUMBER_WIDTH}d}-{ep:0{_NUMBER_WIDTH}d}.skv"


def snapshot_numbers(name: str) -> tuple[int, int] | None:
    """``(generation, epoch)`` of snapshot object ``name``; ``None`` if it is not one."""
    match = _SNAPSHOT.fullmatch(name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def _check_number(number: int, low: int = 1) -> int:
    if not low <= number < 10**_NUMBER_WIDTH:
        raise ValueError(f"object numbers are {low} to 10**20-1, not {number}")
    return number


# ------------------------------------------------------------------ manifest


@dataclass(frozen=True)
class Writer:
    """Who wrote a manifest: a random id per opened medium, the host and the process."""

    id: str
    host: str
    pid: int

    def __str__(self) -> str:
        return f"writer {self.id} on {self.host} (pid {self.pid})"


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot a manifest retains: its object, size, CRC-32 and when it was published."""

    generation: int
    epoch: int
    size: int
    crc32: int
    #: Epoch milliseconds at the start of its publish: every record appended
    #: before it is in it or in a journal below its ``journal_next``.
    time_ms: int

    @property
    def name(self) -> str:
        """The object name."""
        return snapshot_name(self.generation, self.epoch)


@dataclass(frozen=True)
class SegmentRef:
    """A segment as a manifest names it (everything but its bytes)."""

    seq: int
    kind: int
    epoch: int
    journal: int
    offset: int
    length: int
    #: Epoch ms of its first and last write (of the PUT itself when it holds none).
    first_ms: int
    last_ms: int
    #: CRC-32 of the whole object, and its size in bytes.
    crc32: int
    size: int

    @property
    def name(self) -> str:
        """The object name."""
        return segment_name(self.seq)

    def row(self) -> list[int]:
        """The manifest's JSON row: the fields in declaration order."""
        return [
            self.seq,
            self.kind,
            self.epoch,
            self.journal,
            self.offset,
            self.length,
            self.first_ms,
            self.last_ms,
            self.crc32,
            self.size,
        ]


@dataclass(frozen=True)
class Manifest:
    """One manifest: the database's state when it was written (FORMAT.md part 3, O3)."""

    number: int
    epoch: int
    writer: Writer
    #: Epoch ms when it was written: the writer's heartbeat (its segments' are later ones).
    heartbeat_ms: int
    #: The writer closed cleanly and let go: the next opener needs no takeover.
    released: bool = False
    snapshots: tuple[SnapshotRef, ...] = ()
    #: The next snapshot generation number (numbers are never reused).
    next_generation: int = 1
    #: The first segment the journals need; segments below are history only.
    segments_from: int = 1
    segments: tuple[SegmentRef, ...] = ()
    #: The first segment of the tail (``segments`` end just below it).
    tail_from: int = 1
    #: The retention window in ms the writer applied.
    retention_ms: int = 0
    #: The highest record time written so far: later writers never write an earlier one.
    clock_ms: int = 0
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def name(self) -> str:
        """The object name."""
        return manifest_name(self.number)


def encode_manifest(manifest: Manifest) -> bytes:
    """The bytes of ``manifest``: the checked envelope around its JSON body."""
    body = {
        "format": MANIFEST_VERSION,
        "number": manifest.number,
        "epoch": manifest.epoch,
        "writer": {
            "id": manifest.writer.id,
            "host": manifest.writer.host,
            "pid": manifest.writer.pid,
        },
        "heartbeat_ms": manifest.heartbeat_ms,
        "released": manifest.released,
        "snapshots": [
            {
                "generation": s.generation,
                "epoch": s.epoch,
                "size": s.size,
                "crc32": s.crc32,
                "time_ms": s.time_ms,
            }
            for s in manifest.snapshots
        ],
        "next_generation": manifest.next_generation,
        "segments_from": manifest.segments_from,
        "segments": [s.row() for s in manifest.segments],
        "tail_from": manifest.tail_from,
        "retention_ms": manifest.retention_ms,
        "clock_ms": manifest.clock_ms,
    }
    data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")
    head = _MANIFEST_HEAD.pack(MANIFEST_MAGIC, MANIFEST_VERSION, bytes(3), len(data), crc32(data))
    return head + data


def decode_manifest(data: bytes, source: str = "manifest") -> Manifest:
    """The manifest in ``data``; every check failure is a :class:`LayoutError` naming ``source``.

    Checked: magic, version, declared length against the bytes (a truncated
    object), CRC-32, the JSON, and every field's type and the rules between
    them (``segments`` consecutive from ``segments_from`` to ``tail_from``).
    """

    def bad(why: str, check: str) -> LayoutError:
        return LayoutError(f"{source}: {why} (check {check})")

    if len(data) < _MANIFEST_HEAD.size:
        raise bad(f"{len(data)} bytes, shorter than a manifest's header", "manifest-truncated")
    magic, version, reserved, length, crc = _MANIFEST_HEAD.unpack_from(data)
    if magic != MANIFEST_MAGIC:
        raise bad(f"bad magic {magic!r}: not a snapkv manifest", "manifest-magic")
    if version != MANIFEST_VERSION:
        raise bad(f"manifest version {version} (this snapkv reads {MANIFEST_VERSION})", "version")
    if reserved != bytes(3):
        raise bad(f"reserved bytes {reserved.hex()} are not zero", "manifest-magic")
    body = data[_MANIFEST_HEAD.size :]
    if len(body) != length:
        raise bad(f"body of {len(body)} bytes where {length} were written", "manifest-truncated")
    if crc32(body) != crc:
        raise bad("CRC-32 mismatch: the manifest is damaged", "manifest-crc")
    try:
        raw = json.loads(body.decode("utf-8"))
        if raw["format"] != MANIFEST_VERSION or type(raw["format"]) is not int:
            raise bad(
                f"body format {raw['format']!r} (this snapkv reads {MANIFEST_VERSION})", "version"
            )
        if type(raw["released"]) is not bool:
            raise ValueError(f"released must be true or false, not {raw['released']!r}")
        writer = raw["writer"]
        manifest = Manifest(
            number=_int(raw["number"]),
            epoch=_int(raw["epoch"]),
            writer=Writer(str(writer["id"]), str(writer["host"]), _int(writer["pid"])),
            heartbeat_ms=_int(raw["heartbeat_ms"]),
            released=raw["released"],
            snapshots=tuple(
                SnapshotRef(
                    _int(s["generation"]),
                    _int(s["epoch"]),
                    _int(s["size"]),
                    _int(s["crc32"]),
                    _int(s["time_ms"]),
                )
                for s in raw["snapshots"]
            ),
            next_generation=_int(raw["next_generation"]),
            segments_from=_int(raw["segments_from"]),
            segments=tuple(SegmentRef(*(_int(v) for v in row)) for row in raw["segments"]),
            tail_from=_int(raw["tail_from"]),
            retention_ms=_int(raw["retention_ms"]),
            clock_ms=_int(raw["clock_ms"]),
        )
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise bad(f"malformed body: {exc!r}", "manifest-body") from None
    seqs = [s.seq for s in manifest.segments]
    if seqs != list(range(manifest.segments_from, manifest.tail_from)):
        raise bad("segments not consecutive from segments_from to tail_from", "manifest-body")
    return manifest


def _int(value: object) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


# ------------------------------------------------------------------- segment


@dataclass(frozen=True)
class Segment:
    """One segment's content (FORMAT.md part 3, O5)."""

    kind: int
    epoch: int
    journal: int = 0
    offset: int = 0
    #: Epoch ms of the PUT: the writer's heartbeat.
    written_ms: int = 0
    payload: bytes = b""
    #: One ``(end offset in the payload, epoch ms)`` per write appended, in order.
    times: tuple[tuple[int, int], ...] = ()

    @property
    def first_ms(self) -> int:
        """Time of the first write (the PUT's when it holds none)."""
        return self.times[0][1] if self.times else self.written_ms

    @property
    def last_ms(self) -> int:
        """Time of the last write (the PUT's when it holds none)."""
        return self.times[-1][1] if self.times else self.written_ms

    def ref(self, seq: int, data: bytes) -> SegmentRef:
        """How a manifest names this segment, stored as ``data`` at number ``seq``."""
        return SegmentRef(
            seq,
            self.kind,
            self.epoch,
            self.journal,
            self.offset,
            len(self.payload),
            self.first_ms,
            self.last_ms,
            crc32(data),
            len(data),
        )


def _varint(value: int, out: bytearray) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _varints(data: bytes) -> Iterator[int]:
    value = shift = 0
    for byte in data:
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            if shift > 63:
                raise ValueError("varint longer than 64 bits")
            continue
        yield value
        value = shift = 0
    if shift:
        raise ValueError("the times table ends inside a varint")


def encode_segment(segment: Segment) -> bytes:
    """The bytes of ``segment``; its times are non-decreasing and end at the payload's end."""
    times = bytearray()
    previous_end = 0
    previous_ms = segment.first_ms
    for end, ms in segment.times:
        if end < previous_end or ms < previous_ms or end > len(segment.payload):
            raise ValueError(f"segment times must be non-decreasing within the payload: {end, ms}")
        _varint(end - previous_end, times)
        _varint(ms - previous_ms, times)
        previous_end, previous_ms = end, ms
    head = SEGMENT_HEADER.pack(
        SEGMENT_MAGIC,
        SEGMENT_VERSION,
        segment.kind,
        0,
        segment.epoch,
        segment.journal,
        segment.offset,
        segment.written_ms,
        segment.first_ms,
        segment.last_ms,
        len(segment.payload),
        len(times),
    )
    body = b"".join((head, segment.payload, times))
    return body + _CRC.pack(crc32(body))


def decode_segment(data: bytes, source: str = "segment") -> Segment:
    """The segment in ``data``; every check failure is a :class:`LayoutError` naming ``source``.

    Checked: length (a truncated object), CRC-32, magic, version, kind, the
    declared lengths, and the times table (it must decode to non-decreasing
    times and ends within the payload).
    """

    def bad(why: str, check: str) -> LayoutError:
        return LayoutError(f"{source}: {why} (check {check})")

    minimum = SEGMENT_HEADER.size + _CRC.size
    if len(data) < minimum:
        raise bad(f"{len(data)} bytes, shorter than a segment's header", "segment-truncated")
    fields = SEGMENT_HEADER.unpack_from(data)
    magic, version, kind, reserved, epoch, journal, offset, written, first, last, plen, tlen = (
        fields
    )
    if magic != SEGMENT_MAGIC:
        raise bad(f"bad magic {magic!r}: not a snapkv segment", "segment-magic")
    if version != SEGMENT_VERSION:
        raise bad(f"segment version {version} (this snapkv reads {SEGMENT_VERSION})", "version")
    if len(data) != minimum + plen + tlen:
        raise bad(
            f"{len(data)} bytes where the header declares {minimum + plen + tlen}",
            "segment-truncated",
        )
    (crc,) = _CRC.unpack_from(data, len(data) - _CRC.size)
    if crc32(memoryview(data)[: len(data) - _CRC.size]) != crc:
        raise bad("CRC-32 mismatch: the segment is damaged", "segment-crc")
    if kind not in _KINDS:
        raise bad(f"unknown segment kind {kind}", "segment-kind")
    if reserved != 0:
        raise bad(f"reserved field {reserved} is not zero", "segment-magic")
    start = SEGMENT_HEADER.size
    payload = bytes(data[start : start + plen])
    try:
        numbers = list(_varints(data[start + plen : start + plen + tlen]))
    except ValueError as exc:
        raise bad(str(exc), "segment-times") from None
    if len(numbers) % 2:
        raise bad("the times table has an odd count", "segment-times")
    times: list[tuple[int, int]] = []
    end, ms = 0, first
    for i in range(0, len(numbers), 2):
        end, ms = end + numbers[i], ms + numbers[i + 1]
        times.append((end, ms))
    if times and (end > plen or times[0][1] != first or ms != last):
        raise bad("the times table disagrees with the header", "segment-times")
    return Segment(kind, epoch, journal, offset, written, payload, tuple(times))


# ---------------------------------------------------------------------- fold


def fold_segments(
    segments: Iterable[tuple[int, Segment]],
    *,
    journals: dict[int, bytearray] | None = None,
    until_ms: int | None = None,
    describe: str = "segment",
) -> dict[int, bytearray]:
    """The journals the numbered ``segments`` (in order) add up to (FORMAT.md part 3, O6).

    ``journals`` is the state to continue (default: none). With ``until_ms``
    only what was appended at or before that time is kept: a write segment
    keeps its writes up to the first one later than ``until_ms`` and the
    fold stops there (times never decrease along the sequence); any other
    segment counts at its PUT's time.

    :raises LayoutError: a segment writes past the end of its journal (a
        segment before it is missing), naming the segment.
    """
    state = journals if journals is not None else {}
    for seq, segment in segments:
        where = f"{describe} {seq}"
        if segment.kind == KIND_WRITE:
            payload = segment.payload
            stop = False
            if until_ms is not None and segment.times and segment.last_ms > until_ms:
                keep = 0
                for end, ms in segment.times:
                    if ms > until_ms:
                        break
                    keep = end
                payload, stop = payload[:keep], True
                if keep == 0 and segment.offset == 0:
                    return state  # the journal did not exist yet at that time
            elif until_ms is not None and not segment.times and segment.written_ms > until_ms:
                return state
            data = state.get(segment.journal)
            if data is None:
                if segment.offset != 0:
                    raise LayoutError(
                        f"{where} continues journal {segment.journal} at offset "
                        f"{segment.offset}, but no earlier segment holds that journal: "
                        "a segment is missing (check segment-gap)"
                    )
                data = state[segment.journal] = bytearray()
            if segment.offset > len(data):
                raise LayoutError(
                    f"{where} writes journal {segment.journal} at offset {segment.offset}, "
                    f"past its end at {len(data)}: a segment is missing (check segment-gap)"
                )
            del data[segment.offset :]
            data += payload
            if stop:
                return state
            continue
        if until_ms is not None and segment.written_ms > until_ms:
            return state
        if segment.kind == KIND_DROP:
            state.pop(segment.journal, None)
        elif segment.kind == KIND_DROP_BELOW:
            for jid in [jid for jid in state if jid < segment.journal]:
                del state[jid]
    return state


def kind_name(kind: int) -> str:
    """The kind's name in FORMAT.md (``write``, ``fence``, ``drop``, ``drop-below``)."""
    return _KINDS.get(kind, f"kind {kind}")
