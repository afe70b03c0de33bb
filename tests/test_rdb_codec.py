"""snapkv.rdb, the codec alone: checksums, LZF, the compact encodings, objects and payloads.

The compact encodings (ziplist, listpack, intset, zipmap) and the older
object types (ZSET with text scores, HASH_ZIPMAP, the ziplist types,
QUICKLIST version 1 and 2 with plain nodes, SET_LISTPACK) are built here by
a second writer, written from the format descriptions (Redis's
``ziplist.c``, ``listpack.c``, ``intset.c``, ``zipmap.c``, ``rdb.c``) and
not from snapkv's reader; where the reference redis-server 7.0 reads the
type, it reads the same payload and must agree. Malformed input of every
kind must end in ``RDBError`` or ``PayloadError``, never another exception.
"""

from __future__ import annotations

import contextlib
import math
import random
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapkv import rdb
from snapkv.rdb import compact, lzf
from snapkv.rdb.crc64 import BLOCKWISE_FROM, crc64
from snapkv.values import hashes, lists, sets, streams, zsets

FAST = settings(max_examples=60, deadline=None)

# ------------------------------------------------------------------ CRC-64


def _crc64_bitwise(data: bytes) -> int:
    """The textbook definition: reflected in and out, bit by bit, polynomial as Jones gives it."""
    poly, crc = 0xAD93D23594C935A9, 0
    for byte in data:
        byte = int(f"{byte:08b}"[::-1], 2)  # reflect the input byte
        crc ^= byte << 56
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & (2**64 - 1) if crc >> 63 else (crc << 1)
    return int(f"{crc:064b}"[::-1], 2)  # reflect the output


def test_crc64_check_value() -> None:
    assert crc64(0, b"123456789") == 0xE9C6D914C4B8D9CA
    assert crc64(0, b"") == 0


@FAST
@given(st.binary(max_size=100), st.binary(max_size=40))
def test_crc64_is_the_textbook_crc_and_continues_over_chunks(a: bytes, b: bytes) -> None:
    assert crc64(0, a + b) == _crc64_bitwise(a + b)
    assert crc64(crc64(0, a), b) == crc64(0, a + b)


def test_crc64_of_megabytes_folds_blocks_to_the_same_value() -> None:
    """Inputs from BLOCKWISE_FROM on take the blockwise method; small pieces the slicing loop,
    which the test above holds to the textbook bitwise CRC."""
    rng = random.Random(15)
    data = rng.randbytes(BLOCKWISE_FROM + 8192 * 3 + 5)
    by_pieces = 0x1234_5678_9ABC_DEF0
    for start in range(0, len(data), 60_000):  # each piece below the threshold
        by_pieces = crc64(by_pieces, data[start : start + 60_000])
    assert crc64(0x1234_5678_9ABC_DEF0, data) == by_pieces
    assert crc64(0, bytes(BLOCKWISE_FROM)) == crc64(
        crc64(0, bytes(100)), bytes(BLOCKWISE_FROM - 100)
    )


def test_crc64_takes_a_mebibyte_in_well_under_a_second() -> None:
    data = bytes(range(256)) * 4096
    started = time.perf_counter()
    crc64(0, data)
    assert time.perf_counter() - started < 0.6


# --------------------------------------------------------------------- LZF

#: DUMP of a 135-byte string by redis-server 7.0.15 (LZF: literal runs and back references).
REDIS_LZF_DUMP = bytes.fromhex(
    "00c31a408702616261e058010b68656c6c6f20776f726c6420e00c0b016c640a00c63aaf864e296e5a"
)


def test_lzf_payload_from_redis() -> None:
    assert rdb.restore(REDIS_LZF_DUMP) == "ab" * 50 + "hello world hello world hello world"


def test_lzf_back_references_overlap_and_extend() -> None:
    # "abc", then the long form (7 + 0, so 9 bytes) from 3 back: it overlaps itself.
    assert lzf.decompress(b"\x02abc" + bytes([0xE0, 0, 2]), 3 + 9) == b"abc" + b"abcabcabc"
    # "abc", then the short form (1, so 3 bytes) from 3 back.
    assert lzf.decompress(b"\x02abc" + bytes([0x20, 2]), 6) == b"abcabc"


