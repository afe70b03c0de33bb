"""The journal: record round trips, every recovery rule, the writer's fsync policies.

Damage is built byte by byte, as LevelDB's ``log_test.cc`` does: each
recovery rule of docs/FORMAT.md is reached in isolation and its report (the
tail kind, the bytes dropped, the offset and check of an error) is checked
exactly. Sweeps then cut and flip every byte of a small journal and assert
the one property that matters: recovery yields a prefix of what was written,
or an error, never a wrong operation.
"""

from __future__ import annotations

import pickle
import struct
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from snapkv import FileMedium, Medium, MemoryMedium
from snapkv import journal as jr
from snapkv._binary import crc32
from snapkv.errors import CorruptJournalError, MediumError
from snapkv.media import JournalFile

any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
any_text = st.one_of(
    st.text(alphabet=any_char),
    st.sampled_from(["", "\x00", "\ud800", "\udfff", "\ud83d\ude00", "😀", "a\x00b"]),
)
dbs = st.integers(0, 0xFFFF_FFFE)
times = st.integers(0, 2**64 - 1)

simple_ops = st.one_of(
    st.tuples(st.just("set"), dbs, any_text, any_text, times),
    st.tuples(st.just("del"), dbs, any_text),
    st.tuples(st.just("clear"), st.one_of(dbs, st.just(-1))),
    st.tuples(st.just("expire"), dbs, any_text, times),
    st.tuples(st.just("swap"), dbs, dbs),
)
all_ops = st.one_of(
    simple_ops,
    st.tuples(st.just("batch"), st.lists(simple_ops, max_size=4).map(tuple)),
)

FAST = settings(max_examples=80, deadline=None)


def encode(op: tuple[Any, ...]) -> bytes:
    """The record of ``op``, through the public encoders."""
    kind, *args = op
    if kind == "set":
        db, key, value, at = args
        return jr.set_record(db, key, value, at)
    if kind == "del":
        return jr.delete_record(*args)
    if kind == "clear":
        return jr.clear_record(*args)
    if kind == "expire":
        return jr.expire_record(*args)
    if kind == "swap":
        return jr.swap_record(*args)
    return jr.batch_record([encode(inner) for inner in args[0]])


def journal(*records: bytes, jid: int = 1) -> bytes:
    return jr.header(jid) + b"".join(records)


def frame(record_type: int, body: bytes) -> bytes:
    tail = struct.pack("<IB", len(body), record_type)
    return struct.pack("<I", crc32(tail + body)) + tail + body


def entry(record: bytes) -> bytes:
    """The BATCH entry of a framed record: the record without its CRC."""
    return record[4:]


# A small journal with one record of every type, the BATCH last.
OPS: list[tuple[Any, ...]] = [
    ("set", 0, "a", "1", 0),
    ("set", 3, "", "\x00\ud800", 1_700_000_000_000),
    ("del", 1, "b"),
    ("expire", 2, "c", 5),
    ("clear", -1),
    ("swap", 1, 2),
    ("batch", (("set", 0, "x", "y", 7), ("del", 0, "z"), ("clear", 4))),
]
RECORDS = [encode(op) for op in OPS]
DATA = journal(*RECORDS)
STARTS = [len(journal(*RECORDS[:i])) for i in range(len(RECORDS))]


# ------------------------------------------------------------------ round trips


def test_text_strategy_really_produces_lone_surrogates() -> None:
    found = find(any_text, lambda s: any(0xD800 <= ord(c) <= 0xDFFF for c in s))
    assert any(0xD800 <= ord(c) <= 0xDFFF for c in found)


@FAST
@given(st.lists(all_ops, max_size=8), st.integers(1, 10**16 - 1))
def test_records_round_trip(ops: list[tuple[Any, ...]], jid: int) -> None:
    scan = jr.scan_journal(journal(*map(encode, ops), jid=jid), jid=jid)
    assert scan.ops == ops
    assert (scan.jid, scan.tail, scan.dropped_bytes) == (jid, "clean", 0)
    assert scan.valid_end == scan.size


@FAST
@given(dbs, any_text, any_text, times)
def test_set_record_is_exactly_the_specified_bytes(db: int, key: str, value: str, at: int) -> None:
    k = key.encode("utf-8", "surrogatepass")
    v = value.encode("utf-8", "surrogatepass")
    assert jr.set_record(db, key, value, at) == frame(
        0x10, struct.pack("<IQI", db, at, len(k)) + k + v
    )


