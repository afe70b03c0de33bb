"""Snapshot codec: numbered keyspaces of str to str or container, with expiry times <-> bytes.

Pure: no I/O.

The byte format is specified in ``docs/FORMAT.md``; every constant below
mirrors a name there, and every check the decoder makes is listed there by
the same ``check`` name that :class:`~snapkv.errors.CorruptSnapshotError` carries.

Shape of a snapshot::

    HEADER  (magic, version, flags, crc)
    META    record ?        optional, first when present: journal_next
    ENTRIES record *        keyspace 0's strings; each: up to 4,096 entries, own
                            length and CRC-32 (ENTRIES_EX: also an expiry column)
    CONTAINERS record *     keyspace 0's hashes, lists, sets, sorted sets, by type
                            (snapkv.codec_types; a large value spans a chain of them)
    ( KEYSPACE record       the keyspaces above 0 that hold entries,
      ENTRIES record *      in increasing order
      CONTAINERS record * ) *
    END     record          total entries and records, so truncation at a
                            record boundary is caught too

A snapshot that holds only keyspace 0 and no expiry time is format v1, byte
for byte what this codec wrote before keyspaces and expiry existed; one that
needs ENTRIES_EX or KEYSPACE records says version 2 in its header, so an
older reader refuses it by its version instead of misreading it. One that
holds a container says version 3 (CONTAINERS records), for the same reason.

Why columnar chunks: an ENTRIES record stores all keys of the chunk, then all
values, as ONE UTF-8 text. Encoding is then one ``str.join`` and one
``str.encode`` per chunk, and decoding one ``bytes.decode`` and one
``str.split`` per chunk: C loops over 4,096 entries instead of a Python loop
per entry. A per-chunk (not per-snapshot) text keeps memory bounded while
saving, and keeps one emoji from widening every string of the snapshot to
four bytes per character while decoding. The expiry column follows the same
idea: one ``array`` conversion per chunk each way, never a loop per entry.

Why a separator can never be fooled: the encoder only uses a separator
after verifying, by counting, that it occurs in none of the chunk's strings;
the decoder verifies that splitting yields exactly ``2 * count`` strings. If
every candidate separator occurs in the data, the chunk falls back to the
LENGTHS layout, where a column of code-point lengths decides the boundaries.
"""

from __future__ import annotations

import gc
import sys
from array import array
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import accumulate, compress, islice, repeat
from operator import getitem
from struct import Struct
from typing import Any, TypeVar

from snapkv import _binary, _frame, codec_types
from snapkv._binary import encode_text
from snapkv._frame import FileHeader, as_view, check_frame, checked_text, seal
from snapkv.errors import CorruptSnapshotError

__all__ = [
    "MAGIC",
    "VERSION",
    "VERSION_EXTENDED",
    "ChunkInfo",
    "KeyspaceInfo",
    "Snapshot",
    "SnapshotInfo",
    "decode",
    "decode_snapshot",
    "encode",
    "iter_encode",
    "iter_encode_columns",
    "iter_encode_snapshot",
    "peek_journal_next",
    "scan",
]

#: First eight bytes of every snapshot. The high bit catches 7-bit channels,
#: CR LF and LF catch newline translation, 0x1A stops DOS ``type``.
MAGIC = b"\x89SKV\r\n\x1a\n"
#: Header version of every snapshot that uses only ENTRIES and END (and
#: optional records): readable by every reader ever released.
VERSION = 1
#: Header version of a snapshot that uses ENTRIES_EX or KEYSPACE records.
VERSION_EXTENDED = 2
#: Header version of a snapshot that holds a hash, list, set or sorted set
#: (CONTAINERS records, :mod:`snapkv.codec_types`).
VERSION_TYPED = 3

HEADER = Struct("<8sHHI")  # magic, version, flags, crc32 of the first 12 bytes
HEADER_SIZE = HEADER.size  # 16
# The journal's record frame is this one and the field limits are every
# format's: they are defined once (snapkv._frame, snapkv._binary) and named
# here as FORMAT.md's constants table lists them.
FRAME = _frame.FRAME  # crc32, body length, record type
FRAME_SIZE = _frame.FRAME_SIZE  # 9
FRAME_TAIL = _frame.FRAME_TAIL  # the frame fields the CRC covers: length, type

TYPE_ENTRIES = 0x01
TYPE_END = 0x02
TYPE_ENTRIES_EX = 0x03  # ENTRIES with an expiry column; version 2 only
TYPE_KEYSPACE = 0x04  # the keyspace of the entries records that follow; version 2 only
TYPE_CONTAINERS = codec_types.TYPE_CONTAINERS  # hashes, lists, sets, sorted sets; version 3 only
TYPE_META = 0x81  # optional, first when present: journal_next
#: Record types with this bit set may be skipped by readers that do not know them.
OPTIONAL_TYPE_BIT = _frame.OPTIONAL_TYPE_BIT

