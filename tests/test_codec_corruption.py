"""Tests of every error path in the snapshot decoder, in the style of LevelDB's log_test.cc.

Each check the decoder can fail has its own named test below. The tests
start from a real snapshot, damage it with the small helpers in the next
section, and, where a checksum would otherwise catch the damage first,
repair the checksum with :func:`fix_crc` or :func:`fix_header_crc`, so the
check under test is reached in isolation. Each asserts the exact ``check``
and ``offset`` the :class:`CorruptSnapshotError` carries, from ``decode``,
``decode_snapshot`` and ``scan``. Version-2 snapshots (keyspaces, expiry
columns, META) get the same treatment in their own section.

Sweeps follow: every truncation point, every single-bit flip, random bit
flips, random bytes, and random but correctly framed records must all end
in a CorruptSnapshotError (or, where the damage leaves a valid snapshot,
give back exactly the original data) and never in another exception.
"""

from __future__ import annotations

import re
import struct
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapkv import _frame, codec
from snapkv.errors import CorruptSnapshotError

U32 = struct.Struct("<I")
U64 = struct.Struct("<Q")

# --------------------------------------------------------------- damage helpers
# Every helper returns new bytes and leaves its input alone, so the base
# snapshots below can be shared by all tests.


def flip_bit(data: bytes, bit_index: int) -> bytes:
    """Invert one bit; bit 0 is the least significant bit of byte 0."""
    out = bytearray(data)
    out[bit_index // 8] ^= 1 << (bit_index % 8)
    return bytes(out)


def truncate(data: bytes, n: int) -> bytes:
    """Keep only the first ``n`` bytes, as a torn write would."""
    return data[:n]


def set_byte(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    out[offset] = value
    return bytes(out)


def set_u32(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    U32.pack_into(out, offset, value)
    return bytes(out)


def set_u64(data: bytes, offset: int, value: int) -> bytes:
    out = bytearray(data)
    U64.pack_into(out, offset, value)
    return bytes(out)


def fix_crc(data: bytes, record_offset: int) -> bytes:
    """Recompute the CRC of the record at ``record_offset`` after its body was edited.

    The CRC covers the length and type fields and the body; the stored
    length is trusted to find the body.
    """
    (length,) = U32.unpack_from(data, record_offset + 4)
    covered = data[record_offset + 4 : record_offset + codec.FRAME_SIZE + length]
    return set_u32(data, record_offset, zlib.crc32(covered))


def fix_header_crc(data: bytes) -> bytes:
    """Recompute the header CRC (over the first 12 bytes) after editing the header."""
    return set_u32(data, 12, zlib.crc32(data[:12]))


def replace_body(data: bytes, record_offset: int, body: bytes) -> bytes:
    """Give the record at ``record_offset`` a new body, length and CRC."""
    (length,) = U32.unpack_from(data, record_offset + 4)
    start = record_offset + codec.FRAME_SIZE
    out = data[:start] + body + data[start + length :]
    return fix_crc(set_u32(out, record_offset + 4, len(body)), record_offset)


def records(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, body length) of each record, trusting every length field."""
    found = []
    pos = codec.HEADER_SIZE
    while pos + codec.FRAME_SIZE <= len(data):
        _crc, length, record_type = codec.FRAME.unpack_from(data, pos)
        found.append((pos, record_type, length))
        pos += codec.FRAME_SIZE + length
    return found


def end_offset(data: bytes) -> int:
    return next(pos for pos, kind, _ in records(data) if kind == codec.TYPE_END)


def fix_end(data: bytes) -> bytes:
    """Make END's counts match the records before it, and fix its CRC."""
    entries = 0
    for count, (pos, kind, length) in enumerate(records(data)):
        if kind == codec.TYPE_END:
            return replace_body(data, pos, codec.END_BODY.pack(entries, count))
        if kind in (codec.TYPE_ENTRIES, codec.TYPE_ENTRIES_EX) and length >= 4:
            entries += U32.unpack_from(data, pos + codec.FRAME_SIZE)[0]
    raise AssertionError("no END record")


def frame(record_type: int, body: bytes) -> bytes:
    tail = struct.pack("<IB", len(body), record_type)
    return U32.pack(zlib.crc32(tail + body)) + tail + body


HEADER = codec.encode({})[: codec.HEADER_SIZE]


@contextmanager
def chunk_entries(limit: int) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "MAX_CHUNK_ENTRIES", limit)
        yield


def encode_chunked(mapping: dict[str, str], limit: int) -> bytes:
    with chunk_entries(limit):
        return codec.encode(mapping)


def corrupt_error(data: bytes) -> CorruptSnapshotError:
    """The error decode raises; decode_snapshot and scan must raise the same check and offset."""
    with pytest.raises(CorruptSnapshotError) as decoded:
        codec.decode(data)
    with pytest.raises(CorruptSnapshotError) as full:
        codec.decode_snapshot(data)
    with pytest.raises(CorruptSnapshotError) as scanned:
        codec.scan(data, keys=10)
    error = decoded.value
    assert (full.value.check, full.value.offset) == (error.check, error.offset)
    assert (scanned.value.check, scanned.value.offset) == (error.check, error.offset)
    assert f"(offset {error.offset}, check {error.check})" in str(error)
    return error


def assert_corrupt(data: bytes, check: str, offset: int) -> None:
    error = corrupt_error(data)
    assert (error.check, error.offset) == (check, offset), str(error)


def only_corrupt_errors(data: bytes | bytearray | memoryview) -> None:
    """Decode and scan may succeed or raise CorruptSnapshotError; nothing else."""
    try:
        result = codec.decode(data)
    except CorruptSnapshotError as exc:
        with pytest.raises(CorruptSnapshotError) as scanned:
            codec.scan(data)
        assert (scanned.value.check, scanned.value.offset) == (exc.check, exc.offset)
    else:
        assert all(type(k) is str and type(v) is str for k, v in result.items())
        assert codec.scan(data).entries == len(result)


@contextmanager
def traced_peak() -> Iterator[Callable[[], int]]:
    """Measure the peak of Python allocations inside the block, in bytes."""
    tracemalloc.start()
    peak = 0
    try:
        yield lambda: peak
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


# --------------------------------------------------------------- base snapshots
# SMALL = {"key": "value"}, byte by byte:
#    0  header: magic 8, version 2, flags 2, crc 4
#   16  ENTRIES record: crc 4, length 4 (= 15), type 1
#   25    body: count 4 (= 1), layout 1 (= separated)
#   30    separator 1 (= NUL)
#   31    text "key\0value" 9
#   40  END record: crc 4, length 4 (= 12), type 1
#   49    body: entries 8 (= 1), records 4 (= 1)
#   61  end of snapshot

SMALL = codec.encode({"key": "value"})
ENTRIES_AT, BODY_AT, LAYOUT_AT, SEPARATOR_AT, TEXT_AT, END_AT = 16, 25, 29, 30, 31, 40

# LENGTHS = {"key": every separator candidate}, which forces the LENGTHS layout:
#   25  body: count 4, layout 1 (= lengths)
#   30    lengths column: 2 * count u32 (3, 16)
#   38    text "key" + SEPARATORS

LENGTHS = codec.encode({"key": codec.SEPARATORS})
COLUMN_AT, LENGTHS_TEXT_AT = 30, 38

# Several records, both layouts, non-ASCII text: what the sweeps damage.
MULTI_MAPPING = {
    "": "",
    "alpha": "1",
    "\ud800": "😀",
    "sep": codec.SEPARATORS,
    "é": "\x00",
    "k|:": "v\n",
    "last": "x" * 20,
}
MULTI = encode_chunked(MULTI_MAPPING, 2)


def test_base_snapshots_have_the_documented_shape() -> None:
    assert codec.decode(SMALL) == {"key": "value"}
    assert len(SMALL) == 61
    assert records(SMALL) == [(ENTRIES_AT, codec.TYPE_ENTRIES, 15), (END_AT, codec.TYPE_END, 12)]
    assert SMALL[LAYOUT_AT] == codec.LAYOUT_SEPARATED
    assert SMALL[TEXT_AT:END_AT] == b"key\x00value"
    assert codec.scan(LENGTHS).chunks[0].layout == "lengths"
    assert LENGTHS[COLUMN_AT:LENGTHS_TEXT_AT] == struct.pack("<II", 3, 16)
    assert codec.decode(MULTI) == MULTI_MAPPING
    info = codec.scan(MULTI)
    assert info.records == 4
    assert {c.layout for c in info.chunks} == {"separated", "lengths"}
    large = codec.scan(LARGE)
    assert [c.layout for c in large.chunks] == ["lengths"] + ["separated"] * 4
    # The helpers must be exact inverses of damage: fixing an intact record is a no-op.
    assert fix_crc(SMALL, ENTRIES_AT) == SMALL
    assert fix_crc(SMALL, END_AT) == SMALL
    assert fix_header_crc(SMALL) == SMALL
    assert fix_end(MULTI) == MULTI
    assert replace_body(SMALL, END_AT, SMALL[END_AT + 9 :]) == SMALL
    assert frame(codec.TYPE_END, SMALL[END_AT + 9 :]) == SMALL[END_AT:]


# --------------------------------------------------------------- header checks


def test_magic() -> None:
    assert_corrupt(flip_bit(SMALL, 0), "magic", 0)
    assert_corrupt(set_byte(SMALL, 7, 0x0D), "magic", 0)  # LF -> CR, a text-mode translation


def test_magic_on_short_input() -> None:
    assert_corrupt(b"GIF89a", "magic", 0)
    assert_corrupt(b"\x89SKX", "magic", 0)
    assert_corrupt(b"{}", "magic", 0)


def test_header_length() -> None:
    assert_corrupt(truncate(SMALL, 15), "header-length", 0)
    assert_corrupt(truncate(SMALL, 8), "header-length", 0)


def test_header_length_of_a_magic_prefix_or_nothing() -> None:
    assert_corrupt(truncate(SMALL, 3), "header-length", 0)
    assert_corrupt(b"", "header-length", 0)


def test_header_crc() -> None:
    assert_corrupt(flip_bit(SMALL, 12 * 8), "header-crc", 12)  # the stored CRC itself
    assert_corrupt(set_byte(SMALL, 8, 2), "header-crc", 12)  # a covered field


def test_version() -> None:
    assert_corrupt(fix_header_crc(set_byte(SMALL, 8, 4)), "version", 8)
    assert_corrupt(fix_header_crc(set_byte(SMALL, 8, 0)), "version", 8)
    assert_corrupt(fix_header_crc(set_byte(SMALL, 9, 1)), "version", 8)  # 257
    assert_corrupt(fix_header_crc(set_byte(SMALL, 9, 2)), "version", 8)  # 513


def test_version_2_is_read() -> None:
    # Version 2 only allows more record types: v1 records under a v2 header read the same.
    assert codec.decode(fix_header_crc(set_byte(SMALL, 8, 2))) == {"key": "value"}


def test_flags() -> None:
    assert_corrupt(fix_header_crc(set_byte(SMALL, 10, 0x01)), "flags", 10)
    assert_corrupt(fix_header_crc(set_byte(SMALL, 11, 0x80)), "flags", 10)


# --------------------------------------------------------------- framing checks


def test_record_header() -> None:
    assert_corrupt(truncate(SMALL, ENTRIES_AT + 8), "record-header", ENTRIES_AT)
    assert_corrupt(truncate(SMALL, ENTRIES_AT + 1), "record-header", ENTRIES_AT)


def test_record_header_of_end() -> None:
    assert_corrupt(truncate(SMALL, END_AT + 4), "record-header", END_AT)


def test_end_missing() -> None:
    assert_corrupt(truncate(SMALL, END_AT), "end-missing", END_AT)


def test_end_missing_after_header() -> None:
    assert_corrupt(truncate(SMALL, codec.HEADER_SIZE), "end-missing", codec.HEADER_SIZE)


def test_record_length() -> None:
    # One byte more than there is: the length itself is the damaged field.
    assert_corrupt(set_u32(SMALL, END_AT + 4, 13), "record-length", END_AT)
    assert_corrupt(truncate(SMALL, TEXT_AT), "record-length", ENTRIES_AT)
    assert_corrupt(truncate(SMALL, len(SMALL) - 1), "record-length", END_AT)


def test_record_length_huge_fails_fast_without_allocating() -> None:
    tiny = HEADER + struct.pack("<IIB", 0, 0xFFFF_FFFF, codec.TYPE_ENTRIES)
    with traced_peak() as peak:
        assert_corrupt(tiny, "record-length", codec.HEADER_SIZE)
        assert_corrupt(set_u32(SMALL, ENTRIES_AT + 4, 0xFFFF_FFFF), "record-length", ENTRIES_AT)
    assert peak() < 1 << 20


def test_record_crc() -> None:
    assert_corrupt(flip_bit(SMALL, (TEXT_AT + 1) * 8), "record-crc", ENTRIES_AT)


def test_record_crc_covers_crc_length_type_and_end() -> None:
    assert_corrupt(flip_bit(SMALL, ENTRIES_AT * 8), "record-crc", ENTRIES_AT)
    assert_corrupt(set_u32(SMALL, ENTRIES_AT + 4, 14), "record-crc", ENTRIES_AT)  # shorter
    assert_corrupt(set_byte(SMALL, ENTRIES_AT + 8, codec.TYPE_END), "record-crc", ENTRIES_AT)
    assert_corrupt(flip_bit(SMALL, (END_AT + 9) * 8), "record-crc", END_AT)


def test_record_type() -> None:
    damaged = fix_crc(set_byte(SMALL, ENTRIES_AT + 8, 0x03), ENTRIES_AT)
    assert_corrupt(damaged, "record-type", ENTRIES_AT)
    damaged = fix_crc(set_byte(SMALL, ENTRIES_AT + 8, 0x00), ENTRIES_AT)
    assert_corrupt(damaged, "record-type", ENTRIES_AT)


# --------------------------------------------------------------- ENTRIES checks


@pytest.mark.parametrize("size", [0, 1, 4])
def test_entries_header(size: int) -> None:
    damaged = replace_body(SMALL, ENTRIES_AT, SMALL[BODY_AT : BODY_AT + size])
    assert_corrupt(damaged, "entries-header", BODY_AT)


def test_entry_count_zero() -> None:
    assert_corrupt(fix_crc(set_u32(SMALL, BODY_AT, 0), ENTRIES_AT), "entry-count", BODY_AT)


def test_entry_count_zero_in_lengths_layout() -> None:
    assert_corrupt(fix_crc(set_u32(LENGTHS, BODY_AT, 0), ENTRIES_AT), "entry-count", BODY_AT)


def test_entry_count_separator_inside_a_string() -> None:
    # "key" becomes "k\0y": the text now splits into 3 strings, not 2.
    damaged = fix_crc(set_byte(SMALL, TEXT_AT + 1, 0x00), ENTRIES_AT)
    assert_corrupt(damaged, "entry-count", BODY_AT)


def test_entry_count_larger_than_the_text_holds() -> None:
    assert_corrupt(fix_crc(set_u32(SMALL, BODY_AT, 2), ENTRIES_AT), "entry-count", BODY_AT)


def test_entry_count_separator_swapped_for_an_absent_one() -> None:
    # The text no longer contains its separator: 1 string instead of 2.
    damaged = fix_crc(set_byte(SMALL, SEPARATOR_AT, 0x1F), ENTRIES_AT)
    assert_corrupt(damaged, "entry-count", BODY_AT)


def test_layout() -> None:
    assert_corrupt(fix_crc(set_byte(SMALL, LAYOUT_AT, 2), ENTRIES_AT), "layout", LAYOUT_AT)
    assert_corrupt(fix_crc(set_byte(SMALL, LAYOUT_AT, 0xFF), ENTRIES_AT), "layout", LAYOUT_AT)


def test_separator() -> None:
    damaged = fix_crc(set_byte(SMALL, SEPARATOR_AT, 0x80), ENTRIES_AT)
    assert_corrupt(damaged, "separator", SEPARATOR_AT)
    damaged = fix_crc(set_byte(SMALL, SEPARATOR_AT, 0xFF), ENTRIES_AT)
    assert_corrupt(damaged, "separator", SEPARATOR_AT)


def test_separator_missing() -> None:
    damaged = replace_body(SMALL, ENTRIES_AT, SMALL[BODY_AT:SEPARATOR_AT])
    assert_corrupt(damaged, "separator", SEPARATOR_AT)


def test_text_utf8() -> None:
    damaged = fix_crc(set_byte(SMALL, TEXT_AT + 2, 0xFF), ENTRIES_AT)
    assert_corrupt(damaged, "text-utf8", TEXT_AT + 2)


def test_text_utf8_overlong_and_cut_sequences() -> None:
    data = codec.encode({"é": "v"})  # text "\xc3\xa9\x00v" at TEXT_AT
    assert data[TEXT_AT : TEXT_AT + 2] == "é".encode()
    cut = fix_crc(set_byte(data, TEXT_AT + 1, ord("x")), ENTRIES_AT)  # lead byte alone
    assert_corrupt(cut, "text-utf8", TEXT_AT)
    overlong = fix_crc(set_byte(data, TEXT_AT, 0xC0), ENTRIES_AT)
    assert_corrupt(overlong, "text-utf8", TEXT_AT)


def test_text_utf8_in_lengths_layout() -> None:
    damaged = fix_crc(set_byte(LENGTHS, LENGTHS_TEXT_AT + 1, 0xFE), ENTRIES_AT)
    assert_corrupt(damaged, "text-utf8", LENGTHS_TEXT_AT + 1)


def test_lengths_column_too_short() -> None:
    # count 6 needs a 48-byte column; the body after the head has 8 + 19 bytes.
    damaged = fix_crc(set_u32(LENGTHS, BODY_AT, 6), ENTRIES_AT)
    assert_corrupt(damaged, "lengths", COLUMN_AT)


def test_lengths_sum_mismatch() -> None:
    damaged = fix_crc(set_u32(LENGTHS, COLUMN_AT, 4), ENTRIES_AT)  # 4 + 16 != 19
    assert_corrupt(damaged, "lengths", COLUMN_AT)


def test_lengths_sum_mismatch_when_count_grows_into_the_text() -> None:
    # count 2 reads a 16-byte column: 8 real bytes plus 8 bytes of text, then
    # the remaining text is shorter than those "lengths" add up to.
    damaged = fix_crc(set_u32(LENGTHS, BODY_AT, 2), ENTRIES_AT)
    assert_corrupt(damaged, "lengths", COLUMN_AT)


def test_lengths_count_of_2_31_fails_without_allocating() -> None:
    damaged = fix_crc(set_u32(LENGTHS, BODY_AT, 2**31), ENTRIES_AT)
    with traced_peak() as peak:
        assert_corrupt(damaged, "lengths", COLUMN_AT)
    assert peak() < 1 << 20


def test_separated_count_of_2_31_fails_without_allocating() -> None:
    damaged = fix_crc(set_u32(SMALL, BODY_AT, 2**31), ENTRIES_AT)
    with traced_peak() as peak:
        assert_corrupt(damaged, "entry-count", BODY_AT)
    assert peak() < 1 << 20


def test_duplicate_key() -> None:
    # The same key in two chunks; each chunk alone is valid.
    data = encode_chunked({"a": "1", "b": "2"}, 1)
    second = codec.scan(data).chunks[1].offset
    text_at = second + codec.FRAME_SIZE + codec.ENTRIES_HEAD.size + 1
    assert data[text_at : text_at + 3] == b"b\x002"
    damaged = fix_end(fix_crc(set_byte(data, text_at, ord("a")), second))
    assert_corrupt(damaged, "duplicate-key", second)


def test_duplicate_key_within_one_chunk() -> None:
    data = codec.encode({"ab": "1", "cd": "2"})
    assert data[TEXT_AT : TEXT_AT + 5] == b"ab\x00cd"
    damaged = fix_crc(set_byte(set_byte(data, TEXT_AT + 3, 0x61), TEXT_AT + 4, 0x62), ENTRIES_AT)
    assert_corrupt(fix_end(damaged), "duplicate-key", ENTRIES_AT)


def test_duplicate_key_in_lengths_layout() -> None:
    data = encode_chunked({"k": codec.SEPARATORS, "j": codec.SEPARATORS}, 1)
    second = codec.scan(data).chunks[1].offset
    text_at = second + codec.FRAME_SIZE + codec.ENTRIES_HEAD.size + 8
    assert data[text_at] == ord("j")
    damaged = fix_crc(set_byte(data, text_at, ord("k")), second)
    assert_corrupt(fix_end(damaged), "duplicate-key", second)


# --------------------------------------------------------------- END checks


def test_end_length() -> None:
    body = SMALL[END_AT + codec.FRAME_SIZE :]
    assert_corrupt(replace_body(SMALL, END_AT, body[:-1]), "end-length", END_AT)
    assert_corrupt(replace_body(SMALL, END_AT, body + b"\x00"), "end-length", END_AT)
    assert_corrupt(replace_body(SMALL, END_AT, b""), "end-length", END_AT)


def test_end_count() -> None:
    entries_at, records_at = END_AT + codec.FRAME_SIZE, END_AT + codec.FRAME_SIZE + 8
    assert_corrupt(fix_crc(set_u64(SMALL, entries_at, 2), END_AT), "end-count", END_AT)
    assert_corrupt(fix_crc(set_u64(SMALL, entries_at, 0), END_AT), "end-count", END_AT)
    assert_corrupt(fix_crc(set_u32(SMALL, records_at, 2), END_AT), "end-count", END_AT)
    huge = fix_crc(set_u64(SMALL, entries_at, 2**64 - 1), END_AT)
    assert_corrupt(huge, "end-count", END_AT)


def test_end_count_catches_a_whole_record_dropped() -> None:
    # Truncation at a record boundary with a valid END from elsewhere.
    first, second = codec.scan(MULTI).chunks[:2]
    dropped = MULTI[: second.offset] + MULTI[second.offset + second.size :]
    assert first.offset == codec.HEADER_SIZE
    assert_corrupt(dropped, "end-count", end_offset(dropped))


def test_end_count_on_empty_snapshot_with_entries() -> None:
    empty = codec.encode({})
    assert_corrupt(fix_crc(set_u64(empty, 25, 1), 16), "end-count", 16)


def test_trailing_bytes() -> None:
    assert_corrupt(SMALL + b"\x00", "trailing-bytes", len(SMALL))
    assert_corrupt(SMALL + SMALL, "trailing-bytes", len(SMALL))


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=5), st.binary(min_size=1))
def test_trailing_garbage_after_end(mapping: dict[str, str], garbage: bytes) -> None:
    data = codec.encode(mapping)
    assert_corrupt(data + garbage, "trailing-bytes", len(data))


