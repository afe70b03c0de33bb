"""docs/FORMAT.md is complete and true.

Complete: ``spec_reader.py``, written from the document alone, reads everything
the encoder writes (versions 1 and 2: keyspaces, expiry times, META), and
refuses damaged snapshots with the same check name and offset as
``snapkv.codec``. True: every hex example in the document is exactly what the
encoder produces, with the checksums and offsets its comments state, and every
check and constant of the codec is there.
"""

from __future__ import annotations

import ast
import math
import re
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spec_reader
from snapkv import codec, codec_types
from snapkv import journal as jr
from snapkv import values as vtypes
from snapkv.errors import CorruptJournalError, CorruptSnapshotError
from snapkv.journal import format as journal_format
from snapkv.values.hashes import Hash
from snapkv.values.lists import List
from snapkv.values.sets import Set
from snapkv.values.streams import Stream
from snapkv.values.zsets import ZSet
from spec_reader import (
    SpecReaderError,
    Value,
    decode_text,
    read_snapshot,
    read_snapshot_all,
    read_snapshot_records,
)

ROOT = Path(__file__).resolve().parent.parent
FORMAT_MD = ROOT / "docs" / "FORMAT.md"
#: FORMAT.md's second part specifies the journal (tests/test_journal.py checks it).
JOURNAL_PART = "\n# Part 2: the journal"


def _snapshot_part() -> str:
    """FORMAT.md up to the journal's part: the snapshot format this file checks."""
    return FORMAT_MD.read_text(encoding="utf-8").split(JOURNAL_PART)[0]


CODEC_PY = ROOT / "src" / "snapkv" / "codec.py"
#: The CONTAINERS records (format v3), cut out of codec.py.
CODEC_TYPES_PY = ROOT / "src" / "snapkv" / "codec_types.py"
#: The header and frame checks that snapshots share with journals.
FRAME_PY = ROOT / "src" / "snapkv" / "_frame.py"

FAST = settings(max_examples=100, deadline=None)

# Every code point, lone surrogates included. Drawn from the whole range alone,
# surrogates turn up in well under 1% of texts (and a second characters()
# strategy for the surrogate block is merged into the first), so they are mixed
# in as plain integers.
any_text = st.text(
    alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF)
    | st.integers(0xD800, 0xDFFF).map(chr)
)
# Text full of separator candidates, so that every separator and LENGTHS get used.
tricky_text = st.text(
    alphabet=st.sampled_from([*codec.SEPARATORS, "a", "|", "é", "😀", "\ud800", "\udfff"]),
    max_size=20,
)


def agree(mapping: Mapping[str, str]) -> list[spec_reader.Record]:
    """Encode with snapkv, read with the spec reader, demand the mapping back in order."""
    data = codec.encode(mapping)
    result = read_snapshot_records(data)
    assert result.mapping == mapping
    assert list(result.mapping) == list(mapping)
    assert result.mapping == codec.decode(data)
    return result.records


Spaces = dict[int, dict[str, str]]
Expires = dict[int, dict[str, int]]


def encode_snapshot(spaces: Spaces, expires: Expires, journal_next: int = 0) -> bytes:
    """The encoder's snapshot of this data, keyspaces in increasing order."""
    columns = []
    for number in sorted(spaces):
        mapping = spaces[number]
        times = expires.get(number)
        column = None if times is None else [times.get(key, 0) for key in mapping]
        columns.append((number, list(mapping), list(mapping.values()), column))
    return b"".join(codec.iter_encode_snapshot(columns, journal_next=journal_next))


def agree_snapshot(
    spaces: Spaces, expires: Expires, journal_next: int = 0
) -> list[spec_reader.Record]:
    """Encode with snapkv, read with the spec reader, demand everything back in order."""
    data = encode_snapshot(spaces, expires, journal_next)
    result = read_snapshot_records(data)
    want_spaces = {n: m for n, m in sorted(spaces.items()) if m}
    want_expires = {n: {k: t for k, t in e.items() if t} for n, e in expires.items()}
    want_expires = {n: e for n, e in want_expires.items() if e}
    assert (result.spaces, result.expires, result.journal_next) == (
        want_spaces,
        want_expires,
        journal_next,
    )
    assert [list(m.items()) for m in result.spaces.values()] == [
        list(m.items()) for m in want_spaces.values()
    ]
    snapshot = codec.decode_snapshot(data)
    assert (snapshot.spaces, snapshot.expires, snapshot.journal_next) == (
        result.spaces,
        result.expires,
        result.journal_next,
    )
    extended = bool(want_expires) or any(want_spaces.keys() - {0})

    assert result.version == (2 if extended else 1)
    return result.records


# ------------------------------------------------- (1) reader vs encoder


@pytest.mark.parametrize(
    "mapping",
    [
        {},
        {"": ""},
        {"": "x", "x": ""},
        {"a": "1", "a|b:c": "v1|v2:ok"},
        {"\ud800": "\udfff", "\ud83d\ude00": "😀", "e\u0301": "\U0010ffff"},
        {"k": codec.SEPARATORS},
        {codec.SEPARATORS: codec.SEPARATORS, "": ""},
        {"line\r\nbreak": "tab\there", "nul\x00": "\x00\x00"},
    ],
)
def test_spec_reader_reads_special_mappings(mapping: dict[str, str]) -> None:
    agree(mapping)


def test_every_separator_candidate_is_read() -> None:
    for i, separator in enumerate(codec.SEPARATORS):
        mapping = {"key": codec.SEPARATORS[:i], "": "v"}
        data = codec.encode(mapping)
        assert data[16 + 9 + 5] == ord(separator)  # the separator byte of the first record
        (record,) = agree(mapping)
        assert record.layout == spec_reader.LAYOUT_SEPARATED


def test_every_candidate_present_forces_lengths() -> None:
    mapping = {codec.SEPARATORS: "", "é": "😀\ud800"}
    (record,) = agree(mapping)
    assert record.layout == spec_reader.LAYOUT_LENGTHS
    # Each candidate in a different string still rules every separator out.
    spread = {f"k{c}": "v" for c in codec.SEPARATORS}
    (record,) = agree(spread)
    assert record.layout == spec_reader.LAYOUT_LENGTHS


def test_several_chunks_by_entry_count() -> None:
    size = codec.MAX_CHUNK_ENTRIES
    mapping = {f"key:{i}": f"value|{i}" for i in range(2 * size + 5)}
    mapping["k"] = codec.SEPARATORS  # the last chunk needs LENGTHS
    records = agree(mapping)
    assert [r.entries for r in records] == [size, size, 6]
    assert [r.layout for r in records] == [1, 1, 0]


def test_several_chunks_by_text_size() -> None:
    big = (1 << 22) + 8
    mapping = {"a": "x" * big, "b": "y" * big, "c": "z"}
    records = agree(mapping)
    assert [r.entries for r in records] == [1, 2]


@FAST
@given(st.dictionaries(any_text, any_text))
def test_spec_reader_reads_any_text(mapping: dict[str, str]) -> None:
    agree(mapping)


@FAST
@given(st.dictionaries(tricky_text, tricky_text, min_size=1))
def test_spec_reader_reads_tricky_text(mapping: dict[str, str]) -> None:
    agree(mapping)


def test_any_text_includes_lone_surrogates() -> None:
    # Guards the strategy above: a str may hold surrogates, so the tests must too.
    found = []

    @settings(max_examples=50, deadline=None, database=None)
    @given(any_text)
    def probe(text: str) -> None:
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            found.append(text)

    probe()
    assert found