ENTRIES_HEAD = Struct("<IB")  # entry count, layout
LAYOUT_LENGTHS = 0
LAYOUT_SEPARATED = 1
EXPIRY_SIZE = 8  # bytes per entry of the ENTRIES_EX expiry column (u64 ms, 0 = none)
KEYSPACE_BODY = Struct("<I")  # keyspace number
META_BODY = Struct("<Q")  # journal_next; a longer body is allowed, the rest is ignored
END_BODY = Struct("<QI")  # total entries, records before END
U32_MAX = _binary.U32_MAX
U64_MAX = _binary.U64_MAX

#: Entries per ENTRIES or ENTRIES_EX record, at most. Measured over 1,000,000 entries
#: (bench/codec_choices.py): chunks of 65,536 encoded 7-20% slower and
#: decoded non-ASCII text 14% slower than chunks of 4,096 (whose text stays
#: in the CPU cache); smaller chunks gained nothing more.
MAX_CHUNK_ENTRIES = 4_096
#: A chunk whose text exceeds this many code points is split in two (unless
#: it holds one entry), so a chunk of huge values cannot take unbounded memory.
MAX_CHUNK_CHARS = 1 << 23
#: Separators the encoder tries, in order. All ASCII, so a separator is one
#: byte in UTF-8 and never widens an ASCII chunk.
SEPARATORS = "\x00\x1f\x1e\x1d\x1c\x01\x02\x03\x04\x05\x06\x07\x0b\x0e\x0f\x7f"

_LENGTH_ARRAY = "I"
if array(_LENGTH_ARRAY).itemsize != 4:  # pragma: no cover - no mainstream platform
    _LENGTH_ARRAY = "L"
_EXPIRY_ARRAY = "Q"  # unsigned long long: 8 bytes wherever CPython runs
if array(_EXPIRY_ARRAY).itemsize != EXPIRY_SIZE:  # pragma: no cover
    raise ImportError("snapkv.codec needs an 8-byte array('Q')")
_BIG_ENDIAN = sys.byteorder == "big"

_TYPE_NAMES = {
    TYPE_ENTRIES_EX: "ENTRIES_EX",
    TYPE_KEYSPACE: "KEYSPACE",
    TYPE_CONTAINERS: "CONTAINERS",
}
_HEADER = FileHeader(
    "snapshot", MAGIC, HEADER, (VERSION, VERSION_EXTENDED, VERSION_TYPED), CorruptSnapshotError
)
#: What :func:`scan` calls each value type (a ChunkInfo's ``kind``): TYPE's answers.
KIND_NAMES = ("string", "hash", "list", "set", "zset", "stream")

#: One keyspace as :func:`iter_encode_snapshot` takes it:
#: (number, keys, values, expiry times in ms or None; 0 = no expiry). A value
#: is a ``str`` or a container of :mod:`snapkv.values`.
SpaceColumns = tuple[int, Sequence[str], Sequence[Any], Sequence[int] | None]
#: One chunk's keys, values and expiry times (None: no entry has one), as the encoder cuts them.
_ChunkColumns = tuple[list[str], list[str], list[int] | None]
_T = TypeVar("_T")


# --------------------------------------------------------------------- encoder


def encode(mapping: Mapping[str, str]) -> bytes:
    """Return the whole snapshot of ``mapping`` as bytes.

    :raises TypeError: a key or value is not a ``str``.
    :raises ValueError: an entry is too large for the format (4 GiB per record).
    """
    return b"".join(iter_encode(mapping))


def iter_encode(mapping: Mapping[str, str]) -> Iterator[bytes]:
    """Yield the snapshot of ``mapping`` as pieces whose concatenation is the snapshot.

    At most one chunk is encoded at a time, so writing the pieces as they
    come adds a bounded amount of memory (one chunk, a few MB) on top of the
    mapping. ``mapping`` must not change while the iterator runs.

    :raises TypeError: a key or value is not a ``str``.
    :raises ValueError: an entry is too large for the format (4 GiB per record).
    """
    return iter_encode_columns(mapping, mapping.values())


def iter_encode_columns(keys: Iterable[str], values: Iterable[str]) -> Iterator[bytes]:
    """Like :func:`iter_encode`, for the entries ``zip(keys, values)``.

    Keys must be distinct and both iterables of the same length. Two lists
    of references (16 bytes an entry) are a cheaper point-in-time copy than
    a second dict. The result is always a version-1 snapshot of keyspace 0.

    :raises TypeError: a key or value is not a ``str``.
    :raises ValueError: an entry is too large for the format, or the lengths differ.
    """
    yield _header(VERSION)
    entries, records = yield from _space_records(_iterable_chunks(keys, values))
    yield _framed(TYPE_END, END_BODY.pack(entries, records))