# --------------------------------------------------------------- version 2
# V2 = keyspace 0 {"key": "value"} with "key" expiring at 7, keyspace 3 {"k": "v"},
# journal_next 9, byte by byte:
#    0  header, version 2
#   16  META record: crc 4, length 4 (= 8), type 1 (0x81)
#   25    journal_next 8 (= 9)
#   33  ENTRIES_EX record: crc 4, length 4 (= 23), type 1 (0x03)
#   42    body: count 4 (= 1), layout 1 (= separated)
#   47    expiry column: 1 * u64 (= 7)
#   55    separator 1, then text "key\0value" 9
#   65  KEYSPACE record: crc 4, length 4 (= 4), type 1 (0x04)
#   74    number 4 (= 3)
#   78  ENTRIES record (keyspace 3): "k" -> "v"
#   96  END record: 1 + 1 entries, 4 records
#  117  end of snapshot


def encode_v2(spaces: list[codec.SpaceColumns], journal_next: int = 0, limit: int = 0) -> bytes:
    with chunk_entries(limit or codec.MAX_CHUNK_ENTRIES):
        return b"".join(codec.iter_encode_snapshot(spaces, journal_next=journal_next))


V2 = encode_v2([(0, ["key"], ["value"], [7]), (3, ["k"], ["v"], None)], journal_next=9)
META_AT, EX_AT, EX_BODY_AT, EX_COLUMN_AT, EX_SEPARATOR_AT, EX_TEXT_AT = 16, 33, 42, 47, 55, 56
KEYSPACE_AT, KEYSPACE_NUMBER_AT, SPACE3_AT, V2_END_AT = 65, 74, 78, 96
V2_DATA = codec.Snapshot({0: {"key": "value"}, 3: {"k": "v"}}, {0: {"key": 7}}, 9)