def test_spec_reader_reads_keyspaces_expiry_and_meta() -> None:
    records = agree_snapshot(
        {0: {"a": "1", "b": codec.SEPARATORS}, 2: {"a": "other"}, 7: {"z": ""}},
        {0: {"b": 1}, 7: {"z": 2**64 - 1}},
        journal_next=2**64 - 1,
    )
    kinds = [r.type for r in records]
    assert kinds == [0x81, 0x03, 0x04, 0x01, 0x04, 0x03]
    assert [r.keyspace for r in records if r.type in (1, 3)] == [0, 2, 7]
    assert [r.layout for r in records if r.type in (1, 3)] == [0, 1, 1]


def test_spec_reader_reads_v1_with_meta() -> None:
    records = agree_snapshot({0: {"k": "v"}}, {}, journal_next=1)
    assert [r.type for r in records] == [0x81, 0x01]


def test_spec_reader_reads_expiry_chunks_split_by_count_and_size() -> None:
    size = codec.MAX_CHUNK_ENTRIES
    mapping = {f"k{i}": "v" for i in range(2 * size + 3)}
    times = {f"k{i}": 1000 + i for i in range(size, size + 3)}  # only the second chunk
    records = agree_snapshot({0: mapping, 5: {"x": "y"}}, {0: times})
    assert [(r.type, r.entries, r.expiring) for r in records] == [
        (0x01, size, 0),
        (0x03, size, 3),
        (0x01, 3, 0),
        (0x04, 0, 0),
        (0x01, 1, 0),
    ]
    big = (1 << 22) + 8
    records = agree_snapshot({0: {"a": "x" * big, "b": "y" * big, "c": "z"}}, {0: {"c": 5}})
    assert [(r.type, r.entries) for r in records] == [(0x01, 1), (0x03, 2)]


timestamps = st.one_of(st.just(0), st.integers(1, 2**64 - 1), st.integers(1, 2**41))


@st.composite
def snapshot_data(draw: st.DrawFn) -> tuple[Spaces, Expires, int]:
    numbers = draw(st.lists(st.integers(0, 2**32 - 1), max_size=4, unique=True))
    spaces: Spaces = {}
    expires: Expires = {}
    for number in sorted(numbers):
        mapping = draw(st.dictionaries(st.one_of(any_text, tricky_text), tricky_text, max_size=6))
        spaces[number] = mapping
        if draw(st.booleans()):
            expires[number] = {k: draw(timestamps) for k in mapping}
    journal_next = draw(st.one_of(st.just(0), st.integers(0, 2**64 - 1)))
    return spaces, expires, journal_next


@FAST
@given(snapshot_data(), st.integers(1, 3))
def test_spec_reader_reads_any_snapshot(data: tuple[Spaces, Expires, int], per_chunk: int) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "MAX_CHUNK_ENTRIES", per_chunk)
        agree_snapshot(*data)


short_text = st.one_of(any_text, tricky_text).map(lambda t: t[:6])
typed_values = st.one_of(
    tricky_text,
    st.dictionaries(short_text, short_text, min_size=1, max_size=5).map(Hash),
    st.lists(short_text, min_size=1, max_size=5).map(List),
    st.sets(short_text, min_size=1, max_size=5).map(Set),
    st.dictionaries(
        short_text,
        st.floats(allow_nan=False) | st.sampled_from([0.0, float("inf"), float("-inf")]),
        min_size=1,
        max_size=5,
    ).map(lambda d: ZSet((score, member) for member, score in d.items())),
)


@st.composite
def typed_snapshot_data(draw: st.DrawFn) -> tuple[dict[int, dict[str, Any]], Expires, int]:
    numbers = draw(st.lists(st.integers(0, 2**32 - 1), max_size=3, unique=True))
    spaces: dict[int, dict[str, Any]] = {}
    expires: Expires = {}
    for number in sorted(numbers):
        mapping = draw(st.dictionaries(short_text, typed_values, max_size=6))
        spaces[number] = mapping
        if draw(st.booleans()):
            expires[number] = {k: draw(timestamps) for k in mapping}
    return spaces, expires, draw(st.integers(0, 9))


@FAST
@given(typed_snapshot_data(), st.integers(1, 3), st.integers(1, 4), st.integers(1, 30))
def test_spec_reader_reads_any_typed_snapshot(
    data: tuple[dict[int, dict[str, Any]], Expires, int], keys: int, elements: int, chars: int
) -> None:
    spaces, expires, journal_next = data
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(codec, "MAX_CHUNK_ENTRIES", keys)
        mp.setattr(codec, "MAX_CHUNK_CHARS", chars)
        mp.setattr(codec_types, "MAX_CHUNK_ELEMENTS", elements)
        blob = encode_snapshot(spaces, expires, journal_next)
    want_spaces = {n: {k: as_spec(v) for k, v in m.items()} for n, m in sorted(spaces.items()) if m}
    want_expires = {n: {k: t for k, t in e.items() if t} for n, e in expires.items()}
    want = (want_spaces, {n: e for n, e in want_expires.items() if e}, journal_next)
    assert full_outcome("spec", blob) == full_outcome("codec", blob) == want
    typed = any(not isinstance(v, str) for m in spaces.values() for v in m.values())
    assert read_snapshot_records(blob).version == 3 or not typed
    info = codec.scan(blob)
    records = read_snapshot_records(blob).records
    assert [(c.offset, c.entries, c.elements) for c in info.chunks] == [
        (r.offset, r.entries, r.elements) for r in records if r.type in (1, 3, 5)
    ]


@FAST
@given(st.binary(max_size=12) | st.lists(st.sampled_from(list(range(0x78, 0x100))), max_size=8))
def test_section_4_text_table_is_utf8_with_surrogatepass(raw: bytes | list[int]) -> None:
    data = bytes(raw)
    try:
        expected: str | int = data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        expected = exc.start
    try:
        got: str | int = decode_text(data, 0)
    except SpecReaderError as exc:
        assert exc.check == "text-utf8"
        got = exc.offset
    assert got == expected


# ------------------------------------------------- (2) the document's examples

EXAMPLE_BLOCK = re.compile(r"^```snapshot-hex\n(.*?)^```$", re.MULTILINE | re.DOTALL)
MAPPING_LINE = "# mapping = "
SNAPSHOT_LINE = "# snapshot = "
TYPED_LINE = "# typed = "
HEX_BYTE = re.compile(r"[0-9a-f]{2}")
CRC_COMMENT = re.compile(r"crc = 0x([0-9a-f]{8}), CRC-32 of bytes (\d+)\.\.(\d+)")


def example_blocks() -> list[str]:
    return EXAMPLE_BLOCK.findall(_snapshot_part())


