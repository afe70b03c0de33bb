"""A second reader of snapkv snapshot formats 1, 2 and 3, written from docs/FORMAT.md alone.

It shares no code with snapkv: every constant, field and check below comes from
the document, so if this reader and ``snapkv.codec.decode_snapshot`` agree, the
document says everything a reader needs. It is deliberately simple and slow: ``struct``,
``zlib.crc32`` and Python loops, including its own UTF-8 decoder built from the
byte table in section 4. Any failed check raises :class:`SpecReaderError`, a
``ValueError`` carrying the check name and offset of section 8.

Containers (version 3) are returned as plain Python values, tagged so that a
test can compare them with snapkv's classes: :class:`Value` ``(kind, data)``
with ``data`` a dict field -> value (hash), a list (list), a frozenset (set)
or a dict member -> score (sorted set).
"""

from __future__ import annotations

import math
import struct
import zlib
from typing import Any, NamedTuple

# Section 2 and section 10.
MAGIC = bytes([0x89, 0x53, 0x4B, 0x56, 0x0D, 0x0A, 0x1A, 0x0A])
VERSION = 1
VERSION_EXTENDED = 2
VERSION_TYPED = 3
HEADER_SIZE = 16
FRAME_SIZE = 9
TYPE_ENTRIES = 0x01
TYPE_END = 0x02
TYPE_ENTRIES_EX = 0x03
TYPE_KEYSPACE = 0x04
TYPE_CONTAINERS = 0x05
TYPE_META = 0x81
OPTIONAL_TYPE_BIT = 0x80
LAYOUT_LENGTHS = 0
LAYOUT_SEPARATED = 1
END_BODY_SIZE = 12
KEYSPACE_BODY_SIZE = 4
META_BODY_SIZE = 8  # at least; later bytes are ignored
CONTAINERS_HEAD_SIZE = 7
FLAG_EXPIRY = 0x01
FLAG_CONTINUES = 0x02
FLAG_CONTINUED = 0x04
KINDS = {1: "hash", 2: "list", 3: "set", 4: "zset", 5: "stream"}


class Value(NamedTuple):
    """A container as read: its kind (``hash``, ``list``, ``set``, ``zset``, ``stream``) and
    its data (a stream's: the five metadata numbers, then ``((ms, seq), (field, value, ...))``
    per entry, the numbers unsigned)."""

    kind: str
    data: Any


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
    vtype: int = 0  # CONTAINERS only
    flags: int = 0  # CONTAINERS only
    elements: int = 0  # CONTAINERS only


class Snapshot(NamedTuple):
    """Everything read: ``mapping`` is keyspace 0 (section 3), ``spaces`` every keyspace
    that has entries, ``expires`` the non-zero expiry times by keyspace and key."""

    mapping: dict[str, Any]
    records: list[Record]
    version: int
    spaces: dict[int, dict[str, Any]]
    expires: dict[int, dict[str, int]]
    journal_next: int


def read_snapshot(data: bytes) -> dict[str, Any]:
    """Return keyspace 0 of ``data``; raise :class:`SpecReaderError` if any check fails."""
    return read_snapshot_records(data).mapping