# V2_LENGTHS = {"key": every separator candidate} expiring at 7: ENTRIES_EX in LENGTHS layout.
#   16  ENTRIES_EX record; 25 body: count, layout (= lengths)
#   30    expiry column (7); 38 lengths column (3, 16); 46 text
V2_LENGTHS = encode_v2([(0, ["key"], [codec.SEPARATORS], [7])])
EXL_BODY_AT, EXL_COLUMN_AT, EXL_LENGTHS_AT, EXL_TEXT_AT = 25, 30, 38, 46

# Several keyspaces and chunks, both layouts, expiring and not, non-ASCII text.
MULTI_V2_SPACES: list[codec.SpaceColumns] = [
    (0, ["", "a", "\ud800"], ["", "1", "😀"], [0, 5, 2**64 - 1]),
    (2, ["a", "sep", "é"], ["x", codec.SEPARATORS, "\x00"], None),
    (9, ["a", "b", "c", "d"], ["1", "2", "3", "4" * 20], [0, 0, 1_767_225_600_000, 0]),
]
MULTI_V2 = encode_v2(MULTI_V2_SPACES, journal_next=3, limit=2)


def test_v2_base_snapshots_have_the_documented_shape() -> None:
    assert codec.decode_snapshot(V2) == V2_DATA
    assert len(V2) == 117
    assert records(V2) == [
        (META_AT, codec.TYPE_META, 8),
        (EX_AT, codec.TYPE_ENTRIES_EX, 23),
        (KEYSPACE_AT, codec.TYPE_KEYSPACE, 4),
        (SPACE3_AT, codec.TYPE_ENTRIES, 9),
        (V2_END_AT, codec.TYPE_END, 12),
    ]
    assert V2[8] == 2
    assert V2[EX_COLUMN_AT:EX_SEPARATOR_AT] == U64.pack(7)
    assert V2[EX_TEXT_AT:KEYSPACE_AT] == b"key\x00value"
    assert V2[KEYSPACE_NUMBER_AT:SPACE3_AT] == U32.pack(3)
    assert V2_LENGTHS[EXL_COLUMN_AT:EXL_LENGTHS_AT] == U64.pack(7)
    assert V2_LENGTHS[EXL_LENGTHS_AT:EXL_TEXT_AT] == struct.pack("<II", 3, 16)
    snapshot = codec.decode_snapshot(MULTI_V2)
    assert snapshot.expires == {0: {"a": 5, "\ud800": 2**64 - 1}, 9: {"c": 1_767_225_600_000}}
    kinds = [kind for _, kind, _ in records(MULTI_V2)]
    assert kinds.count(codec.TYPE_ENTRIES_EX) == 3  # every chunk with an expiry time
    assert kinds.count(codec.TYPE_ENTRIES) == 3
    assert {c.layout for c in codec.scan(MULTI_V2).chunks} == {"separated", "lengths"}
    assert fix_end(MULTI_V2) == MULTI_V2


