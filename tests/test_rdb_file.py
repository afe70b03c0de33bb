"""The RDB file codec (snapkv.rdb.file): what it reads of every version, and how it refuses.

Files of the versions redis-server 7.0 cannot write (1 to 5: zipmap hashes,
ziplists, intsets, quicklists of ziplists, expiry times in seconds, no
checksum before version 5) are made here byte by byte from the format as
Redis's ``rdb.c``, ``ziplist.c``, ``zipmap.c`` and ``intset.c`` define it.
Damage is refused with the byte offset where it was found: a file cut at
every offset, every bit of a small file flipped (with the checksum on, and
off, where the parser alone must refuse or read something consistent, and
never raise anything but :class:`RDBFileError`).
"""

from __future__ import annotations

import io
import os
import struct
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import snapkv
from snapkv.interop import iter_entries
from snapkv.interop.rdb_export import export_rdb
from snapkv.interop.rdb_import import ImportReport, TargetNotEmptyError, import_rdb, read_spaces
from snapkv.rdb.crc64 import crc64
from snapkv.rdb.file import RDBFileError, RDBReader, write_rdb
from snapkv.values import hashes, lists, sets, streams, zsets

# ------------------------------------------------------------ building blocks


def length(n: int) -> bytes:
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    return b"\x80" + n.to_bytes(4, "big")


def string(data: bytes) -> bytes:
    return length(len(data)) + data


def ziplist(*entries: bytes | int) -> bytes:
    """A ziplist (``ziplist.c``): strings with 6-bit lengths, int16s and 4-bit immediates."""
    body = b""
    offsets = []
    prev = 0
    for entry in entries:
        if isinstance(entry, int):
            enc = bytes([0xF1 + entry]) if 0 <= entry <= 12 else b"\xc0" + struct.pack("<h", entry)
        else:
            enc = bytes([len(entry)]) + entry
        raw = bytes([prev]) + enc
        offsets.append(10 + len(body))
        body += raw
        prev = len(raw)
    total = 10 + len(body) + 1
    tail = offsets[-1] if offsets else 10
    return struct.pack("<IIH", total, tail, len(entries)) + body + b"\xff"


def zipmap(*pairs: tuple[bytes, bytes]) -> bytes:
    """A zipmap (``zipmap.c``): ``zmlen``, then ``len key len free value``, then 0xFF."""
    out = bytes([len(pairs)])
    for key, value in pairs:
        out += bytes([len(key)]) + key + bytes([len(value), 0]) + value
    return out + b"\xff"


def intset(*members: int) -> bytes:
    return struct.pack("<II", 2, len(members)) + b"".join(struct.pack("<h", m) for m in members)


def rdb_file(version: int, body: bytes, *, checksum: bool = True) -> bytes:
    data = b"REDIS%04d" % version + body + b"\xff"
    if version >= 5:
        data += struct.pack("<Q", crc64(0, data) if checksum else 0)
    return data


def read(data: bytes, **kwargs: object) -> list[tuple[int, str, object, int | None]]:
    return [tuple(item) for item in RDBReader(data, chunk=16, **kwargs)]  # type: ignore[arg-type,misc]


# --------------------------------------------------------- older versions


def test_a_version_3_file_of_compact_encodings_reads_as_redis_2_6_wrote_it() -> None:
    future = int(time.time()) + 3600
    body = (
        b"\xfe\x00"
        + b"\x09" + string(b"zm") + string(zipmap((b"f", b"v"), (b"n", b"12")))
        + b"\x0a" + string(b"zl") + string(ziplist(b"a", 7, -300, b"b"))
        + b"\x0b" + string(b"is") + string(intset(-2, 5, 300))
        + b"\x0c" + string(b"zz") + string(ziplist(b"m", b"1.5", b"n", 3))
        + b"\x0d" + string(b"hz") + string(ziplist(b"f", 12))
        + b"\xfd" + struct.pack("<I", future) + b"\x00" + string(b"s") + string(b"x")
        + b"\xfe\x02"
        + b"\x03" + string(b"old-zset") + length(2) + string(b"m") + b"\x033.5"
        + string(b"inf") + b"\xfe"
    )  # fmt: skip
    got = read(rdb_file(3, body))
    assert got == [
        (0, "zm", {"f": "v", "n": "12"}, None),
        (0, "zl", lists.List(["a", "7", "-300", "b"]), None),
        (0, "is", {"-2", "5", "300"}, None),
        (0, "zz", zsets.ZSet([(1.5, "m"), (3.0, "n")]), None),
        (0, "hz", {"f": "12"}, None),
        (0, "s", "x", future * 1000),
        (2, "old-zset", zsets.ZSet([(3.5, "m"), (float("inf"), "inf")]), None),
    ]


