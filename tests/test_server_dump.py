"""DUMP and RESTORE against the real redis-server 7.0: payloads cross both ways, errors match.

Three kinds of checks. Values made by the reference server in every
encoding it has (listpack, intset, quicklist, hashtable, skiplist, int,
LZF-compressed strings and quicklist nodes) are DUMPed there, RESTOREd
into snapkv and compared with what the reference reads; snapkv's DUMP of
the same value is RESTOREd into the reference and read back there. Then
RESTORE's options, checks and errors are compared reply for reply with
the reference (``twin``). Last, redis-py over a real socket to
``snapkv serve`` (RESP2 and RESP3, pipelines) moves values between the
two servers with DUMP on one side and RESTORE on the other.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapkv import MemoryMedium, Store, rdb
from snapkv.server.client import Client
from snapkv.server.dispatch import Dispatcher
from snapkv.server.resp.text import to_bytes, to_text
from snapkv.server.state import Config
from snapkv.values import hashes, lists, sets, zsets

redis = pytest.importorskip("redis")

START = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class Ours:
    """One client of snapkv's dispatcher; arguments may be bytes (sent as the server decodes)."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.store = Store(MemoryMedium(), clock=self.clock, sweep_interval=None)
        self.server = Dispatcher(self.store, Config())
        self.client = Client(self.server, addr="127.0.0.1:1000", laddr="127.0.0.1:6379")
        self.server.add_client(self.client)

    def __call__(self, *argv: str | bytes) -> bytes:
        return self.send(self.client, *argv)

    def send(self, client: Client, *argv: str | bytes) -> bytes:
        args = [to_text(a) if isinstance(a, bytes) else a for a in argv]
        return self.server.execute(client, args)

    def another_client(self) -> Client:
        made = Client(self.server, addr="127.0.0.1:1001", laddr="127.0.0.1:6379")
        self.server.add_client(made)
        return made

    def value(self, key: str, db: int = 0) -> Any:
        """What ``key`` holds, normalized (see :func:`normalized`); None if missing."""
        held = self.store.db(db)._space[0].get(key)
        return None if held is None else normalized(held)


@pytest.fixture
def ours() -> Iterator[Ours]:
    made = Ours()
    yield made
    made.store.close()


@pytest.fixture
def real(reference: Any, redis_port: int) -> Iterator[Any]:
    """redis-py on the reference server (emptied by ``reference``)."""
    client = redis.Redis(port=redis_port)
    yield client
    client.close()


def normalized(value: Any) -> tuple[str, Any]:
    """A snapkv value as (type, bytes-based plain value), comparable with :func:`read_real`."""
    if value.__class__ is str:
        return "string", to_bytes(value)
    if isinstance(value, hashes.Hash):
        return "hash", {to_bytes(f): to_bytes(v) for f, v in value.items()}
    if isinstance(value, lists.List):
        return "list", [to_bytes(e) for e in value]
    if isinstance(value, sets.Set):
        return "set", {to_bytes(m) for m in value}
    assert isinstance(value, zsets.ZSet)
    return "zset", sorted((score, to_bytes(member)) for score, member in value)


def read_real(r: Any, key: str | bytes) -> tuple[str, Any] | None:
    """What the reference server holds at ``key``, normalized as :func:`normalized`."""
    kind = r.type(key).decode()
    if kind == "none":
        return None
    if kind == "string":
        return kind, r.get(key)
    if kind == "hash":
        return kind, r.hgetall(key)
    if kind == "list":
        return kind, r.lrange(key, 0, -1)
    if kind == "set":
        return kind, r.smembers(key)
    pairs = r.zrange(key, 0, -1, withscores=True)
    return kind, sorted((score, member) for member, score in pairs)


def bulk(reply: bytes) -> bytes:
    """The payload of a RESP bulk string reply."""
    head, _, rest = reply.partition(b"\r\n")
    assert head.startswith(b"$"), reply[:60]
    size = int(head[1:])
    assert rest[size:] == b"\r\n"
    return rest[:size]


# ---------------------------------------------- the reference's encodings