def test_record_type_of_v2_records_in_a_v1_snapshot() -> None:
    # The same bytes under a version-1 header: the first v2 record is refused.
    as_v1 = fix_header_crc(set_byte(V2, 8, 1))
    assert_corrupt(as_v1, "record-type", EX_AT)
    keyspace_only = encode_v2([(0, ["a"], ["1"], None), (1, ["b"], ["2"], None)])
    at = next(pos for pos, kind, _ in records(keyspace_only) if kind == codec.TYPE_KEYSPACE)
    assert_corrupt(fix_header_crc(set_byte(keyspace_only, 8, 1)), "record-type", at)
    with pytest.raises(CorruptSnapshotError, match=r"0x04 \(KEYSPACE\) in a version-1"):
        codec.decode_snapshot(fix_header_crc(set_byte(keyspace_only, 8, 1)))


def test_record_type_unknown_in_v2() -> None:
    damaged = fix_crc(set_byte(V2, KEYSPACE_AT + 8, 0x05), KEYSPACE_AT)
    assert_corrupt(damaged, "record-type", KEYSPACE_AT)


def test_meta_position() -> None:
    meta = V2[META_AT:EX_AT]
    moved = V2[:META_AT] + V2[EX_AT:KEYSPACE_AT] + meta + V2[KEYSPACE_AT:]
    assert_corrupt(moved, "meta-position", META_AT + KEYSPACE_AT - EX_AT)
    twice = V2[:EX_AT] + meta + V2[EX_AT:]
    assert_corrupt(fix_end(twice), "meta-position", EX_AT)


