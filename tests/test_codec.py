"""Round-trip and layout tests of the snapshot codec (format v1).

The corruption side (one named test per decoder check, bit-flip and
truncation sweeps) lives in ``test_codec_corruption.py``.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from snapkv import codec
from snapkv.errors import CorruptSnapshotError

# Every code point, lone surrogates (U+D800..U+DFFF) included: a Python str
# may hold them, so the codec must carry them exactly.
any_char = st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
any_text = st.text(alphabet=any_char)
# Text that often contains separator candidates and the ASCII punctuation a
# naive delimiter format would trip on, so both layouts get exercised.
tricky_char = st.one_of(
    any_char,
    st.sampled_from([*codec.SEPARATORS, "|", ":", "\n", "\ud800", "\udfff", "😀"]),
)
tricky_text = st.text(alphabet=tricky_char, max_size=12)
mappings = st.dictionaries(st.one_of(any_text, tricky_text), st.one_of(any_text, tricky_text))

SPECIAL_STRINGS = [
    "",
    "\x00",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",  # two lone surrogates, NOT the emoji
    "😀",  # U+1F600, one code point
    "\udfff\ud800",  # reversed pair
    "|",
    ":",
    "\n",
    "\r\n",
    "a|b:c\nd",
    "e\u0301",  # combining sequence, must not be normalised
    "\U0010ffff",
    codec.SEPARATORS,
    *codec.SEPARATORS,
]

FAST = settings(max_examples=60, deadline=None)


def roundtrip(mapping: Mapping[str, str]) -> dict[str, str]:
    data = codec.encode(mapping)
    result = codec.decode(data)
    assert result == mapping
    assert list(result.items()) == list(mapping.items()), "iteration order must survive"
    return result


def layouts(data: bytes) -> list[str]:
    return [chunk.layout for chunk in codec.scan(data).chunks]


@contextmanager
def chunk_limits(*, entries: int | None = None, chars: int | None = None) -> Iterator[None]:
    """Lower the encoder's chunk limits so multi-chunk snapshots stay small.

    A context manager rather than the monkeypatch fixture, so it also works
    inside Hypothesis tests (a function-scoped fixture is not reset between
    examples).
    """
    with pytest.MonkeyPatch.context() as mp:
        if entries is not None:
            mp.setattr(codec, "MAX_CHUNK_ENTRIES", entries)
        if chars is not None:
            mp.setattr(codec, "MAX_CHUNK_CHARS", chars)
        yield


def frame(record_type: int, body: bytes) -> bytes:
    """A record as the format defines it: crc32(length, type, body), length, type, body."""
    tail = struct.pack("<IB", len(body), record_type)
    return struct.pack("<I", zlib.crc32(tail + body)) + tail + body


def insert_before_end(data: bytes, record: bytes, *, extra_records: int) -> bytes:
    """Insert ``record`` just before END and raise END's record count to match."""
    end_at = len(data) - codec.FRAME_SIZE - codec.END_BODY.size
    entries, records = codec.END_BODY.unpack_from(data, end_at + codec.FRAME_SIZE)
    end = frame(codec.TYPE_END, codec.END_BODY.pack(entries, records + extra_records))
    return data[:end_at] + record + end


# ------------------------------------------------------------------ strategies


def test_text_strategy_really_produces_lone_surrogates() -> None:
    # Guards the premise of every property below: if a Hypothesis upgrade
    # changed the default categories, surrogates would silently vanish.
    found = find(any_text, lambda s: any(0xD800 <= ord(c) <= 0xDFFF for c in s))
    assert any(0xD800 <= ord(c) <= 0xDFFF for c in found)


# ------------------------------------------------------------------ round trips


@FAST
@given(mappings)
def test_roundtrip_arbitrary_text(mapping: dict[str, str]) -> None:
    roundtrip(mapping)


@pytest.mark.parametrize("text", SPECIAL_STRINGS, ids=ascii)
def test_roundtrip_special_string_as_key_and_value(text: str) -> None:
    roundtrip({text: text})
    roundtrip({text: "v", "k": text})