@pytest.mark.parametrize(
    ("stream", "length"),
    [
        (b"\x02ab", 3),  # literal run past the input
        (b"\x02abc", 2),  # literal run past the length
        (b"\x20\x00", 3),  # back reference before the start
        (b"\x00a\x20", 3),  # back reference cut short
        (b"\x00a\xe0", 12),  # long back reference cut short
        (b"\x00a\x20\x00", 2),  # back reference past the length
        (b"\x00a", 5),  # too short for its length
        (b"", 1),
    ],
)
def test_lzf_refuses_malformed_streams(stream: bytes, length: int) -> None:
    with pytest.raises(lzf.LZFError):
        lzf.decompress(stream, length)


def test_lzf_promising_a_huge_length_allocates_nothing_of_it() -> None:
    with pytest.raises(lzf.LZFError, match="makes 1 bytes"):
        lzf.decompress(b"\x00a", 1 << 40)


# ------------------------------------- a second writer, from the format texts


def _zl_entry(value: bytes | int, prevlen: int) -> bytes:
    head = bytes([prevlen]) if prevlen < 254 else b"\xfe" + struct.pack("<I", prevlen)
    if isinstance(value, int):
        if 0 <= value <= 12:
            return head + bytes([0xF1 + value])
        for code, fmt, lo in (
            (0xFE, "<b", -(2**7)),
            (0xC0, "<h", -(2**15)),
            (0xF0, None, -(2**23)),
        ):
            if lo <= value < -lo:
                data = (
                    value.to_bytes(3, "little", signed=True)
                    if fmt is None
                    else struct.pack(fmt, value)
                )
                return head + bytes([code]) + data
        if -(2**31) <= value < 2**31:
            return head + b"\xd0" + struct.pack("<i", value)
        return head + b"\xe0" + struct.pack("<q", value)
    n = len(value)
    if n < 64:
        enc = bytes([n])
    elif n < 16384:
        enc = bytes([0x40 | n >> 8, n & 0xFF])
    else:
        enc = b"\x80" + n.to_bytes(4, "big")
    return head + enc + value


def make_ziplist(values: list[bytes | int]) -> bytes:
    body, prevlen, tail = b"", 0, 10
    for value in values:
        entry = _zl_entry(value, prevlen)
        tail = 10 + len(body)
        body += entry
        prevlen = len(entry)
    total = 10 + len(body) + 1
    return struct.pack("<IIH", total, tail, min(len(values), 0xFFFF)) + body + b"\xff"


def _lp_backlen(n: int) -> bytes:
    if n <= 127:
        return bytes([n])
    if n < 16383:
        return bytes([n >> 7, (n & 127) | 128])
    if n < 2097151:
        return bytes([n >> 14, ((n >> 7) & 127) | 128, (n & 127) | 128])
    return bytes([n >> 21, ((n >> 14) & 127) | 128, ((n >> 7) & 127) | 128, (n & 127) | 128])


def _lp_entry(value: bytes | int) -> bytes:
    if isinstance(value, int):
        if 0 <= value <= 127:
            enc = bytes([value])
        elif -4096 <= value < 4096:
            raw = value & 0x1FFF
            enc = bytes([0xC0 | raw >> 8, raw & 0xFF])
        else:
            for code, width in ((0xF1, 2), (0xF2, 3), (0xF3, 4), (0xF4, 8)):
                if -(2 ** (8 * width - 1)) <= value < 2 ** (8 * width - 1):
                    enc = bytes([code]) + value.to_bytes(width, "little", signed=True)
                    break
    else:
        n = len(value)
        if n < 64:
            enc = bytes([0x80 | n]) + value
        elif n < 4096:
            enc = bytes([0xE0 | n >> 8, n & 0xFF]) + value
        else:
            enc = b"\xf0" + struct.pack("<I", n) + value
    return enc + _lp_backlen(len(enc))


def make_listpack(values: list[bytes | int]) -> bytes:
    body = b"".join(_lp_entry(v) for v in values)
    return struct.pack("<IH", 6 + len(body) + 1, min(len(values), 0xFFFF)) + body + b"\xff"