def iter_encode_snapshot(
    spaces: Iterable[SpaceColumns], *, journal_next: int = 0
) -> Iterator[bytes]:
    """Yield the snapshot of several keyspaces, with expiry times, piece by piece.

    Each item of ``spaces`` is ``(number, keys, values, expiries)``: the
    keyspace number (0..2**32-1, strictly increasing from item to item), its
    keys and values in the same order, and either ``None`` (no key of this
    keyspace expires) or one expiry time per key in absolute milliseconds
    since the epoch, where 0 means "never". Empty keyspaces are skipped.
    ``journal_next`` > 0 is recorded in a META record: every journal whose id
    is below it is fully contained in this snapshot.

    The arguments are checked before this returns, so a bad call fails before
    the first byte is written. The snapshot is version 1, byte for byte what
    :func:`iter_encode_columns` writes (plus META), unless a keyspace other
    than 0 holds entries or an entry has an expiry time; then it is version 2.
    A value may also be a hash, list, set or sorted set of :mod:`snapkv.values`
    (written after the keyspace's strings, in CONTAINERS records); then the
    snapshot is version 3. As with :func:`iter_encode`, one chunk at a time is
    encoded, and the sequences (and containers) must not change while the
    iterator runs: the Store's save epoch copies a container before a write.

    :raises TypeError: a key or value is not a ``str`` or container, a number or
        expiry time not an ``int`` (raised while iterating for keys, elements
        and expiry times).
    :raises ValueError: numbers out of order or range, sequences of different
        lengths, an expiry time outside 0..2**64-1, an entry too large, an
        empty container, a NaN score.
    """
    chosen: list[SpaceColumns] = []
    previous = -1
    for number, keys, values, expiries in spaces:
        if not isinstance(number, int):
            raise TypeError(f"keyspace number must be int, not {type(number).__name__}")
        if not previous < number <= U32_MAX:
            raise ValueError(
                f"keyspace numbers must increase within 0..{U32_MAX}: {number} after {previous}"
            )
        previous = number
        if len(values) != len(keys):
            raise ValueError(f"keyspace {number}: {len(keys)} keys but {len(values)} values")
        if expiries is not None and len(expiries) != len(keys):
            raise ValueError(
                f"keyspace {number}: {len(keys)} keys but {len(expiries)} expiry times"
            )
        if len(keys):
            chosen.append((number, keys, values, expiries))
    typed: dict[int, list[codec_types.Typed]] = {}
    for at, (number, keys, values, expiries) in enumerate(chosen):
        if set(map(type, values)) != {str}:
            strings, typed[number] = codec_types.split_by_type(keys, values, expiries)
            chosen[at] = (number, strings[1], strings[2], strings[3])
    if not isinstance(journal_next, int):
        raise TypeError(f"journal_next must be int, not {type(journal_next).__name__}")
    if not 0 <= journal_next <= U64_MAX:
        raise ValueError(f"journal_next {journal_next} is outside 0..2**64-1")
    # Decided before the header is written: any() stops at the first expiry
    # time, so a store where keys expire pays for one scan step, not a pass.
    extended = any(n or (e is not None and any(e)) for n, _k, _v, e in chosen)
    version = VERSION_TYPED if typed else VERSION_EXTENDED if extended else VERSION
    return _encode_spaces(chosen, typed, version, journal_next)


def _encode_spaces(
    spaces: list[SpaceColumns],
    typed: dict[int, list[codec_types.Typed]],
    version: int,
    journal_next: int,
) -> Iterator[bytes]:
    yield _header(version)
    entries = records = 0
    if journal_next:
        yield _framed(TYPE_META, META_BODY.pack(journal_next))
        records += 1
    for number, keys, values, expiries in spaces:
        if number:
            yield _framed(TYPE_KEYSPACE, KEYSPACE_BODY.pack(number))
            records += 1
        if keys:
            chunks = _sequence_chunks(keys, values, expiries)
            space_entries, space_records = yield from _space_records(chunks)
            entries += space_entries
            records += space_records
        for code, typed_keys, typed_values, times in typed.get(number, ()):
            pieces = codec_types.encode_records(
                code,
                typed_keys,
                typed_values,
                times,
                separators=SEPARATORS,
                max_entries=MAX_CHUNK_ENTRIES,
                max_chars=MAX_CHUNK_CHARS,
            )
            for body, text in pieces:
                if len(body) + len(text) > U32_MAX:
                    raise ValueError(
                        f"a record of {len(text)} text bytes exceeds the format's limit"
                    )
                yield _framed(TYPE_CONTAINERS, body, text)
                yield text
                records += 1
            entries += len(typed_keys)
    yield _framed(TYPE_END, END_BODY.pack(entries, records))


