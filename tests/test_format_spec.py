"""docs/FORMAT.md is complete and true.

Complete: ``spec_reader.py``, written from the document alone, reads everything
the encoder writes, and refuses damaged snapshots with the same check name and
offset as ``snapkv.codec``. True: every hex example in the document is exactly
what the encoder produces, and every check and constant of the codec is there.
"""

from __future__ import annotations

import ast
import re
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spec_reader
from snapkv import codec
from snapkv.errors import CorruptSnapshotError
from spec_reader import SpecReaderError, decode_text, read_snapshot, read_snapshot_records

ROOT = Path(__file__).resolve().parent.parent
FORMAT_MD = ROOT / "docs" / "FORMAT.md"
CODEC_PY = ROOT / "src" / "snapkv" / "codec.py"

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
HEX_BYTE = re.compile(r"[0-9a-f]{2}")


def example_blocks() -> list[str]:
    return EXAMPLE_BLOCK.findall(FORMAT_MD.read_text(encoding="utf-8"))


def parse_example(block: str) -> tuple[dict[str, str], bytes, list[str]]:
    """Parse one ```snapshot-hex block: ``# mapping = <Python literal>``, then hex lines.

    On a hex line everything after ``#`` is a comment. A comment that starts with
    a number states the decimal offset of the line's first byte; the lines where
    it is wrong are returned third.
    """
    first, *lines = block.splitlines()
    assert first.startswith(MAPPING_LINE), first
    mapping = ast.literal_eval(first[len(MAPPING_LINE) :])
    data = bytearray()
    wrong_offsets = []
    for line in lines:
        code, _, comment = line.partition("#")
        tokens = code.split()
        assert all(HEX_BYTE.fullmatch(t) for t in tokens), line
        stated = re.match(r"\s*(\d+)\s", comment)
        if tokens and stated and int(stated.group(1)) != len(data):
            wrong_offsets.append(f"{line!r} is at offset {len(data)}")
        data += bytes.fromhex("".join(tokens))
    return mapping, bytes(data), wrong_offsets


EXAMPLES = [parse_example(block)[:2] for block in example_blocks()]


def test_document_has_the_examples() -> None:
    assert len(EXAMPLES) >= 4
    layouts = set()
    for _mapping, data in EXAMPLES:
        layouts.update(r.layout for r in read_snapshot_records(data).records)
    assert layouts == {spec_reader.LAYOUT_LENGTHS, spec_reader.LAYOUT_SEPARATED}
    # No hex dump of a snapshot hides outside a checked block.
    text = FORMAT_MD.read_text(encoding="utf-8")
    dumps = [line for line in text.splitlines() if line.startswith("89 53 4b 56 0d 0a 1a 0a")]
    assert len(dumps) == len(EXAMPLES)


def test_example_offset_comments_are_right() -> None:
    assert [wrong for block in example_blocks() for wrong in parse_example(block)[2]] == []


@pytest.mark.parametrize(("mapping", "data"), EXAMPLES, ids=[str(m) for m, _ in EXAMPLES])
def test_document_example_is_the_encoder_output(mapping: dict[str, str], data: bytes) -> None:
    assert codec.encode(mapping) == data
    assert read_snapshot(data) == mapping


# ------------------------------------------------- (3) checks and constants


def codec_check_names() -> set[str]:
    return set(re.findall(r'check="([a-z0-9-]+)"', CODEC_PY.read_text(encoding="utf-8")))


def doc_check_names() -> set[str]:
    row = re.compile(r"^\|\s*\d+\s*\|\s*`([a-z0-9-]+)`\s*\|", re.MULTILINE)
    return set(row.findall(FORMAT_MD.read_text(encoding="utf-8")))


def test_every_codec_check_is_in_the_document_table() -> None:
    names = codec_check_names()
    assert {"magic", "record-crc", "trailing-bytes"} <= names
    assert names == doc_check_names()


def test_every_codec_constant_is_in_the_document() -> None:
    tree = ast.parse(CODEC_PY.read_text(encoding="utf-8"))
    names = [
        target.id
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name) and re.fullmatch(r"[A-Z][A-Z0-9_]*", target.id)
    ]
    assert "MAGIC" in names
    text = FORMAT_MD.read_text(encoding="utf-8")
    assert [n for n in names if f"`{n}`" not in text] == []
    assert " ".join(f"{ord(c):02x}" for c in codec.SEPARATORS) in text