def make_intset(values: list[int]) -> bytes:
    width = max(2 if -(2**15) <= v < 2**15 else 4 if -(2**31) <= v < 2**31 else 8 for v in values)
    fmt = {2: "<h", 4: "<i", 8: "<q"}[width]
    members = sorted(set(values))
    return struct.pack("<II", width, len(members)) + b"".join(struct.pack(fmt, v) for v in members)


def make_zipmap(pairs: list[tuple[bytes, bytes]], free: int = 0) -> bytes:
    def length(n: int) -> bytes:
        return bytes([n]) if n < 254 else b"\xfe" + struct.pack("<I", n)

    body = b"".join(
        length(len(k)) + k + length(len(v)) + bytes([free]) + v + b"\x00" * free for k, v in pairs
    )
    return bytes([min(len(pairs), 254)]) + body + b"\xff"


def rdb_len(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | n >> 8, n & 0xFF])
    return b"\x80" + n.to_bytes(4, "big")


def rdb_str(data: bytes) -> bytes:
    return rdb_len(len(data)) + data


def payload(kind: int, body: bytes, version: int = 9) -> bytes:
    data = bytes([kind]) + body + struct.pack("<H", version)
    return data + struct.pack("<Q", crc64(0, data))


def _num(value: bytes | int) -> bytes:
    return str(value).encode() if isinstance(value, int) else value


# ------------------------------------------------- compact encodings, read

_element = st.integers(-(2**63), 2**63 - 1) | st.binary(max_size=70) | st.integers(-200, 200)
_long = st.binary(min_size=4000, max_size=17000)


@FAST
@given(st.lists(_element, max_size=40))
def test_ziplist_reads_what_the_spec_writes(values: list[bytes | int]) -> None:
    assert compact.ziplist(make_ziplist(values)) == values


@FAST
@given(st.lists(_element, max_size=40))
def test_listpack_reads_what_the_spec_writes(values: list[bytes | int]) -> None:
    assert compact.listpack(make_listpack(values)) == values


def test_long_entries_use_the_wide_lengths() -> None:
    values: list[bytes | int] = [b"x" * 300, b"y" * 5000, b"z" * 20000, 1]
    assert compact.ziplist(make_ziplist(values)) == values  # 14-bit and 32-bit lengths
    assert compact.listpack(make_listpack(values)) == values  # 12-bit, 32-bit, 3-byte backlen
    assert compact.ziplist(make_ziplist([b"a" * 300, 5])) == [b"a" * 300, 5]  # 5-byte prevlen


@FAST
@given(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=1, max_size=30))
def test_intset_reads_what_the_spec_writes(values: list[int]) -> None:
    assert compact.intset(make_intset(values)) == sorted(set(values))


@FAST
@given(st.dictionaries(st.binary(max_size=300), st.binary(max_size=300), max_size=10))
def test_zipmap_reads_what_the_spec_writes(pairs: dict[bytes, bytes]) -> None:
    flat = [x for pair in pairs.items() for x in pair]
    assert compact.zipmap(make_zipmap(list(pairs.items()))) == flat
    assert compact.zipmap(make_zipmap(list(pairs.items()), free=3)) == flat


@pytest.mark.parametrize(
    "blob",
    [
        make_ziplist([b"a", 1])[:-1],  # no end
        make_ziplist([b"a", 1])[:-1] + b"\x00",
        b"\x0b\x00\x00\x00\x0a\x00\x00\x00\x05\x00\xff",  # zllen lies
        make_ziplist([b"abc"]).replace(b"\x03abc", b"\x09abc"),  # string past the end
        make_ziplist([b"a", b"b"])[:13] + b"\x05" + make_ziplist([b"a", b"b"])[14:],  # prevlen
        make_ziplist([b"a"]).replace(b"\x01a", b"\xcfa"),  # no such encoding
        b"\x05\x00\x00\x00",
    ],
)
def test_malformed_ziplists_are_refused(blob: bytes) -> None:
    with pytest.raises(compact.CompactError):
        compact.ziplist(blob)