_rng = random.Random(7)
_BINARY = bytes(_rng.randrange(256) for _ in range(300))
#: One element of each listpack integer width, and strings.
_LIST_INTS = ["a", "", 1, 127, -1, 4095, -4096, 32767, -8388608, 2**31 - 1, 2**63 - 1, -(2**63)]
_ZSET_SMALL = {"a": 1, "b": -2.5, "c": 1e300, "d": float("inf"), "e": float("-inf"), "f": 0.1}
_FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

#: name -> (how the reference makes it, OBJECT ENCODING there, the payload's RDB type).
MADE: dict[str, tuple[Callable[[Any, str], object], str, int]] = {
    "string-embstr": (lambda r, k: r.set(k, "hello"), "embstr", 0),
    "string-empty": (lambda r, k: r.set(k, ""), "embstr", 0),
    "string-int8": (lambda r, k: r.set(k, "-7"), "int", 0),
    "string-int16": (lambda r, k: r.set(k, "30000"), "int", 0),
    "string-int32": (lambda r, k: r.set(k, "-2000000000"), "int", 0),
    "string-int64": (lambda r, k: r.set(k, "-9223372036854775808"), "int", 0),
    "string-not-canonical": (lambda r, k: r.set(k, "007"), "embstr", 0),
    "string-lzf": (lambda r, k: r.set(k, "abcdefgh" * 200), "raw", 0),
    "string-binary": (lambda r, k: r.set(k, _BINARY), "raw", 0),
    "string-utf8": (lambda r, k: r.set(k, "héllo wörld ✓".encode()), "embstr", 0),
    "list-listpack": (
        lambda r, k: r.rpush(
            k, "a", "", 1, 127, -1, 4095, -4096, 32767, -8388608, 2**31 - 1, 2**63 - 1, -(2**63)
        ),
        "quicklist",
        18,
    ),
    "list-quicklist": (
        lambda r, k: r.rpush(k, *[f"element-{i}-" + "x" * (i % 90) for i in range(600)]),
        "quicklist",
        18,
    ),
    "list-binary": (
        lambda r, k: r.rpush(k, _BINARY[:70], b"\xff\x00", "z" * 5000),
        "quicklist",
        18,
    ),
    "set-intset16": (lambda r, k: r.sadd(k, 1, 2, 3, -300), "intset", 11),
    "set-intset32": (lambda r, k: r.sadd(k, 1, 100000, -(2**31)), "intset", 11),
    "set-intset64": (lambda r, k: r.sadd(k, 1, 2**62, -(2**63)), "intset", 11),
    "set-hashtable": (lambda r, k: r.sadd(k, "a", "b", "1", _BINARY[:20]), "hashtable", 2),
    "set-large-ints": (lambda r, k: r.sadd(k, *range(600)), "hashtable", 2),
    "hash-listpack": (
        lambda r, k: r.hset(k, mapping={"a": "1", "b": "-70000", "": "x", "n": "2" * 30}),
        "listpack",
        16,
    ),
    "hash-hashtable-long-value": (
        lambda r, k: r.hset(k, mapping={"f": "v" * 65, "g": "1"}),
        "hashtable",
        4,
    ),
    "hash-hashtable-many": (
        lambda r, k: r.hset(k, mapping={f"field{i}": i for i in range(600)}),
        "hashtable",
        4,
    ),
    "zset-listpack": (
        lambda r, k: r.zadd(
            k, {"a": 1, "b": -2.5, "c": 1e300, "d": float("inf"), "e": float("-inf"), "f": 0.1}
        ),
        "listpack",
        17,
    ),
    "zset-skiplist": (
        lambda r, k: r.zadd(k, {f"m{i}": i / 7 for i in range(600)}),
        "skiplist",
        5,
    ),
    "zset-skiplist-long-member": (
        lambda r, k: r.zadd(k, {"m" * 70: 3, "x": float("-inf"), "y": -0.0}),
        "skiplist",
        5,
    ),
}