@pytest.mark.parametrize("version", [1, 2, 4, 5, 6, 7])
def test_every_old_version_reads_with_its_own_trailer(version: int) -> None:
    body = b"\xfe\x00\x00" + string(b"k") + string(b"v")
    assert read(rdb_file(version, body)) == [(0, "k", "v", None)]


def test_a_quicklist_of_ziplists_reads_as_one_list() -> None:
    body = b"\xfe\x00\x0e" + string(b"q") + length(2)
    body += string(ziplist(b"a", b"b")) + string(ziplist(3, b"c"))
    assert read(rdb_file(8, body)) == [(0, "q", lists.List(["a", "b", "3", "c"]), None)]


def test_aux_fields_module_aux_idle_freq_and_resizedb_are_read_past() -> None:
    module_aux = b"\xf7" + length(5) + length(2) + b"\x02\x07" + b"\x05" + string(b"x") + b"\x00"
    body = (
        b"\xfa" + string(b"redis-ver") + string(b"7.2.0")
        + module_aux
        + b"\xfe\x01\xfb\x01\x00"
        + b"\xf8\x05\xf9\x07\x00" + string(b"k") + string(b"v")
        + b"\xf4\x01\x02\x03"  # SLOT_INFO (Redis 7.4)
    )  # fmt: skip
    reader = RDBReader(rdb_file(12, body))
    assert [tuple(i) for i in reader] == [(1, "k", "v", None)]
    assert reader.aux == {"redis-ver": "7.2.0"}


def test_a_valkey_magic_is_read_and_a_module_value_skipped_by_name() -> None:
    data = b"VALKEY080\xfe\x00\x07" + string(b"mod") + length(99) + b"\x02\x05\x00"
    data += b"\x00" + string(b"k") + string(b"v") + b"\xff"
    data += struct.pack("<Q", crc64(0, data))
    with pytest.raises(RDBFileError, match=r"key 'mod' in db 0 is a module") as caught:
        read(data)
    assert caught.value.offset == 11  # the type byte of the key
    reader = RDBReader(data, skip_unsupported=True)
    assert [tuple(i) for i in reader] == [(0, "k", "v", None)]
    assert [(s.key, s.type_name, s.offset) for s in reader.skipped] == [("mod", "module", 11)]


@pytest.mark.parametrize(
    ("data", "message", "offset"),
    [
        (b"REDIS0013\xff", "RDB version 13", 5),
        (b"REDIS0000\xff", "RDB version 0", 5),
        (b"RUBY00010\xff", "not an RDB file", 0),
        (b"VALKEY011\xff", "Valkey RDB version 11", 6),
        (b"REDIS0003\x08\x01k", "RDB type 8", 9),
        (b"REDIS0003\xff!", "bytes after the end", 10),
        (b"REDIS0010\xf6", "pre-release", 9),
        # An empty intset fails Redis's integrity check (other empty containers are skipped).
        (b"REDIS0009\x0b\x01e" + string(intset()) + b"\xff", "an intset of no members", 12),
        # A keyspace no store can have (databases is at most 2**31): Redis stops there too.
        (b"REDIS0009\xfe\x81" + b"\xff" * 8 + b"\x00\x01k\x01v\xff", "keyspace 18446", 9),
        (b"REDIS0009\xfe\x80\x80\x00\x00\x00\x00\x01k\x01v\xff", "keyspace 2147483648", 9),
    ],
)
def test_malformed_files_are_refused_with_the_offset(
    data: bytes, message: str, offset: int
) -> None:
    with pytest.raises(RDBFileError, match=message) as caught:
        read(data)
    assert caught.value.offset == offset


# ------------------------------------------------------------------ damage