def test_meta_position_in_a_v1_snapshot() -> None:
    meta = V2[META_AT:EX_AT]
    assert_corrupt(fix_end(SMALL[:END_AT] + meta + SMALL[END_AT:]), "meta-position", END_AT)


@pytest.mark.parametrize("size", [0, 1, 7])
def test_meta_length(size: int) -> None:
    body = V2[META_AT + codec.FRAME_SIZE : EX_AT]
    assert_corrupt(replace_body(V2, META_AT, body[:size]), "meta-length", META_AT)


def test_meta_body_may_be_longer() -> None:
    body = V2[META_AT + codec.FRAME_SIZE : EX_AT]
    longer = replace_body(V2, META_AT, body + b"later fields")
    assert codec.decode_snapshot(longer) == V2_DATA


def test_expiry_column() -> None:
    # count 3 needs a 24-byte column; 8 + 1 + 9 bytes follow the layout byte.
    damaged = fix_crc(set_u32(V2, EX_BODY_AT, 3), EX_AT)
    assert_corrupt(damaged, "expiry-column", EX_COLUMN_AT)
    cut = replace_body(V2, EX_AT, V2[EX_BODY_AT : EX_COLUMN_AT + 7])
    assert_corrupt(cut, "expiry-column", EX_COLUMN_AT)


def test_expiry_column_count_of_2_31_fails_without_allocating() -> None:
    damaged = fix_crc(set_u32(V2, EX_BODY_AT, 2**31), EX_AT)
    with traced_peak() as peak:
        assert_corrupt(damaged, "expiry-column", EX_COLUMN_AT)
    assert peak() < 1 << 20


def test_expiry_column_too_short_in_lengths_layout() -> None:
    # count 5 needs a 40-byte column; 8 + 8 + 19 bytes follow the layout byte.
    damaged = fix_crc(set_u32(V2_LENGTHS, EXL_BODY_AT, 5), 16)
    assert_corrupt(damaged, "expiry-column", EXL_COLUMN_AT)


def test_entries_checks_in_an_entries_ex_record() -> None:
    # The ENTRIES checks apply to ENTRIES_EX, with layout_data 8 * count bytes later.
    assert_corrupt(replace_body(V2, EX_AT, b"\x01\x00"), "entries-header", EX_BODY_AT)
    assert_corrupt(fix_crc(set_u32(V2, EX_BODY_AT, 0), EX_AT), "entry-count", EX_BODY_AT)
    assert_corrupt(fix_crc(set_byte(V2, EX_BODY_AT + 4, 7), EX_AT), "layout", EX_BODY_AT + 4)
    damaged = fix_crc(set_byte(V2, EX_SEPARATOR_AT, 0x80), EX_AT)
    assert_corrupt(damaged, "separator", EX_SEPARATOR_AT)
    bare = replace_body(V2, EX_AT, V2[EX_BODY_AT:EX_SEPARATOR_AT])
    assert_corrupt(bare, "separator", EX_SEPARATOR_AT)
    damaged = fix_crc(set_byte(V2, EX_TEXT_AT + 1, 0xFF), EX_AT)
    assert_corrupt(damaged, "text-utf8", EX_TEXT_AT + 1)
    damaged = fix_crc(set_byte(V2, EX_TEXT_AT + 1, 0x00), EX_AT)  # "k\0y": 3 strings
    assert_corrupt(damaged, "entry-count", EX_BODY_AT)


