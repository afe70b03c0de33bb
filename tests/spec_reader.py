"""A second reader of snapkv snapshot format v1, written from docs/FORMAT.md alone.

It shares no code with snapkv: every constant, field and check below comes from
the document, so if this reader and ``snapkv.codec.decode`` agree, the document
says everything a reader needs. It is deliberately simple and slow: ``struct``,
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
HEADER_SIZE = 16
FRAME_SIZE = 9
TYPE_ENTRIES = 0x01
TYPE_END = 0x02
OPTIONAL_TYPE_BIT = 0x80
LAYOUT_LENGTHS = 0
LAYOUT_SEPARATED = 1
END_BODY_SIZE = 12


class SpecReaderError(ValueError):
    """The snapshot failed check ``check`` at byte ``offset`` (FORMAT.md section 8)."""

    def __init__(self, check: str, offset: int) -> None:
        super().__init__(f"{check} at offset {offset}")
        self.check = check
        self.offset = offset


class Record(NamedTuple):
    """One record as read: where it starts, its type, and for ENTRIES its count and layout."""

    offset: int
    type: int
    entries: int = 0
    layout: int = -1


class Snapshot(NamedTuple):
    mapping: dict[str, str]
    records: list[Record]


def read_snapshot(data: bytes) -> dict[str, str]:
    """Return the mapping held by ``data``; raise :class:`SpecReaderError` if any check fails."""
    return read_snapshot_records(data).mapping


def read_snapshot_records(data: bytes) -> Snapshot:
    """Like :func:`read_snapshot`, and also list the records, END excluded."""
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
    if version != VERSION:
        raise SpecReaderError("version", 8)
    if flags != 0:
        raise SpecReaderError("flags", 10)

    mapping: dict[str, str] = {}
    records: list[Record] = []
    entries_read = 0
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

        if record_type == TYPE_ENTRIES:
            keys, values, layout = _read_entries(body, body_offset)
            # Check 20, once the whole record is decoded.
            for key, value in zip(keys, values, strict=True):
                if key in mapping:
                    raise SpecReaderError("duplicate-key", pos)
                mapping[key] = value
            entries_read += len(keys)
            records.append(Record(pos, record_type, len(keys), layout))
        elif record_type == TYPE_END:
            # Checks 21 to 23.
            if length != END_BODY_SIZE:
                raise SpecReaderError("end-length", pos)
            total, records_before = struct.unpack("<QI", body)
            if total != entries_read or records_before != len(records):
                raise SpecReaderError("end-count", pos)
            if end != n:
                raise SpecReaderError("trailing-bytes", end)
            return Snapshot(mapping, records)
        elif record_type & OPTIONAL_TYPE_BIT:
            records.append(Record(pos, record_type))  # skipped, but counted for END
        else:
            raise SpecReaderError("record-type", pos)
        pos = end


def _read_entries(body: bytes, base: int) -> tuple[list[str], list[str], int]:
    """Checks 11 to 19 on one ENTRIES body starting at snapshot offset ``base``."""
    if len(body) < 5:
        raise SpecReaderError("entries-header", base)
    count, layout = struct.unpack("<IB", body[0:5])
    if count == 0:
        raise SpecReaderError("entry-count", base)

    if layout == LAYOUT_SEPARATED:
        if len(body) < 6 or body[5] >= 0x80:
            raise SpecReaderError("separator", base + 5)
        separator = chr(body[5])
        strings = decode_text(body[6:], base + 6).split(separator)
        if len(strings) != 2 * count:
            raise SpecReaderError("entry-count", base)
    elif layout == LAYOUT_LENGTHS:
        column = 8 * count
        if len(body) - 5 < column:
            raise SpecReaderError("lengths", base + 5)
        lengths = struct.unpack(f"<{2 * count}I", body[5 : 5 + column])
        text = decode_text(body[5 + column :], base + 5 + column)
        if sum(lengths) != len(text):
            raise SpecReaderError("lengths", base + 5)
        strings = []
        start = 0
        for length in lengths:
            strings.append(text[start : start + length])
            start += length
    else:
        raise SpecReaderError("layout", base + 4)
    return strings[:count], strings[count:], layout


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
