"""Every error path of the CONTAINERS record (format v3), and damage sweeps over typed snapshots.

As in ``test_codec_corruption.py``: one named test per check, each
asserting the exact ``check`` and ``offset`` that ``decode``,
``decode_snapshot`` and ``scan`` all report, on records built field by
field from docs/FORMAT.md (with valid CRCs, so the check under test is
reached in isolation); then sweeps: every truncation point, every
single-bit flip, random flips, overwrites and framed random records, which
must end in a CorruptSnapshotError (or, where the damage leaves a valid
snapshot, exactly the original data), never in another exception.
"""

from __future__ import annotations

import math
import re
import struct
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapkv import codec, codec_types
from snapkv.errors import CorruptSnapshotError
from snapkv.values.hashes import Hash
from snapkv.values.lists import List
from snapkv.values.sets import Set
from snapkv.values.zsets import ZSet
from test_codec_corruption import (
    assert_corrupt,
    corrupt_error,
    fix_header_crc,
    flip_bit,
    frame,
    set_byte,
    truncate,
)

P = codec.HEADER_SIZE  # the first record
B = P + codec.FRAME_SIZE  # its body
CONTINUED, CONTINUES, EXPIRY = (
    codec_types.FLAG_CONTINUED,
    codec_types.FLAG_CONTINUES,
    codec_types.FLAG_EXPIRY,
)
HASH, LIST, SET, ZSET = 1, 2, 3, 4


def header(version: int) -> bytes:
    return fix_header_crc(set_byte(codec.encode({})[: codec.HEADER_SIZE], 8, version))


H1, H2, H3 = header(1), header(2), header(3)


def end(total: int, records: int) -> bytes:
    return frame(codec.TYPE_END, codec.END_BODY.pack(total, records))


def head(count: int, vtype: int, flags: int = 0, layout: int = 1) -> bytes:
    return codec_types.CONTAINERS_HEAD.pack(count, vtype, flags, layout)