def test_lengths_checks_in_an_entries_ex_record() -> None:
    damaged = fix_crc(set_u32(V2_LENGTHS, EXL_LENGTHS_AT, 4), 16)  # 4 + 16 != 19
    assert_corrupt(damaged, "lengths", EXL_LENGTHS_AT)
    short = replace_body(V2_LENGTHS, 16, V2_LENGTHS[EXL_BODY_AT : EXL_LENGTHS_AT + 7])
    assert_corrupt(short, "lengths", EXL_LENGTHS_AT)
    damaged = fix_crc(set_byte(V2_LENGTHS, EXL_TEXT_AT, 0xC0), 16)
    assert_corrupt(damaged, "text-utf8", EXL_TEXT_AT)


@pytest.mark.parametrize("body", [b"", b"\x03", b"\x03\x00\x00", b"\x03\x00\x00\x00\x00"])
def test_keyspace_length(body: bytes) -> None:
    assert_corrupt(replace_body(V2, KEYSPACE_AT, body), "keyspace-length", KEYSPACE_AT)


def test_keyspace_order() -> None:
    damaged = fix_crc(set_u32(V2, KEYSPACE_NUMBER_AT, 0), KEYSPACE_AT)
    assert_corrupt(damaged, "keyspace-order", KEYSPACE_NUMBER_AT)
    # 2**32-1 (a valid number on its own), then 3: decreasing.
    highest = replace_body(V2[KEYSPACE_AT:SPACE3_AT], 0, U32.pack(0xFFFF_FFFF))
    data = fix_end(V2[:KEYSPACE_AT] + highest + V2[KEYSPACE_AT:])
    assert_corrupt(data, "keyspace-order", SPACE3_AT + codec.FRAME_SIZE)


def test_keyspace_order_repeated_number() -> None:
    keyspace = V2[KEYSPACE_AT:SPACE3_AT]
    data = V2[:V2_END_AT] + keyspace + V2[V2_END_AT:]
    assert_corrupt(fix_end(data), "keyspace-order", V2_END_AT + codec.FRAME_SIZE)


def test_duplicate_key_within_a_keyspace_of_a_v2_snapshot() -> None:
    data = encode_v2([(0, ["a"], ["1"], None), (3, ["ab", "cd"], ["x", "y"], [0, 5])])
    snapshot = codec.decode_snapshot(data)
    assert snapshot.spaces == {0: {"a": "1"}, 3: {"ab": "x", "cd": "y"}}
    at = next(pos for pos, kind, _ in records(data) if kind == codec.TYPE_ENTRIES_EX)
    text_at = at + codec.FRAME_SIZE + 5 + 16 + 1
    assert data[text_at : text_at + 5] == b"ab\x00cd"
    damaged = fix_crc(set_byte(set_byte(data, text_at + 3, 0x61), text_at + 4, 0x62), at)
    assert_corrupt(damaged, "duplicate-key", at)


def test_same_key_in_two_keyspaces_is_not_a_duplicate() -> None:
    data = encode_v2([(0, ["k"], ["0"], [1]), (1, ["k"], ["1"], [2]), (2, ["k"], ["2"], None)])
    assert codec.decode_snapshot(data) == codec.Snapshot(
        {0: {"k": "0"}, 1: {"k": "1"}, 2: {"k": "2"}}, {0: {"k": 1}, 1: {"k": 2}}, 0
    )


def test_duplicate_key_across_chunks_of_one_keyspace_after_a_keyspace_record() -> None:
    data = encode_v2([(0, ["k"], ["0"], None), (4, ["a", "b"], ["1", "2"], [3, 0])], limit=1)
    chunks = [c for c in codec.scan(data).chunks if c.keyspace == 4]
    assert [c.expiring for c in chunks] == [1, 0]
    text_at = chunks[1].offset + codec.FRAME_SIZE + 5 + 1
    assert data[text_at : text_at + 3] == b"b\x002"
    damaged = fix_end(fix_crc(set_byte(data, text_at, ord("a")), chunks[1].offset))
    assert_corrupt(damaged, "duplicate-key", chunks[1].offset)


def test_end_count_in_a_v2_snapshot() -> None:
    # END counts META and KEYSPACE records, and ENTRIES_EX entries.
    entries_at, records_at = V2_END_AT + codec.FRAME_SIZE, V2_END_AT + codec.FRAME_SIZE + 8
    assert V2[entries_at:] == codec.END_BODY.pack(2, 4)
    assert_corrupt(fix_crc(set_u64(V2, entries_at, 1), V2_END_AT), "end-count", V2_END_AT)
    assert_corrupt(fix_crc(set_u32(V2, records_at, 3), V2_END_AT), "end-count", V2_END_AT)
    dropped = V2[:KEYSPACE_AT] + V2[SPACE3_AT:]  # without KEYSPACE, "k" would be in keyspace 0
    assert_corrupt(dropped, "end-count", V2_END_AT - (SPACE3_AT - KEYSPACE_AT))


def test_continuation_an_open_value_cut_by_end() -> None:
    # Format v3: a CONTAINERS record whose value goes on (flag CONTINUED) must be
    # followed by its next part; test_codec_types_corruption.py has the other cases.
    head = fix_header_crc(set_byte(HEADER, 8, 3))
    body = struct.pack("<IBBBI", 1, 2, 0x04, 1, 1) + b"\x00l\x00a"
    first = frame(codec.TYPE_CONTAINERS, body)
    end = frame(codec.TYPE_END, codec.END_BODY.pack(0, 1))
    assert_corrupt(head + first + end, "continuation", codec.HEADER_SIZE + len(first))


# --------------------------------------------------------------- completeness

