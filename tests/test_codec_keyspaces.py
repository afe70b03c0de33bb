"""Keyspaces, expiry times and META: ``iter_encode_snapshot``, ``decode_snapshot``, ``scan``.

The byte-level checks of these records live in ``test_codec_corruption.py``
and ``test_format_spec.py``; this file covers the round trip, the promise that
data version 1 can hold is still written byte for byte as version 1, and the
encoder's argument checks.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapkv import codec
from snapkv.errors import CorruptSnapshotError

FAST = settings(max_examples=60, deadline=None)

any_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
    | st.sampled_from([*codec.SEPARATORS, "\ud800", "\udfff", "😀"]),
    max_size=12,
)
times = st.one_of(st.just(0), st.integers(1, 2**64 - 1), st.integers(1_700_000_000_000, 2**42))

Spaces = dict[int, dict[str, str]]
Expires = dict[int, dict[str, int]]


@contextmanager
def chunk_entries(limit: int) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "MAX_CHUNK_ENTRIES", limit)
        yield


def encode(spaces: Sequence[codec.SpaceColumns], journal_next: int = 0) -> bytes:
    return b"".join(codec.iter_encode_snapshot(spaces, journal_next=journal_next))


def columns(spaces: Spaces, expires: Expires) -> list[codec.SpaceColumns]:
    """The encoder's arguments for this data: expiry columns only where ``expires`` has a dict."""
    result: list[codec.SpaceColumns] = []
    for number in sorted(spaces):
        mapping = spaces[number]
        timed = expires.get(number)
        column = None if timed is None else [timed.get(key, 0) for key in mapping]
        result.append((number, list(mapping), list(mapping.values()), column))
    return result


def expected(spaces: Spaces, expires: Expires, journal_next: int = 0) -> codec.Snapshot:
    """What decode_snapshot must return: no empty keyspace, no zero time, no empty dict."""
    kept = {n: m for n, m in sorted(spaces.items()) if m}
    timed = {
        n: {k: t for k, t in e.items() if t and k in kept.get(n, {})} for n, e in expires.items()
    }
    return codec.Snapshot(kept, {n: e for n, e in timed.items() if e}, journal_next)


def record_types(data: bytes) -> list[int]:
    found = []
    pos = codec.HEADER_SIZE
    while pos < len(data):
        _crc, length, kind = codec.FRAME.unpack_from(data, pos)
        found.append(kind)
        pos += codec.FRAME_SIZE + length
    return found


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[Spaces, Expires, int]:
    numbers = draw(st.lists(st.integers(0, 2**32 - 1), max_size=4, unique=True))
    spaces: Spaces = {}
    expires: Expires = {}
    for number in numbers:
        spaces[number] = draw(st.dictionaries(any_text, any_text, max_size=8))
        if draw(st.booleans()):
            expires[number] = {key: draw(times) for key in spaces[number]}
    return spaces, expires, draw(st.one_of(st.just(0), st.integers(0, 2**64 - 1)))


# ------------------------------------------------------------------ round trips


@FAST
@given(snapshots(), st.integers(1, 4))
def test_roundtrip_keyspaces_expiry_and_journal_next(
    data: tuple[Spaces, Expires, int], per_chunk: int
) -> None:
    spaces, expires, journal_next = data
    with chunk_entries(per_chunk):
        blob = encode(columns(spaces, expires), journal_next)
    result = codec.decode_snapshot(blob)
    assert result == expected(spaces, expires, journal_next)
    for number, mapping in result.spaces.items():
        assert list(mapping.items()) == list(spaces[number].items()), "order must survive"
    info = codec.scan(blob)
    assert info.journal_next == journal_next
    assert info.entries == sum(map(len, result.spaces.values()))
    assert info.expiring == sum(map(len, result.expires.values()))
    assert [(k.number, k.entries, k.expiring) for k in info.keyspaces] == [
        (n, len(m), len(result.expires.get(n, {}))) for n, m in result.spaces.items()
    ]
    extended = bool(result.expires) or any(n != 0 for n in result.spaces)
    assert info.version == blob[8] == (2 if extended else 1)