def test_every_encoder_matches_the_grammar() -> None:
    assert jr.header(5) == b"\x89SKJ\r\n\x1a\n" + struct.pack("<HHQ", 1, 0, 5) + struct.pack(
        "<I", crc32(b"\x89SKJ\r\n\x1a\n" + struct.pack("<HHQ", 1, 0, 5))
    )
    assert jr.delete_record(7, "k\x00") == frame(0x11, struct.pack("<I", 7) + b"k\x00")
    assert jr.clear_record(jr.ALL_KEYSPACES) == frame(0x12, b"\xff\xff\xff\xff")
    assert jr.clear_record(9) == frame(0x12, struct.pack("<I", 9))
    assert jr.expire_record(1, "é", 0) == frame(0x13, struct.pack("<IQ", 1, 0) + b"\xc3\xa9")
    assert jr.swap_record(1, 2) == frame(0x14, struct.pack("<II", 1, 2))
    inner = [jr.delete_record(0, "a"), jr.swap_record(0, 1)]
    assert jr.batch_record(inner) == frame(
        0x15, struct.pack("<IB", 5, 0x11) + b"\x00" * 4 + b"a" + struct.pack("<IBII", 8, 0x14, 0, 1)
    )
    assert jr.batch_record(iter(inner)) == frame(0x15, b"".join(map(entry, inner)))


def test_encoders_refuse_bad_arguments() -> None:
    with pytest.raises(TypeError, match="key must be str"):
        jr.set_record(0, b"k", "v")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be str"):
        jr.set_record(0, "k", 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="value must be str"):
        jr.set_record(0, "\ud800", 1)  # type: ignore[arg-type]  (a key only surrogatepass encodes)
    with pytest.raises(TypeError, match="key must be str"):
        jr.delete_record(0, None)  # type: ignore[arg-type]
    for bad in [
        lambda: jr.set_record(-1, "k", "v"),
        lambda: jr.set_record(2**32, "k", "v"),
        lambda: jr.set_record(0, "k", "v", -1),
        lambda: jr.set_record(0, "k", "v", 2**64),
        lambda: jr.expire_record(0, "k", -5),
        lambda: jr.delete_record(-2, "k"),
        lambda: jr.clear_record(0xFFFF_FFFF),  # the on-disk "all" is spelled ALL_KEYSPACES
        lambda: jr.clear_record(-2),
        lambda: jr.swap_record(0, -1),
    ]:
        with pytest.raises(ValueError, match="out of range"):
            bad()


def test_a_batch_holds_whole_simple_records_only() -> None:
    nested = jr.batch_record([jr.delete_record(0, "a")])
    with pytest.raises(ValueError, match="type 0x15"):
        jr.batch_record([nested])
    with pytest.raises(ValueError, match="whole records"):
        jr.batch_record([jr.delete_record(0, "a")[:-1]])
    with pytest.raises(ValueError, match="whole records"):
        jr.batch_record([b"\x00" * 5])
    with pytest.raises(ValueError, match="one per item"):
        jr.batch_record([jr.delete_record(0, "a") + jr.delete_record(0, "b")])
    with pytest.raises(ValueError, match="checksum mismatch"):
        jr.batch_record([jr.delete_record(0, "a")[:-1] + b"b"])
    assert jr.scan_journal(journal(jr.batch_record([]))).ops == [("batch", ())]


@FAST
@given(st.lists(simple_ops, max_size=6))
def test_no_valid_record_frame_starts_inside_a_batch(inner: list[tuple[Any, ...]]) -> None:
    # The property recovery relies on: only the BATCH's own frame verifies,
    # so its damaged bytes can never look like records written after it.
    record = encode(("batch", tuple(inner)))
    for pos in range(1, len(record) - 8):
        length = struct.unpack_from("<I", record, pos + 4)[0]
        end = pos + 9 + length
        if end <= len(record):
            assert crc32(record[pos + 4 : end]) != struct.unpack_from("<I", record, pos)[0]


# ------------------------------------------------------------------ decode_record


@FAST
@given(all_ops)
def test_decode_record_returns_the_operation_of_one_record(op: tuple[Any, ...]) -> None:
    record = encode(op)
    assert jr.decode_record(record) == op
    assert jr.decode_record(memoryview(bytearray(record))) == op
    assert jr.decode_record(record) == jr.scan_journal(journal(record)).ops[0]


@pytest.mark.parametrize(
    ("record", "check", "offset"),
    [
        (b"", "record-header", 0),
        (RECORDS[0][:8], "record-header", 0),
        (RECORDS[0][:-1], "record-length", 0),
        (RECORDS[0] + b"\x00", "record-length", len(RECORDS[0])),
        (RECORDS[0] + RECORDS[1], "record-length", len(RECORDS[0])),
        (RECORDS[0][:-1] + b"\xff", "record-crc", 0),
        (frame(0x19, b""), "record-type", 0),  # an unknown required type
        (frame(0x80, b"optional"), "record-type", 0),  # no operation to return
        (frame(0x10, b"\x00" * 15), "record-body", 9),  # a SET body too short
        (frame(0x11, b"\x00" * 4 + b"\xff"), "text-utf8", 13),
        (frame(0x15, entry(RECORDS[6])), "batch-record", 9),  # a BATCH inside a BATCH
    ],
    ids=[
        "empty",
        "cut-header",
        "cut-body",
        "trailing-byte",
        "two-records",
        "crc",
        "unknown-type",
        "optional-type",
        "short-set",
        "bad-text",
        "nested-batch",
    ],
)
def test_decode_record_names_the_failed_check(record: bytes, check: str, offset: int) -> None:
    with pytest.raises(CorruptJournalError) as info:
        jr.decode_record(record)
    assert (info.value.check, info.value.offset) == (check, offset)