def test_spec_reader_constants_match_the_codec() -> None:
    assert spec_reader.MAGIC == codec.MAGIC
    assert spec_reader.VERSION == codec.VERSION
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


GOOD = codec.encode({"a": "1", "a|b:c": "v1|v2:ok"})
H = header()
ONE = separated(1, b"k\x00v")

# (name, snapshot, the check both readers must report)
CRAFTED = [
    ("bad-magic", b"GIF89a" + GOOD[6:], "magic"),
    ("short-bad-magic", b"\x89PNG", "magic"),
    ("zero-bytes", b"", "header-length"),
    ("short-header", GOOD[:10], "header-length"),
    ("header-crc", GOOD[:12] + b"\x00\x00\x00\x00" + GOOD[16:], "header-crc"),
    ("version-2", header(version=2) + end(0, 0), "version"),
    ("flags", header(flags=1) + end(0, 0), "flags"),
    ("end-missing", H, "end-missing"),
    ("end-missing-after-entries", H + ONE, "end-missing"),
    ("record-header", H + b"\x00" * 5, "record-header"),
    ("record-length", H + end(0, 0)[:-1], "record-length"),
    ("record-crc", GOOD[:-1] + bytes([GOOD[-1] ^ 1]), "record-crc"),
    ("record-type-03", H + frame(3, b"") + end(0, 1), "record-type"),
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
    ("duplicate-in-record", H + separated(2, b"k\x00k\x00v\x00w") + end(2, 1), "duplicate-key"),
    ("duplicate-across", H + ONE + ONE + end(2, 2), "duplicate-key"),
    ("end-length", H + frame(2, bytes(11)), "end-length"),
    ("end-entries", H + ONE + end(2, 1), "end-count"),
    ("end-records", H + ONE + frame(0x81, b"x") + end(1, 1), "end-count"),
    ("trailing-bytes", GOOD + b"\x00", "trailing-bytes"),
]


def outcome(reader: str, data: bytes) -> tuple[str, int] | dict[str, str]:
    """What one reader makes of ``data``: the mapping, or (check, offset)."""
    try:
        if reader == "spec":
            return read_snapshot(data)
        return codec.decode(data)
    except (SpecReaderError, CorruptSnapshotError) as exc:
        return exc.check, exc.offset


@pytest.mark.parametrize(("data", "check"), [c[1:] for c in CRAFTED], ids=[c[0] for c in CRAFTED])
def test_both_readers_refuse_with_the_same_check_and_offset(data: bytes, check: str) -> None:
    with pytest.raises(ValueError):
        read_snapshot(data)
    spec = outcome("spec", data)
    assert isinstance(spec, tuple)
    assert spec[0] == check
    assert spec == outcome("codec", data)


def test_crafted_cases_reach_every_check_in_the_table() -> None:
    assert {check for _name, _data, check in CRAFTED} == doc_check_names()


def test_optional_records_are_skipped_and_counted() -> None:
    data = H + frame(0x80, b"") + ONE + frame(0xFF, b"\xff\xfe") + end(1, 3)
    assert outcome("spec", data) == outcome("codec", data) == {"k": "v"}


def test_bad_magic_and_zero_bytes_raise_value_error() -> None:
    for data in (b"", b"\x89SKV\r\n\x1a\r" + GOOD[8:], b"PK\x03\x04" + GOOD[4:]):
        with pytest.raises(ValueError):
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
    record_type = draw(st.sampled_from([1, 1, 1, 2, 3, 0x81]))
    count = draw(st.integers(0, 3))
    layout = draw(st.sampled_from([0, 1, 1, 2]))
    if layout == 0:
        column = draw(st.lists(st.integers(0, 3), min_size=2 * count, max_size=2 * count + 1))
        body = struct.pack(f"<IB{len(column)}I", count, 0, *column)
    else:
        body = struct.pack("<IB", count, layout) + draw(st.sampled_from([b"\x00", b"\x1f", b""]))
    body += draw(body_text)
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