def parse_block(block: str) -> tuple[str, Any, bytes, list[str]]:
    """Parse one ```snapshot-hex block: a first line ``# mapping = <Python literal>`` or
    ``# snapshot = <Python literal>``, then hex lines.

    On a hex line everything after ``#`` is a comment. A comment that starts with
    a number states the decimal offset of the line's first byte, and a comment
    ``crc = 0x..., CRC-32 of bytes a..b`` states a checksum; the lines where
    either is wrong are returned last.
    """
    first, *lines = block.splitlines()
    kind = next((k for k in (MAPPING_LINE, TYPED_LINE) if first.startswith(k)), SNAPSHOT_LINE)
    assert first.startswith(kind), first
    literal = ast.literal_eval(first[len(kind) :])
    data = bytearray()
    wrong = []
    claims = []
    for line in lines:
        code, _, comment = line.partition("#")
        tokens = code.split()
        assert all(HEX_BYTE.fullmatch(t) for t in tokens), line
        stated = re.match(r"\s*(\d+)\s", comment)
        if tokens and stated and int(stated.group(1)) != len(data):
            wrong.append(f"{line!r} is at offset {len(data)}")
        if crc := CRC_COMMENT.search(comment):
            claims.append((line, len(data), int(crc[1], 16), int(crc[2]), int(crc[3])))
        data += bytes.fromhex("".join(tokens))
    for line, at, value, first_byte, last_byte in claims:
        if struct.unpack_from("<I", data, at)[0] != value:
            wrong.append(f"{line!r}: the bytes are not 0x{value:08x}")
        if zlib.crc32(data[first_byte : last_byte + 1]) != value:
            wrong.append(f"{line!r}: not the CRC-32 of those bytes")
        if at >= 16:  # a record: the CRC covers length, type and body, nothing else
            (length,) = struct.unpack_from("<I", data, at + 4)
            if (first_byte, last_byte) != (at + 4, at + 8 + length):
                wrong.append(f"{line!r}: a record CRC covers bytes {at + 4}..{at + 8 + length}")
    return kind, literal, bytes(data), wrong


def parse_example(block: str) -> tuple[dict[str, str], bytes, list[str]]:
    """A ``# mapping = `` block: the mapping, the bytes, the wrong comments."""
    kind, literal, data, wrong = parse_block(block)
    assert kind == MAPPING_LINE
    return literal, data, wrong


def container(tagged: Any) -> Any:
    """A value of a ``# typed =`` line as snapkv holds it."""
    if isinstance(tagged, str):
        return tagged
    ((kind, data),) = tagged.items()
    if kind == "hash":
        return Hash(data)
    if kind == "list":
        return List(data)
    if kind == "set":
        return Set(data)
    return ZSet((score, member) for score, member in data)


def typed_literal(literal: dict[str, Any]) -> dict[str, Any]:
    spaces = {
        number: {key: container(value) for key, value in mapping.items()}
        for number, mapping in literal["spaces"].items()
    }
    return {**literal, "spaces": spaces}


BLOCKS = [parse_block(block) for block in example_blocks()]
EXAMPLES = [(literal, data) for kind, literal, data, _ in BLOCKS if kind == MAPPING_LINE]
SNAPSHOT_EXAMPLES = [(literal, data) for kind, literal, data, _ in BLOCKS if kind == SNAPSHOT_LINE]
#: Version-3 examples: a container is written {"hash": {...}}, {"list": [...]},
#: {"set": [...]} or {"zset": [[score, member], ...]} in the first line.
TYPED_EXAMPLES = [
    (typed_literal(literal), data) for kind, literal, data, _ in BLOCKS if kind == TYPED_LINE
]


def test_document_has_the_examples() -> None:
    assert len(EXAMPLES) >= 4
    assert len(SNAPSHOT_EXAMPLES) >= 2
    layouts = set()
    kinds = set()
    versions = set()
    for _literal, data in EXAMPLES + SNAPSHOT_EXAMPLES + TYPED_EXAMPLES:
        result = read_snapshot_records(data)
        layouts.update(r.layout for r in result.records if r.layout >= 0)
        kinds.update(r.type for r in result.records)
        versions.add(result.version)
    assert layouts == {spec_reader.LAYOUT_LENGTHS, spec_reader.LAYOUT_SEPARATED}
    assert kinds == {0x01, 0x03, 0x04, 0x05, 0x81}, "an example of every record type but END"
    assert versions == {1, 2, 3}
    # No hex dump of a snapshot hides outside a checked block.
    text = _snapshot_part()
    dumps = [line for line in text.splitlines() if line.startswith("89 53 4b 56 0d 0a 1a 0a")]
    assert len(dumps) == len(BLOCKS)


def test_example_offset_and_crc_comments_are_right() -> None:
    assert [wrong for *_, wrongs in BLOCKS for wrong in wrongs] == []


def test_crc_comment_check_can_fail() -> None:
    block = example_blocks()[0]
    assert parse_block(block)[3] == []
    for old, new in [("a7 2c ab 3c", "a7 2c ab 3d"), ("bytes 20..36", "bytes 20..35")]:
        assert old in block
        assert parse_block(block.replace(old, new))[3] != [], new


@pytest.mark.parametrize(("mapping", "data"), EXAMPLES, ids=[str(m) for m, _ in EXAMPLES])
def test_document_example_is_the_encoder_output(mapping: dict[str, str], data: bytes) -> None:
    assert codec.encode(mapping) == data
    assert read_snapshot(data) == mapping


@pytest.mark.parametrize(
    ("snapshot", "data"), SNAPSHOT_EXAMPLES, ids=[str(s) for s, _ in SNAPSHOT_EXAMPLES]
)
def test_document_snapshot_example_is_the_encoder_output(
    snapshot: dict[str, Any], data: bytes
) -> None:
    assert encode_snapshot(**snapshot) == data
    assert codec.decode_snapshot(data) == codec.Snapshot(**snapshot)
    assert read_snapshot_all(data) == (
        snapshot["spaces"],
        snapshot["expires"],
        snapshot["journal_next"],
    )


@pytest.mark.parametrize(
    ("snapshot", "data"), TYPED_EXAMPLES, ids=[str(s) for s, _ in TYPED_EXAMPLES]
)
def test_document_typed_example_is_the_encoder_output(
    snapshot: dict[str, Any], data: bytes
) -> None:
    assert encode_snapshot(**snapshot) == data
    assert codec.decode_snapshot(data) == codec.Snapshot(**snapshot)
    assert full_outcome("spec", data) == full_outcome("codec", data)


# ------------------------------------------------- (3) checks and constants


def codec_check_names() -> set[str]:
    sources = (CODEC_PY, CODEC_TYPES_PY, FRAME_PY)
    source = "".join(path.read_text(encoding="utf-8") for path in sources)
    return set(re.findall(r'check="([a-z0-9-]+)"', source))


def doc_check_names() -> set[str]:
    row = re.compile(r"^\|\s*\d+[a-z]?\s*\|\s*`([a-z0-9-]+)`\s*\|", re.MULTILINE)
    return set(row.findall(_snapshot_part()))


def test_every_codec_check_is_in_the_document_table() -> None:
    names = codec_check_names()
    assert {"magic", "record-crc", "trailing-bytes"} <= names
    assert names == doc_check_names()


def test_every_codec_constant_is_in_the_document() -> None:
    trees = [ast.parse(path.read_text(encoding="utf-8")) for path in (CODEC_PY, CODEC_TYPES_PY)]
    names = [
        target.id
        for tree in trees
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and re.fullmatch(r"[A-Z][A-Z0-9_]*", target.id)
    ]
    assert {"MAGIC", "CONTAINERS_HEAD", "MAX_CHUNK_ELEMENTS"} <= set(names)
    text = _snapshot_part()
    assert [n for n in names if f"`{n}`" not in text] == []
    assert " ".join(f"{ord(c):02x}" for c in codec.SEPARATORS) in text