def test_decode_record_reads_a_snapshot_frame_but_refuses_its_type() -> None:
    # The frame is the snapshot's, so a snapshot record passes every frame
    # check and is refused for its type alone.
    end_record = frame(0x02, struct.pack("<QI", 0, 0))
    with pytest.raises(CorruptJournalError, match="type 0x02") as info:
        jr.decode_record(end_record)
    assert info.value.check == "record-type"


# ------------------------------------------------------------------ header


def test_a_header_only_journal_is_clean_and_empty() -> None:
    scan = jr.scan_journal(jr.header(42), jid=42)
    assert (scan.ops, scan.tail, scan.valid_end, scan.jid) == ([], "clean", 24, 42)
    assert scan.describe() == "clean: 0 records kept"


@pytest.mark.parametrize(
    ("data", "check", "offset"),
    [
        (b"", "header-length", 0),
        (jr.header(1)[:23], "header-length", 0),
        (b"\x89SKJ", "header-length", 0),
        (b"\x89SKV\r\n\x1a\n" + DATA[8:], "magic", 0),  # a snapshot, not a journal
        (b"PK\x03\x04", "magic", 0),
        (DATA[:12] + b"\x02" + DATA[13:], "header-crc", 20),
        (DATA[:20] + b"\x00\x00\x00\x00" + DATA[24:], "header-crc", 20),
    ],
    ids=["empty", "short", "magic-only", "snapshot-magic", "zip", "id-flipped", "crc-zero"],
)
def test_header_damage_is_an_error_even_with_repair(data: bytes, check: str, offset: int) -> None:
    for repair in (False, True):
        with pytest.raises(CorruptJournalError) as info:
            jr.scan_journal(data, repair=repair)
        assert (info.value.check, info.value.offset) == (check, offset)


def _rehead(version: int = 1, flags: int = 0, jid: int = 1) -> bytes:
    head = b"\x89SKJ\r\n\x1a\n" + struct.pack("<HHQ", version, flags, jid)
    return head + struct.pack("<I", crc32(head))


def test_header_version_flags_and_id_are_checked() -> None:
    with pytest.raises(CorruptJournalError, match="version 2") as info:
        jr.scan_journal(_rehead(version=2))
    assert (info.value.check, info.value.offset) == ("version", 8)
    with pytest.raises(CorruptJournalError) as info:
        jr.scan_journal(_rehead(flags=1))
    assert (info.value.check, info.value.offset) == ("flags", 10)
    with pytest.raises(CorruptJournalError, match="journal 3, expected journal 4") as info:
        jr.scan_journal(_rehead(jid=3), jid=4)
    assert (info.value.check, info.value.offset) == ("journal-id", 12)
    assert jr.scan_journal(_rehead(jid=3)).jid == 3  # no expectation given


# ------------------------------------------------------------------ recovery rules


def test_rule_1_clean() -> None:
    scan = jr.scan_journal(DATA)
    assert scan.ops == OPS
    assert (scan.tail, scan.dropped_bytes, scan.discarded_records) == ("clean", 0, 0)
    assert scan.describe() == f"clean: {len(OPS)} records kept"


@pytest.mark.parametrize("last", range(len(RECORDS)), ids=[op[0] for op in OPS])
def test_rule_2_torn_tail_at_every_byte_of_the_last_record(last: int) -> None:
    # Every record type as the last one, cut after each of its bytes.
    records = RECORDS[: last + 1]
    whole = journal(*records)
    start = len(whole) - len(records[-1])
    for cut in range(start + 1, len(whole)):
        scan = jr.scan_journal(whole[:cut])
        assert scan.ops == OPS[:last], cut
        assert (scan.tail, scan.valid_end, scan.dropped_bytes) == ("torn", start, cut - start)
        assert f"torn last record ({cut - start} bytes at offset {start})" in scan.describe()


def test_rule_2_a_torn_batch_is_torn_at_every_byte() -> None:
    inner = [jr.set_record(0, f"k{i}", "v" * i) for i in range(20)]
    big = jr.batch_record(inner)
    whole = journal(RECORDS[0], big)
    between = {STARTS[1] + 9 + len(b"".join(map(entry, inner[:i]))) for i in range(21)}
    boundaries = 0
    for cut in range(STARTS[1] + 1, len(whole)):
        scan = jr.scan_journal(whole[:cut])
        assert (scan.ops, scan.tail, scan.valid_end) == (OPS[:1], "torn", STARTS[1]), cut
        boundaries += cut in between
    assert boundaries == 20  # cuts exactly between entries were among them