def record(
    vtype: int,
    keys: list[str],
    elements: list[list[str]],
    *,
    flags: int = 0,
    times: list[int] | None = None,
    scores: list[float] | None = None,
) -> bytes:
    """A SEPARATED CONTAINERS record, field by field (FORMAT.md, CONTAINERS body)."""
    per = 2 if vtype == HASH else 1
    body = head(len(keys), vtype, flags | (EXPIRY if times else 0))
    if times:
        body += struct.pack(f"<{len(times)}Q", *times)
    body += struct.pack(f"<{len(keys)}I", *(len(e) // per for e in elements))
    if scores is not None:
        body += struct.pack(f"<{len(scores)}d", *scores)
    strings = [*keys, *(s for e in elements for s in e)]
    body += b"\x00" + "\x00".join(strings).encode()
    return frame(codec.TYPE_CONTAINERS, body)


def containers(body: bytes) -> bytes:
    return frame(codec.TYPE_CONTAINERS, body)


def snapshot(spaces: dict[int, dict[str, Any]], expires: dict[str, int] | None = None) -> bytes:
    columns = []
    for number in sorted(spaces):
        mapping = spaces[number]
        times = None if expires is None else [expires.get(k, 0) for k in mapping]
        columns.append((number, list(mapping), list(mapping.values()), times))
    return b"".join(codec.iter_encode_snapshot(columns, journal_next=3))


def chained(spaces: dict[int, dict[str, Any]], elements: int) -> bytes:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec_types, "MAX_CHUNK_ELEMENTS", elements)
        return snapshot(spaces)


TYPED_SPACES: dict[int, dict[str, Any]] = {
    0: {
        "a": "1",
        "h": Hash({"f": "v", "g": "w"}),
        "l": List(["x", "y", "x"]),
        "s": Set({"m", "n"}),
        "z": ZSet([(1.0, "p"), (2.5, "q"), (-math.inf, "r")]),
    },
    5: {"h": Hash({"é": "😀"}), "z": ZSet([(math.inf, "top")])},
}
TYPED = snapshot(TYPED_SPACES, {"h": 1_767_225_600_000})
CHAIN = chained(
    {0: {"big": List(map(str, range(25))), "h": Hash({str(i): "v" for i in range(7)})}}, 3
)
LENGTHS = snapshot({0: {"s": Set([codec.SEPARATORS, *codec.SEPARATORS])}})


# --------------------------------------------------------------- the record's checks


def test_containers_header() -> None:
    assert_corrupt(H3 + containers(bytes(6)) + end(0, 1), "containers-header", B)


def test_containers_with_zero_keys() -> None:
    assert_corrupt(H3 + containers(head(0, SET)) + end(0, 1), "entry-count", B)


@pytest.mark.parametrize("vtype", [0, 6, 255])
def test_container_type(vtype: int) -> None:
    assert_corrupt(H3 + record(vtype, ["k"], [["m"]]) + end(1, 1), "container-type", B + 4)


@pytest.mark.parametrize("flags", [0x08, 0x80, 0xFF])
def test_container_flags_unknown_bit(flags: int) -> None:
    assert_corrupt(
        H3 + record(SET, ["k"], [["m"]], flags=flags) + end(1, 1), "container-flags", B + 5
    )


@pytest.mark.parametrize("flags", [CONTINUED, CONTINUES, CONTINUED | CONTINUES])
def test_container_flags_a_chain_record_holds_one_key(flags: int) -> None:
    data = H3 + record(SET, ["k", "j"], [["m"], ["n"]], flags=flags) + end(0, 1)
    assert_corrupt(data, "container-flags", B + 5)


def test_containers_layout() -> None:
    data = (
        H3 + containers(head(1, SET, layout=2) + struct.pack("<I", 1) + b"\x00k\x00m") + end(1, 1)
    )
    assert_corrupt(data, "layout", B + 6)


def test_containers_expiry_column() -> None:
    data = H3 + containers(head(2, SET, EXPIRY) + bytes(15)) + end(2, 1)
    assert_corrupt(data, "expiry-column", B + 7)


def test_element_counts_column_too_short() -> None:
    assert_corrupt(H3 + containers(head(2, LIST) + bytes(7)) + end(2, 1), "element-counts", B + 7)
    data = H3 + containers(head(1, LIST, EXPIRY) + bytes(8) + bytes(3)) + end(1, 1)
    assert_corrupt(data, "element-counts", B + 15)


def test_element_count_zero() -> None:
    data = (
        H3 + containers(head(2, LIST) + struct.pack("<II", 1, 0) + b"\x00a\x00b\x00x") + end(2, 1)
    )
    assert_corrupt(data, "element-counts", B + 7)


def test_scores_column_too_short() -> None:
    data = H3 + containers(head(1, ZSET) + struct.pack("<I", 2) + bytes(15)) + end(1, 1)
    assert_corrupt(data, "scores", B + 11)


@pytest.mark.parametrize(
    "nan", ["000000000000f87f", "000000000000f8ff", "010000000000f07f", "ffffffffffffffff"]
)
def test_score_nan_of_any_sign_and_payload(nan: str) -> None:
    (score,) = struct.unpack("<d", bytes.fromhex(nan))
    data = H3 + record(ZSET, ["z"], [["a", "b", "c"]], scores=[1.0, 2.0, score]) + end(1, 1)
    assert_corrupt(data, "score-nan", B + 11 + 16)


def test_score_nan_beside_both_infinities() -> None:
    # Both infinities sum to NaN: the exact test must still find the NaN, and only it.
    scores = [-math.inf, math.nan, math.inf]
    data = H3 + record(ZSET, ["z"], [["a", "b", "c"]], scores=scores) + end(1, 1)
    assert_corrupt(data, "score-nan", B + 11 + 8)
    fine = H3 + record(ZSET, ["z"], [["a", "c"]], scores=[-math.inf, math.inf]) + end(1, 1)
    assert codec.decode_snapshot(fine).spaces[0]["z"].scores == {"a": -math.inf, "c": math.inf}


def test_containers_separator() -> None:
    data = H3 + containers(head(1, SET) + struct.pack("<I", 1)) + end(1, 1)
    assert_corrupt(data, "separator", B + 11)
    data = H3 + containers(head(1, SET) + struct.pack("<I", 1) + b"\x80k\x80m") + end(1, 1)
    assert_corrupt(data, "separator", B + 11)


def test_containers_text_utf8() -> None:
    data = H3 + containers(head(1, SET) + struct.pack("<I", 1) + b"\x00k\x00\xed\xa0") + end(1, 1)
    assert_corrupt(data, "text-utf8", B + 11 + 1 + 2)


@pytest.mark.parametrize("text", [b"k", b"k\x00f\x00v\x00w", b"h\x00f"])
def test_containers_split_count(text: bytes) -> None:
    data = H3 + containers(head(1, HASH) + struct.pack("<I", 1) + b"\x00" + text) + end(1, 1)
    assert_corrupt(data, "entry-count", B)


def test_containers_lengths_column_too_short() -> None:
    data = H3 + containers(head(1, SET, layout=0) + struct.pack("<II", 1, 1) + b"km") + end(1, 1)
    assert_corrupt(data, "lengths", B + 11)


def test_containers_lengths_sum() -> None:
    data = (
        H3 + containers(head(1, SET, layout=0) + struct.pack("<III", 1, 1, 2) + b"km") + end(1, 1)
    )
    assert_corrupt(data, "lengths", B + 11)


def test_containers_text_utf8_in_lengths_layout() -> None:
    data = (
        H3
        + containers(head(1, SET, layout=0) + struct.pack("<III", 1, 1, 1) + b"k\xff")
        + end(1, 1)
    )
    assert_corrupt(data, "text-utf8", B + 11 + 8 + 1)


def test_huge_counts_fail_without_allocating() -> None:
    cases = [
        (head(2**31, LIST) + bytes(8), "element-counts"),
        (head(2**31, LIST, EXPIRY) + bytes(8), "expiry-column"),
        (head(1, ZSET) + struct.pack("<I", 2**32 - 1) + bytes(16), "scores"),
        (head(1, LIST) + struct.pack("<I", 2**32 - 1) + b"\x00k\x00a", "entry-count"),
        (head(4, HASH, layout=0) + struct.pack("<4I", *[2**32 - 1] * 4) + bytes(8), "lengths"),
    ]
    for body, check in cases:
        tracemalloc.start()
        try:
            error = corrupt_error(H3 + containers(body) + end(0, 1))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert error.check == check
        assert peak < 1 << 20, (check, peak)


# --------------------------------------------------------------- chains, duplicates, counts


def test_a_chain_continuing_nothing() -> None:
    data = H3 + record(LIST, ["l"], [["a"]], flags=CONTINUES) + end(1, 1)
    assert_corrupt(data, "continuation", P)


@pytest.mark.parametrize(
    "second",
    [
        record(LIST, ["m"], [["b"]], flags=CONTINUES),  # another key
        record(SET, ["l"], [["b"]], flags=CONTINUES),  # another type
        record(LIST, ["l"], [["b"]], flags=CONTINUES, times=[7]),  # another expiry time
        record(LIST, ["l"], [["b"]]),  # a new value while one is open
    ],
    ids=["key", "type", "expiry", "new-value"],
)
def test_a_chain_continued_by_something_else(second: bytes) -> None:
    first = record(LIST, ["l"], [["a"]], flags=CONTINUED)
    assert_corrupt(H3 + first + second + end(1, 2), "continuation", P + len(first))


@pytest.mark.parametrize(
    "after",
    [
        end(0, 1),
        frame(codec.TYPE_ENTRIES, struct.pack("<IB", 1, 1) + b"\x00k\x00v"),
        frame(0x82, b""),
    ],
    ids=["end", "entries", "optional"],
)
def test_a_chain_cut_short_by_another_record(after: bytes) -> None:
    first = record(LIST, ["l"], [["a"]], flags=CONTINUED)
    assert_corrupt(H3 + first + after + end(1, 2), "continuation", P + len(first))


@pytest.mark.parametrize(
    ("vtype", "elements", "scores"),
    [
        (HASH, ["f", "1", "g", "2", "f", "3"], None),
        (SET, ["m", "n", "m"], None),
        (ZSET, ["m", "m"], [1.0, 2.0]),
        (ZSET, ["m", "m"], [1.0, 1.0]),
    ],
    ids=["hash-field", "set-member", "zset-member", "zset-same-score"],
)
def test_duplicate_element(vtype: int, elements: list[str], scores: list[float] | None) -> None:
    data = H3 + record(vtype, ["k"], [elements], scores=scores) + end(1, 1)
    assert_corrupt(data, "duplicate-element", P)


def test_duplicate_element_across_the_parts_of_a_chain() -> None:
    first = record(SET, ["s"], [["m"]], flags=CONTINUED)
    second = record(SET, ["s"], [["n", "m"]], flags=CONTINUES)
    assert_corrupt(H3 + first + second + end(1, 2), "duplicate-element", P + len(first))


STREAM = 5


@pytest.mark.parametrize(
    "elements",
    [
        ["1", "0", "1", "0"],  # metadata cut short
        ["x", "0", "1", "0", "0"],  # a number that is not decimal
        ["1", "0", "1", "0", "0", "1", "0", "1", "f"],  # an entry cut inside its pairs
        ["1", "0", "2", "0", "0", "1", "0", "1", "f", "v", "1", "0", "1", "g", "w"],  # ID twice
        ["1", "0", "1", "0", "0", "2", "0", "1", "f", "v"],  # an entry above the last ID
        ["1", "0", "1", "0", "0", "0", "0", "0"],  # an entry with no field
    ],
)
def test_stream_form(elements: list[str]) -> None:
    """A stream's elements are its flat form as text (FORMAT.md): any malformed one is refused."""
    assert_corrupt(H3 + record(STREAM, ["k"], [elements]) + end(1, 1), "stream-form", P)


def test_a_list_may_repeat_elements() -> None:
    data = H3 + record(LIST, ["l"], [["a", "a"]]) + end(1, 1)
    assert list(codec.decode_snapshot(data).spaces[0]["l"]) == ["a", "a"]


def test_duplicate_key_between_a_string_and_a_container() -> None:
    strings = frame(codec.TYPE_ENTRIES, struct.pack("<IB", 1, 1) + b"\x00s\x00v")
    data = H3 + strings + record(SET, ["s"], [["m"]]) + end(2, 2)
    assert_corrupt(data, "duplicate-key", P + len(strings))


def test_duplicate_key_between_containers_of_two_types() -> None:
    first = record(SET, ["k"], [["m"]])
    data = H3 + first + record(LIST, ["k"], [["a"]]) + end(2, 2)
    assert_corrupt(data, "duplicate-key", P + len(first))


def test_end_counts_a_chain_once() -> None:
    first = record(LIST, ["l"], [["a"]], flags=CONTINUED)
    second = record(LIST, ["l"], [["b"]], flags=CONTINUES)
    assert_corrupt(H3 + first + second + end(2, 2), "end-count", P + len(first) + len(second))
    assert codec.decode_snapshot(H3 + first + second + end(1, 2)).spaces == {0: {"l": List("ab")}}


@pytest.mark.parametrize("header_", [H1, H2], ids=["v1", "v2"])
def test_containers_in_an_older_version_are_refused(header_: bytes) -> None:
    assert_corrupt(header_ + record(SET, ["s"], [["m"]]) + end(1, 1), "record-type", P)


def test_version_4_is_refused() -> None:
    assert_corrupt(header(4) + end(0, 0), "version", 8)


#: Each check codec_types.py raises, and the named tests above that reach it.
CHECK_TESTS: dict[str, tuple[Callable[..., None], ...]] = {
    "containers-header": (test_containers_header,),
    "entry-count": (test_containers_with_zero_keys, test_containers_split_count),
    "container-type": (test_container_type,),
    "container-flags": (
        test_container_flags_unknown_bit,
        test_container_flags_a_chain_record_holds_one_key,
    ),
    "layout": (test_containers_layout,),
    "expiry-column": (test_containers_expiry_column,),
    "element-counts": (test_element_counts_column_too_short, test_element_count_zero),
    "scores": (test_scores_column_too_short,),
    "score-nan": (test_score_nan_of_any_sign_and_payload, test_score_nan_beside_both_infinities),
    "separator": (test_containers_separator,),
    "lengths": (test_containers_lengths_column_too_short, test_containers_lengths_sum),
    "continuation": (test_a_chain_continuing_nothing, test_a_chain_continued_by_something_else),
    "duplicate-element": (
        test_duplicate_element,
        test_duplicate_element_across_the_parts_of_a_chain,
    ),
    "stream-form": (test_stream_form,),
}


def test_every_check_of_the_containers_record_has_a_named_test() -> None:
    raised = set(
        re.findall(r'check="([^"]+)"', Path(codec_types.__file__).read_text(encoding="utf-8"))
    )
    assert raised == set(CHECK_TESTS)
    for tests in CHECK_TESTS.values():
        for test in tests:
            assert globals()[test.__name__] is test


# --------------------------------------------------------------- sweeps


def same_or_corrupt(data: bytes, original: codec.Snapshot) -> None:
    """decode_snapshot gives exactly ``original`` or a CorruptSnapshotError; never other data."""
    try:
        result = codec.decode_snapshot(data)
    except CorruptSnapshotError as exc:
        with pytest.raises(CorruptSnapshotError) as scanned:
            codec.scan(data)
        assert (scanned.value.check, scanned.value.offset) == (exc.check, exc.offset)
    else:
        assert result == original


SWEPT = [TYPED, CHAIN, LENGTHS]
SWEPT_IDS = ["typed", "chain", "lengths"]


@pytest.mark.parametrize("data", SWEPT, ids=SWEPT_IDS)
def test_every_truncation_point_of_a_typed_snapshot_is_corrupt(data: bytes) -> None:
    for n in range(len(data)):
        error = corrupt_error(truncate(data, n))
        assert error.offset <= n


@pytest.mark.parametrize("data", SWEPT, ids=SWEPT_IDS)
def test_every_single_bit_flip_of_a_typed_snapshot_is_corrupt(data: bytes) -> None:
    for bit in range(len(data) * 8):
        corrupt_error(flip_bit(data, bit))


text = st.text(st.sampled_from(["a", "b", "\x00", "é", "😀", "\ud800", "\x1f"]), max_size=4)
typed_values = st.one_of(
    text,
    st.dictionaries(text, text, min_size=1, max_size=12).map(Hash),
    st.lists(text, min_size=1, max_size=12).map(List),
    st.sets(text, min_size=1, max_size=12).map(Set),
    st.dictionaries(text, st.floats(allow_nan=False), min_size=1, max_size=12).map(
        lambda d: ZSet((s, m) for m, s in d.items())
    ),
)
typed_snapshots = st.builds(
    chained,
    st.dictionaries(
        st.integers(0, 4),
        st.dictionaries(text, typed_values, min_size=1, max_size=6),
        min_size=1,
        max_size=3,
    ),
    st.integers(1, 8),
)


@settings(max_examples=60, deadline=None)
@given(st.one_of(typed_snapshots, st.sampled_from(SWEPT)), st.data())
def test_random_bit_flips_of_typed_snapshots_are_corrupt(data: bytes, draw: st.DataObject) -> None:
    original = codec.decode_snapshot(data)
    bits = draw.draw(st.sets(st.integers(0, len(data) * 8 - 1), min_size=1, max_size=8))
    damaged = data
    for bit in bits:
        damaged = flip_bit(damaged, bit)
    same_or_corrupt(damaged, original)
    corrupt_error(damaged)  # a CRC-32 catches up to 8 flipped bits in these sizes


@settings(max_examples=40, deadline=None)
@given(typed_snapshots, st.data())
def test_random_truncations_and_overwrites_of_typed_snapshots(
    data: bytes, draw: st.DataObject
) -> None:
    original = codec.decode_snapshot(data)
    corrupt_error(truncate(data, draw.draw(st.integers(0, len(data) - 1))))
    at = draw.draw(st.integers(0, len(data) - 1))
    garbage = draw.draw(st.binary(min_size=1, max_size=16))
    same_or_corrupt(data[:at] + garbage + data[at + len(garbage) :], original)
    same_or_corrupt(data[:at] + garbage + data[at:], original)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_after_a_v3_header_raise_only_corrupt_snapshot_error(data: bytes) -> None:
    with pytest.raises(CorruptSnapshotError):
        codec.decode_snapshot(H3 + data)


@st.composite
def containers_records(draw: st.DrawFn) -> bytes:
    """A CONTAINERS frame with a valid CRC around a plausible, often malformed, body."""
    count = draw(st.integers(0, 3))
    vtype = draw(st.sampled_from([HASH, LIST, SET, ZSET, ZSET, 0, 9]))
    flags = draw(st.sampled_from([0, 0, EXPIRY, CONTINUED, CONTINUES, CONTINUED | CONTINUES, 0x10]))
    layout = draw(st.sampled_from([0, 1, 1, 3]))
    body = head(count, vtype, flags, layout)
    if flags & EXPIRY:
        body += bytes(8 * draw(st.integers(0, count + 1)))
    counts = draw(st.lists(st.integers(0, 3), min_size=max(count - 1, 0), max_size=count + 1))
    body += struct.pack(f"<{len(counts)}I", *counts)
    if vtype == ZSET:
        scores = draw(
            st.lists(st.sampled_from([1.0, -0.0, math.inf, math.nan]), max_size=sum(counts) + 1)
        )
        body += struct.pack(f"<{len(scores)}d", *scores)
    if layout == 0:
        body += struct.pack("<3I", *draw(st.lists(st.integers(0, 2), min_size=3, max_size=3)))
    else:
        body += draw(st.sampled_from([b"\x00", b"\x1f", b""]))
    body += draw(
        st.lists(st.sampled_from([b"k", b"m", b"\x00", b"\xc3\xa9", b"\xff"]), max_size=8).map(
            b"".join
        )
    )
    return frame(codec.TYPE_CONTAINERS, body)


@settings(max_examples=300, deadline=None)
@given(st.lists(containers_records(), max_size=5), st.integers(0, 6), st.integers(0, 6))
def test_framed_random_containers_records_raise_only_corrupt_snapshot_error(
    framed: list[bytes], total: int, records: int
) -> None:
    data = H3 + b"".join(framed) + end(total, records)
    try:
        result = codec.decode_snapshot(data)
    except CorruptSnapshotError:
        return
    # Valid by chance: everything in it is a well-formed, non-empty value.
    for mapping in result.spaces.values():
        for value in mapping.values():
            assert type(value) in (Hash, List, Set, ZSet) and len(value) > 0
            if type(value) is ZSet:
                assert not any(math.isnan(s) for s in value.scores.values())
                assert len(value.order) == len(value.scores)
