"""Hash commands against the real Redis 7.0: the same requests, the same reply bytes.

Every command's replies, errors and arity are compared with a redis-server
(the ``twin`` fixture), in RESP2 and RESP3. A small hash is ordered (a
listpack in Redis, a dict here), so HGETALL/HKEYS/HVALS/HSCAN compare byte
for byte; random replies (HRANDFIELD) and large hashes compare as parsed
sets or by their shape. A hypothesis-generated session of hash commands
must get the same replies, reply by reply. redis-py then drives the
commands over a real socket (sync, pipelines, RESP3).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Twin
from reference import parse
from snapkv import Store
from snapkv.server.state import Config
from test_server_e2e import Running

redis = pytest.importorskip("redis")


def changes(twin: Twin) -> tuple[int, int]:
    """``rdb_changes_since_last_save`` of both sides (Redis's ``server.dirty``)."""
    ours, theirs = twin("INFO", "persistence")

    def dirty(reply: bytes) -> int:
        for line in parse(reply).decode().splitlines():
            if line.startswith("rdb_changes_since_last_save:"):
                return int(line.split(":")[1])
        raise AssertionError("no rdb_changes_since_last_save")

    return dirty(ours), dirty(theirs)


# ------------------------------------------------------------ the basics

BASICS: list[tuple[str, ...]] = [
    ("HSET", "h", "f1", "v1"),
    ("HSET", "h", "f1", "v1b", "f2", "v2", "f3", "v3"),
    ("HSET", "h", "f1"),
    ("HSET", "h"),
    ("HMSET", "h", "f4", "v4", "f5", "v5"),
    ("HMSET", "h", "f4"),
    ("HGET", "h", "f1"),
    ("HGET", "h", "nofield"),
    ("HGET", "nokey", "f"),
    ("HGET", "h"),
    ("HMGET", "h", "f1", "nofield", "f2"),
    ("HMGET", "nokey", "a", "b"),
    ("HMGET", "h"),
    ("HGETALL", "h"),
    ("HGETALL", "nokey"),
    ("HKEYS", "h"),
    ("HVALS", "h"),
    ("HKEYS", "nokey"),
    ("HVALS", "nokey"),
    ("HLEN", "h"),
    ("HLEN", "nokey"),
    ("HEXISTS", "h", "f1"),
    ("HEXISTS", "h", "nofield"),
    ("HEXISTS", "nokey", "f"),
    ("HSTRLEN", "h", "f1"),
    ("HSTRLEN", "h", "nofield"),
    ("HSTRLEN", "nokey", "f"),
    ("HSET", "h", "uni", "\u00e9\u4e2d"),
    ("HSTRLEN", "h", "uni"),
    ("HSETNX", "h", "f1", "other"),
    ("HSETNX", "h", "f9", "nine"),
    ("HSETNX", "h", "f9"),
    ("HDEL", "h", "f1", "f1", "nofield", "f2"),
    ("HDEL", "nokey", "f"),
    ("HDEL", "h"),
    ("HGETALL", "h"),
    ("HDEL", "h", "f3", "f4", "f5", "f9", "uni"),
    ("EXISTS", "h"),
    ("HGETALL", "h"),
    ("HSET", "h", "", ""),
    ("HGET", "h", ""),
    ("HGETALL", "h"),
]

COUNTERS: list[tuple[str, ...]] = [
    ("HINCRBY", "c", "n", "5"),
    ("HINCRBY", "c", "n", "-10"),
    ("HINCRBY", "c", "n", "x"),
    ("HINCRBY", "c", "n", "1.5"),
    ("HINCRBY", "c", "n", "9223372036854775807"),
    ("HINCRBY", "c", "n", "9223372036854775808"),
    ("HSET", "c", "big", "9223372036854775807", "s", "abc", "sp", " 1", "plus", "+1", "z", "01"),
    ("HINCRBY", "c", "big", "1"),
    ("HINCRBY", "c", "big", "-1"),
    ("HINCRBY", "c", "s", "1"),
    ("HINCRBY", "c", "sp", "1"),
    ("HINCRBY", "c", "plus", "1"),
    ("HINCRBY", "c", "z", "1"),
    ("HINCRBY", "c", "n"),
    ("HINCRBYFLOAT", "c", "f", "1.5"),
    ("HINCRBYFLOAT", "c", "f", "0.1"),
    ("HINCRBYFLOAT", "c", "f", "-1.6"),
    ("HINCRBYFLOAT", "c", "f", "1e3"),
    ("HINCRBYFLOAT", "c", "f", "abc"),
    ("HINCRBYFLOAT", "c", "f", "nan"),
    ("HINCRBYFLOAT", "c", "f", "inf"),
    ("HINCRBYFLOAT", "c", "f", "-inf"),
    ("HINCRBYFLOAT", "c", "f", " 1"),
    ("HINCRBYFLOAT", "c", "s", "1"),
    ("HSET", "c", "small", "3"),
    ("HINCRBYFLOAT", "c", "small", "2.5"),
    ("HSET", "c", "inf", "inf"),
    ("HINCRBYFLOAT", "c", "inf", "1"),
    ("HINCRBYFLOAT", "c", "g", "5"),
    ("HINCRBYFLOAT", "c", "g", "0.0000001"),
    ("HSET", "c", "hex", "0x10", "dot", "1."),
    ("HINCRBYFLOAT", "c", "hex", "1"),
    ("HINCRBYFLOAT", "c", "dot", "1"),
    ("HINCRBYFLOAT", "c", "h2", "0x1p3"),
    ("HINCRBYFLOAT", "c", "h3", "-0X.8"),
    ("HINCRBYFLOAT", "c", "h4", "0x"),
    ("HINCRBYFLOAT", "c", "h5", ".5"),
    ("HINCRBYFLOAT", "c", "h6", "1 "),
    ("HINCRBYFLOAT", "c", "h7", "INFINITY"),
    ("HINCRBYFLOAT", "c", "f"),
    ("HGETALL", "c"),
]

SCANS: list[tuple[str, ...]] = [
    ("HSET", "h", "a", "1", "b", "2", "ab", "3", "ba", "4"),
    ("HSCAN", "h", "0"),
    ("HSCAN", "h", "0", "COUNT", "1"),
    ("HSCAN", "h", "0", "MATCH", "a*"),
    ("HSCAN", "h", "0", "MATCH", "*a"),
    ("HSCAN", "h", "0", "MATCH", "[ab]?", "COUNT", "100"),
    ("HSCAN", "h", "0", "MATCH", "nothing"),
    ("HSCAN", "h", "0", "COUNT", "0"),
    ("HSCAN", "h", "0", "COUNT", "-1"),
    ("HSCAN", "h", "0", "COUNT", "x"),
    ("HSCAN", "h", "0", "MATCH"),
    ("HSCAN", "h", "0", "TYPE", "string"),
    ("HSCAN", "h", "0", "foo", "bar"),
    ("HSCAN", "h", "x"),
    ("HSCAN", "h", "-1"),
    ("HSCAN", "h", "18446744073709551616"),
    ("HSCAN", "nokey", "0"),
    ("HSCAN", "nokey", "0", "COUNT", "0"),
    ("HSCAN", "nokey", "x"),
    ("HSCAN", "h"),
]

RANDOM_ERRORS: list[tuple[str, ...]] = [
    ("HSET", "h", "a", "1", "b", "2"),
    ("HRANDFIELD", "nokey"),
    ("HRANDFIELD", "nokey", "3"),
    ("HRANDFIELD", "nokey", "-3", "WITHVALUES"),
    ("HRANDFIELD", "h", "0"),
    ("HRANDFIELD", "h", "0", "WITHVALUES"),
    ("HRANDFIELD", "h", "x"),
    ("HRANDFIELD", "h", "1", "foo"),
    ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
    ("HRANDFIELD", "h", "-9223372036854775808"),
    ("HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"),
    ("HRANDFIELD", "h", "-4611686018427387904", "WITHVALUES"),
    ("HRANDFIELD", "h", "4611686018427387903", "WITHVALUES"),
    ("HRANDFIELD", "h", "2"),
    ("HRANDFIELD", "h", "5", "WITHVALUES"),
    ("HRANDFIELD", "h", "2", "withvalues"),
    ("HRANDFIELD",),
]


def _wrong_types() -> list[tuple[str, ...]]:
    return [
        (name, "str", *args)
        for name, args in [
            ("HSET", ("f", "v")),
            ("HMSET", ("f", "v")),
            ("HSETNX", ("f", "v")),
            ("HGET", ("f",)),
            ("HMGET", ("f",)),
            ("HDEL", ("f",)),
            ("HEXISTS", ("f",)),
            ("HLEN", ()),
            ("HSTRLEN", ("f",)),
            ("HGETALL", ()),
            ("HKEYS", ()),
            ("HVALS", ()),
            ("HINCRBY", ("f", "1")),
            ("HINCRBY", ("f", "x")),
            ("HINCRBYFLOAT", ("f", "1")),
            ("HINCRBYFLOAT", ("f", "x")),
            ("HRANDFIELD", ()),
            ("HRANDFIELD", ("2",)),
            ("HRANDFIELD", ("x",)),
            ("HSCAN", ("0",)),
            ("HSCAN", ("x",)),
            ("HSCAN", ("0", "COUNT", "0")),
        ]
    ]


@pytest.mark.parametrize("resp", ["2", "3"])
@pytest.mark.parametrize(
    "session",
    [BASICS, COUNTERS, SCANS, RANDOM_ERRORS],
    ids=["basics", "counters", "scans", "random-errors"],
)
def test_replies_are_redis_bytes(twin: Twin, resp: str, session: list[tuple[str, ...]]) -> None:
    twin("HELLO", resp)
    for argv in session:
        if argv[:1] == ("HRANDFIELD",) and len(argv) >= 3 and argv[2] in ("2", "5"):
            ours, theirs = twin(*argv)
            assert sorted(map(repr, parse(ours))) == sorted(map(repr, parse(theirs))), argv
            continue
        twin.same(*argv)


def test_wrong_type_is_refused_before_anything_else(twin: Twin) -> None:
    twin.same("SET", "str", "x")
    for argv in _wrong_types():
        twin.same(*argv)
    twin.same("GET", "str")


def assert_same_changes(twin: Twin, session: list[tuple[str, ...]]) -> None:
    """Each command of ``session`` adds as much to ``server.dirty`` on both sides."""
    before = changes(twin)
    for argv in session:
        twin(*argv)
        after = changes(twin)
        assert after[0] - before[0] == after[1] - before[1], argv
        before = after


def test_dirty_counts_as_redis(twin: Twin) -> None:
    extra = [("HSET", "h", "a", "1", "a", "2"), ("HSETNX", "h", "a", "3")]
    assert_same_changes(twin, [*BASICS, *COUNTERS, *extra])


@pytest.mark.parametrize("resp", ["2", "3"])
def test_hrandfield_shapes_and_repeats(twin: Twin, resp: str) -> None:
    twin("HELLO", resp)
    fields = {f"f{i}": f"v{i}" for i in range(5)}
    twin.same("HSET", "h", *(x for pair in fields.items() for x in pair))
    for _ in range(20):
        one = parse(twin("HRANDFIELD", "h")[0])
        assert one.decode() in fields
        many = parse(twin("HRANDFIELD", "h", "3")[0])
        assert len(many) == len(set(many)) == 3
        repeated = parse(twin("HRANDFIELD", "h", "-8", "WITHVALUES")[0])
        if resp == "3":
            pairs = [tuple(p) for p in repeated]
        else:
            pairs = list(zip(repeated[::2], repeated[1::2], strict=True))
        assert len(pairs) == 8
        assert all(fields[f.decode()] == v.decode() for f, v in pairs)
    # A count of the whole hash or more is the whole hash, in its order.
    twin.same("HRANDFIELD", "h", "5", "WITHVALUES")
    twin.same("HRANDFIELD", "h", "100")


def test_large_hashes_compare_as_sets_and_scan_everything(twin: Twin) -> None:
    pairs = [x for i in range(600) for x in (f"field:{i}", str(i))]
    twin.same("HSET", "big", *pairs)
    twin.same("HSET", "long", "f", "v" * 100)
    for name in ("HKEYS", "HVALS"):
        ours, theirs = twin(name, "big")
        assert sorted(parse(ours)) == sorted(parse(theirs))
    ours, theirs = twin("HGETALL", "big")
    mine, real = parse(ours), parse(theirs)
    assert dict(zip(mine[::2], mine[1::2], strict=True)) == dict(
        zip(real[::2], real[1::2], strict=True)
    )
    seen: dict[bytes, bytes] = {}
    cursor, calls = b"0", 0
    while True:
        cursor, items = parse(twin.server.execute(twin.snapkv, ["HSCAN", "big", cursor.decode()]))
        seen.update(zip(items[::2], items[1::2], strict=True))
        calls += 1
        if cursor == b"0":
            break
    assert seen == {f"field:{i}".encode(): str(i).encode() for i in range(600)}
    assert calls > 10  # COUNT 10 is honoured for a hash Redis keeps as a hashtable
    twin.same("HSCAN", "long", "0")


def test_hscan_returns_every_field_present_for_the_whole_walk(twin: Twin) -> None:
    execute = twin.server.execute
    client = twin.snapkv
    execute(client, ["HSET", "h", *(x for i in range(1000) for x in (f"k{i}", "v"))])
    seen: set[bytes] = set()
    cursor = b"0"
    step = 0
    while True:
        cursor, items = parse(execute(client, ["HSCAN", "h", cursor.decode(), "COUNT", "7"]))
        seen.update(items[::2])
        # Churn while walking: fields k0..k499 stay, the others come and go.
        execute(client, ["HDEL", "h", f"k{500 + step}"])
        execute(client, ["HSET", "h", f"new{step}", "v"])
        step += 1
        if cursor == b"0":
            break
    assert {f"k{i}".encode() for i in range(500)} <= seen


def test_hscan_match_is_redis_glob(twin: Twin) -> None:
    fields = ["a", "b", "ab", "a*b", "a?", "[x]", "x", "\\", "A", "aXb", "ca", "\u00e9"]
    twin.same("HSET", "h", *(x for f in fields for x in (f, "1")))
    for pattern in [
        "*",
        "a*",
        "*b",
        "?",
        "[a-b]",
        "[^a]",
        "[b-a]*",
        "a\\*b",
        "\\[x\\]",
        "[x",
        "a[",
        "*\\",
        "*?*",
        "[\\]]",
        "[]",
        "a*b*",
        "\u00e9",
    ]:
        twin.same("HSCAN", "h", "0", "MATCH", pattern)


def test_a_hash_of_one_field_removed_leaves_no_key(twin: Twin) -> None:
    twin.same("HSET", "h", "f", "v")
    twin.same("HDEL", "h", "f")
    twin.same("EXISTS", "h")
    twin.same("HSET", "h", "n", "1")
    twin.same("EXPIRE", "h", "100")
    twin.same("HSET", "h", "m", "2")
    twin.same("TTL", "h")  # a hash write keeps the key's expiry


# ------------------------------------------------------- generated sessions

_FIELDS = st.sampled_from(["a", "b", "c", "n", "x", ""])
# No integer near 2**63: HINCRBYFLOAT sums in C's long double in Redis (see cmd_strings).
_VALUES = st.sampled_from(["1", "-7", "v", "2.5", "", "100000", "1e3", "0.5"])
_KEYS = st.sampled_from(["h", "g", "s"])


def _command() -> st.SearchStrategy[tuple[str, ...]]:
    pair = st.tuples(_FIELDS, _VALUES)
    return st.one_of(
        st.builds(
            lambda k, ps: ("HSET", k, *(x for p in ps for x in p)),
            _KEYS,
            st.lists(pair, min_size=1, max_size=3),
        ),
        st.builds(lambda k, f, v: ("HSETNX", k, f, v), _KEYS, _FIELDS, _VALUES),
        st.builds(lambda k, fs: ("HDEL", k, *fs), _KEYS, st.lists(_FIELDS, min_size=1, max_size=3)),
        st.builds(lambda k, f: ("HGET", k, f), _KEYS, _FIELDS),
        st.builds(
            lambda k, fs: ("HMGET", k, *fs), _KEYS, st.lists(_FIELDS, min_size=1, max_size=3)
        ),
        st.builds(lambda k, f, v: ("HINCRBY", k, f, v), _KEYS, _FIELDS, _VALUES),
        st.builds(lambda k, f, v: ("HINCRBYFLOAT", k, f, v), _KEYS, _FIELDS, _VALUES),
        st.builds(lambda k, f: ("HSTRLEN", k, f), _KEYS, _FIELDS),
        st.builds(lambda k, f: ("HEXISTS", k, f), _KEYS, _FIELDS),
        st.builds(
            lambda c, k: (c, k),
            st.sampled_from(["HGETALL", "HKEYS", "HVALS", "HLEN", "DEL"]),
            _KEYS,
        ),
        st.builds(lambda k: ("HSCAN", k, "0", "MATCH", "*"), _KEYS),
        st.builds(lambda k, v: ("SET", k, v), _KEYS, _VALUES),
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(session=st.lists(_command(), min_size=1, max_size=25))
def test_generated_sessions_get_redis_replies(twin: Twin, session: list[tuple[str, ...]]) -> None:
    twin("FLUSHALL")
    for argv in session:
        twin.same(*argv)


# ------------------------------------------------------------------ redis-py


@pytest.fixture
def running() -> Iterator[Running]:
    """snapkv serve on a free port, in a thread (see test_server_e2e)."""
    server = Running(Store(), Config(port=0))
    yield server
    server.stop()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py(running: Running, protocol: int) -> None:
    r = running.client(protocol=protocol, decode_responses=True)
    assert r.hset("h", mapping={"a": "1", "b": "2"}) == 2
    assert r.hset("h", "c", "3") == 1
    assert r.hget("h", "a") == "1" and r.hget("h", "zz") is None
    assert r.hmget("h", ["a", "zz", "c"]) == ["1", None, "3"]
    assert r.hgetall("h") == {"a": "1", "b": "2", "c": "3"}
    assert r.hkeys("h") == ["a", "b", "c"] and r.hvals("h") == ["1", "2", "3"]
    assert r.hlen("h") == 3 and r.hexists("h", "a") and not r.hexists("h", "zz")
    assert r.hsetnx("h", "a", "x") == 0 and r.hsetnx("h", "d", "4") == 1
    assert r.hincrby("h", "a", 10) == 11
    assert r.hincrbyfloat("h", "b", 0.5) == 2.5
    assert r.hstrlen("h", "a") == 2
    assert r.hdel("h", "d", "zz") == 1
    assert r.hrandfield("h") in {"a", "b", "c"}
    assert sorted(r.hrandfield("h", 2)) in (["a", "b"], ["a", "c"], ["b", "c"])
    assert dict(r.hscan_iter("h")) == {"a": "11", "b": "2.5", "c": "3"}
    assert r.hscan("h", 0, match="a") == (0, {"a": "11"})
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.hget("s", "f")
    with pytest.raises(redis.ResponseError, match="hash value is not an integer"):
        r.hincrby("h", "b", 1)
    with r.pipeline(transaction=True) as pipe:
        pipe.hset("p", "f", "1").hincrby("p", "f", 2).hgetall("p").hdel("p", "f").exists("p")
        assert pipe.execute() == [1, 3, {"f": "3"}, 1, 0]
    with r.pipeline(transaction=False) as pipe:
        for i in range(200):
            pipe.hset("many", f"f{i}", i)
        pipe.hlen("many")
        assert pipe.execute()[-1] == 200


def test_hrandfield_parses_the_count_before_withvalues(twin: Twin) -> None:
    twin.same("HSET", "h", "f", "v")
    for argv in (
        ("HRANDFIELD", "h", "WITHVALUES", "WITHVALUES"),  # the count first: not an integer
        ("HRANDFIELD", "h", "x", "nope"),
        ("HRANDFIELD", "h", "1", "nope"),
        ("HRANDFIELD", "h", "1", "WITHVALUES", "x"),
        ("HRANDFIELD", "h", "-9223372036854775808", "nope"),
        ("HRANDFIELD", "nokey", "abc", "WITHVALUES"),
    ):
        twin.same(*argv)
