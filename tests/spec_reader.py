"""A second reader of snapkv snapshot formats 1 and 2, written from docs/FORMAT.md alone.

It shares no code with snapkv: every constant, field and check below comes from
the document, so if this reader and ``snapkv.codec.decode_snapshot`` agree, the
document says everything a reader needs. It is deliberately simple and slow: ``struct``,
``zlib.crc32`` and Python loops, including its own UTF-8 decoder built from the
byte table in section 4. Any failed check raises :class:`SpecReaderError`, a
``ValueError`` carrying the check name and offset of section 8.
"""

from __future__ import annotations

import struct
import zlib
from typing import NamedTuple

# Section 2 and section 10.
MAGIC = bytes([0x89, 0x53, 0x4B, 0x56, 0x0D, 0x0A, 0x1A, 0x0A])
VERSION = 1
VERSION_EXTENDED = 2
HEADER_SIZE = 16
FRAME_SIZE = 9
TYPE_ENTRIES = 0x01
TYPE_END = 0x02
TYPE_ENTRIES_EX = 0x03
TYPE_KEYSPACE = 0x04
TYPE_META = 0x81
OPTIONAL_TYPE_BIT = 0x80
LAYOUT_LENGTHS = 0
LAYOUT_SEPARATED = 1
END_BODY_SIZE = 12
KEYSPACE_BODY_SIZE = 4
META_BODY_SIZE = 8  # at least; later bytes are ignored


class SpecReaderError(ValueError):
    """The snapshot failed check ``check`` at byte ``offset`` (FORMAT.md section 8)."""

    def __init__(self, check: str, offset: int) -> None:
        super().__init__(f"{check} at offset {offset}")
        self.check = check
        self.offset = offset


class Record(NamedTuple):
    """One record as read: where it starts, its type, and for entries records their
    count, layout, keyspace and how many have an expiry time."""

    offset: int
    type: int
    entries: int = 0
    layout: int = -1
    keyspace: int = 0
    expiring: int = 0


class Snapshot(NamedTuple):
    """Everything read: ``mapping`` is keyspace 0 (section 3), ``spaces`` every keyspace
    that has entries, ``expires`` the non-zero expiry times by keyspace and key."""

    mapping: dict[str, str]
    records: list[Record]
    version: int
    spaces: dict[int, dict[str, str]]
    expires: dict[int, dict[str, int]]
    journal_next: int


def read_snapshot(data: bytes) -> dict[str, str]:
    """Return keyspace 0 of ``data``; raise :class:`SpecReaderError` if any check fails."""
    return read_snapshot_records(data).mapping


def read_snapshot_all(
    data: bytes,
) -> tuple[dict[int, dict[str, str]], dict[int, dict[str, int]], int]:
    """Return (spaces, expires, journal_next) of ``data``, the fields of codec.Snapshot."""
    result = read_snapshot_records(data)
    return result.spaces, result.expires, result.journal_next


def read_snapshot_records(data: bytes) -> Snapshot:
    """Read everything ``data`` holds, and also list the records, END excluded."""
    data = bytes(data)
    n = len(data)

    # Header: checks 1 to 5, in this order.
    if n < HEADER_SIZE:
        if data[:8] != MAGIC[: min(8, n)]:
            raise SpecReaderError("magic", 0)
        raise SpecReaderError("header-length", 0)
    if data[0:8] != MAGIC:
        raise SpecReaderError("magic", 0)
    version, flags, header_crc = struct.unpack("<HHI", data[8:16])
    if zlib.crc32(data[0:12]) != header_crc:
        raise SpecReaderError("header-crc", 12)
    if version not in (VERSION, VERSION_EXTENDED):
        raise SpecReaderError("version", 8)
    if flags != 0:
        raise SpecReaderError("flags", 10)

    spaces: dict[int, dict[str, str]] = {}
    expires: dict[int, dict[str, int]] = {}
    records: list[Record] = []
    entries_read = 0
    keyspace = 0  # section 3: records before the first KEYSPACE belong to keyspace 0
    journal_next = 0
    pos = HEADER_SIZE
    while True:
        # The frame: checks 6 to 10.
        if pos == n:
            raise SpecReaderError("end-missing", pos)
        if n - pos < FRAME_SIZE:
            raise SpecReaderError("record-header", pos)
        crc, length, record_type = struct.unpack("<IIB", data[pos : pos + FRAME_SIZE])
        end = pos + FRAME_SIZE + length
        if end > n:
            raise SpecReaderError("record-length", pos)
        if zlib.crc32(data[pos + 4 : end]) != crc:
            raise SpecReaderError("record-crc", pos)
        body = data[pos + FRAME_SIZE : end]
        body_offset = pos + FRAME_SIZE
        known = {TYPE_ENTRIES, TYPE_END}
        if version == VERSION_EXTENDED:
            known |= {TYPE_ENTRIES_EX, TYPE_KEYSPACE}

        if record_type & OPTIONAL_TYPE_BIT == 0 and record_type not in known:
            raise SpecReaderError("record-type", pos)
        if record_type in (TYPE_ENTRIES, TYPE_ENTRIES_EX):
            keys, values, times, layout = _read_entries(
                body, body_offset, with_expiry=record_type == TYPE_ENTRIES_EX
            )
            # Check 23, once the whole record is decoded, per keyspace.
            mapping = spaces.setdefault(keyspace, {})
            for key, value, at in zip(keys, values, times, strict=True):
                if key in mapping:
                    raise SpecReaderError("duplicate-key", pos)
                mapping[key] = value
                if at != 0:
                    expires.setdefault(keyspace, {})[key] = at
            entries_read += len(keys)
            expiring = sum(1 for at in times if at != 0)
            records.append(Record(pos, record_type, len(keys), layout, keyspace, expiring))
        elif record_type == TYPE_KEYSPACE:
            # Checks 24 and 25.
            if length != KEYSPACE_BODY_SIZE:
                raise SpecReaderError("keyspace-length", pos)
            (number,) = struct.unpack("<I", body)
            if number <= keyspace:
                raise SpecReaderError("keyspace-order", body_offset)
            keyspace = number
            records.append(Record(pos, record_type, keyspace=number))
        elif record_type == TYPE_META:
            # Checks 11 and 12.
            if pos != HEADER_SIZE:
                raise SpecReaderError("meta-position", pos)
            if length < META_BODY_SIZE:
                raise SpecReaderError("meta-length", pos)
            (journal_next,) = struct.unpack("<Q", body[:META_BODY_SIZE])
            records.append(Record(pos, record_type))
        elif record_type == TYPE_END:
            # Checks 26 to 28.
            if length != END_BODY_SIZE:
                raise SpecReaderError("end-length", pos)
            total, records_before = struct.unpack("<QI", body)
            if total != entries_read or records_before != len(records):
                raise SpecReaderError("end-count", pos)
            if end != n:
                raise SpecReaderError("trailing-bytes", end)
            return Snapshot(spaces.get(0, {}), records, version, spaces, expires, journal_next)
        else:
            records.append(Record(pos, record_type))  # optional: skipped, but counted for END
        pos = end


