"""Sorted set commands against the real redis-server 7.0: the same requests, the same bytes.

Each scenario is a list of requests sent in order to snapkv's dispatcher and
to the reference server (the ``twin`` fixture); every reply is compared
byte for byte, in RESP2 and again in RESP3 (HELLO 3 first), errors and
arity included. ZRANDMEMBER and ZSCAN, whose answers are random or
unordered in Redis, are compared by what must hold.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Script = list[tuple[str, ...]]

SEED: Script = [
    ("ZADD", "z", "1", "a", "2", "b", "2", "c", "3", "d", "-1.5", "e", "inf", "f", "-inf", "g"),
    ("ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "f", "0", "é"),
    ("SET", "str", "x"),
]

SCENARIOS: dict[str, Script] = {
    "zadd_flags": [
        ("ZADD", "k", "1", "a"),
        ("ZADD", "k", "NX", "2", "a", "3", "b"),
        ("ZADD", "k", "XX", "5", "a", "6", "c"),
        ("ZADD", "k", "XX", "CH", "5", "a", "7", "b"),
        ("ZADD", "k", "GT", "CH", "1", "a", "9", "b"),
        ("ZADD", "k", "LT", "CH", "1", "a", "10", "b", "0", "new"),
        ("ZADD", "k", "GT", "XX", "CH", "100", "a", "100", "zz"),
        ("ZADD", "k", "CH", "1", "q", "2", "q"),
        ("ZADD", "k", "1", "dup", "2", "dup"),
        ("ZRANGE", "k", "0", "-1", "WITHSCORES"),
        ("ZADD", "nokey", "XX", "1", "a"),
        ("EXISTS", "nokey"),
        ("ZADD", "k", "ch", "nx", "gt", "1", "a"),
    ],
    "zadd_errors": [
        ("ZADD", "k", "NX", "XX", "1", "a"),
        ("ZADD", "k", "GT", "LT", "1", "a"),
        ("ZADD", "k", "NX", "GT", "1", "a"),
        ("ZADD", "k", "INCR", "1", "a", "2", "b"),
        ("ZADD", "k", "1", "a", "2"),
        ("ZADD", "k", "NX"),
        ("ZADD", "k", "x", "a"),
        ("ZADD", "k", "nan", "a"),
        ("ZADD", "k", "1e400", "a"),
        ("ZADD", "k", " 1", "a"),
        ("ZADD", "k", "1 ", "a"),
        ("ZADD", "k", "", "a"),
        ("ZADD", "str", "1", "a"),
        ("ZADD", "str", "x", "a"),
        ("ZADD", "str", "NX", "XX", "1", "a"),
        ("ZADD", "k"),
        ("ZADD", "k", "1"),
        ("EXISTS", "k"),
    ],
    "zadd_incr": [
        ("ZADD", "k", "INCR", "1.5", "a"),
        ("ZADD", "k", "INCR", "1.5", "a"),
        ("ZADD", "k", "INCR", "NX", "1", "a"),
        ("ZADD", "k", "INCR", "XX", "1", "missing"),
        ("ZADD", "k", "INCR", "GT", "-1", "a"),
        ("ZADD", "k", "INCR", "LT", "-1", "a"),
        ("ZADD", "k", "INCR", "inf", "a"),
        ("ZADD", "k", "INCR", "-inf", "a"),
        ("ZSCORE", "k", "a"),
        ("ZINCRBY", "k", "-inf", "a"),
        ("ZINCRBY", "k", "2", "b"),
        ("ZINCRBY", "k", "0.1", "b"),
        ("ZINCRBY", "k", "x", "b"),
        ("ZINCRBY", "k", "nx", "b"),
        ("ZINCRBY", "str", "1", "b"),
        ("ZINCRBY", "k", "1"),
        ("ZINCRBY", "k", "-0.0", "c"),
        ("ZSCORE", "k", "c"),
    ],
    "scores_print_as_redis": [
        ("ZADD", "k", "0.1", "a", "1e20", "b", "3.0", "c", "-0.0", "d", "inf", "e", "-inf", "f"),
        ("ZADD", "k", "1.5e-7", "g", "123456789012345678", "h", "0x10", "i", "1e-310", "j"),
        ("ZADD", "k", "-1e18", "l", "4503599627370497", "m", "9.2e18", "n"),
        ("ZRANGE", "k", "0", "-1", "WITHSCORES"),
        ("ZSCORE", "k", "a"),
        ("ZSCORE", "k", "d"),
        ("ZMSCORE", "k", "a", "b", "nope", "e", "f"),
        ("ZMSCORE", "nokey", "a", "b"),
        ("ZMSCORE", "str", "a"),
        ("ZSCORE", "nokey", "a"),
        ("ZSCORE", "str", "a"),
        ("ZINCRBY", "k", "0.2", "a"),
    ],
    "rem_card_rank": [
        ("ZREM", "z", "a", "nope", "a", "b"),
        ("ZREM", "z", "nope"),
        ("ZREM", "nokey", "a"),
        ("ZREM", "str", "a"),
        ("ZREM", "z"),
        ("ZCARD", "z"),
        ("ZCARD", "nokey"),
        ("ZCARD", "str"),
        ("ZRANK", "z", "c"),
        ("ZRANK", "z", "g"),
        ("ZREVRANK", "z", "g"),
        ("ZREVRANK", "z", "f"),
        ("ZRANK", "z", "nope"),
        ("ZRANK", "nokey", "a"),
        ("ZRANK", "str", "a"),
        ("ZRANK", "z", "c", "WITHSCORE"),
        ("ZREM", "z", "c", "d", "e", "f", "g"),
        ("EXISTS", "z"),
    ],
    "count_and_lexcount": [
        ("ZCOUNT", "z", "-inf", "+inf"),
        ("ZCOUNT", "z", "(1", "3"),
        ("ZCOUNT", "z", "(2", "(3"),
        ("ZCOUNT", "z", "2", "2"),
        ("ZCOUNT", "z", "(2", "2"),
        ("ZCOUNT", "z", "3", "1"),
        ("ZCOUNT", "z", "(inf", "inf"),
        ("ZCOUNT", "z", "inf", "inf"),
        ("ZCOUNT", "z", "-inf", "(-inf"),
        ("ZCOUNT", "z", "", "5"),
        ("ZCOUNT", "z", "(", "5"),
        ("ZCOUNT", "z", "1e400", "inf"),
        ("ZCOUNT", "z", "x", "1"),
        ("ZCOUNT", "z", "1", "nan"),
        ("ZCOUNT", "z", "((1", "2"),
        ("ZCOUNT", "nokey", "0", "1"),
        ("ZCOUNT", "str", "0", "1"),
        ("ZCOUNT", "str", "x", "1"),
        ("ZLEXCOUNT", "lex", "-", "+"),
        ("ZLEXCOUNT", "lex", "[b", "(e"),
        ("ZLEXCOUNT", "lex", "(b", "[e"),
        ("ZLEXCOUNT", "lex", "+", "-"),
        ("ZLEXCOUNT", "lex", "[z", "+"),
        ("ZLEXCOUNT", "lex", "[", "+"),
        ("ZLEXCOUNT", "lex", "(a", "(a"),
        ("ZLEXCOUNT", "lex", "a", "+"),
        ("ZLEXCOUNT", "lex", "-x", "+"),
        ("ZLEXCOUNT", "nokey", "-", "+"),
        ("ZLEXCOUNT", "str", "-", "+"),
        ("ZLEXCOUNT", "str", "x", "+"),
    ],
    "zrange_by_rank": [
        ("ZRANGE", "z", "0", "-1"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZRANGE", "z", "2", "3"),
        ("ZRANGE", "z", "-3", "-1", "withscores"),
        ("ZRANGE", "z", "-100", "100"),
        ("ZRANGE", "z", "5", "2"),
        ("ZRANGE", "z", "7", "10"),
        ("ZRANGE", "z", "0", "-1", "REV"),
        ("ZRANGE", "z", "0", "1", "REV", "WITHSCORES"),
        ("ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"),
        ("ZRANGE", "z", "0", "-1", "LIMIT", "1", "-1"),
        ("ZRANGE", "z", "0", "-1", "LIMIT", "1"),
        ("ZRANGE", "z", "a", "1"),
        ("ZRANGE", "z", "0", "1", "FOO"),
        ("ZRANGE", "nokey", "0", "-1"),
        ("ZRANGE", "str", "0", "-1"),
        ("ZRANGE", "str", "x", "-1"),
        ("ZREVRANGE", "z", "0", "2", "WITHSCORES"),
        ("ZREVRANGE", "z", "-2", "-1"),
        ("ZREVRANGE", "z", "0", "1", "REV"),
        ("ZREVRANGE", "z", "0", "1", "BYSCORE"),
        ("ZRANGE", "z", "0"),
        ("ZRANGE", "z", "0", "-1", "REV", "REV"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES", "WITHSCORES"),
        ("ZRANGE", "z", "0", "5", "BYSCORE", "BYSCORE"),
        ("ZRANGE", "z", "0", "5", "BYSCORE", "LIMIT", "0", "1", "LIMIT", "1", "2"),
        ("ZRANGE", "z", "0", "5", "LIMIT", "0", "-1"),
    ],
    "zrange_by_score": [
        ("ZRANGE", "z", "-inf", "+inf", "BYSCORE", "WITHSCORES"),
        ("ZRANGE", "z", "(1", "(3", "BYSCORE"),
        ("ZRANGE", "z", "3", "1", "BYSCORE", "REV"),
        ("ZRANGE", "z", "(3", "-inf", "BYSCORE", "REV", "WITHSCORES"),
        ("ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "1", "3"),
        ("ZRANGE", "z", "inf", "-inf", "BYSCORE", "REV", "LIMIT", "1", "3"),
        ("ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "-1", "3"),
        ("ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "2", "-1"),
        ("ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "2", "0"),
        ("ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "100", "1"),
        ("ZRANGE", "z", "-inf", "inf", "BYSCORE", "LIMIT", "x", "1"),
        ("ZRANGE", "z", "x", "1", "BYSCORE"),
        ("ZRANGEBYSCORE", "z", "2", "2"),
        ("ZRANGEBYSCORE", "z", "-inf", "inf", "WITHSCORES", "LIMIT", "0", "2"),
        ("ZRANGEBYSCORE", "z", "-inf", "inf", "LIMIT", "0"),
        ("ZRANGEBYSCORE", "z", "-inf", "inf", "BYSCORE"),
        ("ZRANGEBYSCORE", "z", "-inf", "inf", "REV"),
        ("ZREVRANGEBYSCORE", "z", "+inf", "-inf", "WITHSCORES"),
        ("ZREVRANGEBYSCORE", "z", "(2", "(-inf", "LIMIT", "0", "1"),
        ("ZREVRANGEBYSCORE", "z", "-inf", "+inf"),
        ("ZRANGEBYSCORE", "nokey", "0", "1"),
        ("ZRANGEBYSCORE", "str", "0", "1"),
        ("ZRANGEBYSCORE", "z", "nan", "1"),
    ],
    "zrange_by_lex": [
        ("ZRANGE", "lex", "-", "+", "BYLEX"),
        ("ZRANGE", "lex", "[b", "(e", "BYLEX"),
        ("ZRANGE", "lex", "+", "-", "BYLEX", "REV"),
        ("ZRANGE", "lex", "(e", "[b", "BYLEX", "REV", "LIMIT", "1", "2"),
        ("ZRANGE", "lex", "-", "+", "BYLEX", "WITHSCORES"),
        ("ZRANGE", "lex", "-", "+", "BYLEX", "BYSCORE"),
        ("ZRANGE", "lex", "a", "+", "BYLEX"),
        ("ZRANGEBYLEX", "lex", "-", "+", "LIMIT", "2", "3"),
        ("ZRANGEBYLEX", "lex", "[c", "+"),
        ("ZRANGEBYLEX", "lex", "(c", "[é"),
        ("ZRANGEBYLEX", "lex", "-", "+", "WITHSCORES"),
        ("ZREVRANGEBYLEX", "lex", "+", "-"),
        ("ZREVRANGEBYLEX", "lex", "[d", "-", "LIMIT", "0", "2"),
        ("ZREVRANGEBYLEX", "lex", "-", "+"),
        ("ZRANGEBYLEX", "nokey", "-", "+"),
        ("ZRANGEBYLEX", "str", "-", "+"),
        ("ZRANGEBYLEX", "lex", "-", "+x"),
    ],
    "remove_ranges": [
        ("ZREMRANGEBYRANK", "z", "0", "1"),
        ("ZREMRANGEBYRANK", "z", "-1", "-1"),
        ("ZREMRANGEBYRANK", "z", "10", "20"),
        ("ZREMRANGEBYRANK", "z", "x", "1"),
        ("ZREMRANGEBYSCORE", "z", "(1", "2"),
        ("ZREMRANGEBYSCORE", "z", "x", "2"),
        ("ZRANGE", "z", "0", "-1", "WITHSCORES"),
        ("ZREMRANGEBYLEX", "lex", "[b", "(d"),
        ("ZREMRANGEBYLEX", "lex", "b", "(d"),
        ("ZRANGE", "lex", "0", "-1"),
        ("ZREMRANGEBYLEX", "lex", "-", "+"),
        ("EXISTS", "lex"),
        ("ZREMRANGEBYSCORE", "z", "-inf", "inf"),
        ("EXISTS", "z"),
        ("ZREMRANGEBYRANK", "nokey", "0", "-1"),
        ("ZREMRANGEBYRANK", "str", "0", "-1"),
        ("ZREMRANGEBYSCORE", "str", "0", "1"),
        ("ZREMRANGEBYLEX", "str", "-", "+"),
    ],
    "pops": [
        ("ZPOPMIN", "z"),
        ("ZPOPMAX", "z"),
        ("ZPOPMIN", "z", "2"),
        ("ZPOPMAX", "z", "1"),
        ("ZPOPMIN", "z", "0"),
        ("ZPOPMIN", "z", "-1"),
        ("ZPOPMIN", "z", "x"),
        ("ZPOPMIN", "z", "1", "2"),
        ("ZPOPMIN", "z", "100"),
        ("EXISTS", "z"),
        ("ZPOPMIN", "z"),
        ("ZPOPMIN", "z", "3"),
        ("ZPOPMAX", "nokey", "0"),
        ("ZPOPMIN", "str"),
        ("ZPOPMIN", "str", "0"),
    ],
    "zmpop": [
        ("ZMPOP", "2", "nokey", "z", "MIN"),
        ("ZMPOP", "1", "z", "MAX", "COUNT", "2"),
        ("ZMPOP", "1", "z", "min", "count", "100"),
        ("ZMPOP", "1", "z", "MIN"),
        ("ZMPOP", "2", "nokey", "lex", "MAX", "COUNT", "1"),
        ("ZMPOP", "2", "str", "lex", "MAX"),
        ("ZMPOP", "0", "z", "MIN"),
        ("ZMPOP", "-1", "z", "MIN"),
        ("ZMPOP", "x", "z", "MIN"),
        ("ZMPOP", "1", "z", "MIDDLE"),
        ("ZMPOP", "3", "z", "MIN"),
        ("ZMPOP", "1", "lex", "MIN", "COUNT", "0"),
        ("ZMPOP", "1", "lex", "MIN", "COUNT", "x"),
        ("ZMPOP", "1", "lex", "MIN", "COUNT", "1", "COUNT", "1"),
        ("ZMPOP", "1", "lex", "MIN", "COUNT"),
        ("ZMPOP", "1", "lex", "MIN", "EXTRA"),
    ],
    "zrangestore": [
        ("ZRANGESTORE", "dst", "z", "0", "2"),
        ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "dst", "z", "(1", "inf", "BYSCORE", "LIMIT", "1", "2"),
        ("ZRANGE", "dst", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "dst", "lex", "[e", "-", "BYLEX", "REV"),
        ("ZRANGE", "dst", "0", "-1"),
        ("ZRANGESTORE", "dst", "z", "0", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "dst", "nokey", "0", "-1"),
        ("EXISTS", "dst"),
        ("ZRANGESTORE", "str", "z", "0", "0"),
        ("TYPE", "str"),
        ("ZRANGESTORE", "dst", "str", "0", "0"),
        ("ZRANGESTORE", "dst", "z", "5", "1"),
        ("ZRANGESTORE", "z", "z", "0", "1"),
        ("ZRANGE", "z", "0", "-1"),
        ("ZRANGESTORE", "dst", "z", "0", "1", "LIMIT", "0", "1"),
        ("ZRANGESTORE", "dst", "z", "0"),
    ],
    "zrandmember_whole_and_errors": [
        ("ZRANDMEMBER", "nokey"),
        ("ZRANDMEMBER", "nokey", "5"),
        ("ZRANDMEMBER", "str"),
        ("ZRANDMEMBER", "str", "0"),
        ("ZRANDMEMBER", "z", "0"),
        ("ZRANDMEMBER", "z", "100"),
        ("ZRANDMEMBER", "z", "7", "WITHSCORES"),
        ("ZRANDMEMBER", "z", "x"),
        ("ZRANDMEMBER", "z", "1", "SCORES"),
        ("ZRANDMEMBER", "z", "1", "WITHSCORES", "x"),
        ("ZRANDMEMBER", "z", "-9223372036854775808"),
        ("ZRANDMEMBER", "z", "-9223372036854775807", "WITHSCORES"),
        ("ZRANDMEMBER", "z", "9223372036854775807", "WITHSCORES"),
        ("ZRANDMEMBER", "nokey", "1", "WITHSCORES"),
    ],
    "zscan_small": [
        ("ZSCAN", "z", "0"),
        ("ZSCAN", "z", "0", "COUNT", "2"),
        ("ZSCAN", "z", "0", "MATCH", "[a-c]"),
        ("ZSCAN", "lex", "0", "MATCH", "*"),
        ("ZSCAN", "lex", "0", "MATCH", "?"),
        ("ZSCAN", "lex", "0", "MATCH", "[^ab]"),
        ("ZSCAN", "lex", "0", "MATCH", "[e-c]"),
        ("ZSCAN", "lex", "0", "MATCH", "[a-]"),
        ("ZSCAN", "lex", "0", "MATCH", "\\a"),
        ("ZSCAN", "lex", "0", "MATCH", "[^"),
        ("ZSCAN", "lex", "0", "MATCH", "**"),
        ("ZSCAN", "lex", "0", "MATCH", "\udcc3*"),
        ("ZSCAN", "z", "0", "COUNT", "0"),
        ("ZSCAN", "z", "0", "COUNT", "x"),
        ("ZSCAN", "z", "0", "TYPE", "zset"),
        ("ZSCAN", "z", "0", "MATCH"),
        ("ZSCAN", "z", "x"),
        ("ZSCAN", "z", "-1"),
        ("ZSCAN", "nokey", "0", "BOGUS"),
        ("ZSCAN", "str", "0"),
        ("ZSCAN", "str", "x"),
    ],
    "arity": [
        ("ZCARD",),
        ("ZCARD", "a", "b"),
        ("ZSCORE", "a"),
        ("ZMSCORE", "a"),
        ("ZREM", "a"),
        ("ZRANK", "a"),
        ("ZCOUNT", "a", "1"),
        ("ZLEXCOUNT", "a", "1"),
        ("ZRANGEBYSCORE", "a", "1"),
        ("ZREVRANGEBYLEX", "a", "1"),
        ("ZREMRANGEBYRANK", "a", "1"),
        ("ZPOPMIN",),
        ("ZMPOP", "1", "a"),
        ("ZRANDMEMBER",),
        ("ZSCAN", "a"),
        ("ZRANGESTORE", "a", "b", "1"),
        ("ZADD", "a", "1"),
        ("ZINCRBY", "a", "1"),
        ("ZINCRBY", "a", "1", "m", "x"),
        ("ZREVRANK", "a", "m", "x"),
        ("ZSCORE", "a", "m", "x"),
        ("ZREMRANGEBYSCORE", "a", "1"),
        ("ZREMRANGEBYLEX", "a", "1", "2", "3"),
        ("ZREVRANGE", "a", "1"),
        ("ZRANGEBYLEX", "a", "1"),
        ("ZREVRANGEBYSCORE", "a", "1"),
        ("ZPOPMAX",),
        ("ZUNION", "1"),
        ("ZINTERSTORE", "a", "1"),
        ("ZDIFF", "1"),
        ("ZINTERCARD", "1"),
    ],
}


def _run(twin: Any, script: Script) -> None:
    for argv in script:
        twin.same(*argv)


@pytest.mark.parametrize("resp", [2, 3])
@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_replies_equal_redis(twin: Any, name: str, resp: int) -> None:
    if resp == 3:
        twin("HELLO", "3")
    _run(twin, SEED)
    _run(twin, SCENARIOS[name])


def _parse(reply: bytes) -> Any:
    """A RESP reply as Python values (enough for arrays, bulks, integers, doubles, nulls)."""
    value, _ = _parse_at(reply, 0)
    return value


def _parse_at(data: bytes, pos: int) -> tuple[Any, int]:
    end = data.index(b"\r\n", pos)
    kind, head, nxt = data[pos : pos + 1], data[pos + 1 : end], end + 2
    if kind in b"*~":
        items = []
        for _ in range(max(int(head), 0)):
            item, nxt = _parse_at(data, nxt)
            items.append(item)
        return items, nxt
    if kind == b"$":
        if int(head) < 0:
            return None, nxt
        return data[nxt : nxt + int(head)], nxt + int(head) + 2
    if kind == b":":
        return int(head), nxt
    if kind == b",":
        return float(head), nxt
    if kind == b"_":
        return None, nxt
    return head, nxt


@pytest.mark.parametrize("resp", [2, 3])
def test_zrandmember_draws_members_of_the_set(twin: Any, resp: int) -> None:
    if resp == 3:
        twin("HELLO", "3")
    _run(twin, SEED)
    members = {b"a", b"b", b"c", b"d", b"e", b"f", b"g"}
    for argv in [("3",), ("-20",), ("5", "WITHSCORES"), ("-9", "WITHSCORES"), ("1",)]:
        ours, theirs = twin("ZRANDMEMBER", "z", *argv)
        mine, ref = _parse(ours), _parse(theirs)
        assert len(mine) == len(ref), argv
        if "WITHSCORES" in argv:
            assert (type(mine[0]) is list) == (type(ref[0]) is list)
            got = [p[0] for p in mine] if resp == 3 else mine[0::2]
        else:
            got = mine
        assert set(got) <= members
        if not argv[0].startswith("-"):
            assert len(set(got)) == len(got)
    single = _parse(twin.server.execute(twin.snapkv, ["ZRANDMEMBER", "z"]))
    assert single in members


def test_zscan_of_a_large_set_returns_every_member_with_its_score(twin: Any) -> None:
    argv = ["ZADD", "big"]
    for i in range(300):
        argv += [str(i * 0.5 if i % 3 else 1e17 + i), f"m{i}"]
    twin.same(*argv)
    found: dict[str, dict[bytes, bytes]] = {}
    for side, send in (("ours", 0), ("theirs", 1)):
        cursor, pairs = b"0", {}
        while True:
            reply = _parse(twin("ZSCAN", "big", cursor.decode(), "COUNT", "50")[send])
            cursor, flat = reply
            pairs.update(zip(flat[0::2], flat[1::2], strict=True))
            if cursor == b"0":
                break
        found[side] = pairs
    assert found["ours"] == found["theirs"]
    assert len(found["ours"]) == 300


def test_unordered_inputs_of_equal_scores_sort_by_member_bytes(twin: Any) -> None:
    twin.same("ZADD", "k", "1", "b", "1", "a", "1", "B", "1", "ä", "1", "", "1", "a\x00b")
    twin.same("ZRANGE", "k", "0", "-1")
    twin.same("ZRANGEBYLEX", "k", "[a", "+")
    twin.same("ZRANK", "k", "ä")


# ------------------------------------------------- generated command sequences

_KEYS = ["k1", "k2", "k3"]
_MEMBERS = ["a", "b", "c", "d", "e", ""]
_SCORES = ["0", "1", "-1", "1.5", "2", "inf", "-inf", "0.1", "3", "-0"]
_BOUNDS = ["-inf", "+inf", "0", "1", "(1", "1.5", "(2", "3", "(-inf", "(0.1"]
_LEX = ["-", "+", "[a", "(b", "[c", "(d", "[", "(e"]
_INDEXES = ["0", "1", "-1", "2", "-3", "10", "-10"]


@st.composite
def _command(draw: st.DrawFn) -> tuple[str, ...]:
    key = draw(st.sampled_from(_KEYS))
    member = st.sampled_from(_MEMBERS)
    score = st.sampled_from(_SCORES)
    kind = draw(st.integers(0, 14))
    if kind == 0:
        flags = draw(st.lists(st.sampled_from(["NX", "XX", "GT", "LT", "CH", "INCR"]), max_size=2))
        pairs = draw(st.lists(st.tuples(score, member), min_size=1, max_size=4))
        return ("ZADD", key, *flags, *(x for pair in pairs for x in pair))
    if kind == 1:
        return ("ZINCRBY", key, draw(score), draw(member))
    if kind == 2:
        return ("ZREM", key, *draw(st.lists(member, min_size=1, max_size=3)))
    if kind == 3:
        words = draw(st.lists(st.sampled_from(["REV", "WITHSCORES"]), max_size=2, unique=True))
        return (
            "ZRANGE",
            key,
            draw(st.sampled_from(_INDEXES)),
            draw(st.sampled_from(_INDEXES)),
            *words,
        )
    if kind == 4:
        name = draw(st.sampled_from(["ZRANGEBYSCORE", "ZREVRANGEBYSCORE", "ZCOUNT"]))
        low, high = draw(st.sampled_from(_BOUNDS)), draw(st.sampled_from(_BOUNDS))
        extra: list[str] = []
        if name != "ZCOUNT" and draw(st.booleans()):
            extra += ["LIMIT", draw(st.sampled_from(_INDEXES)), draw(st.sampled_from(_INDEXES))]
        if name != "ZCOUNT" and draw(st.booleans()):
            extra.append("WITHSCORES")
        return (name, key, low, high, *extra)
    if kind == 5:
        name = draw(
            st.sampled_from(["ZRANGEBYLEX", "ZREVRANGEBYLEX", "ZLEXCOUNT", "ZREMRANGEBYLEX"])
        )
        return (name, "lexk", draw(st.sampled_from(_LEX)), draw(st.sampled_from(_LEX)))
    if kind == 6:
        return ("ZADD", "lexk", "0", draw(member), "0", draw(member))
    if kind == 7:
        name = draw(st.sampled_from(["ZREMRANGEBYRANK", "ZREMRANGEBYSCORE"]))
        source = _INDEXES if name == "ZREMRANGEBYRANK" else _BOUNDS
        return (name, key, draw(st.sampled_from(source)), draw(st.sampled_from(source)))
    if kind == 8:
        name = draw(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]))
        count = draw(st.sampled_from([[], ["0"], ["1"], ["3"]]))
        return (name, key, *count)
    if kind == 9:
        where = draw(st.sampled_from(["MIN", "MAX"]))
        return ("ZMPOP", "2", key, draw(st.sampled_from(_KEYS)), where, "COUNT", "2")
    if kind == 10:
        name = draw(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]))
        extra = []
        if name != "ZDIFFSTORE" and draw(st.booleans()):
            extra = ["WEIGHTS", draw(score), draw(score)]
        if name != "ZDIFFSTORE" and draw(st.booleans()):
            extra += ["AGGREGATE", draw(st.sampled_from(["SUM", "MIN", "MAX"]))]
        return (
            name,
            key,
            "2",
            *draw(st.lists(st.sampled_from(_KEYS), min_size=2, max_size=2)),
            *extra,
        )
    if kind == 11:
        return (
            "ZRANGESTORE",
            key,
            draw(st.sampled_from(_KEYS)),
            draw(st.sampled_from(_BOUNDS)),
            "+inf",
            "BYSCORE",
        )
    if kind == 12:
        return (draw(st.sampled_from(["ZRANK", "ZREVRANK", "ZSCORE"])), key, draw(member))
    if kind == 13:
        return ("ZMSCORE", key, *draw(st.lists(member, min_size=1, max_size=3)))
    return (draw(st.sampled_from(["ZCARD", "TYPE", "EXISTS"])), key)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(resp=st.sampled_from(["2", "3"]), commands=st.lists(_command(), min_size=1, max_size=25))
def test_generated_sequences_answer_as_redis(
    twin: Any, resp: str, commands: list[tuple[str, ...]]
) -> None:
    twin("FLUSHALL")
    twin("HELLO", resp)
    for argv in commands:
        twin.same(*argv)


# ---------------------------------------------------- redis-py over a real socket


def _redis_py_session(client: Any) -> list[Any]:
    """The same redis-py calls, for snapkv and for redis-server: the parsed results."""
    out: list[Any] = [client.flushall()]
    out.append(client.zadd("z", {"a": 1, "b": 2, "c": 0.1}))
    out.append(client.zadd("z", {"a": 5, "n": 1}, xx=True, ch=True))
    out.append(client.zadd("z", {"a": 1}, gt=True))
    out.append(client.zadd("z", {"a": 2}, incr=True))
    out.append(client.zincrby("z", 1.5, "b"))
    out.append(client.zscore("z", "c"))
    out.append(client.zmscore("z", ["a", "nope"]))
    out.append(client.zrange("z", 0, -1, withscores=True))
    out.append(client.zrange("z", 0, 1, desc=True))
    out.append(client.zrange("z", "(1", "+inf", byscore=True, offset=0, num=1, withscores=True))
    out.append(client.zrangebyscore("z", "-inf", 3, withscores=True))
    out.append(client.zrevrangebyscore("z", "+inf", "-inf", start=1, num=2))
    out.append(client.zrank("z", "a"))
    out.append(client.zrevrank("z", "a"))
    out.append(client.zcount("z", "(0.1", 10))
    out.append(client.zadd("lex", {"a": 0, "b": 0, "c": 0}))
    out.append(client.zrangebylex("lex", "(a", "+"))
    out.append(client.zlexcount("lex", "-", "[b"))
    out.append(client.zunion(["z", "lex"], withscores=True, aggregate="MAX"))
    out.append(client.zinterstore("dst", {"z": 2, "lex": 3}))
    out.append(client.zdiff(["z", "lex"], withscores=True))
    out.append(client.zintercard(2, ["z", "z"], limit=1))
    out.append(client.zrangestore("copy", "z", 0, 0))
    out.append(sorted(client.zscan_iter("z")))
    out.append(client.zrandmember("z", 100, withscores=True))
    out.append(client.zpopmin("z"))
    out.append(client.zpopmax("z", 2))
    out.append(client.zmpop(2, ["nope", "lex"], max=True, count=2))
    out.append(client.zremrangebyrank("lex", 0, 0))
    out.append(client.zcard("lex"))
    pipe = client.pipeline(transaction=True)
    pipe.zadd("p", {"x": 1, "y": 2})
    pipe.zincrby("p", 0.5, "x")
    pipe.zrange("p", 0, -1, withscores=True)
    pipe.zremrangebyscore("p", 0, 1.5)
    pipe.zcard("p")
    out.append(pipe.execute())
    client.set("s", "v")
    try:
        client.zadd("s", {"a": 1})
    except Exception as exc:  # the library's ResponseError for both
        out.append(str(exc))
    return out


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_gets_the_same_results_from_snapkv_and_redis(
    redis_port: int, protocol: int
) -> None:
    redis = pytest.importorskip("redis")
    from snapkv import Store
    from snapkv.server import Config
    from test_server_e2e import Running

    running = Running(Store(), Config(port=0))
    try:
        ours = redis.Redis(port=running.port, protocol=protocol, decode_responses=True)
        theirs = redis.Redis(port=redis_port, protocol=protocol, decode_responses=True)
        try:
            assert _redis_py_session(ours) == _redis_py_session(theirs)
        finally:
            ours.close()
            theirs.close()
    finally:
        running.stop()
        running.store.close()


@pytest.mark.parametrize("resp", [2, 3])
def test_a_large_sorted_set_answers_as_redis(twin: Any, resp: int) -> None:
    """Past 128 members Redis changes its encoding (a skiplist): the answers must not change."""
    if resp == 3:
        twin("HELLO", "3")
    argv = ["ZADD", "big"]
    for i in range(300):
        argv += [repr((i * 7919) % 301 / 4), f"member:{i:03d}"]
    twin.same(*argv)
    twin.same("ZADD", "big", "1", "x" * 100, "inf", "top", "-inf", "bottom")
    for request in [
        ("ZRANGE", "big", "100", "110", "WITHSCORES"),
        ("ZRANGE", "big", "-5", "-1", "REV", "WITHSCORES"),
        ("ZRANGE", "big", "(10", "20", "BYSCORE", "LIMIT", "3", "5", "WITHSCORES"),
        ("ZREVRANGEBYSCORE", "big", "+inf", "70", "WITHSCORES"),
        ("ZCOUNT", "big", "(5", "50"),
        ("ZRANK", "big", "member:150"),
        ("ZREVRANK", "big", "member:150"),
        ("ZSCORE", "big", "member:299"),
        ("ZINCRBY", "big", "0.1", "member:001"),
        ("ZPOPMIN", "big", "3"),
        ("ZPOPMAX", "big", "2"),
        ("ZREMRANGEBYRANK", "big", "10", "20"),
        ("ZREMRANGEBYSCORE", "big", "(30", "40"),
        ("ZUNIONSTORE", "u", "2", "big", "big", "WEIGHTS", "1", "0.5"),
        ("ZRANGE", "u", "0", "20", "WITHSCORES"),
        ("ZINTERSTORE", "i", "2", "big", "u", "AGGREGATE", "MAX"),
        ("ZRANGE", "i", "-20", "-1", "WITHSCORES"),
        ("ZRANGESTORE", "r", "big", "5", "15", "BYSCORE"),
        ("ZCARD", "r"),
        ("ZRANDMEMBER", "r", "1000", "WITHSCORES"),
        ("ZCARD", "big"),
    ]:
        twin.same(*request)