def test_spec_reader_constants_match_the_codec() -> None:
    assert spec_reader.MAGIC == codec.MAGIC
    assert spec_reader.VERSION == codec.VERSION
    assert spec_reader.VERSION_EXTENDED == codec.VERSION_EXTENDED
    assert spec_reader.VERSION_TYPED == codec.VERSION_TYPED
    assert spec_reader.TYPE_CONTAINERS == codec.TYPE_CONTAINERS == codec_types.TYPE_CONTAINERS
    assert codec_types.CONTAINERS_HEAD.size == spec_reader.CONTAINERS_HEAD_SIZE
    assert (spec_reader.FLAG_EXPIRY, spec_reader.FLAG_CONTINUES, spec_reader.FLAG_CONTINUED) == (
        codec_types.FLAG_EXPIRY,
        codec_types.FLAG_CONTINUES,
        codec_types.FLAG_CONTINUED,
    )
    assert {code: vtypes.BY_CODE[code].NAME for code in vtypes.BY_CODE} == spec_reader.KINDS
    assert spec_reader.TYPE_ENTRIES_EX == codec.TYPE_ENTRIES_EX
    assert spec_reader.TYPE_KEYSPACE == codec.TYPE_KEYSPACE
    assert spec_reader.TYPE_META == codec.TYPE_META
    assert codec.KEYSPACE_BODY.size == spec_reader.KEYSPACE_BODY_SIZE
    assert codec.META_BODY.size == spec_reader.META_BODY_SIZE
    assert codec.EXPIRY_SIZE == 8
    assert spec_reader.HEADER_SIZE == codec.HEADER_SIZE
    assert spec_reader.FRAME_SIZE == codec.FRAME_SIZE
    assert spec_reader.TYPE_ENTRIES == codec.TYPE_ENTRIES
    assert spec_reader.TYPE_END == codec.TYPE_END
    assert spec_reader.OPTIONAL_TYPE_BIT == codec.OPTIONAL_TYPE_BIT
    assert spec_reader.LAYOUT_LENGTHS == codec.LAYOUT_LENGTHS
    assert spec_reader.LAYOUT_SEPARATED == codec.LAYOUT_SEPARATED
    assert codec.END_BODY.size == spec_reader.END_BODY_SIZE


# ------------------------------------------------- (4) corruption


def header(version: int = 1, flags: int = 0) -> bytes:
    head = codec.MAGIC + struct.pack("<HH", version, flags)
    return head + struct.pack("<I", zlib.crc32(head))


def frame(record_type: int, body: bytes) -> bytes:
    tail = struct.pack("<IB", len(body), record_type) + body
    return struct.pack("<I", zlib.crc32(tail)) + tail


def end(total: int, records: int) -> bytes:
    return frame(2, struct.pack("<QI", total, records))


def separated(count: int, text: bytes, separator: bytes = b"\x00") -> bytes:
    return frame(1, struct.pack("<IB", count, 1) + separator + text)


def lengths(count: int, column: list[int], text: bytes) -> bytes:
    return frame(1, struct.pack(f"<IB{len(column)}I", count, 0, *column) + text)


def separated_ex(count: int, times: list[int], text: bytes, separator: bytes = b"\x00") -> bytes:
    column = struct.pack(f"<{len(times)}Q", *times)
    return frame(3, struct.pack("<IB", count, 1) + column + separator + text)


def lengths_ex(count: int, times: list[int], column: list[int], text: bytes) -> bytes:
    expiry = struct.pack(f"<{len(times)}Q", *times)
    return frame(
        3, struct.pack("<IB", count, 0) + expiry + struct.pack(f"<{len(column)}I", *column) + text
    )


def keyspace(number: int) -> bytes:
    return frame(4, struct.pack("<I", number))


def meta(journal_next: int, extra: bytes = b"") -> bytes:
    return frame(0x81, struct.pack("<Q", journal_next) + extra)


GOOD = codec.encode({"a": "1", "a|b:c": "v1|v2:ok"})
H = header()
H2 = header(version=2)
ONE = separated(1, b"k\x00v")
ONE_EX = separated_ex(1, [5], b"k\x00v")