@pytest.mark.parametrize("zeros", [1, 8, 9, 100, 5000])
def test_rule_3_zero_filled_tail(zeros: int) -> None:
    scan = jr.scan_journal(DATA + bytes(zeros))
    assert (scan.ops, scan.tail, scan.valid_end, scan.dropped_bytes) == (
        OPS,
        "zero-filled",
        len(DATA),
        zeros,
    )
    assert "zero-filled tail" in scan.describe()


def test_rule_3_last_record_zeroed_in_place() -> None:
    # A file system extended the file but never wrote the last record's data.
    zeroed = DATA[: STARTS[-1]] + bytes(len(RECORDS[-1]))
    scan = jr.scan_journal(zeroed)
    assert (scan.ops, scan.tail, scan.valid_end) == (OPS[:-1], "zero-filled", STARTS[-1])


def test_rule_4_garbage_tail() -> None:
    # The last record's body damaged: its CRC fails and nothing follows it.
    damaged = bytearray(journal(*RECORDS[:-1]))
    damaged[STARTS[-2] + 12] ^= 0x40
    scan = jr.scan_journal(bytes(damaged))
    assert (scan.ops, scan.tail, scan.valid_end) == (OPS[:-2], "garbage", STARTS[-2])
    assert scan.dropped_bytes == len(RECORDS[-2])
    assert "garbage tail" in scan.describe()
    # Bytes that frame nothing valid: a CRC over a length that fits, wrong.
    scan = jr.scan_journal(DATA + b"\x01\x02\x03\x04" + b"\x03\x00\x00\x00" + b"\x10abc")
    assert (scan.ops, scan.tail, scan.dropped_bytes) == (OPS, "garbage", 12)


@pytest.mark.parametrize("byte", [0, 12, 9 + 23 + 5, 9 + 23 + 10 + 2])
def test_rule_4_a_damaged_last_batch_is_a_garbage_tail(byte: int) -> None:
    # Its CRC field, or a byte of its first, second or third entry.
    damaged = bytearray(DATA)
    damaged[STARTS[-1] + byte] ^= 0x01
    scan = jr.scan_journal(bytes(damaged))
    assert (scan.ops, scan.tail, scan.valid_end) == (OPS[:-1], "garbage", STARTS[-1])


@FAST
@given(
    st.lists(simple_ops, min_size=1, max_size=6),
    st.binary(min_size=1, max_size=16),
    st.integers(0, 15),
)
def test_rule_2_and_4_a_garbled_start_of_a_last_batch_is_a_tail(
    inner: list[tuple[Any, ...]], garbage: bytes, at: int
) -> None:
    # A power loss that garbles the sector holding a BATCH's frame (its
    # type, its length), the rest of the BATCH reaching the disk: its
    # entries are not records, so this is a tail, never mid-file damage.
    record = bytearray(encode(("batch", tuple(inner))))
    at = min(at, len(record) - 1)
    record[at : at + len(garbage)] = bytes(
        b ^ g for b, g in zip(record[at : at + len(garbage)], garbage, strict=False)
    )
    scan = jr.scan_journal(journal(RECORDS[0], bytes(record)))
    if scan.tail != "clean":  # a zero mask can leave the record whole
        assert (scan.ops, scan.valid_end) == (OPS[:1], STARTS[1])
        assert scan.tail in {"torn", "garbage", "zero-filled"}


@pytest.mark.parametrize(
    ("record", "byte", "mask", "check"),
    [
        (2, 12, 0x80, "record-crc"),  # a body byte
        (2, 0, 0x80, "record-crc"),  # the CRC field itself
        (2, 7, 0x80, "record-length"),  # the length's high byte: runs past the end
        (2, 4, 0x01, "record-crc"),  # the length's low bit: still fits, CRC fails
        (2, 8, 0x80, "record-crc"),  # the type
        (0, 20, 0x80, "record-crc"),  # the first record
        (6, 20, 0x80, "record-crc"),  # inside a BATCH's first entry, not last
        (6, 8, 0x02, "record-crc"),  # a BATCH's type (0x15 -> 0x17)
        (6, 4, 0x08, "record-crc"),  # a BATCH's length shrunk: still fits, CRC fails
        (6, 4, 0x01, "record-crc"),  # a BATCH's length grown by 1
        (6, 7, 0x80, "record-length"),  # a BATCH's length run past the end of the file
    ],
)
def test_rule_5_mid_file_damage_is_an_error_at_the_damaged_record(
    record: int, byte: int, mask: int, check: str
) -> None:
    data = DATA + RECORDS[0] if record == len(RECORDS) - 1 else DATA
    damaged = bytearray(data)
    damaged[STARTS[record] + byte] ^= mask
    with pytest.raises(CorruptJournalError, match="a valid record follows") as info:
        jr.scan_journal(bytes(damaged))
    assert (info.value.offset, info.value.check) == (STARTS[record], check)