@pytest.mark.parametrize(
    "blob",
    [
        make_listpack([b"a", 1])[:-1] + b"\x00",
        make_listpack([b"abc"])[:-3] + b"\x05\xff",  # backlen wrong
        struct.pack("<IH", 9, 3) + b"\x01\x01\xff",  # count lies
        struct.pack("<IH", 9, 1) + b"\xf7\x01\xff",  # no such encoding
        struct.pack("<IH", 9, 1) + b"\x85\x01\xff",  # string past the end
        struct.pack("<IH", 10, 1) + b"\xf4\x01\x01\xff",  # int64 past the end
        struct.pack("<IH", 99, 0) + b"\xff",
    ],
)
def test_malformed_listpacks_are_refused(blob: bytes) -> None:
    with pytest.raises(compact.CompactError):
        compact.listpack(blob)


@pytest.mark.parametrize(
    "blob",
    [
        struct.pack("<II", 3, 1) + b"\x00\x00\x00",
        struct.pack("<II", 2, 2) + struct.pack("<hh", 5, 5),  # not increasing
        struct.pack("<II", 2, 9) + struct.pack("<h", 5),  # length lies
        b"\x02\x00",
    ],
)
def test_malformed_intsets_are_refused(blob: bytes) -> None:
    with pytest.raises(compact.CompactError):
        compact.intset(blob)


@pytest.mark.parametrize(
    "blob",
    [
        b"\x01\x01a\x01\x00b",  # no end
        b"\x01\x01a\xff",  # a key with no value
        b"\x01\x05a\x01\x00b\xff",  # key past the end
        b"\x02\x01a\x01\x00b\xff",  # zmlen lies
        b"\x01\x01a\x01\x00b\xff\x00",  # bytes after the end
        b"\x01\x01a\x01\x09b\xff",  # free bytes past the end
    ],
)
def test_malformed_zipmaps_are_refused(blob: bytes) -> None:
    with pytest.raises(compact.CompactError):
        compact.zipmap(blob)


# --------------------------------------------- every object type, read

LEGACY: dict[str, tuple[bytes, Any]] = {
    "zset-text-scores": (
        payload(
            3,
            b"\x03"
            + rdb_str(b"a")
            + b"\x031.5"
            + rdb_str(b"b")
            + b"\xfe"
            + rdb_str(b"c")
            + b"\xff",
        ),
        zsets.ZSet([(1.5, "a"), (math.inf, "b"), (-math.inf, "c")]),
    ),
    "hash-zipmap": (
        payload(9, rdb_str(make_zipmap([(b"f", b"v"), (b"n", b"12"), (b"k" * 260, b"w")], free=2))),
        hashes.Hash({"f": "v", "n": "12", "k" * 260: "w"}),
    ),
    "list-ziplist": (
        payload(10, rdb_str(make_ziplist([b"a", 7, -300, 2**40, b""]))),
        lists.List(["a", "7", "-300", str(2**40), ""]),
    ),
    "set-intset": (
        payload(11, rdb_str(make_intset([3, -(2**40), 70000]))),
        sets.Set(["3", str(-(2**40)), "70000"]),
    ),
    "zset-ziplist": (
        payload(12, rdb_str(make_ziplist([b"a", 1, b"b", b"2.5", b"c", b"-inf"]))),
        zsets.ZSet([(1.0, "a"), (2.5, "b"), (-math.inf, "c")]),
    ),
    "hash-ziplist": (
        payload(13, rdb_str(make_ziplist([b"f", 1, b"g", b"x" * 100]))),
        hashes.Hash({"f": "1", "g": "x" * 100}),
    ),
    "list-quicklist": (
        payload(14, b"\x02" + rdb_str(make_ziplist([b"a", 1])) + rdb_str(make_ziplist([b"b"]))),
        lists.List(["a", "1", "b"]),
    ),
    "hash-listpack": (
        payload(16, rdb_str(make_listpack([b"f", -5000, b"g", b"h"])), version=10),
        hashes.Hash({"f": "-5000", "g": "h"}),
    ),
    "zset-listpack": (
        payload(17, rdb_str(make_listpack([b"m", 3, b"n", b"1e+300"])), version=10),
        zsets.ZSet([(3.0, "m"), (1e300, "n")]),
    ),
    "list-quicklist-2": (
        payload(
            18,
            b"\x03\x02"
            + rdb_str(make_listpack([b"a", 1]))
            + b"\x01"
            + rdb_str(b"plain node " * 10)
            + b"\x02"
            + rdb_str(make_listpack([b"z"])),
            version=10,
        ),
        lists.List(["a", "1", "plain node " * 10, "z"]),
    ),
    "set-listpack": (
        payload(20, rdb_str(make_listpack([b"a", 5, b"\xff"])), version=10),
        sets.Set(["a", "5", "\udcff"]),
    ),
}