def small_file() -> bytes:
    stream = streams.Stream()
    stream[(1, 1)] = ("f", "v")
    stream[(2, 0)] = ("f", "w", "g", "x")
    stream.last = (2, 0)
    out = io.BytesIO()
    write_rdb(
        out.write,
        [
            (0, 4, 1, [
                ("s", "hello", None),
                ("h", hashes.Hash({"a": "1", "b": "x" * 30}), 4102444800000),
                ("n", "12345", None),
                ("st", stream, None),
            ]),
            (3, 3, 0, [
                ("z", zsets.ZSet([(1.5, "m"), (-2.0, "n")]), None),
                ("l", lists.List(["1", "two"]), None),
                ("set", sets.Set(["q", "7"]), None),
            ]),
        ],
    )  # fmt: skip
    return out.getvalue()


def test_a_file_cut_at_every_offset_is_refused_with_an_offset_inside_it() -> None:
    data = small_file()
    assert len(read(data)) == 7
    for cut in range(len(data)):
        with pytest.raises(RDBFileError) as caught:
            read(data[:cut])
        assert 0 <= caught.value.offset <= cut, cut


def test_every_bit_flipped_is_refused_by_the_checksum_or_the_parser() -> None:
    data = small_file()
    for pos in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            with pytest.raises(RDBFileError) as caught:
                read(bytes(damaged))
            assert 0 <= caught.value.offset <= len(data)


def test_without_a_checksum_a_flip_never_raises_anything_but_an_rdb_error() -> None:
    data = small_file()
    data = data[:-8] + bytes(8)  # checksum 0: the writer had it off, Redis accepts that
    assert len(read(data)) == 7
    refused = 0
    for pos in range(9, len(data) - 9):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[pos] ^= 1 << bit
            try:
                read(bytes(damaged))
            except RDBFileError:
                refused += 1
    assert refused > len(data)  # most flips break the structure; none crash


def test_a_wrong_checksum_names_both_values() -> None:
    data = bytearray(small_file())
    data[-1] ^= 0x80
    with pytest.raises(RDBFileError, match="CRC-64") as caught:
        read(bytes(data))
    assert caught.value.offset == len(data) - 8


def lzf_string(plain: bytes) -> bytes:
    """``plain`` as Redis writes a compressed string: one literal run, then a back reference
    repeating its last byte (so it is truly LZF, not only literals)."""
    stream = bytes([len(plain) - 1]) + plain + bytes([6 << 5, 0])  # 6 + 2 bytes, 1 back
    return b"\xc3" + length(len(stream)) + length(len(plain) + 8) + stream


def test_lzf_strings_read_as_keys_and_values_and_damage_is_placed() -> None:
    body = b"\x00" + lzf_string(b"key-one") + lzf_string(b"value")
    body += b"\x00\x01k" + lzf_string(b"v" * 20)
    assert read(rdb_file(9, body)) == [
        (0, "key-one" + "e" * 8, "value" + "e" * 8, None),
        (0, "k", "v" * 28, None),
    ]
    broken = bytearray(body)
    broken[4] = 0x1F  # the first literal run now claims 32 bytes: past the stream's end
    with pytest.raises(RDBFileError, match="literal run goes past") as caught:
        read(rdb_file(9, bytes(broken), checksum=False))
    assert caught.value.offset == 9 + 4


def test_a_value_larger_than_a_chunk_is_read_in_bounded_pieces() -> None:
    big = "".join(chr(65 + i % 26) for i in range(300_000))
    out = io.BytesIO()
    write_rdb(out.write, [(0, 2, 0, [("big", big, None), ("after", "x", None)])])
    reader = RDBReader(io.BytesIO(out.getvalue()), chunk=4096)
    assert [(i.key, len(i.value)) for i in reader] == [("big", 300_000), ("after", 1)]


# ------------------------------------------------------------------ import


def test_keys_already_expired_are_dropped_and_counted(tmp_path: Path) -> None:
    past, future = 1_000, int(time.time() * 1000) + 60_000
    path = tmp_path / "dump.rdb"
    with path.open("wb") as file:
        write_rdb(file.write, [(0, 3, 2, [("gone", "x", past), ("kept", "y", future),
                                            ("plain", "z", None)])])  # fmt: skip
    report = import_rdb(str(path), directory=str(tmp_path / "store"))
    assert report.expired == 1 and report.keys == {0: 2}
    with snapkv.open(tmp_path / "store") as store:
        assert dict(store.items()) == {"kept": "y", "plain": "z"}
        assert (store.ttl("kept") or 0) > 50