def test_rule_5_a_batch_inside_a_damaged_batch_is_a_later_record() -> None:
    # The first BATCH's length grown to cover the second BATCH, up to the end
    # of the file: no BATCH holds a BATCH, so the second one was written after.
    first, second = RECORDS[-1], jr.batch_record([RECORDS[0]])
    damaged = bytearray(journal(first, second))
    struct.pack_into("<I", damaged, 24 + 4, len(first) - 9 + len(second))
    with pytest.raises(CorruptJournalError, match="a valid record follows it"):
        jr.scan_journal(bytes(damaged))
    assert jr.scan_journal(bytes(damaged), repair=True).resumes_at == 24 + len(first)


def test_rule_5_records_after_a_batch_whose_length_runs_past_the_end_are_found() -> None:
    # Damage in the length can make a BATCH cover the rest of the file: the
    # records after it were written later, and its entries are not records,
    # so they are told apart.
    for later in (RECORDS[:1], RECORDS[:6]):
        damaged = bytearray(journal(RECORDS[-1], *later))
        struct.pack_into("<I", damaged, 24 + 4, len(damaged))
        with pytest.raises(CorruptJournalError, match="a valid record follows it"):
            jr.scan_journal(bytes(damaged))
        scan = jr.scan_journal(bytes(damaged), repair=True)
        assert (scan.ops, scan.valid_end, scan.discarded_records) == ([], 24, len(later))
        assert scan.resumes_at == 24 + len(RECORDS[-1])


def test_rule_5_zeros_followed_by_records_are_not_a_tail() -> None:
    zeroed = DATA[: STARTS[3]] + bytes(len(RECORDS[3])) + DATA[STARTS[4] :]
    with pytest.raises(CorruptJournalError) as info:
        jr.scan_journal(zeroed)
    assert (info.value.offset, info.value.check) == (STARTS[3], "record-crc")


def test_rule_5_a_valid_checksum_over_a_malformed_body_is_an_error_even_last() -> None:
    cases = [
        # SET whose key length runs past its body
        (frame(0x10, struct.pack("<IQI", 0, 0, 99) + b"kv"), "record-body", 9 + 12),
        (frame(0x10, b"\x00" * 15), "record-body", 9),  # SET body shorter than its fields
        (frame(0x11, b"\x00" * 3), "record-body", 9),
        (frame(0x12, b"\x00" * 5), "record-body", 9),  # CLEAR is exactly 4 bytes
        (frame(0x13, b"\x00" * 11), "record-body", 9),
        (frame(0x14, b"\x00" * 9), "record-body", 9),  # SWAP is exactly 8 bytes
        (frame(0x11, b"\x00\x00\x00\x00ab\xff"), "text-utf8", 9 + 6),
        (frame(0x10, struct.pack("<IQI", 0, 0, 1) + b"k\xed\xa0"), "text-utf8", 9 + 17),
        (frame(0x20, b""), "record-type", 0),  # unknown required type
        (frame(0x00, b""), "record-type", 0),
        (frame(0x15, entry(RECORDS[0])[:-1]), "batch-record", 9),  # entry runs past
        (frame(0x15, entry(RECORDS[0]) + b"\x00" * 4), "batch-record", 9 + len(RECORDS[0]) - 4),
        (frame(0x15, b"\x00"), "batch-record", 9),  # 1 byte: no room for an entry header
        (frame(0x15, entry(frame(0x15, b""))), "batch-record", 9),  # nested BATCH
        (frame(0x15, entry(RECORDS[0]) + entry(frame(0x20, b""))), "batch-record", 32),
        (frame(0x15, entry(frame(0x11, b"\x00" * 3))), "record-body", 9 + 5),
        (frame(0x15, entry(frame(0x11, b"\x00\x00\x00\x00\xff"))), "text-utf8", 9 + 9),
    ]
    for record, check, offset in cases:
        with pytest.raises(CorruptJournalError) as info:
            jr.scan_journal(DATA + record)
        assert (info.value.check, info.value.offset) == (check, len(DATA) + offset), record
        scan = jr.scan_journal(DATA + record, repair=True)
        assert (scan.ops, scan.tail, scan.valid_end) == (OPS, "damaged", len(DATA))
        assert scan.discarded_records == 1 and scan.damage is not None
        assert scan.damage.check == check


def test_optional_records_are_verified_and_skipped() -> None:
    optional = frame(0x80, b"a note from a newer writer")
    scan = jr.scan_journal(journal(RECORDS[0], optional, frame(0xFF, b""), RECORDS[1]))
    assert (scan.ops, scan.skipped_records) == (OPS[:2], 2)
    inside = frame(0x15, entry(RECORDS[0]) + entry(optional))
    assert jr.scan_journal(journal(inside)).ops == [("batch", (OPS[0],))]
    # An optional record is framed like any other: a bad CRC before a good record is damage.
    bad = bytearray(optional)
    bad[-1] ^= 1
    with pytest.raises(CorruptJournalError, match="mismatch, and a valid record follows it"):
        jr.scan_journal(journal(RECORDS[0], bytes(bad), RECORDS[1]))