def test_roundtrip_all_special_strings_together() -> None:
    mapping = {s: s[::-1] for s in SPECIAL_STRINGS}
    data = codec.encode(mapping)
    assert layouts(data) == ["lengths"], "every separator candidate occurs"
    roundtrip(mapping)


def test_surrogate_pair_and_emoji_are_distinct_keys() -> None:
    pair, emoji = "\ud83d\ude00", "😀"
    assert len(pair) == 2
    assert len(emoji) == 1
    # Built from pairs: ruff's duplicate-key check (F601) confuses lone surrogates.
    mapping = dict([(pair, "pair"), (emoji, "emoji"), ("\ud83d", "high"), ("\ude00", "low")])
    result = roundtrip(mapping)
    assert [len(k) for k in result] == [2, 1, 1, 1]
    assert result[pair] == "pair"
    assert result[emoji] == "emoji"


@pytest.mark.parametrize("layout_forcer", ["", codec.SEPARATORS], ids=["separated", "lengths"])
def test_lone_surrogates_across_string_boundaries(layout_forcer: str) -> None:
    # In the LENGTHS layout the strings are concatenated with nothing between
    # them, so a key ending in a high surrogate meets a value starting with a
    # low one; they must not fuse into one code point.
    mapping = {"a\ud83d": "\ude00b", "\ud83d": "\ude00", "x": layout_forcer}
    result = roundtrip(mapping)
    assert [len(k) + len(v) for k, v in result.items()] == [4, 2, 1 + len(layout_forcer)]


def test_empty_mapping() -> None:
    data = codec.encode({})
    assert codec.decode(data) == {}
    info = codec.scan(data)
    assert (info.entries, info.records, info.chunks, info.first_keys) == (0, 0, [], [])
    assert len(data) == codec.HEADER_SIZE + codec.FRAME_SIZE + codec.END_BODY.size


def test_empty_key_and_value() -> None:
    roundtrip({"": ""})
    roundtrip({"": "", "a": "", "b": ""})


def test_iteration_order_is_preserved() -> None:
    keys = [f"k{i}" for i in range(200)]
    mapping = {k: k.upper() for k in reversed(keys)}
    assert list(codec.decode(codec.encode(mapping))) == list(reversed(keys))


@FAST
@given(mappings)
def test_encode_is_the_concatenation_of_iter_encode(mapping: dict[str, str]) -> None:
    assert codec.encode(mapping) == b"".join(codec.iter_encode(mapping))


@FAST
@given(mappings)
def test_decoding_is_deterministic_and_scan_describes_what_decode_returns(
    mapping: dict[str, str],
) -> None:
    data = codec.encode(mapping)
    assert codec.encode(mapping) == data, "encoding must be deterministic too"
    first, second = codec.decode(data), codec.decode(data)
    assert list(first.items()) == list(second.items())
    info = codec.scan(data, keys=len(first) + 1)
    assert (info.version, info.size, info.entries, info.expiring) == (1, len(data), len(first), 0)
    assert info.first_keys == list(first)
    assert sum(chunk.entries for chunk in info.chunks) == len(first)
    assert info.records == len(info.chunks), "one ENTRIES record per chunk, no other record"
    assert info.keyspaces == ([codec.KeyspaceInfo(0, len(first), 0)] if first else [])


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize("present", ["", "\x00", "\x00\x1f", codec.SEPARATORS[:-1]], ids=ascii)
def test_separated_layout_while_a_candidate_is_free(present: str) -> None:
    mapping = {"key": present, "k2": "v2"}
    data = codec.encode(mapping)
    assert layouts(data) == ["separated"]
    chunk = codec.scan(data).chunks[0]
    separator = chr(data[chunk.offset + codec.FRAME_SIZE + codec.ENTRIES_HEAD.size])
    assert separator == codec.SEPARATORS[len(present)], "the first free candidate is used"
    roundtrip(mapping)