@pytest.mark.parametrize("name", sorted(MADE))
def test_the_references_payloads_restore_into_snapkv_and_back(
    name: str, real: Any, ours: Ours
) -> None:
    make, encoding, rdb_type = MADE[name]
    make(real, name)
    assert real.object("encoding", name).decode() == encoding
    expected = read_real(real, name)
    payload = real.dump(name)
    assert payload[0] == rdb_type
    assert ours("RESTORE", name, "0", payload) == b"+OK\r\n"
    assert ours.value(name) == expected
    # And back: snapkv's own payload, restored by the reference.
    mine = bulk(ours("DUMP", name))
    real.restore("back", 0, mine)
    assert read_real(real, "back") == expected


def test_lzf_compressed_strings_and_quicklist_nodes(real: Any, ours: Ours) -> None:
    """The reference compresses long strings and, with list-compress-depth, inner list nodes."""
    real.set("s", "ab" * 500)
    assert real.dump("s")[1] == 0xC3  # RDB_ENC_LZF
    real.config_set("list-compress-depth", 1)
    try:
        real.rpush("l", *[f"{i:05d}" + "y" * 60 for i in range(2000)])
        payload = real.dump("l")
    finally:
        real.config_set("list-compress-depth", 0)
    assert payload.count(b"\xc3") > 3  # the inner nodes travel compressed
    for key, data in (("s", real.dump("s")), ("l", payload)):
        assert ours("RESTORE", key, "0", data) == b"+OK\r\n"
        assert ours.value(key) == read_real(real, key)


# --------------------------------------------------- random values, both ways

_bytes = st.binary(max_size=80) | st.sampled_from([b"0", b"-1", b"12345", b"007", b"x" * 70])
_score = st.floats(allow_nan=False, width=64) | st.integers(-(2**53), 2**53).map(float)


@st.composite
def _value(draw: Any) -> Any:
    kind = draw(st.sampled_from(["string", "hash", "list", "set", "zset"]))
    size = st.integers(1, 150)
    if kind == "string":
        return to_text(draw(_bytes))
    if kind == "list":
        return lists.List(to_text(b) for b in draw(st.lists(_bytes, min_size=1, max_size=150)))
    members = draw(st.lists(_bytes, min_size=1, max_size=draw(size), unique=True))
    if kind == "set":
        return sets.Set(to_text(m) for m in members)
    if kind == "hash":
        return hashes.Hash({to_text(m): to_text(draw(_bytes)) for m in members})
    return zsets.ZSet((draw(_score), to_text(m)) for m in members)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_value())
def test_any_value_crosses_to_the_reference_and_back(value: Any, real: Any) -> None:
    """snapkv's payload -> the reference's RESTORE -> its DUMP -> snapkv's reader: the same."""
    real.delete("k")
    real.restore("k", 0, rdb.dump(value))
    assert read_real(real, "k") == normalized(value)
    assert normalized(rdb.restore(real.dump("k"))) == normalized(value)


# ---------------------------------------------------------- the same replies

_PAYLOADS = [
    rdb.dump("v"),
    rdb.dump("123"),
    rdb.dump(lists.List(["a", "b"])),
    rdb.dump(sets.Set({"1", "2"})),
    rdb.dump(hashes.Hash({"f": "v"})),
    rdb.dump(zsets.ZSet([(1.0, "m"), (-2.5, "n")])),
    rdb.dump("v")[:-1] + b"?",  # a wrong checksum
    b"\x04\x00\x09\x00" + rdb.crc64(0, b"\x04\x00\x09\x00").to_bytes(8, "little"),  # empty
]
_FUTURE, _PAST = "4102444800000", "1000"
#: DUMPs by redis-server 7.0.15: a listpack hash, an intset, a listpack zset, a quicklist.
_REAL = [
    bytes.fromhex("101414000000040081610201018162028378797a04ff0a002e2c226e653d1fc4"),
    bytes.fromhex("0b14040000000300000090eefeff01000000020000000a005d9df7da2f43d06b"),
    bytes.fromhex("111414000000040081610283312e35048162020201ff0a00fa02b425af188763"),
    bytes.fromhex("1201020f0f00000003008178020c01dffd02ff0a00baf1fb85fc206a3f"),
]