def test_repair_keeps_the_prefix_and_reports_what_was_lost() -> None:
    damaged = bytearray(DATA + RECORDS[0])
    damaged[STARTS[2] + 10] ^= 0x01
    scan = jr.scan_journal(bytes(damaged), repair=True)
    assert scan.ops == OPS[:2]
    assert (scan.tail, scan.valid_end) == ("damaged", STARTS[2])
    assert scan.dropped_bytes == len(damaged) - STARTS[2]
    # Records 3..6 and the extra one still looked valid; the BATCH counts once.
    assert scan.discarded_records == len(OPS) - 3 + 1
    assert scan.damage is not None and scan.damage.check == "record-crc"
    assert scan.damage.offset == STARTS[2]
    assert f"dropped {scan.dropped_bytes} bytes holding 5 later records" in scan.describe()


def test_repair_of_a_tail_is_the_same_as_without_it() -> None:
    for data in (DATA, DATA[:-3], DATA + bytes(7)):
        assert jr.scan_journal(data, repair=True) == jr.scan_journal(data)


def test_a_value_holding_journal_bytes_is_only_data() -> None:
    # A record whose bytes are all ASCII, stored as a value: a valid frame
    # at an offset where no record starts.
    embedded = next(
        r for i in range(10_000) if max(r := jr.delete_record(0, f"k{i}")) < 0x80
    ).decode("ascii")
    record = jr.set_record(0, "blob", embedded + "...")
    data = journal(RECORDS[0], record)
    assert jr.scan_journal(data).ops == [OPS[0], ("set", 0, "blob", embedded + "...", 0)]
    # Torn after the embedded frame, the tail cannot be told from mid-file
    # damage (FORMAT.md says so): recovery stops loudly instead of guessing,
    # and a repair keeps exactly the records before it.
    torn = data[:-1]
    with pytest.raises(CorruptJournalError, match="a valid record follows"):
        jr.scan_journal(torn)
    scan = jr.scan_journal(torn, repair=True)
    assert (scan.ops, scan.valid_end, scan.discarded_records) == (OPS[:1], STARTS[1], 1)


# ------------------------------------------------------------------ sweeps


def _is_prefix(ops: list[Any]) -> bool:
    return ops == OPS[: len(ops)]


def test_truncation_at_every_offset_yields_a_prefix() -> None:
    for cut in range(len(DATA) + 1):
        if cut < 24:
            with pytest.raises(CorruptJournalError, match="journal header needs 24 bytes"):
                jr.scan_journal(DATA[:cut])
            continue
        scan = jr.scan_journal(DATA[:cut])
        assert _is_prefix(scan.ops)
        assert scan.tail == ("clean" if cut in [*STARTS, len(DATA)] else "torn")


def test_every_single_bit_flip_yields_a_prefix_or_an_error() -> None:
    for pos in range(len(DATA)):
        for bit in range(8):
            damaged = bytearray(DATA)
            damaged[pos] ^= 1 << bit
            try:
                scan = jr.scan_journal(bytes(damaged))
            except CorruptJournalError:
                continue
            assert _is_prefix(scan.ops), (pos, bit)
            assert len(scan.ops) < len(OPS)  # a flip is never silently accepted
            repaired = jr.scan_journal(bytes(damaged), repair=True)
            assert _is_prefix(repaired.ops)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(DATA) - 1), st.integers(1, 255)), max_size=6))
def test_random_damage_yields_a_prefix_or_an_error(edits: list[tuple[int, int]]) -> None:
    damaged = bytearray(DATA)
    for pos, mask in edits:
        damaged[pos] ^= mask
    for repair in (False, True):
        try:
            scan = jr.scan_journal(bytes(damaged), repair=repair)
        except CorruptJournalError:
            continue
        assert _is_prefix(scan.ops)


# ------------------------------------------------------------------ the spec's example

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _hex_blocks() -> list[bytes]:
    """Every ```journal-hex block of the format documents, as bytes (comments stripped)."""
    blocks = []
    for name in ("FORMAT.md",):
        path = DOCS / name
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        for block in text.split("```journal-hex\n")[1:]:
            lines = block.split("```")[0].splitlines()
            blocks.append(bytes.fromhex("".join(line.split("#")[0] for line in lines)))
    return blocks