def _read_entries(
    body: bytes, base: int, *, with_expiry: bool
) -> tuple[list[str], list[str], list[int], int]:
    """Checks 13 to 22 on one ENTRIES or ENTRIES_EX body starting at snapshot offset ``base``.

    Returns keys, values, expiry times (all 0 for ENTRIES) and the layout.
    """
    if len(body) < 5:
        raise SpecReaderError("entries-header", base)
    count, layout = struct.unpack("<IB", body[0:5])
    if count == 0:
        raise SpecReaderError("entry-count", base)
    if layout not in (LAYOUT_SEPARATED, LAYOUT_LENGTHS):
        raise SpecReaderError("layout", base + 4)
    d = 5  # D - B: where layout_data starts in the body
    times = [0] * count
    if with_expiry:
        if len(body) - 5 < 8 * count:
            raise SpecReaderError("expiry-column", base + 5)
        times = list(struct.unpack(f"<{count}Q", body[5 : 5 + 8 * count]))
        d = 5 + 8 * count

    if layout == LAYOUT_SEPARATED:
        if len(body) <= d or body[d] >= 0x80:
            raise SpecReaderError("separator", base + d)
        separator = chr(body[d])
        strings = decode_text(body[d + 1 :], base + d + 1).split(separator)
        if len(strings) != 2 * count:
            raise SpecReaderError("entry-count", base)
    else:
        column = 8 * count
        if len(body) - d < column:
            raise SpecReaderError("lengths", base + d)
        lengths = struct.unpack(f"<{2 * count}I", body[d : d + column])
        text = decode_text(body[d + column :], base + d + column)
        if sum(lengths) != len(text):
            raise SpecReaderError("lengths", base + d)
        strings = []
        start = 0
        for length in lengths:
            strings.append(text[start : start + length])
            start += length
    return strings[:count], strings[count:], times, layout


# Section 4: first byte -> (sequence size, allowed range of the second byte).
# Every further byte is 80..BF. E1..EF include ED, whose 80..BF second byte
# admits the surrogates U+D800..U+DFFF as lone code points.
_SEQUENCES: dict[int, tuple[int, int, int]] = {}
for _b in range(0xC2, 0xE0):
    _SEQUENCES[_b] = (2, 0x80, 0xBF)
_SEQUENCES[0xE0] = (3, 0xA0, 0xBF)
for _b in range(0xE1, 0xF0):
    _SEQUENCES[_b] = (3, 0x80, 0xBF)
_SEQUENCES[0xF0] = (4, 0x90, 0xBF)
for _b in range(0xF1, 0xF4):
    _SEQUENCES[_b] = (4, 0x80, 0xBF)
_SEQUENCES[0xF4] = (4, 0x80, 0x8F)


def decode_text(data: bytes, base: int) -> str:
    """Decode text per FORMAT.md section 4; ``base`` is the snapshot offset of ``data[0]``."""
    if data.isascii():  # a fast path only: ASCII bytes are ASCII code points
        return data.decode("ascii")
    chars = []
    i = 0
    while i < len(data):
        first = data[i]
        if first < 0x80:
            chars.append(chr(first))
            i += 1
            continue
        if first not in _SEQUENCES:
            raise SpecReaderError("text-utf8", base + i)
        size, low, high = _SEQUENCES[first]
        tail = data[i + 1 : i + size]
        if (
            len(tail) != size - 1
            or not low <= tail[0] <= high
            or any(not 0x80 <= b <= 0xBF for b in tail[1:])
        ):
            raise SpecReaderError("text-utf8", base + i)
        code_point = first & (0x7F >> size)
        for b in tail:
            code_point = code_point << 6 | (b & 0x3F)
        chars.append(chr(code_point))
        i += size
    return "".join(chars)