def _header(version: int) -> bytes:
    return _HEADER.pack(version)


def _space_records(
    chunks: Iterable[_ChunkColumns],
) -> Generator[bytes, None, tuple[int, int]]:
    """Yield the entries records of one keyspace's chunks; return (entries, records) written."""
    entries = records = 0
    for keys, values, times in chunks:
        column = None if times is None else _expiry_column(times)
        for pieces in _entry_records(keys, values, column):
            yield from pieces
            records += 1
        entries += len(keys)
    return entries, records


def _iterable_chunks(keys: Iterable[str], values: Iterable[str]) -> Iterator[_ChunkColumns]:
    """Cut two iterables into chunks of MAX_CHUNK_ENTRIES entries, checking their lengths."""
    keys_iter = iter(keys)
    values_iter = iter(values)
    while chunk_keys := list(islice(keys_iter, MAX_CHUNK_ENTRIES)):
        chunk_values = list(islice(values_iter, len(chunk_keys)))
        if len(chunk_values) != len(chunk_keys):
            raise ValueError("fewer values than keys")
        yield chunk_keys, chunk_values, None
    if next(values_iter, None) is not None:
        raise ValueError("more values than keys")


def _sequence_chunks(
    keys: Sequence[str], values: Sequence[str], times: Sequence[int] | None
) -> Iterator[_ChunkColumns]:
    """Cut sequences of equal length into chunks by slicing: a C copy, no per-item loop."""
    step = MAX_CHUNK_ENTRIES
    for start in range(0, len(keys), step):
        end = start + step
        chunk_times = None if times is None else _as_list(times[start:end])
        yield _as_list(keys[start:end]), _as_list(values[start:end]), chunk_times


def _as_list(items: Sequence[_T]) -> list[_T]:
    return items if type(items) is list else list(items)


def _expiry_column(times: list[int]) -> bytes | None:
    """Pack one chunk's expiry times as u64 LE with one C call; None if none is set."""
    try:
        column = array(_EXPIRY_ARRAY, times)
    except OverflowError:
        raise ValueError(
            "expiry times must be 0 (none) or milliseconds since the epoch up to 2**64-1"
        ) from None
    except TypeError:
        bad = next((t for t in times if not isinstance(t, int)), None)
        raise TypeError(f"expiry times must be int, not {type(bad).__name__}") from None
    # Every item is an int now; any() stops at the first expiry time. A chunk
    # without one is written as plain ENTRIES, exactly as in format v1.
    if not any(times):
        return None
    if _BIG_ENDIAN:  # pragma: no cover - tested on little-endian machines only
        column.byteswap()
    return column.tobytes()


def _nonzero(column: bytes) -> bytes | None:
    """``column``, or None when every expiry time in it is 0 (bytes.count is a C loop)."""
    return None if column.count(0) == len(column) else column


def _framed(record_type: int, body: bytes, text: bytes = b"") -> bytes:
    """Frame one record whose body is ``body + text``; ``text`` is not copied by the caller."""
    return seal(FRAME_TAIL.pack(len(body) + len(text), record_type) + body, text)


def _entry_records(
    keys: list[str], values: list[str], column: bytes | None = None
) -> Iterator[tuple[bytes, ...]]:
    """Encode one chunk as one or more ENTRIES or ENTRIES_EX records (more if its text is large).

    ``column`` is the chunk's packed expiry column, or None when no entry of
    the chunk has an expiry time.
    """
    count = len(keys)
    strings = keys + values
    try:
        text = SEPARATORS[0].join(strings)
    except TypeError:
        _raise_not_str(strings)
    if len(text) > MAX_CHUNK_CHARS and count > 1:
        half = count // 2
        cut = EXPIRY_SIZE * half
        first = None if column is None else _nonzero(column[:cut])
        second = None if column is None else _nonzero(column[cut:])
        yield from _entry_records(keys[:half], values[:half], first)
        yield from _entry_records(keys[half:], values[half:], second)
        return
    # Invariant for LAYOUT_SEPARATED: the separator occurs exactly at the
    # 2 * count - 1 joins, so no string contains it. Verified, never assumed.
    separator = SEPARATORS[0]
    if text.count(separator) != 2 * count - 1:
        separator = next((c for c in SEPARATORS[1:] if c not in text), "")
        text = separator.join(strings) if separator else ""
    record_type, expiry = (TYPE_ENTRIES, b"") if column is None else (TYPE_ENTRIES_EX, column)
    if separator:
        body = ENTRIES_HEAD.pack(count, LAYOUT_SEPARATED) + expiry + separator.encode("ascii")
    else:
        try:
            lengths = array(_LENGTH_ARRAY, map(len, strings))
        except OverflowError:
            raise ValueError(
                "a string of 2**32 code points or more does not fit the format"
            ) from None
        if _BIG_ENDIAN:  # pragma: no cover - tested on little-endian machines only
            lengths.byteswap()
        body = ENTRIES_HEAD.pack(count, LAYOUT_LENGTHS) + expiry + lengths.tobytes()
        text = "".join(strings)
    data = encode_text(text)
    if len(body) + len(data) > U32_MAX:
        raise ValueError(
            f"entry of {len(data)} encoded bytes exceeds the {U32_MAX}-byte record limit"
        )
    yield _framed(record_type, body, data), data