_step = st.one_of(
    st.tuples(
        st.just("RESTORE"),
        st.sampled_from(["a", "b"]),
        st.sampled_from(["0", _FUTURE, _PAST, "-1", "x"]),
        st.integers(0, len(_PAYLOADS) - 1),
        st.lists(st.sampled_from(["REPLACE", "ABSTTL", "IDLETIME", "FREQ", "1"]), max_size=3),
    ),
    st.tuples(
        st.sampled_from(["DEL", "EXISTS", "TYPE", "PEXPIRETIME", "GET", "LRANGE", "HGETALL"]),
        st.sampled_from(["a", "b"]),
    ),
    st.tuples(st.just("SET"), st.sampled_from(["a", "b"]), st.just("x")),
)


@_FAST
@given(steps=st.lists(_step, min_size=1, max_size=12))
def test_random_sequences_answer_as_redis(twin: Any, steps: list[tuple[Any, ...]]) -> None:
    """RESTORE among other writes and reads: every reply the reference's, byte for byte."""
    twin.same("FLUSHALL")
    for step in steps:
        if step[0] == "RESTORE":
            _, key, ttl, which, options = step
            argv = ["RESTORE", key, ttl, to_text(_PAYLOADS[which]), *options]
            if ttl in (_FUTURE, _PAST):
                argv.append("ABSTTL")  # a time the two servers agree on to the millisecond
        elif step[0] in ("LRANGE",):
            argv = [step[0], step[1], "0", "-1"]
        else:
            argv = list(step)
        if argv[0] == "HGETALL":
            ours, theirs = twin(*argv)
            assert ours.split(b"\r\n")[0] == theirs.split(b"\r\n")[0]
        else:
            twin.same(*argv)


def _payload(r: Any, key: str = "src") -> bytes:
    r.rpush(key, "a", "b", "c")
    data: bytes = r.dump(key)
    return data


def test_dump_of_a_missing_key_is_nil_in_both_protocols(twin: Any) -> None:
    twin.same("DUMP", "missing")
    twin("HELLO", "3")
    assert twin.same("DUMP", "missing") == b"_\r\n"


def test_dump_arity(twin: Any) -> None:
    twin.same("DUMP")
    twin.same("DUMP", "a", "b")
    twin.same("RESTORE", "a", "0")


@pytest.mark.parametrize(
    "value", ["some value", "", "0", "-1", "127", "-32768", "2147483647", "2147483648", "007"]
)
def test_a_short_strings_object_is_byte_for_byte_redis(twin: Any, value: str) -> None:
    """Up to 20 bytes Redis neither compresses nor uses its compact encodings: same object
    bytes (integers in its integer encodings); only the footer's version differs (9, not 10)."""
    twin.same("SET", "k", value)
    ours, theirs = (bulk(reply) for reply in twin("DUMP", "k"))
    assert ours == rdb.dump(value)
    assert ours[:-10] == theirs[:-10]
    assert (ours[-10:-8], theirs[-10:-8]) == (b"\x09\x00", b"\x0a\x00")


def test_restore_errors_in_redis_order(twin: Any, real: Any) -> None:
    good = _payload(real)
    text = to_text(good)
    twin.same("SET", "busy", "x")
    cases = [
        ("RESTORE", "k", "0", text, "BOGUS"),
        ("RESTORE", "k", "0", text, "IDLETIME"),
        ("RESTORE", "k", "0", text, "FREQ"),
        ("RESTORE", "k", "0", text, "IDLETIME", "-1"),
        ("RESTORE", "k", "0", text, "IDLETIME", "x"),
        ("RESTORE", "k", "0", text, "FREQ", "256"),
        ("RESTORE", "k", "0", text, "FREQ", "-1"),
        ("RESTORE", "k", "0", text, "FREQ", "1", "IDLETIME", "1"),
        ("RESTORE", "k", "0", text, "IDLETIME", "1", "FREQ", "1"),
        ("RESTORE", "busy", "0", text),
        ("RESTORE", "busy", "x", "junk"),
        ("RESTORE", "k", "-1", text),
        ("RESTORE", "k", "x", text),
        ("RESTORE", "k", "99999999999999999999", text),
        ("RESTORE", "k", "0", "junk"),
        ("RESTORE", "k", "0", ""),
        ("RESTORE", "k", "0", text[:-1] + chr(ord(text[-1]) ^ 1)),
        ("RESTORE", "k", "0", to_text(good[:-10] + b"\x0b\x00" + good[-8:])),
        ("RESTORE", "busy", "0", text, "REPLACE", "FREQ", "300"),
    ]
    for argv in cases:
        twin.same(*argv)
    twin.same("GET", "busy")
    twin.same("EXISTS", "k")


