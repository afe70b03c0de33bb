"""Set commands against the real Redis 7.0: the same requests, the same reply bytes.

Every command's replies, errors and arity are compared with a redis-server
(the ``twin`` fixture), in RESP2 and RESP3. A set of at most 512 integers
is an intset in Redis, sorted by value, and snapkv answers it in that
order, so those replies compare byte for byte; other sets compare as
parsed, sorted lists, and random replies (SPOP, SRANDMEMBER) by shape and
membership. A hypothesis-generated session of set commands must get the
same replies, reply by reply. redis-py then drives the commands over a
real socket (sync, pipelines, RESP3).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Twin
from snapkv import Store
from snapkv.server.state import Config
from test_server_e2e import Running
from test_server_hash import assert_same_changes, parse

redis = pytest.importorskip("redis")

#: Commands whose reply is a set Redis does not order (compared sorted); SPOP with a
#: count and SSCAN are too (a set Redis once made a hashtable stays one: unordered).
UNORDERED = {"SMEMBERS", "SINTER", "SUNION", "SDIFF"}

BASICS: list[tuple[str, ...]] = [
    ("SADD", "s", "a", "b", "c", "a"),
    ("SADD", "s", "a"),
    ("SADD", "s"),
    ("SADD", "i", "3", "1", "2", "-5", "10"),
    ("SMEMBERS", "i"),
    ("SMEMBERS", "s"),
    ("SMEMBERS", "nokey"),
    ("SMEMBERS", "s", "x"),
    ("SCARD", "s"),
    ("SCARD", "nokey"),
    ("SISMEMBER", "s", "a"),
    ("SISMEMBER", "s", "z"),
    ("SISMEMBER", "nokey", "a"),
    ("SMISMEMBER", "s", "a", "z", "b"),
    ("SMISMEMBER", "nokey", "a", "b"),
    ("SMISMEMBER", "s"),
    ("SREM", "s", "a", "z", "a"),
    ("SREM", "nokey", "a"),
    ("SREM", "s"),
    ("SREM", "s", "b", "c"),
    ("EXISTS", "s"),
    ("SADD", "i", "01", "+1", " 1"),
    ("SMEMBERS", "i"),
    ("SREM", "i", "01", "+1", " 1"),
    ("SMEMBERS", "i"),
]

ALGEBRA: list[tuple[str, ...]] = [
    ("SADD", "a", "1", "2", "3", "4"),
    ("SADD", "b", "3", "4", "5"),
    ("SADD", "c", "4", "6"),
    ("SADD", "w", "x", "y", "4"),
    ("SET", "str", "v"),
    ("SINTER", "a", "b"),
    ("SINTER", "a", "b", "c"),
    ("SINTER", "a", "nokey"),
    ("SINTER", "a", "nokey", "str"),
    ("SINTER", "a", "str", "nokey"),
    ("SINTER", "a"),
    ("SINTER",),
    ("SUNION", "a", "b", "c"),
    ("SUNION", "nokey", "a"),
    ("SUNION", "nokey", "str"),
    ("SUNION", "a", "w"),
    ("SDIFF", "a", "b", "c"),
    ("SDIFF", "nokey", "a"),
    ("SDIFF", "a", "nokey"),
    ("SDIFF", "nokey", "str"),
    ("SDIFF", "a", "w"),
    ("SINTERCARD", "2", "a", "b"),
    ("SINTERCARD", "3", "a", "b", "c"),
    ("SINTERCARD", "2", "a", "b", "LIMIT", "1"),
    ("SINTERCARD", "2", "a", "b", "limit", "0"),
    ("SINTERCARD", "2", "a", "b", "LIMIT", "100"),
    ("SINTERCARD", "2", "a", "nokey"),
    ("SINTERCARD", "2", "a", "str"),
    ("SINTERCARD", "2", "nokey", "str"),
    ("SINTERCARD", "0", "a"),
    ("SINTERCARD", "-1", "a"),
    ("SINTERCARD", "x", "a"),
    ("SINTERCARD", "3", "a", "b"),
    ("SINTERCARD", "1", "a", "LIMIT"),
    ("SINTERCARD", "1", "a", "LIMIT", "-1"),
    ("SINTERCARD", "1", "a", "LIMIT", "x"),
    ("SINTERCARD", "1", "a", "FOO", "1"),
    ("SINTERCARD", "1"),
    ("SINTERSTORE", "d", "a", "b"),
    ("SMEMBERS", "d"),
    ("SINTERSTORE", "d", "a", "nokey"),
    ("EXISTS", "d"),
    ("SINTERSTORE", "d", "a", "nokey"),
    ("SUNIONSTORE", "d", "a", "b", "c"),
    ("SMEMBERS", "d"),
    ("EXPIRE", "d", "100"),
    ("SDIFFSTORE", "d", "a", "b"),
    ("TTL", "d"),
    ("SMEMBERS", "d"),
    ("SDIFFSTORE", "d", "a", "a"),
    ("EXISTS", "d"),
    ("SUNIONSTORE", "str", "a"),
    ("TYPE", "str"),
    ("SMEMBERS", "str"),
    ("SET", "str", "v"),
    ("SINTERSTORE", "d", "str"),
    ("SUNIONSTORE", "d", "a", "str"),
    ("SDIFFSTORE", "d", "str"),
    ("SINTERSTORE", "a", "a", "b"),
    ("SMEMBERS", "a"),
    ("SUNIONSTORE", "d"),
    ("SUNIONSTORE", "w", "w", "c"),
    ("SCARD", "w"),
]

MOVES: list[tuple[str, ...]] = [
    ("SADD", "src", "a", "b"),
    ("SADD", "dst", "b"),
    ("SET", "str", "v"),
    ("SMOVE", "src", "dst", "a"),
    ("SMOVE", "src", "dst", "a"),
    ("SMOVE", "src", "dst", "b"),
    ("EXISTS", "src"),
    ("SMEMBERS", "dst"),
    ("SMOVE", "nokey", "dst", "a"),
    ("SMOVE", "nokey", "str", "a"),
    ("SMOVE", "dst", "str", "a"),
    ("SMOVE", "str", "dst", "a"),
    ("SMOVE", "dst", "dst", "a"),
    ("SMOVE", "dst", "dst", "zz"),
    ("SMOVE", "dst", "new", "a"),
    ("SMEMBERS", "new"),
    ("SMOVE", "dst", "new"),
]

POPS: list[tuple[str, ...]] = [
    ("SADD", "i", "1", "2", "3"),
    ("SPOP", "nokey"),
    ("SPOP", "nokey", "0"),
    ("SPOP", "nokey", "3"),
    ("SPOP", "i", "0"),
    ("SPOP", "i", "-1"),
    ("SPOP", "i", "x"),
    ("SPOP", "i", "1", "2"),
    ("SPOP", "i", "3"),
    ("EXISTS", "i"),
    ("SADD", "i", "1", "2", "3"),
    ("SPOP", "i", "10"),
    ("SRANDMEMBER", "nokey"),
    ("SRANDMEMBER", "nokey", "3"),
    ("SRANDMEMBER", "nokey", "-3"),
    ("SADD", "i", "1", "2", "3"),
    ("SRANDMEMBER", "i", "0"),
    ("SRANDMEMBER", "i", "3"),
    ("SRANDMEMBER", "i", "30"),
    ("SRANDMEMBER", "i", "x"),
    ("SRANDMEMBER", "i", "1", "2"),
    ("SRANDMEMBER", "i", "-9223372036854775808"),
    ("SRANDMEMBER", "i", "-9223372036854775807", "x"),
    ("SSCAN", "i", "0"),
    ("SSCAN", "i", "0", "MATCH", "1*"),
    ("SSCAN", "i", "0", "COUNT", "1"),
    ("SSCAN", "i", "0", "COUNT", "0"),
    ("SSCAN", "i", "0", "TYPE", "set"),
    ("SSCAN", "i", "x"),
    ("SSCAN", "nokey", "0"),
    ("SSCAN", "nokey", "0", "COUNT", "0"),
    ("SSCAN", "i"),
]


def _wrong_types() -> list[tuple[str, ...]]:
    return [
        (name, "str", *args)
        for name, args in [
            ("SADD", ("m",)),
            ("SREM", ("m",)),
            ("SMEMBERS", ()),
            ("SISMEMBER", ("m",)),
            ("SMISMEMBER", ("m",)),
            ("SCARD", ()),
            ("SPOP", ()),
            ("SPOP", ("2",)),
            ("SPOP", ("-2",)),
            ("SPOP", ("0",)),
            ("SRANDMEMBER", ()),
            ("SRANDMEMBER", ("2",)),
            ("SRANDMEMBER", ("x",)),
            ("SINTER", ()),
            ("SUNION", ()),
            ("SDIFF", ()),
            ("SSCAN", ("0",)),
            ("SSCAN", ("x",)),
        ]
    ]


def _compare(twin: Twin, argv: tuple[str, ...]) -> None:
    """Same bytes; for a reply Redis leaves unordered, the same type and the same members."""
    ours, theirs = twin(*argv)
    unordered = argv[0] in UNORDERED or (argv[0] == "SPOP" and len(argv) == 3)
    if ours[:1] != theirs[:1] or ours[:1] not in (b"~", b"*"):
        assert ours == theirs, argv
    elif argv[0] == "SSCAN":
        (cursor, items), (their_cursor, their_items) = parse(ours), parse(theirs)
        assert cursor == their_cursor and sorted(items) == sorted(their_items), argv
    elif unordered:
        assert sorted(parse(ours)) == sorted(parse(theirs)), argv
    else:
        assert ours == theirs, argv


@pytest.mark.parametrize("resp", ["2", "3"])
@pytest.mark.parametrize(
    "session", [BASICS, ALGEBRA, MOVES, POPS], ids=["basics", "algebra", "moves", "pops"]
)
def test_replies_are_redis_bytes(twin: Twin, resp: str, session: list[tuple[str, ...]]) -> None:
    twin("HELLO", resp)
    for argv in session:
        _compare(twin, argv)


def test_wrong_type_is_refused(twin: Twin) -> None:
    twin.same("SET", "str", "x")
    for argv in _wrong_types():
        twin.same(*argv)
    twin.same("GET", "str")


def test_dirty_counts_as_redis(twin: Twin) -> None:
    pops = [
        ("SADD", "p", "1", "2", "3", "4"),
        ("SPOP", "p"),
        ("SPOP", "p", "2"),
        ("SPOP", "p", "9"),
    ]
    assert_same_changes(twin, [*BASICS, *ALGEBRA, *MOVES, *pops])


@pytest.mark.parametrize("resp", ["2", "3"])
def test_random_members_have_redis_shapes(twin: Twin, resp: str) -> None:
    twin("HELLO", resp)
    members = {f"m{i}" for i in range(6)}
    twin.same("SADD", "s", *sorted(members))
    for _ in range(20):
        assert parse(twin("SRANDMEMBER", "s")[0]).decode() in members
        picked = [m.decode() for m in parse(twin("SRANDMEMBER", "s", "4")[0])]
        assert len(set(picked)) == 4 and set(picked) <= members
        repeated = [m.decode() for m in parse(twin("SRANDMEMBER", "s", "-10")[0])]
        assert len(repeated) == 10 and set(repeated) <= members
    ours, theirs = twin("SPOP", "s", "2")
    assert ours[:1] == theirs[:1] and len(parse(ours)) == 2
    popped = {m.decode() for m in parse(ours)}
    left = {m.decode() for m in parse(twin.server.execute(twin.snapkv, ["SMEMBERS", "s"]))}
    assert popped | left == members and not popped & left
    one = twin("SPOP", "s")[0]
    assert parse(one).decode() in left


def test_large_sets_scan_every_member_and_honour_count(twin: Twin) -> None:
    execute, client = twin.server.execute, twin.snapkv
    twin.same("SADD", "big", *(f"m{i}" for i in range(1000)))
    twin.same("SADD", "ints", *(str(i) for i in range(600)))  # past the intset limit
    for key in ("big", "ints"):
        ours, theirs = twin("SMEMBERS", key)
        assert sorted(parse(ours)) == sorted(parse(theirs))
    seen: set[bytes] = set()
    cursor, calls = b"0", 0
    while True:
        cursor, items = parse(execute(client, ["SSCAN", "big", cursor.decode(), "COUNT", "50"]))
        seen.update(items)
        execute(client, ["SREM", "big", f"m{900 + calls}"])  # churn among the last ones
        execute(client, ["SADD", "big", f"new{calls}"])
        calls += 1
        if cursor == b"0":
            break
    assert {f"m{i}".encode() for i in range(900)} <= seen
    assert calls >= 10


# ------------------------------------------------------- generated sessions

_MEMBERS = st.sampled_from(["1", "2", "3", "10", "-4", "a", "b"])
_KEYS = st.sampled_from(["s", "t", "u", "str"])


def _command() -> st.SearchStrategy[tuple[str, ...]]:
    members = st.lists(_MEMBERS, min_size=1, max_size=4)
    keys = st.lists(_KEYS, min_size=1, max_size=3)
    return st.one_of(
        st.builds(lambda k, ms: ("SADD", k, *ms), _KEYS, members),
        st.builds(lambda k, ms: ("SREM", k, *ms), _KEYS, members),
        st.builds(lambda k, m: ("SISMEMBER", k, m), _KEYS, _MEMBERS),
        st.builds(lambda k, ms: ("SMISMEMBER", k, *ms), _KEYS, members),
        st.builds(lambda a, b, m: ("SMOVE", a, b, m), _KEYS, _KEYS, _MEMBERS),
        st.builds(lambda c, ks: (c, *ks), st.sampled_from(["SINTER", "SUNION", "SDIFF"]), keys),
        st.builds(
            lambda c, d, ks: (c, d, *ks),
            st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]),
            _KEYS,
            keys,
        ),
        st.builds(lambda ks: ("SINTERCARD", str(len(ks)), *ks), keys),
        st.builds(
            lambda c, k: (c, k), st.sampled_from(["SMEMBERS", "SCARD", "DEL", "TYPE"]), _KEYS
        ),
        st.builds(lambda k: ("SPOP", k, "10"), _KEYS),
        st.builds(lambda k: ("SSCAN", k, "0"), _KEYS),
        st.builds(lambda v: ("SET", "str", v), _MEMBERS),
    )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(session=st.lists(_command(), min_size=1, max_size=25))
def test_generated_sessions_get_redis_replies(twin: Twin, session: list[tuple[str, ...]]) -> None:
    twin("FLUSHALL")
    for argv in session:
        _compare(twin, argv)


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
    assert r.sadd("s", "a", "b", "c") == 3
    assert r.smembers("s") == {"a", "b", "c"}
    assert r.sismember("s", "a") and not r.sismember("s", "z")
    assert r.smismember("s", ["a", "z"]) == [1, 0] or r.smismember("s", ["a", "z"]) == [True, False]
    assert r.scard("s") == 3 and r.srem("s", "c", "z") == 1
    assert r.sadd("t", "b", "x") == 2
    assert r.sinter("s", "t") == {"b"} and r.sunion("s", "t") == {"a", "b", "x"}
    assert r.sdiff("s", "t") == {"a"} and r.sintercard(2, ["s", "t"]) == 1
    assert r.sunionstore("u", ["s", "t"]) == 3 and r.smembers("u") == {"a", "b", "x"}
    assert r.sinterstore("u", ["s", "nokey"]) == 0 and not r.exists("u")
    assert r.sdiffstore("u", ["s", "t"]) == 1
    assert r.smove("s", "t", "a") and r.smembers("t") == {"a", "b", "x"}
    assert r.srandmember("t") in {"a", "b", "x"}
    assert len(r.srandmember("t", -5)) == 5
    assert set(r.sscan_iter("t", count=1)) == {"a", "b", "x"}
    popped = r.spop("t", 2)
    assert len(popped) == 2 and set(popped) <= {"a", "b", "x"}
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.sadd("str", "m")
    with r.pipeline(transaction=True) as pipe:
        pipe.sadd("p", "1", "2").srem("p", "1").smembers("p").scard("p")
        assert pipe.execute() == [2, 1, {"2"}, 1]