@FAST
@given(st.dictionaries(any_text, any_text), st.integers(1, 4), st.booleans())
def test_keyspace_0_without_expiry_is_the_v1_encoding_byte_for_byte(
    mapping: dict[str, str], per_chunk: int, zero_column: bool
) -> None:
    column = [0] * len(mapping) if zero_column else None
    with chunk_entries(per_chunk):
        v1 = codec.encode(mapping)
        assert encode([(0, list(mapping), list(mapping.values()), column)]) == v1
        # Empty keyspaces add nothing, whatever their number.
        spaces = [(0, list(mapping), list(mapping.values()), column), (7, [], [], [])]
        assert encode(spaces) == v1
    assert codec.decode(v1) == mapping


def test_journal_next_adds_a_meta_record_and_keeps_version_1() -> None:
    plain = codec.encode({"k": "v"})
    data = encode([(0, ["k"], ["v"], None)], journal_next=7)
    assert data[8] == 1
    assert record_types(data) == [codec.TYPE_META, codec.TYPE_ENTRIES, codec.TYPE_END]
    meta_end = codec.HEADER_SIZE + codec.FRAME_SIZE + codec.META_BODY.size
    end_size = codec.FRAME_SIZE + codec.END_BODY.size
    assert data[:16] == plain[:16]
    assert data[meta_end:-end_size] == plain[16:-end_size], "the same ENTRIES record"
    assert data[-codec.END_BODY.size :] == codec.END_BODY.pack(1, 2)
    assert codec.decode(data) == {"k": "v"}
    assert codec.decode_snapshot(data) == codec.Snapshot({0: {"k": "v"}}, {}, 7)
    assert codec.scan(data).journal_next == 7
    assert codec.scan(data).skipped_records == 0


def test_journal_next_without_entries() -> None:
    data = encode([], journal_next=2**64 - 1)
    assert codec.decode_snapshot(data) == codec.Snapshot({}, {}, 2**64 - 1)
    assert codec.decode(data) == {}


def test_no_meta_record_when_journal_next_is_0() -> None:
    assert encode([(0, ["k"], ["v"], None)], journal_next=0) == codec.encode({"k": "v"})


def test_version_2_for_an_expiry_time_in_keyspace_0() -> None:
    data = encode([(0, ["a", "b"], ["1", "2"], [0, 1_767_225_600_000])])
    assert data[8] == 2
    assert record_types(data) == [codec.TYPE_ENTRIES_EX, codec.TYPE_END]
    assert codec.decode_snapshot(data) == codec.Snapshot(
        {0: {"a": "1", "b": "2"}}, {0: {"b": 1_767_225_600_000}}, 0
    )


def test_version_2_for_a_keyspace_other_than_0() -> None:
    data = encode([(0, [], [], None), (5, ["a"], ["1"], None)])
    assert data[8] == 2
    assert record_types(data) == [codec.TYPE_KEYSPACE, codec.TYPE_ENTRIES, codec.TYPE_END]
    assert codec.decode_snapshot(data) == codec.Snapshot({5: {"a": "1"}}, {}, 0)


def test_highest_keyspace_number_and_expiry_time() -> None:
    data = encode([(2**32 - 1, ["k"], ["v"], [2**64 - 1])])
    assert codec.decode_snapshot(data) == codec.Snapshot(
        {2**32 - 1: {"k": "v"}}, {2**32 - 1: {"k": 2**64 - 1}}, 0
    )


def test_expiry_times_in_the_past_are_returned() -> None:
    # The codec has no clock: deciding what has expired is the Store's job.
    data = encode([(0, ["old"], ["v"], [1])])
    assert codec.decode_snapshot(data).expires == {0: {"old": 1}}