def read_snapshot_all(
    data: bytes,
) -> tuple[dict[int, dict[str, Any]], dict[int, dict[str, int]], int]:
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
    if version not in (VERSION, VERSION_EXTENDED, VERSION_TYPED):
        raise SpecReaderError("version", 8)
    if flags != 0:
        raise SpecReaderError("flags", 10)

    spaces: dict[int, dict[str, Any]] = {}
    expires: dict[int, dict[str, int]] = {}
    records: list[Record] = []
    open_value: list[Any] | None = None  # [vtype, key, expiry, counts so far, elements, scores]
    entries_read = 0
    keyspace = 0  # section 3: records before the first KEYSPACE belong to keyspace 0
    journal_next = 0
    pos = HEADER_SIZE
    while True:
        # The frame: checks 6 to 9, then 10 and 11.
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
        # Check 10: a chain must go on in the very next record.
        if open_value is not None and record_type != TYPE_CONTAINERS:
            raise SpecReaderError("continuation", pos)
        known = {TYPE_ENTRIES, TYPE_END}
        if version >= VERSION_EXTENDED:
            known |= {TYPE_ENTRIES_EX, TYPE_KEYSPACE}
        if version >= VERSION_TYPED:
            known.add(TYPE_CONTAINERS)

        if record_type & OPTIONAL_TYPE_BIT == 0 and record_type not in known:
            raise SpecReaderError("record-type", pos)
        if record_type in (TYPE_ENTRIES, TYPE_ENTRIES_EX):
            keys, values, times, layout = _read_entries(
                body, body_offset, with_expiry=record_type == TYPE_ENTRIES_EX
            )
            # Check 24, once the whole record is decoded, per keyspace.
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
        elif record_type == TYPE_CONTAINERS:
            head, keys, values_read, times = _read_containers(body, body_offset)
            vtype, flags = head
            record_elements = sum(map(len, values_read))
            # Check 40: the chain.
            continues = bool(flags & FLAG_CONTINUES)
            if continues != (open_value is not None):
                raise SpecReaderError("continuation", pos)
            if open_value is not None:
                if (open_value[0], open_value[1], open_value[2]) != (vtype, keys[0], times[0]):
                    raise SpecReaderError("continuation", pos)
                open_value[3].extend(values_read[0])
                values_read = [open_value[3]]
                open_value = None
            if flags & FLAG_CONTINUED:
                open_value = [vtype, keys[0], times[0], values_read[0]]
                done: list[tuple[str, list[Any], int]] = []
            else:
                done = list(zip(keys, values_read, times, strict=True))
            mapping = spaces.setdefault(keyspace, {})
            if vtype == 5:
                built = [_build_stream(elements, pos) for _key, elements, _at in done]
            else:
                built = [_build(vtype, elements) for _key, elements, _at in done]
            if None in built:
                raise SpecReaderError("duplicate-element", pos)  # check 41
            for (key, _elements, at), container in zip(done, built, strict=True):
                if key in mapping:
                    raise SpecReaderError("duplicate-key", pos)  # check 42
                mapping[key] = container
                if at != 0:
                    expires.setdefault(keyspace, {})[key] = at
            entries_read += len(done)
            records.append(
                Record(
                    pos,
                    record_type,
                    len(done),
                    body[6],
                    keyspace,
                    sum(1 for _k, _e, at in done if at != 0),
                    vtype,
                    flags,
                    record_elements,
                )
            )
        elif record_type == TYPE_KEYSPACE:
            # Checks 43 and 44.
            if length != KEYSPACE_BODY_SIZE:
                raise SpecReaderError("keyspace-length", pos)
            (number,) = struct.unpack("<I", body)
            if number <= keyspace:
                raise SpecReaderError("keyspace-order", body_offset)
            keyspace = number
            records.append(Record(pos, record_type, keyspace=number))
        elif record_type == TYPE_META:
            # Checks 12 and 13.
            if pos != HEADER_SIZE:
                raise SpecReaderError("meta-position", pos)
            if length < META_BODY_SIZE:
                raise SpecReaderError("meta-length", pos)
            (journal_next,) = struct.unpack("<Q", body[:META_BODY_SIZE])
            records.append(Record(pos, record_type))
        elif record_type == TYPE_END:
            # Checks 45 to 47.
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


def _read_containers(
    body: bytes, base: int
) -> tuple[tuple[int, int], list[str], list[list[Any]], list[int]]:
    """Checks 25 to 39 on one CONTAINERS body starting at snapshot offset ``base``.

    Returns (vtype, flags), the keys, each value's elements as read (hash: field, value
    pairs; sorted set: (member, score) pairs; else the strings) and the expiry times.
    """
    if len(body) < CONTAINERS_HEAD_SIZE:
        raise SpecReaderError("containers-header", base)
    n, vtype, flags, layout = struct.unpack("<IBBB", body[:7])
    if n == 0:
        raise SpecReaderError("entry-count", base)
    if vtype not in KINDS:
        raise SpecReaderError("container-type", base + 4)
    if flags & ~0x07 or (flags & (FLAG_CONTINUES | FLAG_CONTINUED) and n != 1):
        raise SpecReaderError("container-flags", base + 5)
    if layout not in (LAYOUT_SEPARATED, LAYOUT_LENGTHS):
        raise SpecReaderError("layout", base + 6)
    at = 7
    times = [0] * n
    if flags & FLAG_EXPIRY:
        if len(body) - at < 8 * n:
            raise SpecReaderError("expiry-column", base + at)
        times = list(struct.unpack(f"<{n}Q", body[at : at + 8 * n]))
        at += 8 * n
    if len(body) - at < 4 * n:
        raise SpecReaderError("element-counts", base + at)
    counts = list(struct.unpack(f"<{n}I", body[at : at + 4 * n]))
    if 0 in counts:
        raise SpecReaderError("element-counts", base + at)
    at += 4 * n
    e = sum(counts)
    scores: list[float] = []
    if vtype == 4:
        if len(body) - at < 8 * e:
            raise SpecReaderError("scores", base + at)
        scores = list(struct.unpack(f"<{e}d", body[at : at + 8 * e]))
        for j, score in enumerate(scores):
            if math.isnan(score):
                raise SpecReaderError("score-nan", base + at + 8 * j)
        at += 8 * e
    width = 2 if vtype == 1 else 1
    total = n + width * e
    strings = _read_strings(body, base, at, layout, total)
    keys, rest = strings[:n], strings[n:]
    values: list[list[Any]] = []
    start = 0
    for count in counts:
        chunk = rest[start * width : (start + count) * width]
        if vtype == 1:
            values.append(list(zip(chunk[0::2], chunk[1::2], strict=True)))
        elif vtype == 4:
            values.append(list(zip(chunk, scores[start : start + count], strict=True)))
        else:
            values.append(chunk)
        start += count
    return (vtype, flags), keys, values, times