#: Each check name the decoder raises, and the named tests that reach it.
CHECK_TESTS: dict[str, tuple[Callable[..., None], ...]] = {
    "magic": (test_magic, test_magic_on_short_input),
    "header-length": (test_header_length, test_header_length_of_a_magic_prefix_or_nothing),
    "header-crc": (test_header_crc,),
    "version": (test_version,),
    "meta-position": (test_meta_position, test_meta_position_in_a_v1_snapshot),
    "meta-length": (test_meta_length,),
    "expiry-column": (
        test_expiry_column,
        test_expiry_column_count_of_2_31_fails_without_allocating,
        test_expiry_column_too_short_in_lengths_layout,
    ),
    "keyspace-length": (test_keyspace_length,),
    "keyspace-order": (test_keyspace_order, test_keyspace_order_repeated_number),
    "flags": (test_flags,),
    "record-header": (test_record_header, test_record_header_of_end),
    "end-missing": (test_end_missing, test_end_missing_after_header),
    "record-length": (test_record_length, test_record_length_huge_fails_fast_without_allocating),
    "record-crc": (test_record_crc, test_record_crc_covers_crc_length_type_and_end),
    "record-type": (
        test_record_type,
        test_record_type_of_v2_records_in_a_v1_snapshot,
        test_record_type_unknown_in_v2,
    ),
    "entries-header": (test_entries_header,),
    "entry-count": (
        test_entry_count_zero,
        test_entry_count_zero_in_lengths_layout,
        test_entry_count_separator_inside_a_string,
        test_entry_count_larger_than_the_text_holds,
        test_entry_count_separator_swapped_for_an_absent_one,
        test_separated_count_of_2_31_fails_without_allocating,
    ),
    "layout": (test_layout,),
    "separator": (test_separator, test_separator_missing),
    "text-utf8": (
        test_text_utf8,
        test_text_utf8_overlong_and_cut_sequences,
        test_text_utf8_in_lengths_layout,
    ),
    "lengths": (
        test_lengths_column_too_short,
        test_lengths_sum_mismatch,
        test_lengths_sum_mismatch_when_count_grows_into_the_text,
        test_lengths_count_of_2_31_fails_without_allocating,
    ),
    "duplicate-key": (
        test_duplicate_key,
        test_duplicate_key_within_one_chunk,
        test_duplicate_key_in_lengths_layout,
        test_duplicate_key_within_a_keyspace_of_a_v2_snapshot,
        test_duplicate_key_across_chunks_of_one_keyspace_after_a_keyspace_record,
    ),
    "end-length": (test_end_length,),
    "end-count": (
        test_end_count,
        test_end_count_catches_a_whole_record_dropped,
        test_end_count_on_empty_snapshot_with_entries,
        test_end_count_in_a_v2_snapshot,
    ),
    "trailing-bytes": (test_trailing_bytes, test_trailing_garbage_after_end),
    "continuation": (test_continuation_an_open_value_cut_by_end,),
}
TESTED_CHECKS = set(CHECK_TESTS)


def test_every_check_the_decoder_raises_has_a_named_test() -> None:
    # The header and frame checks the snapshot shares with the journal live in _frame.py.
    sources = [Path(codec.__file__), Path(_frame.__file__)]
    source = "".join(path.read_text(encoding="utf-8") for path in sources)
    raised = set(re.findall(r'check="([^"]+)"', source))
    assert raised, "the pattern no longer matches how codec.py names its checks"
    assert raised - TESTED_CHECKS == set(), "checks without a test"
    assert TESTED_CHECKS - raised == set(), "tests for checks the decoder no longer has"
    for check, tests in CHECK_TESTS.items():
        for test in tests:
            assert globals()[test.__name__] is test, (check, test.__name__)
            assert test.__name__.startswith("test_")


# --------------------------------------------------------------- sweeps


@pytest.mark.parametrize("snapshot", [SMALL, LENGTHS, MULTI], ids=["small", "lengths", "multi"])
def test_every_truncation_point_is_corrupt(snapshot: bytes) -> None:
    for n in range(len(snapshot)):
        error = corrupt_error(truncate(snapshot, n))
        assert error.offset <= n, (n, str(error))


@pytest.mark.parametrize("snapshot", [SMALL, LENGTHS], ids=["small", "lengths"])
def test_every_single_bit_flip_is_corrupt(snapshot: bytes) -> None:
    for bit in range(len(snapshot) * 8):
        corrupt_error(flip_bit(snapshot, bit))


def test_every_single_bit_flip_of_a_multi_record_snapshot_is_corrupt() -> None:
    for bit in range(len(MULTI) * 8):
        corrupt_error(flip_bit(MULTI, bit))


texts = st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF), max_size=20)
larger_snapshots = st.builds(
    encode_chunked,
    st.dictionaries(st.one_of(texts, st.just(codec.SEPARATORS)), texts, min_size=8, max_size=60),
    st.integers(min_value=1, max_value=20),
)


# About 30 kB in 5 records: the first in the LENGTHS layout, the rest SEPARATED.
LARGE = encode_chunked(
    {f"key {i}": codec.SEPARATORS if i == 7 else "\u00e9\ud800😀" * (i % 5) for i in range(2000)},
    400,
)