def containers(
    vtype: int,
    keys: list[str],
    elements: list[list[str]],
    *,
    flags: int = 0,
    times: list[int] | None = None,
    scores: list[float] | None = None,
    layout: int = 1,
    separator: bytes = b"\x00",
) -> bytes:
    """A CONTAINERS record built from FORMAT.md's section, its fields given."""
    counts = [len(e) // (2 if vtype == 1 else 1) for e in elements]
    body = struct.pack("<IBBB", len(keys), vtype, flags, layout)
    if times is not None:
        body += struct.pack(f"<{len(times)}Q", *times)
    body += struct.pack(f"<{len(counts)}I", *counts)
    if scores is not None:
        body += struct.pack(f"<{len(scores)}d", *scores)
    strings = [*keys, *(s for e in elements for s in e)]
    if layout == 1:
        body += separator + separator.join(s.encode("utf-8", "surrogatepass") for s in strings)
    else:
        body += struct.pack(f"<{len(strings)}I", *map(len, strings))
        body += "".join(strings).encode("utf-8", "surrogatepass")
    return frame(5, body)


def raw_containers(head: bytes) -> bytes:
    return frame(5, head)


H3 = header(version=3)
C, N, X = 0x04, 0x02, 0x01  # CONTINUED, CONTINUES, EXPIRY
SET1 = containers(3, ["s"], [["m"]])
NAN = struct.unpack("<d", bytes.fromhex("000000000000f87f"))[0]
TYPED_CRAFTED = [
    ("version-4", header(version=4) + end(0, 0), "version"),
    ("containers-in-v1", H + SET1 + end(1, 1), "record-type"),
    ("containers-in-v2", H2 + SET1 + end(1, 1), "record-type"),
    ("containers-header", H3 + raw_containers(bytes(6)) + end(0, 1), "containers-header"),
    (
        "containers-zero",
        H3 + raw_containers(struct.pack("<IBBB", 0, 3, 0, 1)) + end(0, 1),
        "entry-count",
    ),
    (
        "container-type-0",
        H3 + raw_containers(struct.pack("<IBBB", 1, 0, 0, 1)) + end(1, 1),
        "container-type",
    ),
    (
        "container-type-6",
        H3 + raw_containers(struct.pack("<IBBB", 1, 6, 0, 1)) + end(1, 1),
        "container-type",
    ),
    (
        "stream-form-metadata-short",
        H3 + containers(5, ["x"], [["1", "0", "1", "0"]]) + end(1, 1),
        "stream-form",
    ),
    (
        "stream-form-not-decimal",
        H3 + containers(5, ["x"], [["1", "0", "1", "0", "+0"]]) + end(1, 1),
        "stream-form",
    ),
    (
        "stream-form-entry-cut",
        H3 + containers(5, ["x"], [["9", "0", "1", "0", "0", "1", "0", "2", "f", "v"]]) + end(1, 1),
        "stream-form",
    ),
    (
        "stream-form-id-above-last",
        H3 + containers(5, ["x"], [["1", "0", "1", "0", "0", "2", "0", "1", "f", "v"]]) + end(1, 1),
        "stream-form",
    ),
    (
        "container-flags",
        H3 + containers(3, ["s"], [["m"]], flags=0x08) + end(1, 1),
        "container-flags",
    ),
    (
        "container-flags-chain-of-two",
        H3 + containers(3, ["s", "t"], [["m"], ["n"]], flags=C) + end(0, 1),
        "container-flags",
    ),
    ("containers-layout", H3 + containers(3, ["s"], [["m"]], layout=2) + end(1, 1), "layout"),
    (
        "containers-expiry-column",
        H3 + raw_containers(struct.pack("<IBBB", 2, 3, X, 1) + bytes(15)) + end(2, 1),
        "expiry-column",
    ),
    (
        "element-counts-short",
        H3 + raw_containers(struct.pack("<IBBB", 2, 3, 0, 1) + bytes(7)) + end(2, 1),
        "element-counts",
    ),
    ("element-counts-zero", H3 + containers(2, ["l"], [[]]) + end(1, 1), "element-counts"),
    (
        "scores-short",
        H3 + raw_containers(struct.pack("<IBBBI", 1, 4, 0, 1, 2) + bytes(15)) + end(1, 1),
        "scores",
    ),
    (
        "score-nan",
        H3 + containers(4, ["z"], [["a", "b"]], scores=[1.0, NAN]) + end(1, 1),
        "score-nan",
    ),
    (
        "containers-no-separator",
        H3 + raw_containers(struct.pack("<IBBBI", 1, 3, 0, 1, 1)) + end(1, 1),
        "separator",
    ),
    (
        "containers-separator-0x80",
        H3 + containers(3, ["s"], [["m"]], separator=b"\x80") + end(1, 1),
        "separator",
    ),
    (
        "containers-utf8",
        H3 + raw_containers(struct.pack("<IBBBI", 1, 3, 0, 1, 1) + b"\x00s\x00\xc3") + end(1, 1),
        "text-utf8",
    ),
    (
        "containers-split",
        H3 + raw_containers(struct.pack("<IBBBI", 1, 1, 0, 1, 1) + b"\x00h\x00f") + end(1, 1),
        "entry-count",
    ),
    (
        "containers-lengths-short",
        H3 + raw_containers(struct.pack("<IBBBII", 1, 3, 0, 0, 1, 1) + b"sm") + end(1, 1),
        "lengths",
    ),
    (
        "containers-utf8-lengths",
        H3 + raw_containers(struct.pack("<IBBBIII", 1, 3, 0, 0, 1, 1, 1) + b"s\xff") + end(1, 1),
        "text-utf8",
    ),
    (
        "containers-lengths-sum",
        H3 + raw_containers(struct.pack("<IBBBIII", 1, 3, 0, 0, 1, 1, 2) + b"sm") + end(1, 1),
        "lengths",
    ),
    ("chain-cut-by-end", H3 + containers(2, ["l"], [["a"]], flags=C) + end(0, 1), "continuation"),
    (
        "chain-cut-by-entries",
        H3 + containers(2, ["l"], [["a"]], flags=C) + ONE + end(1, 2),
        "continuation",
    ),
    (
        "chain-cut-by-optional",
        H3 + containers(2, ["l"], [["a"]], flags=C) + frame(0x82, b"") + end(0, 2),
        "continuation",
    ),
    (
        "chain-cut-by-unknown-type",
        H3 + containers(2, ["l"], [["a"]], flags=C) + frame(0x06, b"") + end(0, 2),
        "continuation",
    ),
    (
        "chain-cut-by-a-new-value",
        H3 + containers(2, ["l"], [["a"]], flags=C) + containers(2, ["l"], [["b"]]) + end(1, 2),
        "continuation",
    ),
    ("continues-nothing", H3 + containers(2, ["l"], [["a"]], flags=N) + end(1, 1), "continuation"),
    (
        "chain-other-key",
        H3
        + containers(2, ["l"], [["a"]], flags=C)
        + containers(2, ["m"], [["b"]], flags=N)
        + end(1, 2),
        "continuation",
    ),
    (
        "chain-other-type",
        H3
        + containers(2, ["l"], [["a"]], flags=C)
        + containers(3, ["l"], [["b"]], flags=N)
        + end(1, 2),
        "continuation",
    ),
    (
        "chain-other-expiry",
        H3
        + containers(2, ["l"], [["a"]], flags=C | X, times=[5])
        + containers(2, ["l"], [["b"]], flags=N)
        + end(1, 2),
        "continuation",
    ),
    (
        "duplicate-field",
        H3 + containers(1, ["h"], [["f", "1", "f", "2"]]) + end(1, 1),
        "duplicate-element",
    ),
    ("duplicate-member", H3 + containers(3, ["s"], [["m", "m"]]) + end(1, 1), "duplicate-element"),
    (
        "duplicate-zset-member",
        H3 + containers(4, ["z"], [["m", "m"]], scores=[1.0, 2.0]) + end(1, 1),
        "duplicate-element",
    ),
    (
        "duplicate-member-across-parts",
        H3
        + containers(3, ["s"], [["m"]], flags=C)
        + containers(3, ["s"], [["m"]], flags=N)
        + end(1, 2),
        "duplicate-element",
    ),
    (
        "duplicate-key-string-and-set",
        H3 + separated(1, b"s\x00v") + SET1 + end(2, 2),
        "duplicate-key",
    ),
    (
        "duplicate-key-two-sets",
        H3 + containers(3, ["s", "s"], [["m"], ["n"]]) + end(2, 1),
        "duplicate-key",
    ),
    (
        "end-count-chain-counts-once",
        H3
        + containers(2, ["l"], [["a"]], flags=C)
        + containers(2, ["l"], [["b"]], flags=N)
        + end(2, 2),
        "end-count",
    ),
]


# (name, snapshot, the check both readers must report)
CRAFTED = [
    ("bad-magic", b"GIF89a" + GOOD[6:], "magic"),
    ("short-bad-magic", b"\x89PNG", "magic"),
    ("zero-bytes", b"", "header-length"),
    ("short-header", GOOD[:10], "header-length"),
    ("header-crc", GOOD[:12] + b"\x00\x00\x00\x00" + GOOD[16:], "header-crc"),
    ("version-0", header(version=0) + end(0, 0), "version"),
    ("flags", header(flags=1) + end(0, 0), "flags"),
    ("end-missing", H, "end-missing"),
    ("end-missing-after-entries", H + ONE, "end-missing"),
    ("record-header", H + b"\x00" * 5, "record-header"),
    ("record-length", H + end(0, 0)[:-1], "record-length"),
    ("record-crc", GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "record-crc"),
    ("record-type-03", H + frame(3, b"") + end(0, 1), "record-type"),
    ("entries-ex-in-v1", H + ONE_EX + end(1, 1), "record-type"),
    ("keyspace-in-v1", H + keyspace(1) + ONE + end(1, 2), "record-type"),
    ("record-type-05-in-v2", H2 + frame(5, b"") + end(0, 1), "record-type"),
    ("meta-position", H + ONE + meta(1) + end(1, 2), "meta-position"),
    ("meta-twice", H + meta(1) + meta(2) + end(0, 2), "meta-position"),
    ("meta-length", H + frame(0x81, bytes(7)) + end(0, 1), "meta-length"),
    ("record-type-00", H + frame(0, b"") + end(0, 1), "record-type"),
    ("entries-header", H + frame(1, b"\x01\x00\x00\x00") + end(1, 1), "entries-header"),
    ("zero-count", H + separated(0, b"") + end(0, 1), "entry-count"),
    ("split-count", H + separated(2, b"a\x00b\x00c") + end(2, 1), "entry-count"),
    ("layout", H + frame(1, struct.pack("<IB", 1, 2) + b"k\x00v") + end(1, 1), "layout"),
    ("no-separator", H + frame(1, struct.pack("<IB", 1, 1)) + end(1, 1), "separator"),
    ("separator-0x80", H + separated(1, b"k\x80v", b"\x80") + end(1, 1), "separator"),
    ("text-utf8-separated", H + separated(1, b"k\x00\xc3") + end(1, 1), "text-utf8"),
    ("text-utf8-lengths", H + lengths(1, [1, 1], b"k\xff") + end(1, 1), "text-utf8"),
    ("short-column", H + lengths(2, [1, 1, 1], b"abcd") + end(2, 1), "lengths"),
    ("lengths-sum", H + lengths(1, [1, 2], b"kv") + end(1, 1), "lengths"),
    ("entries-ex-header", H2 + frame(3, b"\x01\x00\x00\x00") + end(1, 1), "entries-header"),
    ("entries-ex-zero-count", H2 + separated_ex(0, [], b"") + end(0, 1), "entry-count"),
    (
        "entries-ex-layout",
        H2 + frame(3, struct.pack("<IBQ", 1, 2, 5) + b"k\x00v") + end(1, 1),
        "layout",
    ),
    (
        "expiry-column",
        H2 + frame(3, struct.pack("<IB", 2, 1) + bytes(15)) + end(2, 1),
        "expiry-column",
    ),
    ("entries-ex-no-separator", H2 + separated_ex(1, [5], b"", b"") + end(1, 1), "separator"),
    (
        "entries-ex-separator",
        H2 + separated_ex(1, [5], b"k\x80v", b"\x80") + end(1, 1),
        "separator",
    ),
    ("entries-ex-utf8", H2 + separated_ex(1, [5], b"k\x00\xc3") + end(1, 1), "text-utf8"),
    ("entries-ex-split", H2 + separated_ex(1, [5], b"k\x00v\x00w") + end(1, 1), "entry-count"),
    ("entries-ex-column", H2 + lengths_ex(2, [1, 2], [1, 1, 1], b"abc") + end(2, 1), "lengths"),
    ("entries-ex-utf8-lengths", H2 + lengths_ex(1, [1], [1, 1], b"k\xff") + end(1, 1), "text-utf8"),
    ("entries-ex-sum", H2 + lengths_ex(1, [0], [1, 2], b"kv") + end(1, 1), "lengths"),
    ("duplicate-in-record", H + separated(2, b"k\x00k\x00v\x00w") + end(2, 1), "duplicate-key"),
    ("duplicate-across", H + ONE + ONE + end(2, 2), "duplicate-key"),
    ("duplicate-ex", H2 + ONE + ONE_EX + end(2, 2), "duplicate-key"),
    (
        "duplicate-in-keyspace",
        H2 + ONE + keyspace(3) + ONE + ONE_EX + end(3, 4),
        "duplicate-key",
    ),
    ("keyspace-length-short", H2 + frame(4, b"\x01\x00\x00") + end(0, 1), "keyspace-length"),
    ("keyspace-length-long", H2 + frame(4, bytes(5)) + end(0, 1), "keyspace-length"),
    ("keyspace-zero", H2 + keyspace(0) + ONE + end(1, 2), "keyspace-order"),
    ("keyspace-repeated", H2 + keyspace(2) + ONE + keyspace(2) + end(1, 3), "keyspace-order"),
    ("keyspace-decreasing", H2 + keyspace(9) + keyspace(8) + end(0, 2), "keyspace-order"),
    ("end-length", H + frame(2, bytes(11)), "end-length"),
    ("end-entries", H + ONE + end(2, 1), "end-count"),
    ("end-records", H + ONE + frame(0x82, b"x") + end(1, 1), "end-count"),
    ("end-records-keyspace", H2 + keyspace(1) + ONE + end(1, 1), "end-count"),
    ("end-records-meta", H + meta(1) + ONE + end(1, 1), "end-count"),
    ("end-entries-ex", H2 + ONE_EX + end(2, 1), "end-count"),
    ("trailing-bytes", GOOD + b"\x00", "trailing-bytes"),
    *TYPED_CRAFTED,
]


def outcome(reader: str, data: bytes) -> tuple[str, int] | dict[str, str]:
    """What one reader makes of ``data``: the mapping, or (check, offset)."""
    try:
        if reader == "spec":
            return read_snapshot(data)
        return codec.decode(data)
    except (SpecReaderError, CorruptSnapshotError) as exc:
        return exc.check, exc.offset


def full_outcome(reader: str, data: bytes) -> tuple[Any, ...]:
    """What one reader makes of ``data``: (spaces, expires, journal_next), or (check, offset)."""
    try:
        if reader == "spec":
            return read_snapshot_all(data)
        snapshot = codec.decode_snapshot(data)
    except (SpecReaderError, CorruptSnapshotError) as exc:
        return exc.check, exc.offset
    spaces = {
        number: {key: as_spec(value) for key, value in mapping.items()}
        for number, mapping in snapshot.spaces.items()
    }
    return spaces, snapshot.expires, snapshot.journal_next


def as_spec(value: Any) -> Any:
    """A value snapkv decoded, in the spec reader's terms (a str, or a tagged Value)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Hash):
        return Value("hash", dict(value))
    if isinstance(value, List):
        return Value("list", list(value))
    if isinstance(value, Set):
        return Value("set", frozenset(value))
    if isinstance(value, Stream):
        meta = (*value.last, value.added, *value.deleted)
        return Value("stream", (meta, tuple(value.items())))
    assert isinstance(value, ZSet)
    assert list(value) == sorted((s, m) for m, s in value.scores.items()), "order matches scores"
    return Value("zset", dict(value.scores))


@pytest.mark.parametrize(("data", "check"), [c[1:] for c in CRAFTED], ids=[c[0] for c in CRAFTED])
def test_both_readers_refuse_with_the_same_check_and_offset(data: bytes, check: str) -> None:
    with pytest.raises(ValueError, match=rf"^{re.escape(check)} at offset \d+$"):
        read_snapshot(data)
    spec = full_outcome("spec", data)
    assert len(spec) == 2
    assert spec[0] == check
    assert spec == full_outcome("codec", data)


def test_crafted_cases_reach_every_check_in_the_table() -> None:
    assert {check for _name, _data, check in CRAFTED} == doc_check_names()


def test_optional_records_are_skipped_and_counted() -> None:
    data = H + frame(0x80, b"") + ONE + frame(0xFF, b"\xff\xfe") + end(1, 3)
    assert outcome("spec", data) == outcome("codec", data) == {"k": "v"}


# Valid snapshots the encoder never writes (section 3): each reads as its minimal form.
UNUSUAL = [
    ("v2-without-v2-records", H2 + ONE + end(1, 1), {0: {"k": "v"}}, {}, 0),
    ("v3-without-containers", H3 + ONE_EX + end(1, 1), {0: {"k": "v"}}, {0: {"k": 5}}, 0),
    (
        "containers-expiry-all-zero",
        H3 + containers(3, ["s"], [["m"]], flags=X, times=[0]) + end(1, 1),
        {0: {"s": Value("set", frozenset({"m"}))}},
        {},
        0,
    ),
    (
        "containers-chain-of-three-with-expiry",
        H3
        + containers(1, ["h"], [["f", "1"]], flags=C | X, times=[9])
        + containers(1, ["h"], [["g", "2", "i", "3"]], flags=C | N | X, times=[9])
        + containers(1, ["h"], [["j", "4"]], flags=N | X, times=[9])
        + end(1, 3),
        {0: {"h": Value("hash", {"f": "1", "g": "2", "i": "3", "j": "4"})}},
        {0: {"h": 9}},
        0,
    ),
    (
        "zset-unordered-and-negative-zero",
        H3 + containers(4, ["z"], [["b", "a", "c"]], scores=[2.0, -0.0, float("-inf")]) + end(1, 1),
        {0: {"z": Value("zset", {"a": 0.0, "b": 2.0, "c": float("-inf")})}},
        {},
        0,
    ),
    (
        "containers-lengths-layout-list",
        H3 + containers(2, ["l", "m"], [["x", "", "x"], ["\x00"]], layout=0) + end(2, 1),
        {0: {"l": Value("list", ["x", "", "x"]), "m": Value("list", ["\x00"])}},
        {},
        0,
    ),
    (
        "streams-with-u64-ids-and-an-empty-one-in-lengths-layout",
        H3
        + containers(
            5,
            ["s", "e"],
            [
                [
                    "-1",
                    "-2",
                    "7",
                    "3",
                    "0",
                    "5",
                    "0",
                    "2",
                    "f",
                    "v",
                    "f",
                    "w",
                    "-1",
                    "-2",
                    "1",
                    "",
                    "",
                ],
                ["4", "4", "9", "0", "0"],
            ],
            layout=0,
        )
        + end(2, 1),
        {
            0: {
                "s": Value(
                    "stream",
                    (
                        (2**64 - 1, 2**64 - 2, 7, 3, 0),
                        (((5, 0), ("f", "v", "f", "w")), ((2**64 - 1, 2**64 - 2), ("", ""))),
                    ),
                ),
                "e": Value("stream", ((4, 4, 9, 0, 0), ())),
            }
        },
        {},
        0,
    ),
    ("keyspace-without-entries", H2 + keyspace(4) + end(0, 1), {}, {}, 0),
    (
        "keyspaces-without-entries",
        H2 + ONE + keyspace(1) + keyspace(2) + end(1, 3),
        {0: {"k": "v"}},
        {},
        0,
    ),
    (
        "entries-ex-all-zero",
        H2 + separated_ex(1, [0], b"k\x00v") + end(1, 1),
        {0: {"k": "v"}},
        {},
        0,
    ),
    ("meta-zero", H + meta(0) + ONE + end(1, 2), {0: {"k": "v"}}, {}, 0),
    ("meta-longer-body", H + meta(9, b"later") + end(0, 1), {}, {}, 9),
    (
        "same-key-two-keyspaces",
        H2 + ONE_EX + keyspace(1) + ONE + end(2, 3),
        {0: {"k": "v"}, 1: {"k": "v"}},
        {0: {"k": 5}},
        0,
    ),
    (
        "optional-after-meta",
        H + meta(3) + frame(0x81 + 1, b"") + ONE + end(1, 3),
        {0: {"k": "v"}},
        {},
        3,
    ),
]


@pytest.mark.parametrize(
    ("data", "spaces", "expires", "journal_next"),
    [u[1:] for u in UNUSUAL],
    ids=[u[0] for u in UNUSUAL],
)
def test_unusual_but_valid_snapshots_read_the_same(
    data: bytes, spaces: Spaces, expires: Expires, journal_next: int
) -> None:
    assert (
        full_outcome("spec", data) == full_outcome("codec", data) == (spaces, expires, journal_next)
    )


def test_every_single_bit_flip_of_a_v2_or_v3_example_is_refused_the_same_way() -> None:
    for _snapshot, example in SNAPSHOT_EXAMPLES + TYPED_EXAMPLES:
        for bit in range(8 * len(example)):
            damaged = bytearray(example)
            damaged[bit // 8] ^= 1 << (bit % 8)
            spec = full_outcome("spec", bytes(damaged))
            assert len(spec) == 2, f"bit {bit} flipped went unnoticed"
            assert spec == full_outcome("codec", bytes(damaged)), f"bit {bit}"


def test_every_truncation_of_a_v2_or_v3_example_is_refused_the_same_way() -> None:
    for _snapshot, example in SNAPSHOT_EXAMPLES + TYPED_EXAMPLES:
        for size in range(len(example)):
            spec = full_outcome("spec", example[:size])
            assert len(spec) == 2
            assert spec == full_outcome("codec", example[:size])


def test_bad_magic_and_zero_bytes_raise_value_error() -> None:
    for data, message in [
        (b"", "header-length at offset 0"),
        (b"\x89SKV\r\n\x1a\r" + GOOD[8:], "magic at offset 0"),
        (b"PK\x03\x04" + GOOD[4:], "magic at offset 0"),
    ]:
        with pytest.raises(ValueError, match=message):
            read_snapshot(data)


def test_every_single_bit_flip_is_refused_the_same_way() -> None:
    for example in (GOOD, *(data for _mapping, data in EXAMPLES)):
        for bit in range(8 * len(example)):
            damaged = bytearray(example)
            damaged[bit // 8] ^= 1 << (bit % 8)
            spec = outcome("spec", bytes(damaged))
            assert isinstance(spec, tuple), f"bit {bit} flipped went unnoticed"
            assert spec == outcome("codec", bytes(damaged)), f"bit {bit}"


def test_every_truncation_is_refused_the_same_way() -> None:
    for size in range(len(GOOD)):
        spec = outcome("spec", GOOD[:size])
        assert isinstance(spec, tuple)
        assert spec == outcome("codec", GOOD[:size])


body_text = st.lists(
    st.sampled_from([b"k", b"\x00", b"\x1f", b"\xc3\xa9", b"\xed\xa0\x80", b"\xff", b"\xe1\x80"]),
    max_size=8,
).map(b"".join)


@st.composite
def records(draw: st.DrawFn) -> bytes:
    """A frame with a valid CRC around a plausible, often malformed, body."""
    record_type = draw(st.sampled_from([1, 1, 1, 2, 3, 3, 4, 4, 5, 5, 5, 0x81]))
    count = draw(st.integers(0, 3))
    layout = draw(st.sampled_from([0, 1, 1, 2]))
    if layout == 0:
        column = draw(st.lists(st.integers(0, 3), min_size=2 * count, max_size=2 * count + 1))
        body = struct.pack(f"<IB{len(column)}I", count, 0, *column)
    else:
        body = struct.pack("<IB", count, layout) + draw(st.sampled_from([b"\x00", b"\x1f", b""]))
    if record_type == 3:  # an expiry column, of about the right size
        body = body[:5] + bytes(8 * draw(st.integers(0, count + 1))) + body[5:]
    body += draw(body_text)
    if record_type == 5:  # a CONTAINERS head over a drawn rest
        head = struct.pack(
            "<IBBB",
            count,
            draw(st.sampled_from([1, 2, 3, 4, 4, 7])),
            draw(st.sampled_from([0, 0, 1, 2, 4, 6, 8])),
            layout,
        )
        counts = draw(st.lists(st.integers(0, 2), min_size=count, max_size=count + 1))
        rest = struct.pack(f"<{len(counts)}I", *counts)
        rest += draw(st.sampled_from([b"", bytes(8), struct.pack("<d", 1.5) * 2]))
        body = head + rest + body[5:]
    if record_type == 4:
        body = struct.pack("<I", draw(st.integers(0, 3)))
    if record_type == 0x81:
        body = struct.pack("<Q", draw(st.integers(0, 9)))
    if record_type == 2:
        body = struct.pack("<QI", draw(st.integers(0, 4)), draw(st.integers(0, 4)))
    if draw(st.booleans()):
        body = body[: draw(st.integers(0, len(body)))]
    return frame(record_type, body)


@settings(max_examples=200, deadline=None)
@given(st.lists(records(), max_size=4), st.integers(0, 6), st.integers(0, 4))
def test_both_readers_agree_on_arbitrary_records(
    frames: list[bytes], total: int, count: int
) -> None:
    data = H + b"".join(frames) + end(total, count)
    assert outcome("spec", data) == outcome("codec", data)
    data = H2 + b"".join(frames) + end(total, count)
    assert full_outcome("spec", data) == full_outcome("codec", data)
    data = H3 + b"".join(frames) + end(total, count)
    assert full_outcome("spec", data) == full_outcome("codec", data)


# ------------------------------------------------- (5) the journal's records of values

JOURNAL_BLOCK = re.compile(r"^```journal-hex\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _journal_part() -> str:
    return FORMAT_MD.read_text(encoding="utf-8").split(JOURNAL_PART)[1]


def journal_example(index: int) -> tuple[bytes, list[str]]:
    """The bytes of the ``index``-th ```journal-hex block and its wrong offset or CRC comments."""
    block = JOURNAL_BLOCK.findall(_journal_part())[index]
    data = bytearray()
    wrong = []
    claims = []
    for line in block.splitlines():
        code, _, comment = line.partition("#")
        stated = re.match(r"\s*(\d+)\s", comment)
        if stated and int(stated.group(1)) != len(data):
            wrong.append(f"{line!r} is at offset {len(data)}")
        if crc := CRC_COMMENT.search(comment):
            claims.append((line, len(data), int(crc[1], 16), int(crc[2]), int(crc[3])))
        data += bytes.fromhex(code)
    for line, at, value, first, last in claims:
        if zlib.crc32(data[first : last + 1]) != value:
            wrong.append(f"{line!r}: not the CRC-32 of those bytes")
        (length,) = struct.unpack_from("<I", data, at + 4)
        if at >= jr.HEADER_SIZE and (first, last) != (at + 4, at + 8 + length):
            wrong.append(f"{line!r}: a record's CRC covers bytes {at + 4}..{at + 8 + length}")
    return bytes(data), wrong


def test_the_journal_example_of_values_is_what_the_encoders_write() -> None:
    data, wrong = journal_example(1)
    assert wrong == []
    records = [
        jr.edit_record(0, "h", 1, 1, ["f", "v"]),
        jr.edit_record(0, "z", 4, 1, [1.5, "m"]),
        jr.edit_record(0, "l", 2, 5, [0, 1, "x"]),
        jr.put_record(1, "s", 3, ["a"], 1_700_000_000_000),
        jr.rename_record(0, "h", 1, "g"),
    ]
    assert data == jr.header(2) + b"".join(records)
    assert jr.scan_journal(data).ops == [
        ("edit", 0, "h", 1, 1, ("f", "v")),
        ("edit", 0, "z", 4, 1, (1.5, "m")),
        ("edit", 0, "l", 2, 5, (0, 1, "x")),
        ("put", 1, "s", 3, ("a",), 1_700_000_000_000),
        ("rename", 0, "h", 1, "g"),
    ]


def test_the_journal_example_comment_check_can_fail() -> None:
    block = JOURNAL_BLOCK.findall(_journal_part())[1]
    assert "# 190 target" in block


EFFECT_ROW = re.compile(
    r"^\| (\d) (?:hash|list|set|sorted set|stream) \| (\d) \| `(OP_[A-Z_]+)` \|", re.MULTILINE
)


def test_the_effect_tables_are_the_value_types_opcodes() -> None:
    rows = {(int(v), name): int(op) for v, op, name in EFFECT_ROW.findall(_journal_part())}
    expected = {
        (code, name): getattr(module, name)
        for code, module in vtypes.BY_CODE.items()
        for name in dir(module)
        if name.startswith("OP_")
    }
    assert rows == expected
    assert len(rows) == 18


def test_the_item_tags_and_record_types_are_the_journal_codes() -> None:
    text = _journal_part()
    assert (jr.ITEM_STR, jr.ITEM_INT, jr.ITEM_FLOAT) == (0, 1, 2)
    for tag, name in [(0, "ITEM_STR"), (1, "ITEM_INT"), (2, "ITEM_FLOAT")]:
        assert f"| {tag} (`{name}`) |" in text
    for code, name in [(0x16, "EDIT"), (0x17, "PUT"), (0x18, "RENAME")]:
        assert getattr(jr, f"TYPE_{name}") == code
        assert f"| `0x{code:02x}` | {name} (`TYPE_{name}`) | required |" in text
    assert set(journal_format.DECODERS) == set(range(0x10, 0x19)), "J3 lists every type"
    assert (
        "| 10 | `record-type` | `type` is required (bit `0x80` clear) and not `0x10`..`0x18`"
        in text
    )


def test_a_reader_of_the_older_types_refuses_the_new_records_by_record_type() -> None:
    # What J8 promises, read with the frame rules alone: a reader that knows
    # 0x10..0x15 sees a required type it does not know at the record's offset.
    data, _ = journal_example(1)
    pos = jr.HEADER_SIZE
    _crc, _length, record_type = struct.unpack_from("<IIB", data, pos)
    assert record_type == 0x16 and not record_type & jr.OPTIONAL_TYPE_BIT
    assert record_type not in range(0x10, 0x16)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=4),
            st.integers(-(2**63), 2**63 - 1),
            st.floats(allow_nan=False),
        ),
        max_size=6,
    ),
    st.integers(0, 255),
    st.integers(0, 255),
)
def test_edit_and_put_items_round_trip_as_the_document_encodes_them(
    items: list[str | int | float], vtype: int, opcode: int
) -> None:
    # The item encoding of J3, written here from the table, against the encoder.
    body = b""
    for item in items:
        if isinstance(item, str):
            raw = item.encode("utf-8", "surrogatepass")
            body += struct.pack("<BI", 0, len(raw)) + raw
        elif isinstance(item, int):
            body += struct.pack("<Bq", 1, item)
        else:
            body += struct.pack("<Bd", 2, item)
    edit = jr.edit_record(3, "k", vtype, opcode, items)
    assert edit[9:] == struct.pack("<IBBI", 3, vtype, opcode, 1) + b"k" + body
    put = jr.put_record(3, "k", vtype, items, 7)
    assert put[9:] == struct.pack("<IBQI", 3, vtype, 7, 1) + b"k" + body
    assert jr.decode_record(edit) == ("edit", 3, "k", vtype, opcode, tuple(items))


def test_a_nan_item_is_refused_both_ways() -> None:
    with pytest.raises(ValueError, match="NaN"):
        jr.edit_record(0, "z", 4, 1, [math.nan, "m"])
    good = jr.edit_record(0, "z", 4, 1, [1.0, "m"])
    nan = good.replace(struct.pack("<d", 1.0), struct.pack("<d", math.nan))
    body = nan[4:]
    damaged = struct.pack("<I", zlib.crc32(body)) + body
    with pytest.raises(CorruptJournalError) as info:
        jr.decode_record(damaged)
    assert (info.value.check, info.value.offset) == ("record-body", 9 + 11)