@pytest.mark.parametrize(
    "mapping",
    [
        {"k": codec.SEPARATORS},
        {codec.SEPARATORS: ""},
        {c: c for c in codec.SEPARATORS},
        {c: "" for c in codec.SEPARATORS},
        {"".join(codec.SEPARATORS[::2]): "".join(codec.SEPARATORS[1::2])},
    ],
    ids=["in-value", "in-key", "one-each", "keys-only", "split-key-value"],
)
def test_lengths_layout_when_every_candidate_occurs(mapping: dict[str, str]) -> None:
    data = codec.encode(mapping)
    assert layouts(data) == ["lengths"]
    roundtrip(mapping)


@FAST
@given(mappings, st.sampled_from(["key", "value"]))
def test_lengths_layout_roundtrips_arbitrary_text(mapping: dict[str, str], where: str) -> None:
    mapping = dict(mapping)
    if where == "key":
        mapping[codec.SEPARATORS] = "v"
    else:
        mapping["\x00k"] = codec.SEPARATORS
    data = codec.encode(mapping)
    assert layouts(data) == ["lengths"]
    roundtrip(mapping)


# Every code point except the separator candidates after the first: NUL
# itself may occur, so the encoder must sometimes move on to the second one.
no_late_separators = st.text(
    alphabet=st.characters(
        min_codepoint=0, max_codepoint=0x10FFFF, exclude_characters=codec.SEPARATORS[1:]
    )
)


@FAST
@given(st.dictionaries(no_late_separators, no_late_separators, min_size=1))
def test_separated_layout_roundtrips_arbitrary_text(mapping: dict[str, str]) -> None:
    data = codec.encode(mapping)
    assert layouts(data) == ["separated"]
    roundtrip(mapping)


# ------------------------------------------------------------------ chunking


def test_more_than_max_chunk_entries_makes_two_chunks() -> None:
    n = codec.MAX_CHUNK_ENTRIES + 1
    mapping = {f"{i:x}": "" for i in range(n)}
    data = codec.encode(mapping)
    info = codec.scan(data, keys=3)
    assert [c.entries for c in info.chunks] == [codec.MAX_CHUNK_ENTRIES, 1]
    assert info.entries == n
    assert info.records == 2
    assert info.first_keys == ["0", "1", "2"]
    roundtrip(mapping)


@FAST
@given(mappings, st.integers(min_value=1, max_value=4))
def test_multi_chunk_roundtrip_arbitrary_text(mapping: dict[str, str], per_chunk: int) -> None:
    with chunk_limits(entries=per_chunk):
        data = codec.encode(mapping)
    info = codec.scan(data)
    assert [c.entries for c in info.chunks] == [
        min(per_chunk, len(mapping) - i) for i in range(0, len(mapping), per_chunk)
    ]
    roundtrip_data = codec.decode(data)
    assert list(roundtrip_data.items()) == list(mapping.items())


def test_multi_chunk_mixes_layouts() -> None:
    mapping = {"a": "1", "b": codec.SEPARATORS, "c": "3", "d": "\x00"}
    with chunk_limits(entries=1):
        data = codec.encode(mapping)
    assert layouts(data) == ["separated", "lengths", "separated", "separated"]
    assert codec.decode(data) == mapping


def test_chunk_over_max_chunk_chars_is_split() -> None:
    mapping = {f"k{i}": "v" * 20 for i in range(10)}  # ~240 code points of text
    whole = codec.encode(mapping)
    with chunk_limits(chars=60):
        data = codec.encode(mapping)
    assert codec.scan(whole).records == 1
    info = codec.scan(data)
    assert info.records > 1
    assert sum(c.entries for c in info.chunks) == 10
    assert list(codec.decode(data).items()) == list(mapping.items())
    # Each piece is within the limit (text = strings joined by one separator).
    pieces = iter(mapping.items())
    for chunk in info.chunks:
        entries = [next(pieces) for _ in range(chunk.entries)]
        text_chars = sum(len(k) + len(v) for k, v in entries) + 2 * len(entries) - 1
        assert text_chars <= 60


def test_single_entry_over_max_chunk_chars_stays_one_record() -> None:
    mapping = {"big": "x" * 100}
    with chunk_limits(chars=10):
        data = codec.encode(mapping)
    assert codec.scan(data).records == 1
    roundtrip(mapping)