def test_a_keyspace_beyond_the_default_sixteen_is_noted(tmp_path: Path) -> None:
    path = tmp_path / "dump.rdb"
    with path.open("wb") as file:
        write_rdb(file.write, [(20, 1, 0, [("k", "v", None)])])
    report = import_rdb(str(path), directory=str(tmp_path / "store"))
    assert "databases=21" in report.summary()
    with snapkv.open(tmp_path / "store", databases=21) as store:
        assert store.db(20)["k"] == "v"


@pytest.mark.parametrize(
    "empty",
    [
        b"\x01\x01e\x00",  # a list of no elements
        b"\x02\x01e\x00",  # a set
        b"\x04\x01e\x00",  # a hash
        b"\x05\x01e\x00",  # a sorted set (ZSET_2)
        b"\x0e\x01e\x00",  # a quicklist of no nodes
        b"\x0d\x01e" + string(ziplist()),  # a hash as a ziplist of no entries
    ],
)
def test_an_empty_container_is_skipped_and_counted_as_redis_loads_it(
    empty: bytes, tmp_path: Path
) -> None:
    """Redis 7.0's loader skips such a key ("rdbLoadObject skipping empty key") and goes on."""
    path = tmp_path / "dump.rdb"
    path.write_bytes(rdb_file(9, empty + b"\x00\x01k\x01v"))
    reader = RDBReader(path.read_bytes())
    assert [tuple(i) for i in reader] == [(0, "k", "v", None)]
    assert [(e.db, e.key, e.type_name, e.offset) for e in reader.empty] == [
        (0, "e", "empty key", 9)
    ]
    report = import_rdb(str(path), directory=str(tmp_path / "store"))
    assert report.keys == {0: 1}
    assert "1 empty keys skipped as Redis skips them" in report.summary()


def test_a_key_twice_in_one_keyspace_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dump.rdb"
    with path.open("wb") as file:
        write_rdb(file.write, [(0, 2, 0, [("k", "1", None), ("k", "2", None)])])
    with pytest.raises(RDBFileError, match="'k' appears twice") as caught:
        read_spaces(str(path), ImportReport(str(path), "-"))
    second = path.read_bytes().rindex(b"\x00\x01k")  # the second key's entry
    assert second < caught.value.offset <= path.stat().st_size


def test_an_import_that_another_import_finished_before_is_refused(tmp_path: Path) -> None:
    """Both saw an empty directory; the one that locks second must not replace the first."""
    rdb = tmp_path / "mine.rdb"
    with rdb.open("wb") as file:
        write_rdb(file.write, [(0, 1, 0, [("first", "1", None)])])
    fifo = tmp_path / "slow.rdb"
    os.mkfifo(fifo)
    target = tmp_path / "store"
    outcome: list[BaseException | ImportReport] = []

    def slow_import() -> None:
        try:
            outcome.append(import_rdb(str(fifo), directory=str(target)))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow_import)
    thread.start()
    with fifo.open("wb") as writer:  # opens once the slow import checked and reads the file
        import_rdb(str(rdb), directory=str(target))
        write_rdb(writer.write, [(0, 1, 0, [("second", "2", None)])])
    thread.join(timeout=30)
    assert isinstance(outcome[0], TargetNotEmptyError), outcome
    with snapkv.open(target) as store:
        assert dict(store.items()) == {"first": "1"}


def test_a_directory_left_with_only_its_lock_file_takes_the_import(tmp_path: Path) -> None:
    """What a failed import (or a store opened and closed unwritten) leaves: no data, a retry."""
    rdb = tmp_path / "dump.rdb"
    with rdb.open("wb") as file:
        write_rdb(file.write, [(0, 1, 0, [("k", "v", None)])])
    target = tmp_path / "store"
    target.mkdir()
    (target / "LOCK").write_text("")
    assert import_rdb(str(rdb), directory=str(target)).keys == {0: 1}
    with snapkv.open(target) as store:
        assert dict(store.items()) == {"k": "v"}
    with pytest.raises(TargetNotEmptyError):  # and now it holds data
        import_rdb(str(rdb), directory=str(target))