def _read_strings(body: bytes, base: int, d: int, layout: int, total: int) -> list[str]:
    """Checks 34 to 39: the ``total`` strings of a CONTAINERS record from ``layout_data`` at D."""
    if layout == LAYOUT_SEPARATED:
        if len(body) <= d or body[d] >= 0x80:
            raise SpecReaderError("separator", base + d)
        strings = decode_text(body[d + 1 :], base + d + 1).split(chr(body[d]))
        if len(strings) != total:
            raise SpecReaderError("entry-count", base)
        return strings
    if len(body) - d < 4 * total:
        raise SpecReaderError("lengths", base + d)
    lengths = struct.unpack(f"<{total}I", body[d : d + 4 * total])
    text = decode_text(body[d + 4 * total :], base + d + 4 * total)
    if sum(lengths) != len(text):
        raise SpecReaderError("lengths", base + d)
    out = []
    start = 0
    for length in lengths:
        out.append(text[start : start + length])
        start += length
    return out


def _stream_number(text: str, pos: int) -> int:
    """A stream's number (section 2, CONTAINERS body): signed decimal text, read unsigned."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise SpecReaderError("stream-form", pos)  # check 41b
    number = int(text)
    if not -(2**63) <= number < 2**63:
        raise SpecReaderError("stream-form", pos)
    return number % 2**64


def _build_stream(elements: list[str], pos: int) -> Value:
    """Check 41b: a stream's flat form, its metadata and its whole entries."""
    if len(elements) < 5:
        raise SpecReaderError("stream-form", pos)
    meta = tuple(_stream_number(text, pos) for text in elements[:5])
    entries: list[tuple[tuple[int, int], tuple[str, ...]]] = []
    at = 5
    while at < len(elements):
        if len(elements) - at < 3:
            raise SpecReaderError("stream-form", pos)
        ms, seq, n = (_stream_number(text, pos) for text in elements[at : at + 3])
        end = at + 3 + 2 * n
        if n < 1 or end > len(elements):
            raise SpecReaderError("stream-form", pos)
        entries.append(((ms, seq), tuple(elements[at + 3 : end])))
        at = end
    ids = [entry_id for entry_id, _pairs in entries]
    if len(set(ids)) != len(ids) or (ids and max(ids) > meta[:2]):
        raise SpecReaderError("stream-form", pos)
    return Value("stream", (meta, tuple(sorted(entries))))


def _build(vtype: int, elements: list[Any]) -> Value | None:
    """The value of ``elements`` (section 3); None when a field or member repeats."""
    if vtype == 2:
        return Value("list", list(elements))
    if vtype == 3:
        members = frozenset(elements)
        return Value("set", members) if len(members) == len(elements) else None
    mapping = dict(elements)
    if len(mapping) != len(elements):
        return None
    if vtype == 4:  # -0.0 reads as 0.0
        mapping = {member: score + 0.0 for member, score in mapping.items()}
    return Value(KINDS[vtype], mapping)


def _read_entries(
    body: bytes, base: int, *, with_expiry: bool
) -> tuple[list[str], list[str], list[int], int]:
    """Checks 14 to 23 on one ENTRIES or ENTRIES_EX body starting at snapshot offset ``base``.

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