def _raise_not_str(strings: list[str]) -> None:
    bad = next((s for s in strings if not issubclass(type(s), str)), None)
    raise TypeError(f"snapshot keys and values must be str, not {type(bad).__name__}")


# --------------------------------------------------------------------- decoder


@dataclass(frozen=True)
class Snapshot:
    """Everything a snapshot holds, as :func:`decode_snapshot` returns it.

    ``spaces`` maps each keyspace that holds entries to its entries, in
    snapshot order; ``expires`` maps a keyspace to ``{key: expiry time}`` for
    the keys that have one (absolute milliseconds since the epoch), and holds
    no empty dict; ``journal_next`` is 0 when the snapshot has no META record.
    The codec has no clock: keys already expired are returned like the others.
    A value is a ``str`` or (version 3) a container of :mod:`snapkv.values`.
    """

    spaces: dict[int, dict[str, Any]]
    expires: dict[int, dict[str, int]]
    journal_next: int


@dataclass(frozen=True)
class ChunkInfo:
    """One verified ENTRIES, ENTRIES_EX or CONTAINERS record, as :func:`scan` reports it."""

    offset: int
    size: int
    entries: int  # keys this record completes (0 for a part a later record continues)
    layout: str
    keyspace: int = 0
    expiring: int = 0  # entries of this record with an expiry time
    kind: str = "string"  # the value type of its entries (KIND_NAMES)
    elements: int = 0  # CONTAINERS: fields or members in this record


@dataclass(frozen=True)
class KeyspaceInfo:
    """One keyspace that holds entries, as :func:`scan` reports it."""

    number: int
    entries: int
    expiring: int
    #: keys per value type (KIND_NAMES), the types present only; left out of
    #: equality, so a keyspace compares by its counts as before format v3
    types: dict[str, int] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SnapshotInfo:
    """What :func:`scan` learned from a snapshot that passed every check."""

    version: int
    size: int
    entries: int
    records: int
    chunks: list[ChunkInfo] = field(default_factory=list)
    skipped_records: int = 0
    first_keys: list[str] = field(default_factory=list)
    expiring: int = 0
    keyspaces: list[KeyspaceInfo] = field(default_factory=list)
    journal_next: int = 0
    #: keys per value type over every keyspace (KIND_NAMES), the types present only
    types: dict[str, int] = field(default_factory=dict)
    #: elements (hash fields, list elements, members) per container type present
    elements: dict[str, int] = field(default_factory=dict)


def decode(data: bytes | bytearray | memoryview) -> dict[str, str]:
    """Return the mapping a snapshot of keyspace 0 without expiry times holds.

    Every byte is verified first, exactly as :func:`decode_snapshot` does.

    :raises CorruptSnapshotError: any check in docs/FORMAT.md failed; its
        ``offset`` and ``check`` say where and which. For any input, nothing
        else is raised but the ValueError below, and no allocation is sized
        by an unverified length.
    :raises ValueError: the snapshot is valid but holds keyspaces other than 0,
        expiry times or containers, which a mapping of strings would lose: use
        :func:`decode_snapshot`.
    """
    snapshot = decode_snapshot(data)
    mapping = snapshot.spaces.get(0, {})
    if snapshot.expires or snapshot.spaces.keys() - {0} or set(map(type, mapping.values())) - {str}:
        raise ValueError(
            "snapshot holds keyspaces other than 0, expiry times or containers: use decode_snapshot"
        )
    return mapping