# ------------------------------------------------------------ round trips

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
values = st.one_of(
    texts,
    st.integers(-(2**40), 2**40).map(str),
    st.dictionaries(texts, texts, min_size=1, max_size=6).map(hashes.Hash),
    st.lists(texts, min_size=1, max_size=6).map(lists.List),
    st.sets(texts, min_size=1, max_size=6).map(sets.Set),
    st.dictionaries(texts, st.floats(allow_nan=False, width=64), min_size=1, max_size=6).map(
        lambda d: zsets.ZSet([(s, m) for m, s in d.items()])
    ),
)


def _stream(entries: list[list[tuple[str, str]]]) -> streams.Stream:
    made = streams.Stream()
    for i, pairs in enumerate(entries):
        made[(1000 + i // 2, i % 2)] = tuple(x for pair in pairs for x in pair)
    made.last = made.peekitem(-1)[0] if made else (0, 0)
    made.added = len(made)
    return made


values = st.one_of(
    values,
    st.lists(st.lists(st.tuples(texts, texts), min_size=1, max_size=3), max_size=5).map(_stream),
)
stores = st.dictionaries(
    st.tuples(st.integers(0, 3), texts),
    st.tuples(values, st.one_of(st.none(), st.integers(10**12, 10**12 * 5))),
    max_size=12,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(stores)
def test_import_then_export_gives_the_same_keys_values_and_expiry_times(
    tmp_path_factory: pytest.TempPathFactory,
    content: dict[tuple[int, str], tuple[object, int | None]],
) -> None:
    base = tmp_path_factory.mktemp("round")
    future = int(time.time() * 1000) + 10**9
    want = {
        (db, key): (value, None if expiry is None else future + expiry)
        for (db, key), (value, expiry) in content.items()
    }
    spaces = []
    for db in sorted({db for db, _ in want}):
        entries = [(key, v, e) for (d, key), (v, e) in want.items() if d == db]
        spaces.append((db, len(entries), sum(e is not None for _, _, e in entries), entries))
    with (base / "a.rdb").open("wb") as file:
        write_rdb(file.write, spaces)
    import_rdb(str(base / "a.rdb"), directory=str(base / "store"))
    assert _entries(str(base / "store")) == want
    export_rdb(str(base / "store"), base / "b.rdb")
    assert _entries(str(base / "b.rdb")) == want


def _entries(location: str) -> dict[tuple[int, str], tuple[object, int | None]]:
    return {(e.db, e.key): (e.value, e.expire_at_ms) for e in iter_entries(location)}


def test_type_22_is_valkeys_hash_only_in_a_valkey_file() -> None:
    body = b"\xfe\x00\x16" + string(b"h") + length(1) + string(b"f") + string(b"v") + b"\xff" * 8
    valkey = b"VALKEY080" + body + b"\xff"
    valkey += struct.pack("<Q", crc64(0, valkey))
    assert read(valkey) == [(0, "h", {"f": "v"}, None)]
    with pytest.raises(RDBFileError, match="RDB type 22 is not one snapkv reads") as caught:
        read(rdb_file(12, body))
    assert caught.value.offset == 11


def test_a_length_past_the_files_end_is_refused_before_reading_up_to_it(tmp_path: Path) -> None:
    """A corrupt length near the start of a large file: refused at once, the file not read."""
    filler = b"".join(b"\x00" + string(b"k%d" % i) + string(b"v" * 50) for i in range(20_000))
    claim = b"\x00\x01k\x80\x7f\xff\xff\xf0"  # a string of about 2 GiB
    path = tmp_path / "dump.rdb"
    path.write_bytes(rdb_file(9, claim + filler))
    with path.open("rb") as file:
        with pytest.raises(RDBFileError, match="past the file's end at byte 1168916") as caught:
            list(RDBReader(file, chunk=4096))
        assert file.tell() < 64 * 1024  # of about 1.2 MB
    assert str(caught.value).startswith("2147483632 bytes wanted: 2147483632 bytes from here")
    assert caught.value.offset == 17
    counted = bytearray(rdb_file(9, b"\x01\x01k\x80\x7f\xff\xff\xf0" + filler))  # a list
    path.write_bytes(bytes(counted))
    with path.open("rb") as file:
        with pytest.raises(RDBFileError, match=r"2147483632 list elements: .* past the file's"):
            list(RDBReader(file, chunk=4096))
        assert file.tell() < 64 * 1024