def test_only_chunks_with_an_expiry_time_use_entries_ex() -> None:
    keys = [f"k{i}" for i in range(7)]
    column = [0, 0, 0, 5, 0, 0, 0]  # only the second chunk of three has one
    with chunk_entries(3):
        data = encode([(0, keys, keys, column)])
    assert record_types(data) == [1, 3, 1, 2]
    info = codec.scan(data)
    assert [(c.entries, c.expiring) for c in info.chunks] == [(3, 0), (3, 1), (1, 0)]
    assert codec.decode_snapshot(data).expires == {0: {"k3": 5}}


def test_a_chunk_split_by_size_keeps_each_expiry_time_with_its_entry() -> None:
    keys = ["a", "b", "c", "d"]
    values = ["x" * 40, "y" * 40, "z" * 40, "w" * 40]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "MAX_CHUNK_CHARS", 60)
        data = encode([(0, keys, values, [0, 0, 0, 9])])
    assert record_types(data) == [1, 1, 1, 3, 2]
    assert codec.decode_snapshot(data) == codec.Snapshot(
        {0: dict(zip(keys, values, strict=True))}, {0: {"d": 9}}, 0
    )


def test_keyspaces_start_new_chunks() -> None:
    with chunk_entries(4):
        data = encode([(0, ["a"], ["1"], None), (1, ["b"], ["2"], [3]), (2, ["c"], ["4"], None)])
    info = codec.scan(data, keys=5)
    assert [(c.keyspace, c.entries, c.expiring) for c in info.chunks] == [
        (0, 1, 0),
        (1, 1, 1),
        (2, 1, 0),
    ]
    assert info.first_keys == ["a", "b", "c"]
    assert info.records == 5  # 3 entries records and 2 KEYSPACE records
    assert info.skipped_records == 0


def test_sequences_other_than_lists_are_accepted() -> None:
    data = encode([(0, ("a", "b"), ("1", "2"), (0, 4)), (1, ("c",), ("3",), None)])
    assert codec.decode_snapshot(data) == codec.Snapshot(
        {0: {"a": "1", "b": "2"}, 1: {"c": "3"}}, {0: {"b": 4}}, 0
    )


def test_spaces_may_be_a_generator() -> None:
    spaces = ((n, [f"k{n}"], ["v"], None) for n in range(3))
    assert codec.decode_snapshot(encode(list(spaces))).spaces == {
        0: {"k0": "v"},
        1: {"k1": "v"},
        2: {"k2": "v"},
    }
    generated = ((n, [f"k{n}"], ["v"], None) for n in range(3))
    assert b"".join(codec.iter_encode_snapshot(generated)) == encode(
        [(n, [f"k{n}"], ["v"], None) for n in range(3)]
    )