@pytest.mark.parametrize("name", sorted(LEGACY))
def test_every_object_type_reads(name: str) -> None:
    data, expected = LEGACY[name]
    got = rdb.restore(data)
    assert type(got) is type(expected)
    assert got == expected


@pytest.fixture
def real(reference: Any, redis_port: int) -> Iterator[Any]:
    redis = pytest.importorskip("redis")
    client = redis.Redis(port=redis_port)
    yield client
    client.close()


@pytest.mark.parametrize("name", sorted(set(LEGACY) - {"set-listpack"}))
def test_the_reference_reads_the_second_writers_payloads_the_same(name: str, real: Any) -> None:
    """Redis 7.0 loads every older type (converting it); it must see what snapkv sees."""
    data, expected = LEGACY[name]
    real.restore("k", 0, data)
    kind = real.type("k").decode()
    assert kind == {hashes.Hash: "hash", lists.List: "list", sets.Set: "set"}.get(
        type(expected), "zset"
    )
    assert rdb.restore(real.dump("k")) == expected


def test_the_reference_has_no_set_listpack_in_7_0(real: Any) -> None:
    from redis import ResponseError

    with pytest.raises(ResponseError, match="Bad data format"):
        real.restore("k", 0, LEGACY["set-listpack"][0])


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (6, "module"),
        (7, "module"),
        (245, "function"),
    ],
)
def test_modules_and_functions_are_refused_by_name(kind: int, name: str) -> None:
    with pytest.raises(rdb.RDBError, match=name) as caught:
        rdb.restore(payload(kind, b"\x01\x01a"))
    assert caught.value.offset == 0


@pytest.mark.parametrize("kind", [8, 22, 100, 255])
def test_unknown_types_are_refused(kind: int) -> None:
    with pytest.raises(rdb.RDBError, match="does not exist"):
        rdb.restore(payload(kind, b"\x01\x01a"))


# -------------------------------------------------------- strings, lengths


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("12", b"\xc0\x0c"),
        ("-128", b"\xc0\x80"),
        ("-129", b"\xc1\x7f\xff"),
        ("100000", b"\xc2\xa0\x86\x01\x00"),
        ("-2147483648", b"\xc2\x00\x00\x00\x80"),
        ("2147483648", b"\x0a2147483648"),
        ("007", b"\x03007"),
        ("-0", b"\x02-0"),
        ("+1", b"\x02+1"),
        ("", b"\x00"),
        ("x" * 64, b"\x40\x40" + b"x" * 64),
        ("x" * 16384, b"\x80\x00\x00\x40\x00" + b"x" * 16384),
    ],
)
def test_strings_are_written_as_redis_writes_them(text: str, encoded: bytes) -> None:
    assert rdb.save(text) == b"\x00" + encoded
    assert rdb.restore(rdb.dump(text)) == text


def test_a_64_bit_length_reads() -> None:
    assert rdb.restore(payload(0, b"\x81" + (3).to_bytes(8, "big") + b"abc")) == "abc"


def test_bytes_that_are_not_utf8_round_trip_as_the_server_maps_them() -> None:
    raw = bytes(range(256))
    text = raw.decode("utf-8", "surrogateescape")
    assert rdb.save(text) == b"\x00" + rdb_str(raw)
    assert rdb.restore(rdb.dump(text)) == text