@FAST
@given(mappings, st.integers(min_value=1, max_value=40), st.integers(min_value=1, max_value=5))
def test_split_chunks_roundtrip_arbitrary_text(
    mapping: dict[str, str], chars: int, entries: int
) -> None:
    with chunk_limits(entries=entries, chars=chars):
        data = codec.encode(mapping)
        assert data == b"".join(codec.iter_encode(mapping))
    assert list(codec.decode(data).items()) == list(mapping.items())


# ------------------------------------------------------------------ input types


def test_decode_accepts_bytes_bytearray_memoryview() -> None:
    mapping = {"a": "1", "\ud800": "😀", "": "\x00"}
    data = codec.encode(mapping)
    forms: list[bytes | bytearray | memoryview] = [
        data,
        bytearray(data),
        memoryview(data),
        memoryview(bytearray(data)),
        memoryview(b"prefix" + data)[6:],  # a view that does not start at offset 0
        memoryview(data).cast("B", (1, len(data))),  # two-dimensional view
        memoryview(data).cast("c"),  # type: ignore[list-item]  # another item format
    ]
    for form in forms:
        assert codec.decode(form) == mapping, type(form)
        assert codec.scan(form).entries == 3


def test_decode_accepts_non_contiguous_memoryview() -> None:
    mapping = {"a": "1"}
    data = codec.encode(mapping)
    doubled = bytes(b for byte in data for b in (byte, 0))
    view = memoryview(doubled)[::2]
    assert bytes(view) == data
    assert codec.decode(view) == mapping


@pytest.mark.parametrize(
    ("mapping", "type_name"),
    [
        ({1: "v"}, "int"),
        ({"k": 1}, "int"),
        ({"k": b"v"}, "bytes"),
        ({b"k": "v"}, "bytes"),
        ({"k": None}, "NoneType"),
        ({"a": "1", "b": 2.5}, "float"),
        ({("t",): "v"}, "tuple"),
    ],
    ids=["int-key", "int-value", "bytes-value", "bytes-key", "none-value", "late", "tuple"],
)
def test_encode_rejects_non_str_naming_the_type(
    mapping: dict[object, object], type_name: str
) -> None:
    with pytest.raises(TypeError, match=rf"must be str, not {type_name}$"):
        codec.encode(mapping)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=type_name):
        b"".join(codec.iter_encode(mapping))  # type: ignore[arg-type]


def test_encode_rejects_non_str_in_a_later_chunk() -> None:
    mapping: dict[object, object] = {"a": "1", "b": "2", "c": 3}
    with chunk_limits(entries=2), pytest.raises(TypeError, match="not int"):
        codec.encode(mapping)  # type: ignore[arg-type]


def test_str_subclasses_decode_as_str() -> None:
    class Name(str):
        __slots__ = ()

    result = codec.decode(codec.encode({Name("k"): Name("v")}))
    assert result == {"k": "v"}
    assert all(type(s) is str for item in result.items() for s in item)


# ------------------------------------------------------------------ scan


@FAST
@given(mappings, st.integers(min_value=1, max_value=3), st.integers(min_value=0, max_value=10))
def test_scan_reports_entries_chunks_and_first_keys(
    mapping: dict[str, str], per_chunk: int, want: int
) -> None:
    with chunk_limits(entries=per_chunk):
        data = codec.encode(mapping)
    info = codec.scan(data, keys=want)
    assert info.version == codec.VERSION
    assert info.size == len(data)
    assert info.entries == len(mapping)
    assert info.records == len(info.chunks)
    assert info.skipped_records == 0
    assert info.first_keys == list(mapping)[:want]
    # Chunks tile the file between the header and END, in order.
    pos = codec.HEADER_SIZE
    for chunk in info.chunks:
        assert chunk.offset == pos
        assert chunk.layout in {"separated", "lengths"}
        pos += chunk.size
    assert pos + codec.FRAME_SIZE + codec.END_BODY.size == len(data)


