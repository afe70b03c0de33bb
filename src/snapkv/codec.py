"""Snapshot codec, format v1: a mapping of str to str <-> bytes. Pure: no I/O.

The byte format is specified in ``docs/FORMAT.md``; every constant below
mirrors a name there, and every check the decoder makes is listed there by
the same ``check`` name that :class:`~snapkv.errors.CorruptSnapshotError` carries.

Shape of a snapshot::

    HEADER  (magic, version, flags, crc)
    ENTRIES record *        each: up to 4,096 entries, own length and CRC-32
    END     record          total entries and records, so truncation at a
                            record boundary is caught too

Why columnar chunks: an ENTRIES record stores all keys of the chunk, then all
values, as ONE UTF-8 text. Encoding is then one ``str.join`` and one
``str.encode`` per chunk, and decoding one ``bytes.decode`` and one
``str.split`` per chunk: C loops over 4,096 entries instead of a Python loop
per entry. A per-chunk (not per-snapshot) text keeps memory bounded while
saving, and keeps one emoji from widening every string of the snapshot to
four bytes per character while decoding.

Why a separator can never be fooled: the encoder only uses a separator
after verifying, by counting, that it occurs in none of the chunk's strings;
the decoder verifies that splitting yields exactly ``2 * count`` strings. If
every candidate separator occurs in the data, the chunk falls back to the
LENGTHS layout, where a column of code-point lengths decides the boundaries.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import accumulate, islice, repeat
from operator import getitem
from struct import Struct

from snapkv._binary import U32, U32_MAX, crc32, decode_text, encode_text
from snapkv.errors import CorruptSnapshotError

__all__ = [
    "MAGIC",
    "VERSION",
    "ChunkInfo",
    "SnapshotInfo",
    "decode",
    "encode",
    "iter_encode",
    "iter_encode_columns",
    "scan",
]

#: First eight bytes of every snapshot. The high bit catches 7-bit channels,
#: CR LF and LF catch newline translation, 0x1A stops DOS ``type``.
MAGIC = b"\x89SKV\r\n\x1a\n"
#: Bumped only when a v1 reader could misread a new file; see FORMAT.md.
VERSION = 1

HEADER = Struct("<8sHHI")  # magic, version, flags, crc32 of the first 12 bytes
HEADER_SIZE = HEADER.size  # 16
FRAME = Struct("<IIB")  # crc32, body length, record type
FRAME_SIZE = FRAME.size  # 9
FRAME_TAIL = Struct("<IB")  # the frame fields the CRC covers: length, type

TYPE_ENTRIES = 0x01
TYPE_END = 0x02
#: Record types with this bit set may be skipped by readers that do not know them.
OPTIONAL_TYPE_BIT = 0x80

ENTRIES_HEAD = Struct("<IB")  # entry count, layout
LAYOUT_LENGTHS = 0
LAYOUT_SEPARATED = 1
END_BODY = Struct("<QI")  # total entries, records before END

#: Entries per ENTRIES record, at most. Measured over 1,000,000 entries
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
_BIG_ENDIAN = sys.byteorder == "big"


# --------------------------------------------------------------------- encoder


def encode(mapping: Mapping[str, str]) -> bytes:
    """Return the whole snapshot of ``mapping`` as bytes.

    :raises TypeError: a key or value is not a ``str``.
    :raises ValueError: an entry is too large for format v1 (4 GiB per record).
    """
    return b"".join(iter_encode(mapping))


def iter_encode(mapping: Mapping[str, str]) -> Iterator[bytes]:
    """Yield the snapshot of ``mapping`` as pieces whose concatenation is the snapshot.

    At most one chunk is encoded at a time, so writing the pieces as they
    come adds a bounded amount of memory (one chunk, a few MB) on top of the
    mapping. ``mapping`` must not change while the iterator runs.

    :raises TypeError: a key or value is not a ``str``.
    :raises ValueError: an entry is too large for format v1 (4 GiB per record).
    """
    return iter_encode_columns(mapping, mapping.values())


def iter_encode_columns(keys: Iterable[str], values: Iterable[str]) -> Iterator[bytes]:
    """Like :func:`iter_encode`, for the entries ``zip(keys, values)``.

    Keys must be distinct and both iterables of the same length. This is the
    form ``Store.save`` uses: two lists of references (16 bytes an entry)
    are a cheaper point-in-time copy than a second dict.

    :raises TypeError: a key or value is not a ``str``.
    :raises ValueError: an entry is too large for format v1, or the lengths differ.
    """
    head = HEADER.pack(MAGIC, VERSION, 0, 0)[:12]
    yield head + U32.pack(crc32(head))
    entries = records = 0
    keys_iter = iter(keys)
    values_iter = iter(values)
    while keys := list(islice(keys_iter, MAX_CHUNK_ENTRIES)):
        values = list(islice(values_iter, len(keys)))
        if len(values) != len(keys):
            raise ValueError("fewer values than keys")
        for pieces in _entry_records(keys, values):
            yield from pieces
            records += 1
        entries += len(keys)
    if next(values_iter, None) is not None:
        raise ValueError("more values than keys")
    yield _frame(TYPE_END, END_BODY.pack(entries, records))


def _frame(record_type: int, body: bytes, text: bytes = b"") -> bytes:
    """Frame one record whose body is ``body + text``; ``text`` is not copied by the caller."""
    tail = FRAME_TAIL.pack(len(body) + len(text), record_type)
    return U32.pack(crc32(text, crc32(body, crc32(tail)))) + tail + body


def _entry_records(keys: list[str], values: list[str]) -> Iterator[tuple[bytes, ...]]:
    """Encode one chunk as one or more ENTRIES records (more if its text is too large)."""
    count = len(keys)
    strings = keys + values
    try:
        text = SEPARATORS[0].join(strings)
    except TypeError:
        _raise_not_str(strings)
    if len(text) > MAX_CHUNK_CHARS and count > 1:
        half = count // 2
        yield from _entry_records(keys[:half], values[:half])
        yield from _entry_records(keys[half:], values[half:])
        return
    # Invariant for LAYOUT_SEPARATED: the separator occurs exactly at the
    # 2 * count - 1 joins, so no string contains it. Verified, never assumed.
    separator = SEPARATORS[0]
    if text.count(separator) != 2 * count - 1:
        separator = next((c for c in SEPARATORS[1:] if c not in text), "")
        text = separator.join(strings) if separator else ""
    if separator:
        body = ENTRIES_HEAD.pack(count, LAYOUT_SEPARATED) + separator.encode("ascii")
    else:
        try:
            lengths = array(_LENGTH_ARRAY, map(len, strings))
        except OverflowError:
            raise ValueError(
                "a string of 2**32 code points or more does not fit format v1"
            ) from None
        if _BIG_ENDIAN:  # pragma: no cover - tested on little-endian machines only
            lengths.byteswap()
        body = ENTRIES_HEAD.pack(count, LAYOUT_LENGTHS) + lengths.tobytes()
        text = "".join(strings)
    data = encode_text(text)
    if len(body) + len(data) > U32_MAX:
        raise ValueError(
            f"entry of {len(data)} encoded bytes exceeds the {U32_MAX}-byte record limit of v1"
        )
    yield _frame(TYPE_ENTRIES, body, data), data


def _raise_not_str(strings: list[str]) -> None:
    bad = next((s for s in strings if not issubclass(type(s), str)), None)
    raise TypeError(f"snapshot keys and values must be str, not {type(bad).__name__}")


# --------------------------------------------------------------------- decoder


@dataclass(frozen=True)
class ChunkInfo:
    """One verified ENTRIES record, as :func:`scan` reports it."""

    offset: int
    size: int
    entries: int
    layout: str


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


def decode(data: bytes | bytearray | memoryview) -> dict[str, str]:
    """Return the mapping a snapshot holds, after verifying every byte of it.

    :raises CorruptSnapshotError: any check in docs/FORMAT.md failed; its
        ``offset`` and ``check`` say where and which. Nothing else is raised
        for any input, and no allocation is sized by an unverified length.
    """
    result: dict[str, str] = {}
    total = 0
    for offset, _size, keys, values in _iter_entries(data):
        result.update(zip(keys, values, strict=True))
        total += len(keys)
        if len(result) != total:
            raise CorruptSnapshotError("a key appears twice", offset=offset, check="duplicate-key")
    return result


def scan(data: bytes | bytearray | memoryview, *, keys: int = 0) -> SnapshotInfo:
    """Verify a snapshot exactly as :func:`decode` does and describe it.

    ``keys`` asks for up to that many keys, in snapshot order, in ``first_keys``.

    :raises CorruptSnapshotError: as :func:`decode`.
    """
    seen: set[str] = set()
    total = 0
    chunks: list[ChunkInfo] = []
    first: list[str] = []
    view = _view(data)
    for offset, size, chunk_keys, _values in _iter_entries(view):
        seen.update(chunk_keys)
        chunks.append(ChunkInfo(offset, size, len(chunk_keys), _layout_name(view, offset)))
        total += len(chunk_keys)
        if len(seen) != total:
            raise CorruptSnapshotError("a key appears twice", offset=offset, check="duplicate-key")
        if len(first) < keys:
            first.extend(chunk_keys[: keys - len(first)])
    records = U32.unpack_from(view, len(view) - 4)[0]
    return SnapshotInfo(
        version=VERSION,
        size=len(view),
        entries=len(seen),
        records=records,
        chunks=chunks,
        skipped_records=records - len(chunks),
        first_keys=first,
    )


def _layout_name(view: memoryview, offset: int) -> str:
    layout = view[offset + FRAME_SIZE + 4]
    return "separated" if layout == LAYOUT_SEPARATED else "lengths"


def _view(data: bytes | bytearray | memoryview) -> memoryview:
    view = memoryview(data)
    if not view.c_contiguous:  # zlib and str() need contiguous memory: copy a strided view
        view = memoryview(view.tobytes())
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


def _iter_entries(
    data: bytes | bytearray | memoryview,
) -> Iterator[tuple[int, int, list[str], list[str]]]:
    """Yield (offset, record size, keys, values) per ENTRIES record, then verify END.

    Every check happens before the bytes it guards are used; the final
    checks (END counts, no trailing bytes) run when the iterator is exhausted,
    so only a caller that consumes everything has a verified snapshot.
    """
    view = _view(data)
    size = len(view)
    _check_header(view)
    pos = HEADER_SIZE
    entries = records = 0
    while True:
        if size - pos < FRAME_SIZE:
            if pos == size:
                raise CorruptSnapshotError(
                    "snapshot ends without an END record", offset=pos, check="end-missing"
                )
            raise CorruptSnapshotError(
                f"record header needs {FRAME_SIZE} bytes, {size - pos} left",
                offset=pos,
                check="record-header",
            )
        stored_crc, length, record_type = FRAME.unpack_from(view, pos)
        end = pos + FRAME_SIZE + length
        if end > size:
            # The length itself may be the damaged field: nothing after it is trusted.
            raise CorruptSnapshotError(
                f"record length {length} runs past the end ({size - pos - FRAME_SIZE} bytes left)",
                offset=pos,
                check="record-length",
            )
        actual_crc = crc32(view[pos + 4 : end])
        if actual_crc != stored_crc:
            raise CorruptSnapshotError(
                f"record checksum mismatch: stored {stored_crc:08x}, computed {actual_crc:08x}",
                offset=pos,
                check="record-crc",
            )
        body = view[pos + FRAME_SIZE : end]
        if record_type == TYPE_ENTRIES:
            keys, values = _decode_entries(body, pos + FRAME_SIZE)
            entries += len(keys)
            yield pos, end - pos, keys, values
        elif record_type == TYPE_END:
            _check_end(body, pos, entries, records)
            if end != size:
                raise CorruptSnapshotError(
                    f"{size - end} bytes after the END record", offset=end, check="trailing-bytes"
                )
            return
        elif not record_type & OPTIONAL_TYPE_BIT:
            # A required type this reader does not know could change the
            # meaning of everything: refuse rather than misread.
            raise CorruptSnapshotError(
                f"unknown required record type 0x{record_type:02x} (written by a newer snapkv?)",
                offset=pos,
                check="record-type",
            )
        records += 1
        pos = end


def _check_header(view: memoryview) -> None:
    if len(view) < HEADER_SIZE:
        if bytes(view[:8]) != MAGIC[: min(8, len(view))]:
            raise CorruptSnapshotError("not a snapkv snapshot: bad magic", offset=0, check="magic")
        raise CorruptSnapshotError(
            f"header needs {HEADER_SIZE} bytes, snapshot has {len(view)}",
            offset=0,
            check="header-length",
        )
    magic, version, flags, stored_crc = HEADER.unpack_from(view, 0)
    if magic != MAGIC:
        raise CorruptSnapshotError(
            f"not a snapkv snapshot: bad magic {magic.hex()}", offset=0, check="magic"
        )
    if crc32(view[:12]) != stored_crc:
        raise CorruptSnapshotError("header checksum mismatch", offset=12, check="header-crc")
    if version != VERSION:
        raise CorruptSnapshotError(
            f"unsupported format version {version} (this reader knows {VERSION}; "
            "written by a newer snapkv?)",
            offset=8,
            check="version",
        )
    if flags:
        raise CorruptSnapshotError(
            f"reserved header flags 0x{flags:04x} are set", offset=10, check="flags"
        )


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


def _decode_entries(body: memoryview, base: int) -> tuple[list[str], list[str]]:
    """Decode one ENTRIES body that starts at snapshot offset ``base``."""
    if len(body) < ENTRIES_HEAD.size:
        raise CorruptSnapshotError(
            f"ENTRIES body has {len(body)} bytes, needs {ENTRIES_HEAD.size}",
            offset=base,
            check="entries-header",
        )
    count, layout = ENTRIES_HEAD.unpack_from(body, 0)
    if count == 0:
        raise CorruptSnapshotError(
            "ENTRIES record with zero entries", offset=base, check="entry-count"
        )
    pos = ENTRIES_HEAD.size
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
    elif layout == LAYOUT_LENGTHS:
        column = 8 * count
        # Checked before the lengths are read: count is not trusted to size anything.
        if len(body) - pos < column:
            raise CorruptSnapshotError(
                f"lengths column of {count} entries needs {column} bytes, {len(body) - pos} left",
                offset=base + pos,
                check="lengths",
            )
        lengths = array(_LENGTH_ARRAY)
        lengths.frombytes(body[pos : pos + column])
        if _BIG_ENDIAN:  # pragma: no cover
            lengths.byteswap()
        text = _decode_utf8(body[pos + column :], base + pos + column)
        if sum(lengths) != len(text):
            raise CorruptSnapshotError(
                f"lengths add up to {sum(lengths)} code points, text has {len(text)}",
                offset=base + pos,
                check="lengths",
            )
        ends = list(accumulate(lengths))
        starts = [0, *ends[:-1]]
        strings = list(map(getitem, repeat(text), map(slice, starts, ends)))
    else:
        raise CorruptSnapshotError(
            f"unknown ENTRIES layout {layout}", offset=base + 4, check="layout"
        )
    return strings[:count], strings[count:]


def _decode_utf8(data: memoryview, offset: int) -> str:
    try:
        return decode_text(data)
    except UnicodeDecodeError as exc:
        raise CorruptSnapshotError(
            f"text is not valid UTF-8: {exc.reason}",
            offset=offset + exc.start,
            check="text-utf8",
        ) from None