@settings(max_examples=60, deadline=None)
@given(st.one_of(larger_snapshots, st.just(LARGE)), st.data())
def test_random_bit_flips_are_corrupt(snapshot: bytes, data: st.DataObject) -> None:
    # Half the time past the header, so shrinking does not pile every flip into it.
    first = data.draw(st.sampled_from([0, codec.HEADER_SIZE * 8]), label="first bit")
    bits = data.draw(
        st.sets(
            st.integers(min_value=first, max_value=len(snapshot) * 8 - 1), min_size=1, max_size=8
        ),
        label="bits",
    )
    damaged = snapshot
    for bit in bits:
        damaged = flip_bit(damaged, bit)
    corrupt_error(damaged)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_corrupt_snapshot_error(data: bytes) -> None:
    only_corrupt_errors(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_magic_raise_only_corrupt_snapshot_error(data: bytes) -> None:
    only_corrupt_errors(codec.MAGIC + data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_a_valid_header_raise_only_corrupt_snapshot_error(
    data: bytes,
) -> None:
    only_corrupt_errors(HEADER + data)
    only_corrupt_errors(bytearray(HEADER + data))
    only_corrupt_errors(memoryview(HEADER + data))


# Records with valid framing and CRCs but arbitrary, loosely structured bodies:
# random bytes alone almost never get past the CRC, these reach every body check.
separators = st.one_of(st.sampled_from(codec.SEPARATORS), st.integers(0, 255).map(chr))
entries_bodies = st.builds(
    lambda count, layout, tail: codec.ENTRIES_HEAD.pack(count, layout) + tail,
    st.one_of(st.integers(0, 4), st.sampled_from([2**31, 2**32 - 1])),
    st.sampled_from([codec.LAYOUT_LENGTHS, codec.LAYOUT_SEPARATED, 2]),
    st.one_of(
        st.binary(max_size=40),
        st.builds(
            lambda sep, text: sep.encode("latin-1") + text.encode("utf-8", "surrogatepass"),
            separators,
            st.text(st.sampled_from(["a", "b", "é", "\x00", "\x1f", "\ud800"]), max_size=12),
        ),
        st.builds(
            lambda lengths, text: (
                struct.pack(f"<{len(lengths)}I", *lengths) + text.encode("utf-8", "surrogatepass")
            ),
            st.lists(st.integers(0, 4) | st.just(2**32 - 1), max_size=8),
            st.text(st.sampled_from(["a", "é", "😀", "\ud800"]), max_size=12),
        ),
    ),
)
end_bodies = st.one_of(
    st.builds(codec.END_BODY.pack, st.integers(0, 6), st.integers(0, 6)),
    st.binary(max_size=14),
)
any_record = st.one_of(
    st.builds(frame, st.just(codec.TYPE_ENTRIES), entries_bodies),
    st.builds(frame, st.just(codec.TYPE_END), end_bodies),
    st.builds(frame, st.integers(0, 255), st.binary(max_size=10)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(any_record, max_size=5), st.binary(max_size=3))
def test_framed_random_records_raise_only_corrupt_snapshot_error(
    framed: list[bytes], tail: bytes
) -> None:
    only_corrupt_errors(HEADER + b"".join(framed) + tail)
    only_corrupt_errors(fix_end_if_any(HEADER + b"".join(framed)))


def fix_end_if_any(data: bytes) -> bytes:
    """Like fix_end (which repairs the first END), but a no-op when there is no END."""
    if all(kind != codec.TYPE_END for _, kind, _ in records(data)):
        return data
    return fix_end(data)


# --------------------------------------------------------------- version 2 sweeps

V2_SNAPSHOTS = [V2, V2_LENGTHS, MULTI_V2]
V2_IDS = ["v2", "v2-lengths", "multi-v2"]


def same_or_corrupt(data: bytes | bytearray | memoryview, original: codec.Snapshot) -> None:
    """decode_snapshot gives exactly ``original`` or a CorruptSnapshotError; never other data."""
    try:
        result = codec.decode_snapshot(data)
    except CorruptSnapshotError as exc:
        with pytest.raises(CorruptSnapshotError) as scanned:
            codec.scan(data)
        assert (scanned.value.check, scanned.value.offset) == (exc.check, exc.offset)
    else:
        assert result == original


@pytest.mark.parametrize("snapshot", V2_SNAPSHOTS, ids=V2_IDS)
def test_every_truncation_point_of_a_v2_snapshot_is_corrupt(snapshot: bytes) -> None:
    for n in range(len(snapshot)):
        error = corrupt_error(truncate(snapshot, n))
        assert error.offset <= n, (n, str(error))


@pytest.mark.parametrize("snapshot", V2_SNAPSHOTS, ids=V2_IDS)
def test_every_single_bit_flip_of_a_v2_snapshot_is_corrupt(snapshot: bytes) -> None:
    for bit in range(len(snapshot) * 8):
        corrupt_error(flip_bit(snapshot, bit))


v2_spaces = st.lists(
    st.tuples(
        st.integers(0, 40),
        st.dictionaries(
            st.one_of(texts, st.just(codec.SEPARATORS)),
            st.tuples(texts, st.one_of(st.just(0), st.integers(1, 2**64 - 1))),
            max_size=30,
        ),
    ),
    min_size=1,
    max_size=4,
    unique_by=lambda space: space[0],
).map(
    lambda spaces: [
        (n, list(m), [v for v, _ in m.values()], [t for _, t in m.values()])
        for n, m in sorted(spaces)
    ]
)
larger_v2_snapshots = st.builds(
    encode_v2, v2_spaces, st.integers(0, 2**64 - 1), st.integers(min_value=1, max_value=8)
)


@settings(max_examples=60, deadline=None)
@given(st.one_of(larger_v2_snapshots, st.sampled_from(V2_SNAPSHOTS)), st.data())
def test_random_bit_flips_of_v2_snapshots_are_corrupt(snapshot: bytes, data: st.DataObject) -> None:
    original = codec.decode_snapshot(snapshot)
    first = data.draw(st.sampled_from([0, codec.HEADER_SIZE * 8]), label="first bit")
    bits = data.draw(
        st.sets(
            st.integers(min_value=first, max_value=len(snapshot) * 8 - 1), min_size=1, max_size=8
        ),
        label="bits",
    )
    damaged = snapshot
    for bit in bits:
        damaged = flip_bit(damaged, bit)
    same_or_corrupt(damaged, original)
    corrupt_error(damaged)


@settings(max_examples=40, deadline=None)
@given(larger_v2_snapshots, st.data())
def test_random_truncations_and_overwrites_of_v2_snapshots(
    snapshot: bytes, data: st.DataObject
) -> None:
    original = codec.decode_snapshot(snapshot)
    cut = data.draw(st.integers(0, len(snapshot) - 1), label="cut")
    corrupt_error(truncate(snapshot, cut))
    at = data.draw(st.integers(0, len(snapshot) - 1), label="at")
    garbage = data.draw(st.binary(min_size=1, max_size=16), label="garbage")
    damaged = snapshot[:at] + garbage + snapshot[at + len(garbage) :]
    same_or_corrupt(damaged, original)
    same_or_corrupt(snapshot[:at] + garbage + snapshot[at:], original)


HEADER_V2 = V2[: codec.HEADER_SIZE]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_a_v2_header_raise_only_corrupt_snapshot_error(data: bytes) -> None:
    with pytest.raises(CorruptSnapshotError):
        codec.decode_snapshot(HEADER_V2 + data)


v2_records = st.one_of(
    st.builds(frame, st.just(codec.TYPE_ENTRIES), entries_bodies),
    st.builds(
        frame,
        st.just(codec.TYPE_ENTRIES_EX),
        st.builds(
            lambda body, width: body[:5] + bytes(range(width)) + body[5:],
            entries_bodies,
            st.sampled_from([0, 7, 8, 16, 24]),
        ),
    ),
    st.builds(frame, st.just(codec.TYPE_KEYSPACE), st.integers(0, 5).map(U32.pack)),
    st.builds(frame, st.just(codec.TYPE_KEYSPACE), st.binary(max_size=6)),
    st.builds(frame, st.just(codec.TYPE_META), st.binary(max_size=12)),
    st.builds(frame, st.just(codec.TYPE_END), end_bodies),
    st.builds(frame, st.integers(0, 255), st.binary(max_size=10)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(v2_records, max_size=6), st.binary(max_size=3))
def test_framed_random_v2_records_raise_only_corrupt_snapshot_error(
    framed: list[bytes], tail: bytes
) -> None:
    for data in (HEADER_V2 + b"".join(framed) + tail, fix_end_if_any(HEADER_V2 + b"".join(framed))):
        try:
            snapshot = codec.decode_snapshot(data)
        except CorruptSnapshotError:
            continue
        # Valid by chance: what it holds is well-formed.
        assert all(type(k) is str for m in snapshot.spaces.values() for k in m)
        assert all(m for m in snapshot.spaces.values())
        assert all(t for e in snapshot.expires.values() for t in e.values())
        assert codec.scan(data).entries == sum(map(len, snapshot.spaces.values()))