def test_the_documented_example_is_what_the_encoders_write() -> None:
    blocks = _hex_blocks()
    assert blocks, "the journal format document lost its worked example"
    expected = jr.header(1) + b"".join(
        [
            jr.set_record(0, "k", "v"),
            jr.set_record(2, "é", "", 1_700_000_000_000),
            jr.batch_record([jr.delete_record(0, "k"), jr.expire_record(2, "é", 0)]),
            jr.clear_record(jr.ALL_KEYSPACES),
        ]
    )
    assert blocks[0] == expected
    # What the document says of it.
    assert len(expected) == 129
    for cut in range(117, 129):
        scan = jr.scan_journal(expected[:cut])
        assert (len(scan.ops), scan.tail, scan.valid_end) == (3, "torn", 116)
    for pos in range(78, 116):  # one damaged byte of the BATCH, when it is last
        for mask in range(1, 256):
            damaged = bytearray(expected[:116])
            damaged[pos] ^= mask
            scan = jr.scan_journal(bytes(damaged))
            assert (len(scan.ops), scan.valid_end) == (2, 78)
            assert scan.tail in {"torn", "garbage"}
    for bit in range(8 * 27):
        damaged = bytearray(expected)
        damaged[24 + bit // 8] ^= 1 << bit % 8
        with pytest.raises(CorruptJournalError) as info:
            jr.scan_journal(bytes(damaged))
        assert info.value.offset == 24
        assert info.value.check in {"record-crc", "record-length"}


# ------------------------------------------------------------------ writer


class CountingFile(JournalFile):
    """A real journal file that counts writes and syncs, and can hold the first sync.

    ``gate(n)`` makes the first sync wait until ``n`` writes have happened:
    it makes "others append while one fsyncs" certain instead of likely.
    """

    def __init__(self, inner: JournalFile) -> None:
        self.inner = inner
        self.writes = 0
        self.syncs = 0
        self.synced_event = threading.Event()
        self.fail_write: Exception | None = None
        self.fail_sync: Exception | None = None
        self._changed = threading.Condition()
        self._gate = 0

    @property
    def size(self) -> int:  # type: ignore[override]
        return self.inner.size

    def gate(self, writes: int) -> None:
        self._gate = writes

    def write(self, data: bytes) -> None:
        if self.fail_write is not None:
            raise self.fail_write
        self.inner.write(data)
        with self._changed:
            self.writes += 1
            self._changed.notify_all()

    def sync(self) -> None:
        if self.fail_sync is not None:
            raise self.fail_sync
        with self._changed:
            gate, self._gate = self._gate, 0
            assert self._changed.wait_for(lambda: self.writes >= gate, timeout=30)
        self.inner.sync()
        self.syncs += 1
        self.synced_event.set()

    def truncate(self, size: int) -> None:
        self.inner.truncate(size)

    def close(self) -> None:
        self.inner.close()


@pytest.fixture
def medium(tmp_path: Path) -> Iterator[FileMedium]:
    medium = FileMedium(tmp_path / "data")
    yield medium
    medium.close()


def counting(medium: Medium, jid: int = 1) -> CountingFile:
    return CountingFile(medium.create_journal(jid, jr.header(jid)))


def test_always_syncs_before_commit_returns(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "always")
    lsn = writer.append(RECORDS[0])
    assert lsn == 24 + len(RECORDS[0]) == writer.written
    assert file.syncs == 0  # append only writes
    assert medium.read_journal(1) == journal(RECORDS[0])  # in the OS already
    writer.commit(lsn)
    assert (file.syncs, writer.synced) == (1, lsn)
    writer.commit(lsn)  # already durable: no second fsync
    assert file.syncs == 1
    writer.close()
    assert jr.scan_journal(medium.read_journal(1) or b"").ops == OPS[:1]


def test_never_leaves_syncing_to_close(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "never")
    for record in RECORDS:
        writer.commit(writer.append(record))
    assert (file.syncs, writer.synced) == (0, 24)
    writer.sync()  # an explicit sync works under every policy
    assert file.syncs == 1
    writer.append(RECORDS[0])
    writer.close()
    assert file.syncs == 2  # close syncs what was appended
    writer.close()  # idempotent


def test_everysec_thread_syncs_after_a_write_and_only_then(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "everysec", interval=0.001)
    try:
        assert writer.sync_pending() is False  # nothing written: nothing to sync
        writer.commit(writer.append(RECORDS[0]))  # returns at once
        assert file.synced_event.wait(timeout=30), "the everysec thread never synced"
    finally:
        writer.close()
    assert writer.synced == writer.written


def test_sync_pending_is_the_everysec_step(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "never")
    assert (writer.sync_pending(), file.syncs) == (False, 0)
    writer.append(RECORDS[0])
    assert (writer.sync_pending(), file.syncs) == (True, 1)
    assert (writer.sync_pending(), file.syncs) == (False, 1)
    writer.close()


def test_group_commit_shares_one_fsync_among_waiting_threads(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "always")
    threads = 8
    file.gate(threads)  # the first fsync starts only once all 8 have appended
    errors: list[BaseException] = []
    lock = threading.Lock()  # stands in for the store's lock

    def client(i: int) -> None:
        try:
            with lock:
                lsn = writer.append(jr.set_record(0, f"k{i}", "v"))
            writer.commit(lsn)
            assert writer.synced >= lsn
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors
    assert file.writes == threads
    # The first committer's fsync covered what was appended when it started;
    # the next one covered everything appended meanwhile; everyone else found
    # their record durable and returned without an fsync.
    assert file.syncs in (1, 2)
    writer.close()
    scan = jr.scan_journal(medium.read_journal(1) or b"")
    assert sorted(op[2] for op in scan.ops) == sorted(f"k{i}" for i in range(threads))


def test_group_commit_under_free_contention_never_acknowledges_unsynced(
    medium: FileMedium,
) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "always")
    lock = threading.Lock()
    unsafe: list[int] = []

    def client(i: int) -> None:
        for n in range(40):
            with lock:
                lsn = writer.append(jr.set_record(i, str(n), "v"))
            writer.commit(lsn)
            if writer.synced < lsn:  # pragma: no cover - the property under test
                unsafe.append(lsn)

    workers = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not unsafe
    assert file.syncs <= file.writes == 320
    writer.close()
    assert len(jr.scan_journal(medium.read_journal(1) or b"").ops) == 320