def test_the_dump_footer_is_version_9_and_crc64() -> None:
    data = rdb.dump("hello")
    assert data[:-10] == b"\x00\x05hello"
    assert data[-10:-8] == b"\x09\x00"
    assert int.from_bytes(data[-8:], "little") == crc64(0, data[:-8])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 9,
        payload(0, b"\x01a", version=11),
        payload(0, b"\x01a")[:-1] + b"\x00",
        payload(0, b"\x01a").replace(b"\x01a", b"\x01b"),
    ],
)
def test_the_footer_is_checked(data: bytes) -> None:
    with pytest.raises(rdb.PayloadError):
        rdb.restore(data)


def test_version_10_is_accepted() -> None:
    assert rdb.restore(payload(0, b"\x01a", version=10)) == "a"


# ---------------------------------------------------------- round trips

_bytes = st.binary(max_size=40) | st.sampled_from([b"0", b"-1", b"65536", b"007", b"x" * 70])
_text = _bytes.map(lambda b: b.decode("utf-8", "surrogateescape"))
_score = st.floats(allow_nan=False)


def _values() -> st.SearchStrategy[Any]:
    return st.one_of(
        _text,
        st.lists(_text, min_size=1, max_size=30).map(lists.List),
        st.sets(_text, min_size=1, max_size=30).map(sets.Set),
        st.dictionaries(_text, _text, min_size=1, max_size=30).map(hashes.Hash),
        st.dictionaries(_text, _score, min_size=1, max_size=30).map(
            lambda d: zsets.ZSet((s, m) for m, s in d.items())
        ),
    )


@settings(max_examples=150, deadline=None)
@given(_values())
def test_any_value_round_trips(value: Any) -> None:
    back = rdb.restore(rdb.dump(value))
    assert type(back) is type(value)
    if isinstance(value, zsets.ZSet):
        assert list(back) == list(value)
    else:
        assert back == value


# --------------------------------------------------------------- damage


def _with_crc(body: bytes) -> bytes:
    return body + struct.pack("<Q", crc64(0, body))


_SAMPLES = (
    [rdb.dump(v) for v in ("text", "12", "x" * 100)]
    + [
        rdb.dump(hashes.Hash({"a": "1", "b": "2"})),
        rdb.dump(zsets.ZSet([(1.0, "a"), (2.5, "b")])),
        rdb.dump(lists.List(["a", "b", "c"])),
    ]
    + [data for data, _ in LEGACY.values()]
    + [REDIS_LZF_DUMP]
)


@pytest.mark.parametrize("index", range(len(_SAMPLES)))
def test_every_truncation_is_refused(index: int) -> None:
    sample = _SAMPLES[index]
    for cut in range(len(sample)):
        with pytest.raises(rdb.PayloadError):
            rdb.restore(sample[:cut])
    body = sample[:-10]
    for cut in range(len(body)):
        # The checksum made to fit: what is left must still be refused or read, never crash.
        with contextlib.suppress(rdb.RDBError):
            rdb.restore(_with_crc(body[:cut] + b"\x09\x00"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SAMPLES), st.data())