def test_scan_without_keys_lists_none() -> None:
    data = codec.encode({"a": "1", "b": "2"})
    assert codec.scan(data).first_keys == []
    assert codec.scan(data, keys=1).first_keys == ["a"]
    assert codec.scan(data, keys=99).first_keys == ["a", "b"]


# ------------------------------------------------------------------ record types


# 0x81 is META, a known optional type that must come first: see test_codec_keyspaces.py.
@pytest.mark.parametrize("record_type", [0x80, 0x82, 0x83, 0xC3, 0xFF], ids=hex)
@pytest.mark.parametrize(
    "body", [b"", b"\x00" * 5, "future ☃".encode()], ids=["empty", "zeros", "text"]
)
def test_unknown_optional_record_is_skipped(record_type: int, body: bytes) -> None:
    mapping = {"a": "1", "b": codec.SEPARATORS}
    with chunk_limits(entries=1):
        data = codec.encode(mapping)
    # Insert it between the two ENTRIES records and before END.
    second = codec.scan(data).chunks[1].offset
    extra = frame(record_type, body)
    data = data[:second] + extra + data[second:]
    data = insert_before_end(data, extra, extra_records=2)
    assert codec.decode(data) == mapping
    info = codec.scan(data, keys=2)
    assert (info.records, len(info.chunks), info.skipped_records) == (4, 2, 2)
    assert info.first_keys == ["a", "b"]
    assert info.chunks[1].offset == second + len(extra)


def test_optional_record_still_counts_toward_end() -> None:
    data = codec.encode({"a": "1"})
    # Inserted without raising END's record count: END must disagree.
    data = insert_before_end(data, frame(0x80, b""), extra_records=0)
    with pytest.raises(CorruptSnapshotError) as info:
        codec.decode(data)
    assert info.value.check == "end-count"


@pytest.mark.parametrize("record_type", [0x00, 0x03, 0x04, 0x10, 0x7F], ids=hex)
def test_unknown_required_record_type_is_refused(record_type: int) -> None:
    data = codec.encode({"a": "1"})
    at = len(data) - codec.FRAME_SIZE - codec.END_BODY.size
    data = insert_before_end(data, frame(record_type, b"future"), extra_records=1)
    with pytest.raises(CorruptSnapshotError) as info:
        codec.decode(data)
    assert (info.value.check, info.value.offset) == ("record-type", at)


def test_helpers_agree_with_the_encoder() -> None:
    # frame() above must be the encoder's framing, or the record-type tests prove nothing.
    data = codec.encode({"k": "v"})
    end_at = len(data) - codec.FRAME_SIZE - codec.END_BODY.size
    assert data[end_at:] == frame(codec.TYPE_END, codec.END_BODY.pack(1, 1))
    lengths = array("I", [1, 1]).tobytes()
    body = codec.ENTRIES_HEAD.pack(1, codec.LAYOUT_LENGTHS) + lengths + b"kv"
    assert codec.decode(data[: codec.HEADER_SIZE] + frame(1, body) + data[end_at:]) == {"k": "v"}


@settings(max_examples=30, deadline=None)
@given(st.lists(any_text, min_size=1, max_size=5, unique=True))
def test_values_equal_to_keys_and_shared_values(keys: list[str]) -> None:
    roundtrip(dict.fromkeys(keys, keys[0]))
    roundtrip({k: k for k in keys})


def test_iter_encode_columns_equals_iter_encode_of_the_zipped_mapping() -> None:
    mapping = {f"k{i}": f"v{i}" for i in range(10)} | {"": "", "\ud800": "|"}
    columns = codec.iter_encode_columns(list(mapping), list(mapping.values()))
    assert b"".join(columns) == codec.encode(mapping)


@pytest.mark.parametrize(
    ("keys", "values", "message"),
    [(["a", "b"], ["1"], "fewer values"), (["a"], ["1", "2"], "more values")],
)
def test_iter_encode_columns_refuses_columns_of_different_lengths(
    keys: list[str], values: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        b"".join(codec.iter_encode_columns(keys, values))