def test_decode_snapshot_accepts_bytes_bytearray_memoryview() -> None:
    data = encode([(0, ["a"], ["1"], [5]), (3, ["b"], ["2"], None)], journal_next=4)
    want = codec.decode_snapshot(data)
    for form in (bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        assert codec.decode_snapshot(form) == want
        assert codec.scan(form).journal_next == 4


def test_snapshot_is_frozen() -> None:
    snapshot = codec.decode_snapshot(codec.encode({}))
    assert snapshot == codec.Snapshot({}, {}, 0)
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'journal_next'"):
        snapshot.journal_next = 1  # type: ignore[misc]


# ------------------------------------------------------------------ decode


@pytest.mark.parametrize(
    "spaces",
    [
        [(0, ["a"], ["1"], [5])],
        [(1, ["a"], ["1"], None)],
        [(0, ["a"], ["1"], None), (1, ["b"], ["2"], None)],
    ],
    ids=["expiry", "keyspace-1", "two-keyspaces"],
)
def test_decode_refuses_data_a_mapping_would_lose(spaces: list[codec.SpaceColumns]) -> None:
    with pytest.raises(ValueError, match="use decode_snapshot") as info:
        codec.decode(encode(spaces))
    assert not isinstance(info.value, CorruptSnapshotError)


def test_decode_reports_corruption_before_refusing_v2_data() -> None:
    data = bytearray(encode([(1, ["a"], ["1"], None)]))
    data[-1] ^= 1
    with pytest.raises(CorruptSnapshotError, match="record checksum mismatch"):
        codec.decode(bytes(data))


def test_decode_reads_keyspace_0_from_v2_records_without_expiry_times() -> None:
    # Not what the encoder writes, but valid: an ENTRIES_EX whose times are all 0.
    head = codec.MAGIC + struct.pack("<HH", 2, 0)
    body = struct.pack("<IBQ", 1, codec.LAYOUT_SEPARATED, 0) + b"\x00k\x00v"
    records = [(codec.TYPE_ENTRIES_EX, body), (codec.TYPE_END, codec.END_BODY.pack(1, 1))]
    data = head + struct.pack("<I", zlib.crc32(head))
    for kind, record in records:
        tail = struct.pack("<IB", len(record), kind) + record
        data += struct.pack("<I", zlib.crc32(tail)) + tail
    assert codec.decode_snapshot(data) == codec.Snapshot({0: {"k": "v"}}, {}, 0)
    assert codec.decode(data) == {"k": "v"}
    assert codec.scan(data).chunks[0].expiring == 0


def test_decode_snapshot_returns_plain_str_and_int() -> None:
    data = encode([(0, ["k"], ["v"], [2**63])])
    snapshot = codec.decode_snapshot(data)
    assert type(next(iter(snapshot.spaces[0]))) is str
    assert type(snapshot.expires[0]["k"]) is int


# ------------------------------------------------------------------ arguments


@pytest.mark.parametrize(
    ("spaces", "message"),
    [
        ([(1, [], [], None), (1, [], [], None)], "must increase"),
        ([(3, ["a"], ["1"], None), (2, ["b"], ["2"], None)], "must increase"),
        ([(-1, ["a"], ["1"], None)], "must increase"),
        ([(2**32, ["a"], ["1"], None)], "must increase"),
        ([(0, ["a", "b"], ["1"], None)], "2 keys but 1 values"),
        ([(0, ["a"], ["1", "2"], None)], "1 keys but 2 values"),
        ([(0, ["a"], ["1"], [])], "1 keys but 0 expiry times"),
        ([(0, ["a"], ["1"], [1, 2])], "1 keys but 2 expiry times"),
    ],
    ids=["repeated", "decreasing", "negative", "too-large", "values-short", "values-long",
         "times-short", "times-long"],
)  # fmt: skip
def test_bad_arguments_fail_before_any_byte(spaces: list[codec.SpaceColumns], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        codec.iter_encode_snapshot(spaces)


@pytest.mark.parametrize("journal_next", [-1, 2**64])
def test_journal_next_out_of_range(journal_next: int) -> None:
    with pytest.raises(ValueError, match="journal_next"):
        codec.iter_encode_snapshot([], journal_next=journal_next)


def test_non_int_arguments_are_type_errors() -> None:
    with pytest.raises(TypeError, match="keyspace number must be int, not str"):
        codec.iter_encode_snapshot([("1", ["a"], ["1"], None)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="journal_next must be int, not float"):
        codec.iter_encode_snapshot([], journal_next=1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("column", "error", "message"),
    [
        ([-1], ValueError, "expiry times must be 0"),
        ([2**64], ValueError, "expiry times must be 0"),
        ([1.5], TypeError, "expiry times must be int, not float"),
        ([None], TypeError, "expiry times must be int, not NoneType"),
        ([5, "7"], TypeError, "not str"),
    ],
    ids=["negative", "too-large", "float", "none", "str"],
)
def test_bad_expiry_times_are_refused(
    column: list[object], error: type[Exception], message: str
) -> None:
    keys = [f"k{i}" for i in range(len(column))]
    with pytest.raises(error, match=message):
        encode([(0, keys, keys, column)])  # type: ignore[list-item]


def test_bad_expiry_time_in_a_chunk_without_others_is_still_refused() -> None:
    with chunk_entries(1), pytest.raises(TypeError, match="not NoneType"):
        encode([(0, ["a", "b"], ["1", "2"], [5, None])])  # type: ignore[list-item]


def test_non_str_key_in_a_later_keyspace() -> None:
    with pytest.raises(TypeError, match="must be str, not int"):
        encode([(0, ["a"], ["1"], None), (1, [2], ["x"], None)])  # type: ignore[list-item]


# ------------------------------------------------------------------ META


def test_meta_is_optional_for_a_reader_that_does_not_know_it() -> None:
    # What a reader without META does: verify the CRC, count the record, skip it.
    data = encode([(0, ["k"], ["v"], None)], journal_next=5)
    meta_type_at = codec.HEADER_SIZE + 8
    assert data[meta_type_at] & codec.OPTIONAL_TYPE_BIT
    info = codec.scan(data)
    assert (info.version, info.records, len(info.chunks)) == (1, 2, 1)


# ------------------------------------------------------------------ peek_journal_next

META_AT = codec.HEADER_SIZE


def meta_record(body: bytes) -> bytes:
    tail = codec.FRAME_TAIL.pack(len(body), codec.TYPE_META)
    return struct.pack("<I", zlib.crc32(tail + body)) + tail + body


@FAST
@given(snapshots())
def test_peek_journal_next_agrees_with_decode_snapshot(
    snapshot: tuple[Spaces, Expires, int],
) -> None:
    spaces, expires, journal_next = snapshot
    data = encode(columns(spaces, expires), journal_next)
    assert codec.peek_journal_next(data) == codec.decode_snapshot(data).journal_next
    assert codec.peek_journal_next(memoryview(bytearray(data))) == journal_next


def test_peek_journal_next_reads_only_the_first_record() -> None:
    data = encode([(0, ["k"], ["v"], None)], journal_next=7)
    damaged = data[:-1] + bytes([data[-1] ^ 1])  # the END record fails its CRC
    assert codec.peek_journal_next(damaged) == 7
    assert codec.peek_journal_next(data[: META_AT + codec.FRAME_SIZE + 8]) == 7


def test_peek_journal_next_is_0_without_a_meta_record() -> None:
    # A v1 snapshot (no META) contains no journal: remove_journals(0) removes none.
    assert codec.peek_journal_next(codec.encode({})) == 0
    assert codec.peek_journal_next(codec.encode({"k": "v"})) == 0
    assert codec.peek_journal_next(encode([(0, ["k"], ["v"], None)])) == 0
    # The first record is not META: the rest is not looked at.
    assert codec.peek_journal_next(codec.encode({"k": "v"})[: META_AT + codec.FRAME_SIZE]) == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:META_AT],  # no first record
        lambda data: data[: META_AT + codec.FRAME_SIZE - 1],  # its frame cut short
        lambda data: data[: META_AT + codec.FRAME_SIZE + 7],  # its body cut short
        lambda data: data[:-1] + bytes([data[-1] ^ 1]),  # its CRC fails
        lambda data: data[:META_AT] + meta_record(b"\x07\x00\x00\x00"),  # body too short
    ],
    ids=["no-record", "cut-frame", "cut-body", "crc", "short-body"],
)
def test_peek_journal_next_is_none_for_a_damaged_meta_record(
    damage: Callable[[bytes], bytes],
) -> None:
    # None: remove no journal, since a wrong number would delete journals
    # that a fallback to an older snapshot still needs.
    data = encode([], journal_next=7)[: META_AT + codec.FRAME_SIZE + 8]
    assert codec.peek_journal_next(data) == 7
    assert codec.peek_journal_next(damage(data)) is None


def test_peek_journal_next_ignores_meta_bytes_after_the_first_eight() -> None:
    data = encode([], journal_next=3)
    longer = data[:META_AT] + meta_record(struct.pack("<Q", 9) + b"later fields")
    assert codec.peek_journal_next(longer) == 9