def test_bit_flips_behind_a_fixed_crc_never_crash(sample: bytes, data: Any) -> None:
    body = bytearray(sample[:-8])
    flips = data.draw(st.lists(st.integers(0, 8 * (len(body) - 2) - 1), min_size=1, max_size=3))
    for bit in flips:
        body[bit // 8] ^= 1 << (bit % 8)
    try:
        value = rdb.restore(_with_crc(bytes(body)))
    except rdb.RDBError as exc:
        assert 0 <= exc.offset <= len(body) + 8
    else:
        assert rdb.restore(rdb.dump(value)) == value


@pytest.mark.parametrize(
    "body",
    [
        b"\x01\x80\xff\xff\xff\xff" + rdb_str(b"a"),  # a list of 2**32 - 1 elements
        b"\x04\x81" + b"\x7f" * 8 + rdb_str(b"a"),  # a hash of 2**63 pairs
        b"\x00\x81" + b"\x7f" * 8 + b"abc",  # a string of 2**63 bytes
        b"\x00\xc3\x02\x81" + b"\x7f" * 8 + b"\x00a",  # LZF promising 2**63 bytes
        b"\x0e\x80\xff\xff\xff\xff" + rdb_str(b"\x00"),  # a quicklist of 2**32 - 1 nodes
    ],
)
def test_lying_lengths_are_refused_without_allocating(body: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(rdb.RDBError):
        rdb.restore(_with_crc(body + b"\x09\x00"))
    assert time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    ("body", "offset", "words"),
    [
        (b"\x01\x03\x01a\x01b\x3f", 7, "bytes wanted"),
        (b"\x02\x02\x01a\x01a", 1, "twice"),
        (b"\x04\x02\x01a\x01b\x01a\x01c", 1, "twice"),
        (b"\x05\x01\x01a" + struct.pack("<d", math.nan), 4, "NaN"),
        (b"\x03\x01\x01a\xfd", 4, "NaN"),
        (b"\x03\x01\x01a\x031_0", 4, "not a number"),
        (b"\x01\x00", 1, "empty"),
        (b"\x00\xc3\xc0\x01a", 1, "LZF string's lengths"),
        (b"\x00\xc4", 1, "string encoding 4"),
        (b"\x00\x82", 1, "length byte 0x82"),
        (b"\x12\x01\x03" + rdb_str(b"x"), 2, "container"),
        (b"\x0e\x01" + rdb_str(make_ziplist([])), 1, "empty list"),
        (b"\x0d" + rdb_str(make_ziplist([b"a"])), 1, "pairs"),
        (b"\x0d" + rdb_str(make_ziplist([b"a", b"a"])[:-1] + b"\x00"), 2 + 16, "end marker"),
    ],
)
def test_errors_say_what_and_where(body: bytes, offset: int, words: str) -> None:
    with pytest.raises(rdb.RDBError, match=words) as caught:
        rdb.restore(_with_crc(body + b"\x09\x00"))
    assert caught.value.offset == offset


# ----------------------------------------------------------------- streams


def _a_stream() -> streams.Stream:
    made = streams.Stream()
    for i in range(230):  # three nodes of at most 100 entries
        pairs = ("f", str(i), "g", "x" * (i % 7)) if i % 5 else ("other", "é\x00")
        made[(1_700_000_000_000 + i // 3, i % 3)] = pairs
    made.last = (1_700_000_000_100, 9)
    made.added = 230
    return made


def test_a_stream_dumped_here_restores_into_redis_entry_for_entry(real: Any) -> None:
    stream = _a_stream()
    real.restore("s", 0, rdb.dump(stream))
    got = real.xrange("s")
    assert [(i.decode(), list(f.items())) for i, f in got] == [
        (
            f"{ms}-{seq}",
            [(k.encode(), v.encode()) for k, v in zip(p[0::2], p[1::2], strict=True)],
        )
        for (ms, seq), p in stream.items()
    ]
    info = real.xinfo_stream("s")
    assert info["last-generated-id"] == b"1700000000100-9"


def test_a_stream_redis_dumped_restores_here(real: Any) -> None:
    real.xadd("s", {"a": "1", "b": "2"}, id="5-1")
    real.xadd("s", {"a": "3", "b": "4"}, id="5-2")
    real.xadd("s", {"c": "5"}, id="7-0")
    real.xadd("s", {"a": "6"}, id="8-0")
    real.xdel("s", "7-0")  # a tombstone in the node, and the max deleted ID
    payload = real.dump("s")  # Redis 7.0: type 19 (STREAM_LISTPACKS_2), version 10
    assert payload[0] == 19
    stream = rdb.restore(payload)
    assert list(stream.items()) == [
        ((5, 1), ("a", "1", "b", "2")),
        ((5, 2), ("a", "3", "b", "4")),
        ((8, 0), ("a", "6")),
    ]
    assert (stream.last, stream.deleted, stream.added) == ((8, 0), (7, 0), 4)


def test_a_stream_with_consumer_groups_is_refused_by_name(real: Any) -> None:
    real.xadd("s", {"a": "1"}, id="1-1")
    real.xgroup_create("s", "g", id="0")
    real.xreadgroup("g", "c", {"s": ">"})
    with pytest.raises(rdb.RDBError, match="consumer groups"):
        rdb.restore(real.dump("s"))