def decode_snapshot(data: bytes | bytearray | memoryview) -> Snapshot:
    """Return everything a snapshot holds, after verifying every byte of it.

    :raises CorruptSnapshotError: any check in docs/FORMAT.md failed; its
        ``offset`` and ``check`` say where and which. Nothing else is raised
        for any input, and no allocation is sized by an unverified length.
    """
    with _collector_paused():
        return _decode_snapshot(data)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a snapshot is decoded.

    Decoding allocates millions of objects that form no reference cycle
    (containers, and a sorted set's (score, member) pairs), and every 700
    allocations of a tracked object start a collection that walks the young
    objects, an older generation now and then the whole heap: measured in
    bench/snapshot.py, a third of the decode time of a typed snapshot. The
    collector is restored as found (left alone if the caller disabled it).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _decode_snapshot(data: bytes | bytearray | memoryview) -> Snapshot:
    reader = _Reader(data)
    spaces: dict[int, dict[str, Any]] = {}
    expires: dict[int, dict[str, int]] = {}
    mapping: dict[str, Any] = {}
    current = -1
    total = 0
    for offset, _size, keyspace, keys, values, column, _kind, _elements in reader.chunks():
        if keyspace != current:  # numbers strictly increase: always a new keyspace
            current, total = keyspace, 0
            mapping = spaces[keyspace] = {}
        mapping.update(zip(keys, values, strict=True))
        total += len(keys)
        if len(mapping) != total:
            raise CorruptSnapshotError("a key appears twice", offset=offset, check="duplicate-key")
        if column is not None:
            # Only the entries with an expiry time, selected in C: compress()
            # keeps the keys whose time is non-zero, filter() those times.
            timed = expires.setdefault(keyspace, {})
            timed.update(zip(compress(keys, column), filter(None, column), strict=True))
    return Snapshot(
        spaces, {n: timed for n, timed in expires.items() if timed}, reader.journal_next
    )


def scan(data: bytes | bytearray | memoryview, *, keys: int = 0) -> SnapshotInfo:
    """Verify a snapshot exactly as :func:`decode_snapshot` does and describe it.

    ``keys`` asks for up to that many keys, in snapshot order (keyspace 0
    first), in ``first_keys``.

    :raises CorruptSnapshotError: as :func:`decode_snapshot`.
    """
    with _collector_paused():
        return _scan(data, keys)


def _scan(data: bytes | bytearray | memoryview, keys: int) -> SnapshotInfo:
    reader = _Reader(data)
    seen: set[str] = set()
    current = -1
    total = 0
    chunks: list[ChunkInfo] = []
    first: list[str] = []
    for offset, size, keyspace, chunk_keys, _values, column, code, elements in reader.chunks():
        if keyspace != current:
            current, total = keyspace, 0
            seen = set()
        seen.update(chunk_keys)
        total += len(chunk_keys)
        if len(seen) != total:
            raise CorruptSnapshotError("a key appears twice", offset=offset, check="duplicate-key")
        expiring = 0 if column is None else len(column) - column.count(0)
        layout = _layout_name(reader.view, offset, code)
        kind = KIND_NAMES[code]
        chunks.append(
            ChunkInfo(offset, size, len(chunk_keys), layout, keyspace, expiring, kind, elements)
        )
        if len(first) < keys:
            first.extend(chunk_keys[: keys - len(first)])
    spaces: dict[int, list[int]] = {}
    types: dict[int, dict[str, int]] = {}
    elements_by_kind: dict[str, int] = {}
    for chunk in chunks:
        counts = spaces.setdefault(chunk.keyspace, [0, 0])
        counts[0] += chunk.entries
        counts[1] += chunk.expiring
        space_types = types.setdefault(chunk.keyspace, {})
        space_types[chunk.kind] = space_types.get(chunk.kind, 0) + chunk.entries
        if chunk.kind != "string":
            elements_by_kind[chunk.kind] = elements_by_kind.get(chunk.kind, 0) + chunk.elements
    every_type: dict[str, int] = {}
    for space_types in types.values():
        for kind, count in space_types.items():
            every_type[kind] = every_type.get(kind, 0) + count
    return SnapshotInfo(
        version=reader.version,
        size=len(reader.view),
        entries=sum(c.entries for c in chunks),
        records=reader.records,
        chunks=chunks,
        skipped_records=reader.skipped,
        first_keys=first,
        expiring=sum(c.expiring for c in chunks),
        keyspaces=[KeyspaceInfo(n, e, x, types[n]) for n, (e, x) in spaces.items()],
        journal_next=reader.journal_next,
        types=every_type,
        elements=elements_by_kind,
    )


def peek_journal_next(blob: bytes | bytearray | memoryview) -> int | None:
    """The ``journal_next`` of a snapshot, read from its first record without decoding the rest.

    For removing the journals a published snapshot covers, where decoding
    the whole snapshot again would cost as much as writing it. Nothing but
    the first record is verified, so the answer errs on the side that keeps
    journals:

    - the META record's ``journal_next`` when the first record is META and
      passes its frame checks (CRC included);
    - ``0`` when the first record is not META: a snapshot without one
      (every v1 snapshot) contains no journal;
    - ``None`` when the first record is a META that is cut short, too short
      or fails its CRC: a wrong answer here would delete journals a
      fallback to an older snapshot still needs.
    """
    view = as_view(blob)
    if len(view) < HEADER_SIZE + FRAME_SIZE:
        return None
    if view[HEADER_SIZE + FRAME_SIZE - 1] != TYPE_META:  # the first record's type byte
        return 0
    try:
        _record_type, end = check_frame(view, HEADER_SIZE, CorruptSnapshotError)
    except CorruptSnapshotError:
        return None
    body = view[HEADER_SIZE + FRAME_SIZE : end]
    if len(body) < META_BODY.size:
        return None
    return int(META_BODY.unpack_from(body)[0])


def _layout_name(view: memoryview, offset: int, code: int) -> str:
    layout = view[offset + FRAME_SIZE + (6 if code else 4)]
    return "separated" if layout == LAYOUT_SEPARATED else "lengths"


#: (record offset, record size, keyspace, keys, values, expiry column or None,
#: value type code (0: strings), elements in the record (0 for strings))
_Chunk = tuple[int, int, int, list[str], list[Any], list[int] | None, int, int]


class _Reader:
    """Walks one snapshot, verifying every record before anything uses it.

    The header is checked on construction; :meth:`chunks` then yields the
    entries records and fills in ``journal_next``, ``records`` and
    ``skipped`` on the way.
    """

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self.view = as_view(data)
        self.version = int(_HEADER.check(self.view)[0])
        self.journal_next = 0
        self.records = 0
        self.skipped = 0

    def chunks(self) -> Iterator[_Chunk]:
        """Yield each ENTRIES / ENTRIES_EX record decoded, then verify END.

        Every check happens before the bytes it guards are used; the final
        checks (END counts, no trailing bytes) run when the iterator is
        exhausted, so only a caller that consumes everything has a verified
        snapshot. The caller checks for duplicate keys before asking for the
        next record, as FORMAT.md orders the checks.
        """
        view = self.view
        size = len(view)
        extended = self.version >= VERSION_EXTENDED
        typed = self.version >= VERSION_TYPED
        parts = codec_types.Parts()
        pos = HEADER_SIZE
        entries = records = keyspace = 0
        while True:
            if pos == size:
                raise CorruptSnapshotError(
                    "snapshot ends without an END record", offset=pos, check="end-missing"
                )
            record_type, end = check_frame(view, pos, CorruptSnapshotError)
            body = view[pos + FRAME_SIZE : end]
            if parts.open and record_type != TYPE_CONTAINERS:
                raise CorruptSnapshotError(
                    "a value cut into parts ends before its last part",
                    offset=pos,
                    check="continuation",
                )
            if record_type == TYPE_ENTRIES:
                keys, values, _ = _decode_entries(body, pos + FRAME_SIZE, expiry=False)
                entries += len(keys)
                yield pos, end - pos, keyspace, keys, values, None, 0, 0
            elif record_type == TYPE_ENTRIES_EX and extended:
                keys, values, column = _decode_entries(body, pos + FRAME_SIZE, expiry=True)
                entries += len(keys)
                yield pos, end - pos, keyspace, keys, values, column, 0, 0
            elif record_type == TYPE_CONTAINERS and typed:
                chunk = parts.add(codec_types.decode_body(body, pos + FRAME_SIZE), pos)
                entries += len(chunk[0])
                yield pos, end - pos, keyspace, *chunk
            elif record_type == TYPE_KEYSPACE and extended:
                keyspace = _check_keyspace(body, pos, keyspace)
            elif record_type == TYPE_META:
                self.journal_next = _check_meta(body, pos)
            elif record_type == TYPE_END:
                _check_end(body, pos, entries, records)
                if end != size:
                    raise CorruptSnapshotError(
                        f"{size - end} bytes after the END record",
                        offset=end,
                        check="trailing-bytes",
                    )
                self.records = records
                return
            elif record_type in _TYPE_NAMES:
                # A version-1 header promises that every v1 reader can read the
                # file; a v2 record inside it means the header is lying.
                raise CorruptSnapshotError(
                    f"record type 0x{record_type:02x} ({_TYPE_NAMES[record_type]}) "
                    f"in a version-{self.version} snapshot",
                    offset=pos,
                    check="record-type",
                )
            elif not record_type & OPTIONAL_TYPE_BIT:
                # A required type this reader does not know could change the
                # meaning of everything: refuse rather than misread.
                raise CorruptSnapshotError(
                    f"unknown required record type 0x{record_type:02x} "
                    "(written by a newer snapkv?)",
                    offset=pos,
                    check="record-type",
                )
            else:
                self.skipped += 1
            records += 1
            pos = end


def _check_meta(body: memoryview, pos: int) -> int:
    """Verify a META record at ``pos``; return its journal_next."""
    if pos != HEADER_SIZE:
        raise CorruptSnapshotError(
            "META record is not the first record", offset=pos, check="meta-position"
        )
    if len(body) < META_BODY.size:
        raise CorruptSnapshotError(
            f"META body has {len(body)} bytes, needs at least {META_BODY.size}",
            offset=pos,
            check="meta-length",
        )
    return int(META_BODY.unpack_from(body, 0)[0])


def _check_keyspace(body: memoryview, pos: int, current: int) -> int:
    """Verify a KEYSPACE record at ``pos``; return the keyspace it starts."""
    if len(body) != KEYSPACE_BODY.size:
        raise CorruptSnapshotError(
            f"KEYSPACE body has {len(body)} bytes, expected {KEYSPACE_BODY.size}",
            offset=pos,
            check="keyspace-length",
        )
    (number,) = KEYSPACE_BODY.unpack(body)
    if number <= current:
        raise CorruptSnapshotError(
            f"keyspace {number} follows keyspace {current}: numbers must strictly increase",
            offset=pos + FRAME_SIZE,
            check="keyspace-order",
        )
    return int(number)


def _check_end(body: memoryview, pos: int, entries: int, records: int) -> None:
    if len(body) != END_BODY.size:
        raise CorruptSnapshotError(
            f"END body has {len(body)} bytes, expected {END_BODY.size}",
            offset=pos,
            check="end-length",
        )
    want_entries, want_records = END_BODY.unpack(body)
    if (want_entries, want_records) != (entries, records):
        raise CorruptSnapshotError(
            f"END promises {want_entries} entries in {want_records} records, "
            f"found {entries} in {records}",
            offset=pos,
            check="end-count",
        )


def _decode_entries(
    body: memoryview, base: int, *, expiry: bool
) -> tuple[list[str], list[str], list[int] | None]:
    """Decode one ENTRIES (or, with ``expiry``, ENTRIES_EX) body that starts at offset ``base``."""
    name = "ENTRIES_EX" if expiry else "ENTRIES"
    if len(body) < ENTRIES_HEAD.size:
        raise CorruptSnapshotError(
            f"{name} body has {len(body)} bytes, needs {ENTRIES_HEAD.size}",
            offset=base,
            check="entries-header",
        )
    count, layout = ENTRIES_HEAD.unpack_from(body, 0)
    if count == 0:
        raise CorruptSnapshotError(
            f"{name} record with zero entries", offset=base, check="entry-count"
        )
    if layout not in (LAYOUT_SEPARATED, LAYOUT_LENGTHS):
        raise CorruptSnapshotError(
            f"unknown {name} layout {layout}", offset=base + 4, check="layout"
        )
    pos = ENTRIES_HEAD.size
    column = None
    if expiry:
        width = EXPIRY_SIZE * count
        # Checked before reading: count is not trusted to size anything.
        if len(body) - pos < width:
            raise CorruptSnapshotError(
                f"expiry column of {count} entries needs {width} bytes, {len(body) - pos} left",
                offset=base + pos,
                check="expiry-column",
            )
        packed = array(_EXPIRY_ARRAY)
        packed.frombytes(body[pos : pos + width])
        if _BIG_ENDIAN:  # pragma: no cover
            packed.byteswap()
        # One int object per entry, made once in C (0 is a shared object), so
        # the caller's passes over the column allocate nothing more.
        column = packed.tolist()
        pos += width
    if layout == LAYOUT_SEPARATED:
        if len(body) <= pos or body[pos] >= 0x80:
            raise CorruptSnapshotError(
                "separator missing or not ASCII", offset=base + pos, check="separator"
            )
        separator = chr(body[pos])
        text = _decode_utf8(body[pos + 1 :], base + pos + 1)
        # Count before splitting: a lying count must not make split()
        # allocate millions of strings only to be refused afterwards.
        if text.count(separator) != 2 * count - 1:
            raise CorruptSnapshotError(
                f"text splits into {text.count(separator) + 1} strings, expected {2 * count}",
                offset=base,
                check="entry-count",
            )
        strings = text.split(separator)
    else:
        column_size = 8 * count
        # Checked before the lengths are read: count is not trusted to size anything.
        if len(body) - pos < column_size:
            raise CorruptSnapshotError(
                f"lengths column of {count} entries needs {column_size} bytes, "
                f"{len(body) - pos} left",
                offset=base + pos,
                check="lengths",
            )
        lengths = array(_LENGTH_ARRAY)
        lengths.frombytes(body[pos : pos + column_size])
        if _BIG_ENDIAN:  # pragma: no cover
            lengths.byteswap()
        text = _decode_utf8(body[pos + column_size :], base + pos + column_size)
        if sum(lengths) != len(text):
            raise CorruptSnapshotError(
                f"lengths add up to {sum(lengths)} code points, text has {len(text)}",
                offset=base + pos,
                check="lengths",
            )
        ends = list(accumulate(lengths))
        starts = [0, *ends[:-1]]
        strings = list(map(getitem, repeat(text), map(slice, starts, ends)))
    return strings[:count], strings[count:], column


def _decode_utf8(data: memoryview, offset: int) -> str:
    return checked_text(data, offset, CorruptSnapshotError)