def test_a_failed_write_fails_the_writer_for_good(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "always")
    writer.commit(writer.append(RECORDS[0]))
    file.fail_write = MediumError("disk full")
    with pytest.raises(MediumError, match="disk full"):
        writer.append(RECORDS[1])
    file.fail_write = None  # the disk recovers; the writer must not
    with pytest.raises(MediumError, match="refuses writes after an earlier failure: disk full"):
        writer.append(RECORDS[1])
    with pytest.raises(MediumError, match="disk full"):
        writer.sync()
    assert writer.failure == "disk full"
    writer.close()  # nothing unsynced was acknowledged: closes quietly
    assert jr.scan_journal(medium.read_journal(1) or b"").ops == OPS[:1]


def test_a_failed_fsync_fails_the_writer_and_the_commit(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "always")
    lsn = writer.append(RECORDS[0])
    file.fail_sync = MediumError("EIO")
    with pytest.raises(MediumError, match="EIO"):
        writer.commit(lsn)
    file.fail_sync = None  # a retried fsync could lie: never retried
    with pytest.raises(MediumError, match="earlier failure: EIO"):
        writer.commit(lsn)
    with pytest.raises(MediumError, match="earlier failure: EIO"):
        writer.append(RECORDS[1])
    with pytest.raises(MediumError, match="earlier failure: EIO"):
        writer.close()  # an acknowledged record is not durable: said loudly


def test_a_failed_background_fsync_refuses_the_next_append(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "never")  # sync_pending is the everysec step
    writer.append(RECORDS[0])
    file.fail_sync = MediumError("EIO")
    assert writer.sync_pending() is False
    with pytest.raises(MediumError, match="earlier failure: EIO"):
        writer.append(RECORDS[1])
    assert writer.sync_pending() is False
    with pytest.raises(MediumError, match="earlier failure: EIO"):
        writer.close()


def test_a_closed_writer_refuses_appends_and_closes_its_file(medium: FileMedium) -> None:
    file = counting(medium)
    writer = jr.JournalWriter(file, "everysec")
    writer.close()
    with pytest.raises(MediumError, match="closed"):
        writer.append(RECORDS[0])
    with pytest.raises(MediumError, match="closed"):
        file.inner.write(b"x")


def test_writer_arguments_are_checked(medium: FileMedium) -> None:
    file = medium.create_journal(1, jr.header(1))
    with pytest.raises(ValueError, match="'always', 'everysec', 'no'"):
        jr.JournalWriter(file, "sometimes")
    with pytest.raises(ValueError, match="interval"):
        jr.JournalWriter(file, "everysec", interval=0)


def test_memory_medium_tracks_what_was_synced() -> None:
    medium = MemoryMedium()
    writer = jr.JournalWriter(medium.create_journal(1, jr.header(1)), "never")
    assert medium.synced_size(1) == 24  # created durable
    writer.append(RECORDS[0])
    assert medium.synced_size(1) == 24  # written, not synced: a power loss may take it
    assert medium.read_journal(1) == journal(RECORDS[0])
    writer.sync()
    assert medium.synced_size(1) == len(journal(RECORDS[0]))
    writer.close()


# ------------------------------------------------------------------ errors


def test_corrupt_journal_error_pickles_and_locates() -> None:
    error = CorruptJournalError("bad", offset=40, check="record-crc")
    located = error.located("/data/journal-0000000000000001.skj")
    assert str(located) == "/data/journal-0000000000000001.skj: bad (offset 40, check record-crc)"
    copy = pickle.loads(pickle.dumps(located))
    assert type(copy) is CorruptJournalError
    assert (copy.reason, copy.offset, copy.check, copy.source) == (
        "bad",
        40,
        "record-crc",
        "/data/journal-0000000000000001.skj",
    )


def test_an_append_to_a_closed_writer_is_refused_and_fails_nothing(medium: FileMedium) -> None:
    writer = jr.JournalWriter(medium.create_journal(1, jr.header(1)), "no")
    writer.close()
    with pytest.raises(MediumError, match="the journal writer is closed"):
        writer.append(jr.set_record(0, "k", "v"))
    assert writer.failure is None and writer.written == jr.HEADER_SIZE