def test_restore_refuses_bad_data_behind_a_good_checksum(twin: Any) -> None:
    # A string whose length runs into the footer is read from it, as Redis reads it.
    for body in (
        b"\x00",
        b"\x00\x0c",
        b"\x01\x00",
        b"\x0f\x01\x00",
        b"\x07",
        b"\x04\x01\x01a",
        b"\xc8",
    ):
        payload = body + b"\x09\x00"
        payload += rdb.crc64(0, payload).to_bytes(8, "little")
        twin.same("RESTORE", "k", "0", to_text(payload))
    twin.same("EXISTS", "k")


def test_every_truncation_of_a_payload_is_refused_as_redis_refuses_it(twin: Any, real: Any) -> None:
    real.hset("h", mapping={"field": "value", "n": "12"})
    payload = real.dump("h")
    for cut in range(len(payload)):
        twin.same("RESTORE", "k", "0", to_text(payload[:cut]))
    twin.same("EXISTS", "k")


@_FAST
@given(data=st.data())
def test_bit_flips_behind_a_fixed_checksum_answer_ok_or_bad_data(ours: Ours, data: Any) -> None:
    """Never an internal error: the object is read in full before anything is stored."""
    source = data.draw(st.sampled_from(_PAYLOADS[:6] + _REAL))
    body = bytearray(source[:-8])
    for bit in data.draw(st.lists(st.integers(0, 8 * (len(body) - 2) - 1), min_size=1, max_size=3)):
        body[bit // 8] ^= 1 << (bit % 8)
    damaged = bytes(body) + rdb.crc64(0, body).to_bytes(8, "little")
    ours("SET", "k", "old")
    reply = ours("RESTORE", "k", "0", damaged, "REPLACE")
    assert reply in (b"+OK\r\n", b"-ERR Bad data format\r\n")
    if reply != b"+OK\r\n":
        assert ours.value("k") == ("string", b"old")  # refused before anything changed


def test_restore_then_read_back_every_type(twin: Any, real: Any) -> None:
    real.hset("h", mapping={"f": "1", "g": "two"})
    real.zadd("z", {"a": 1.5, "b": 2})
    real.sadd("s", "x", "y")
    real.set("str", "value")
    for key in ("h", "z", "s", "str", "src"):
        if key == "src":
            _payload(real)
        payload = to_text(real.dump(key))
        twin.same("RESTORE", f"new-{key}", "0", payload)
        twin.same("TYPE", f"new-{key}")
        twin.same("RESTORE", f"new-{key}", "0", payload)
        twin.same("RESTORE", f"new-{key}", "0", payload, "REPLACE")
    twin.same("GET", "new-str")
    twin.same("LRANGE", "new-src", "0", "-1")
    twin.same("HGET", "new-h", "g")


def test_restore_ttl_relative_absolute_and_past(twin: Any, real: Any) -> None:
    text = to_text(_payload(real))
    twin.same("RESTORE", "rel", "0", text)
    twin.same("PTTL", "rel")
    twin.same("RESTORE", "rel2", "100000", text)
    ours, theirs = twin("PTTL", "rel2")
    assert 99_000 <= int(ours[1:-2]) <= 100_000 and 99_000 <= int(theirs[1:-2]) <= 100_000
    twin.same("RESTORE", "abs", "4102444800000", text, "ABSTTL")
    twin.same("EXPIRETIME", "abs")
    # An absolute time in the past: OK, and nothing is stored ...
    twin.same("RESTORE", "past", "1000", text, "ABSTTL")
    twin.same("EXISTS", "past")
    # ... and with REPLACE the key it would replace is deleted.
    twin.same("SET", "old", "v")
    twin.same("RESTORE", "old", "1000", text, "ABSTTL", "REPLACE")
    twin.same("EXISTS", "old")
    twin.same("RESTORE", "old", "1000", text, "ABSTTL")
    twin.same("RESTORE", "opts", "0", text, "IDLETIME", "5", "REPLACE", "ABSTTL")
    twin.same("RESTORE", "opts2", "0", text, "FREQ", "5", "freq", "6")
    twin.same("LLEN", "opts2")


def test_a_relative_ttl_past_the_64_bit_range_is_already_expired(twin: Any) -> None:
    """Redis adds the TTL to its clock in a signed 64-bit integer, which wraps negative."""
    text = to_text(rdb.dump("v"))
    twin.same("SET", "old", "x")
    twin.same("RESTORE", "old", "9223372036854775807", text, "REPLACE")
    twin.same("EXISTS", "old")
    twin.same("RESTORE", "k", "9223372036854000000", text)
    twin.same("EXISTS", "k")
    twin.same("RESTORE", "k", "9223372036854775807", text, "ABSTTL")
    twin.same("EXISTS", "k")


def test_restore_replaces_any_type_and_drops_the_old_expiry(twin: Any) -> None:
    twin.same("SET", "k", "v", "EX", "1000")
    twin.same("HSET", "h", "f", "v")
    payload = to_text(rdb.dump(lists.List(["x", "y"])))
    twin.same("RESTORE", "k", "0", payload, "REPLACE")
    twin.same("TTL", "k")
    twin.same("TYPE", "k")
    twin.same("RESTORE", "h", "0", to_text(rdb.dump("plain")), "REPLACE")
    twin.same("GET", "h")


def test_restore_counts_one_change_and_journals_one_record(ours: Ours) -> None:
    payload = rdb.dump(hashes.Hash({"f": "v"}))
    before = ours.server.dirty
    assert ours("RESTORE", "h", "0", payload) == b"+OK\r\n"
    assert ours.server.dirty == before + 1
    assert ours("RESTORE", "h", "0", payload) == b"-BUSYKEY Target key name already exists.\r\n"
    assert ours.server.dirty == before + 1
    # A past time with nothing to replace changes nothing.
    assert ours("RESTORE", "gone", "1", payload, "ABSTTL") == b"+OK\r\n"
    assert ours.server.dirty == before + 1
    assert ours.value("gone") is None


def test_restore_sets_the_expiry_on_snapkvs_clock(ours: Ours) -> None:
    payload = rdb.dump("v")
    assert ours("RESTORE", "k", "5000", payload) == b"+OK\r\n"
    assert ours.store.expiry_ms("k") == int(START * 1000) + 5000
    ours.clock.now += 6
    assert ours("EXISTS", "k") == b":0\r\n"
    # The expired key is not in the way, and a TTL of 0 is no expiry at all.
    assert ours("RESTORE", "k", "0", payload) == b"+OK\r\n"
    assert ours.store.expiry_ms("k") is None
    assert ours("RESTORE", "k", "0", payload) == b"-BUSYKEY Target key name already exists.\r\n"


def test_restore_inside_multi_and_watch(ours: Ours) -> None:
    payload = rdb.dump(sets.Set({"a"}))
    other = ours.another_client()
    assert ours("WATCH", "s") == b"+OK\r\n"
    assert ours.send(other, "RESTORE", "s", "0", payload) == b"+OK\r\n"
    assert ours("MULTI") == b"+OK\r\n"
    assert ours("GET", "x") == b"+QUEUED\r\n"
    assert ours("EXEC") == b"*-1\r\n"
    assert ours("MULTI") == b"+OK\r\n"
    assert ours("RESTORE", "t", "0", payload) == b"+QUEUED\r\n"
    assert ours("EXEC") == b"*1\r\n+OK\r\n"
    assert ours.value("t") == ("set", {b"a"})


def test_restored_values_survive_a_reopen(tmp_path: Path) -> None:
    """The one record RESTORE journals replays to the same value."""
    from snapkv import open as open_store

    values: dict[str, Any] = {
        "s": "text",
        "h": hashes.Hash({"f": "v"}),
        "l": lists.List(["1", "2"]),
        "z": zsets.ZSet([(1.0, "m")]),
    }
    store = open_store(tmp_path / "data")
    server = Dispatcher(store, Config())
    client = Client(server)
    server.add_client(client)
    server.execute(client, ["SET", "h", "old"])
    for key, value in values.items():
        reply = server.execute(client, ["RESTORE", key, "0", to_text(rdb.dump(value)), "REPLACE"])
        assert reply == b"+OK\r\n"
    store.close()
    store = open_store(tmp_path / "data")
    try:
        space = store.db(0)._space[0]
        assert {k: normalized(space[k]) for k in values} == {
            k: normalized(v) for k, v in values.items()
        }
    finally:
        store.close()


# ---------------------------------------------------- redis-py, real sockets


@pytest.fixture
def served(tmp_path: Path) -> Iterator[int]:
    from serving import serving

    with serving(tmp_path) as port:
        yield port


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_moves_values_between_the_servers(served: int, real: Any, protocol: int) -> None:
    snap = redis.Redis(port=served, protocol=protocol)
    try:
        real.hset("h", mapping={"a": "1", "b": b"\xff\x00"})
        real.zadd("z", {"x": 1.25, "y": float("inf")})
        real.rpush("l", *range(200))
        real.sadd("s", 5, 6, 7)
        real.set("str", _BINARY)
        keys = ["h", "z", "l", "s", "str"]
        for key in keys:
            assert snap.restore(key, 0, real.dump(key))
        assert snap.dump("missing") is None
        with snap.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.dump(key)
            payloads = pipe.execute()
        for key, payload in zip(keys, payloads, strict=True):
            real.restore(f"{key}-back", 0, payload)
            assert read_real(real, f"{key}-back") == read_real(real, key)
        with pytest.raises(redis.ResponseError, match="BUSYKEY"):
            snap.restore("h", 0, payloads[0])
        with pytest.raises(redis.ResponseError, match="payload version or checksum"):
            snap.restore("new", 0, payloads[0][:-1] + b"\x00")
        assert snap.restore("h", 0, payloads[1], replace=True)
        assert snap.type("h") == b"zset"
        with snap.pipeline(transaction=True) as pipe:
            pipe.restore("t", 100_000, payloads[2]).pttl("t")
            ok, ttl = pipe.execute()
        assert ok and 0 < ttl <= 100_000
    finally:
        snap.close()


def test_scores_keep_every_bit(real: Any) -> None:
    """A score crosses in binary (ZSET_2): no decimal rounding on the way."""
    scores = [math.pi, -0.0, 5e-324, 1.7976931348623157e308, 0.1 + 0.2]
    value = zsets.ZSet((s, f"m{i}") for i, s in enumerate(scores))
    real.restore("z", 0, rdb.dump(value))
    back = rdb.restore(real.dump("z"))
    assert sorted(back.scores.items()) == sorted(value.scores.items())


def test_a_stream_crosses_to_the_reference_and_back(ours: Ours, real: Any) -> None:
    """DUMP of a stream restores in Redis with its entries, IDs and last ID; Redis's comes back."""
    for i in range(1, 300):
        fields = ["f", str(i)] if i % 3 else ["f", str(i), "other", "x" * (i % 50)]
        ours("XADD", "s", f"{i}-{i % 4}", *fields)
    ours("XDEL", "s", "5-1", "7-3")
    ours("XADD", "s", "MAXLEN", "250", "999-0", "last", "1")
    payload = bulk(ours("DUMP", "s"))
    assert real.restore("s", 0, payload) == b"OK"
    ours_entries = ours("XRANGE", "s", "-", "+")
    assert real.execute_command("XLEN", "s") == 250
    ours("DEL", "s")
    back = real.dump("s")
    assert ours("RESTORE", "s", "0", back) == b"+OK\r\n"
    assert ours("XRANGE", "s", "-", "+") == ours_entries
    info = real.xinfo_stream("s")
    assert info["last-generated-id"] == b"999-0"
    assert ours("XADD", "s", "999-0", "f", "v").startswith(b"-ERR The ID specified")
