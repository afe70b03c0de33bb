"""The list commands against the real Redis 7.0: the same requests, byte-equal replies.

Every command of the list group (blocking ones aside) is sent to snapkv's
dispatcher and to a redis-server (the ``twin`` fixture), with its errors,
arity, negative and out-of-range indexes, both protocols; hypothesis then
sends random command sequences on a few keys and compares every reply.
redis-py over a real socket covers the client's view (sync, pipelines,
RESP3), and the dirty counter and WATCH are checked as Redis counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapkv import Store

redis = pytest.importorskip("redis")


def hello(twin: Any, resp: str) -> None:
    """Both sides switch protocol (their HELLO replies differ in version and id)."""
    twin("HELLO", resp)


def fill(twin: Any, key: str, *values: str) -> None:
    twin.same("DEL", key)
    if values:
        twin.same("RPUSH", key, *values)


# ---------------------------------------------------------------- push/len


def test_push_family_replies_lengths_and_orders(twin: Any) -> None:
    twin.same("LPUSH", "l", "a", "b", "c")
    twin.same("RPUSH", "l", "d", "e")
    twin.same("LRANGE", "l", "0", "-1")
    twin.same("LLEN", "l")
    twin.same("LPUSHX", "l", "x", "y")
    twin.same("RPUSHX", "l", "z")
    twin.same("LPUSHX", "missing", "x")
    twin.same("RPUSHX", "missing", "x", "y")
    twin.same("EXISTS", "missing")
    twin.same("LRANGE", "l", "0", "-1")
    twin.same("LLEN", "missing")
    twin.same("TYPE", "l")


@pytest.mark.parametrize(
    "argv",
    [
        ("LPUSH", "l"),
        ("RPUSH", "l"),
        ("LPUSHX", "l"),
        ("RPUSHX",),
        ("LPOP",),
        ("RPOP",),
        ("LPOP", "l", "1", "2"),
        ("RPOP", "l", "1", "2"),
        ("LLEN",),
        ("LLEN", "l", "x"),
        ("LINDEX", "l"),
        ("LSET", "l", "0"),
        ("LRANGE", "l", "0"),
        ("LTRIM", "l", "0"),
        ("LREM", "l", "0"),
        ("LINSERT", "l", "BEFORE", "a"),
        ("LPOS", "l"),
        ("LMOVE", "a", "b", "LEFT"),
        ("RPOPLPUSH", "a"),
        ("LMPOP", "1", "l"),
    ],
)
def test_arity_errors_are_redis_words(twin: Any, argv: tuple[str, ...]) -> None:
    twin.same("RPUSH", "l", "a")
    twin.same(*argv)


def test_every_command_refuses_another_type_with_wrongtype(twin: Any) -> None:
    twin.same("SET", "s", "v")
    fill(twin, "l", "a", "b")
    for argv in [
        ("LPUSH", "s", "a"),
        ("RPUSH", "s", "a"),
        ("LPUSHX", "s", "a"),
        ("RPUSHX", "s", "a"),
        ("LPOP", "s"),
        ("RPOP", "s", "2"),
        ("LPOP", "s", "0"),
        ("LLEN", "s"),
        ("LINDEX", "s", "0"),
        ("LINDEX", "s", "x"),
        ("LSET", "s", "0", "v"),
        ("LRANGE", "s", "0", "-1"),
        ("LTRIM", "s", "0", "1"),
        ("LREM", "s", "0", "a"),
        ("LINSERT", "s", "BEFORE", "a", "b"),
        ("LPOS", "s", "a"),
        ("LPOS", "s", "a", "COUNT", "0"),
        ("LMOVE", "s", "l", "LEFT", "RIGHT"),
        ("LMOVE", "l", "s", "LEFT", "RIGHT"),
        ("RPOPLPUSH", "s", "l"),
        ("RPOPLPUSH", "l", "s"),
        ("LMPOP", "2", "missing", "s", "LEFT"),
        ("LMPOP", "2", "s", "l", "LEFT"),
    ]:
        twin.same(*argv)
    twin.same("LRANGE", "l", "0", "-1")  # a refused move changed nothing
    twin.same("GET", "s")


# ----------------------------------------------------------------------- pop


@pytest.mark.parametrize("resp", ["2", "3"])
def test_pop_with_and_without_count_in_both_protocols(twin: Any, resp: str) -> None:
    hello(twin, resp)
    fill(twin, "l", "a", "b", "c", "d", "e")
    for argv in [
        ("LPOP", "l"),
        ("RPOP", "l"),
        ("LPOP", "l", "0"),
        ("LPOP", "l", "2"),
        ("RPOP", "l", "5"),
        ("EXISTS", "l"),
        ("LPOP", "l"),
        ("RPOP", "l", "1"),
        ("LPOP", "l", "0"),
        ("LPOP", "l", "-1"),
        ("LPOP", "l", "x"),
        ("RPOP", "l", "9223372036854775808"),
    ]:
        twin.same(*argv)
    fill(twin, "l", "a", "b", "c")
    twin.same("RPOP", "l", "9223372036854775807")
    twin.same("EXISTS", "l")


@pytest.mark.parametrize("resp", ["2", "3"])
def test_lmpop_replies_and_errors(twin: Any, resp: str) -> None:
    hello(twin, resp)
    fill(twin, "a")
    fill(twin, "b", "1", "2", "3")
    fill(twin, "c", "x")
    for argv in [
        ("LMPOP", "3", "a", "b", "c", "LEFT"),
        ("LMPOP", "3", "a", "b", "c", "RIGHT", "COUNT", "5"),
        ("LMPOP", "2", "a", "b", "left", "count", "1"),
        ("LMPOP", "1", "a", "LEFT"),
        ("LMPOP", "0", "a", "LEFT"),
        ("LMPOP", "-1", "a", "LEFT"),
        ("LMPOP", "x", "a", "LEFT"),
        ("LMPOP", "1", "a", "UP"),
        ("LMPOP", "5", "a", "LEFT"),
        ("LMPOP", "2", "a", "LEFT"),
        ("LMPOP", "1", "c", "LEFT", "COUNT", "0"),
        ("LMPOP", "1", "c", "LEFT", "COUNT", "-3"),
        ("LMPOP", "1", "c", "LEFT", "COUNT", "x"),
        ("LMPOP", "1", "c", "LEFT", "COUNT"),
        ("LMPOP", "1", "c", "LEFT", "COUNT", "1", "COUNT", "1"),
        ("LMPOP", "1", "c", "LEFT", "EXTRA"),
        ("LMPOP", "1", "c", "RIGHT", "COUNT", "9223372036854775807"),
        ("EXISTS", "c"),
    ]:
        twin.same(*argv)


# ------------------------------------------------------------- index reads


def test_lindex_with_negative_and_out_of_range_indexes(twin: Any) -> None:
    fill(twin, "l", "a", "b", "c")
    for index in ["0", "2", "3", "-1", "-3", "-4", "100", "-100", "x", "1.5", ""]:
        twin.same("LINDEX", "l", index)
    twin.same("LINDEX", "missing", "x")  # the key is looked up first
    twin.same("LINDEX", "missing", "0")
    for index in ["9223372036854775807", "-9223372036854775808", "9223372036854775808"]:
        twin.same("LINDEX", "l", index)


@pytest.mark.parametrize(
    ("start", "stop"),
    [
        ("0", "-1"),
        ("0", "0"),
        ("1", "2"),
        ("-2", "-1"),
        ("-100", "100"),
        ("3", "1"),
        ("5", "10"),
        ("-1", "-2"),
        ("0", "-6"),
        ("-6", "0"),
        ("2", "-3"),
        ("9223372036854775807", "-9223372036854775808"),
        ("-9223372036854775808", "9223372036854775807"),
        ("x", "1"),
        ("0", "y"),
    ],
)
def test_lrange_and_ltrim_read_indexes_as_redis(twin: Any, start: str, stop: str) -> None:
    fill(twin, "l", "a", "b", "c", "d", "e")
    twin.same("LRANGE", "l", start, stop)
    twin.same("LRANGE", "missing", start, stop)
    twin.same("LTRIM", "l", start, stop)
    twin.same("LRANGE", "l", "0", "-1")
    twin.same("EXISTS", "l")
    twin.same("LTRIM", "missing", start, stop)


def test_lrange_near_either_end_of_a_long_list(twin: Any) -> None:
    values = [str(i) for i in range(3000)]
    for chunk in range(0, 3000, 500):
        twin.same("RPUSH", "l", *values[chunk : chunk + 500])
    for start, stop in [("0", "9"), ("-10", "-1"), ("1495", "1505"), ("2990", "5000")]:
        twin.same("LRANGE", "l", start, stop)


# --------------------------------------------------------------------- lset


def test_lset_errors_in_redis_order(twin: Any) -> None:
    fill(twin, "l", "a", "b", "c")
    for argv in [
        ("LSET", "l", "0", "x"),
        ("LSET", "l", "-1", "z"),
        ("LSET", "l", "-3", "y"),
        ("LSET", "l", "3", "v"),
        ("LSET", "l", "-4", "v"),
        ("LSET", "l", "x", "v"),
        ("LSET", "missing", "x", "v"),
        ("LSET", "missing", "0", "v"),
        ("LRANGE", "l", "0", "-1"),
    ]:
        twin.same(*argv)


# ---------------------------------------------------------------- lrem/lins


@pytest.mark.parametrize("count", ["0", "1", "2", "-1", "-2", "10", "-10", "-9223372036854775808"])
def test_lrem_counts_from_head_tail_or_all(twin: Any, count: str) -> None:
    fill(twin, "l", "a", "b", "a", "c", "a", "b", "a")
    twin.same("LREM", "l", count, "a")
    twin.same("LRANGE", "l", "0", "-1")
    twin.same("LREM", "l", count, "zzz")
    twin.same("LREM", "missing", count, "a")


def test_lrem_of_every_element_removes_the_key(twin: Any) -> None:
    fill(twin, "l", "a", "a")
    twin.same("LREM", "l", "0", "a")
    twin.same("EXISTS", "l")
    twin.same("LREM", "l", "x", "a")


def test_linsert_before_after_missing_pivot_and_key(twin: Any) -> None:
    fill(twin, "l", "a", "b", "a")
    for argv in [
        ("LINSERT", "l", "BEFORE", "a", "x"),
        ("LINSERT", "l", "after", "a", "y"),
        ("LINSERT", "l", "AFTER", "b", "z"),
        ("LINSERT", "l", "BEFORE", "nope", "v"),
        ("LINSERT", "l", "middle", "a", "v"),
        ("LINSERT", "missing", "BEFORE", "a", "v"),
        ("LINSERT", "missing", "middle", "a", "v"),
        ("EXISTS", "missing"),
        ("LRANGE", "l", "0", "-1"),
    ]:
        twin.same(*argv)


# --------------------------------------------------------------------- lpos


@pytest.mark.parametrize(
    "options",
    [
        (),
        ("RANK", "1"),
        ("RANK", "2"),
        ("RANK", "-1"),
        ("RANK", "-3"),
        ("RANK", "9"),
        ("RANK", "0"),
        ("RANK", "x"),
        ("RANK", "-9223372036854775808"),
        ("RANK", "-9223372036854775808", "COUNT", "1"),
        ("RANK", "-9223372036854775807", "COUNT", "0"),
        ("COUNT", "0"),
        ("COUNT", "2"),
        ("COUNT", "-1"),
        ("COUNT", "x"),
        ("MAXLEN", "3"),
        ("MAXLEN", "0"),
        ("MAXLEN", "-1"),
        ("MAXLEN", "y"),
        ("RANK", "-1", "COUNT", "2", "MAXLEN", "4"),
        ("RANK", "2", "COUNT", "0", "MAXLEN", "6"),
        ("count", "1", "rank", "3"),
        ("COUNT",),
        ("FOO", "1"),
        ("RANK", "1", "RANK", "2"),
    ],
)
@pytest.mark.parametrize("resp", ["2", "3"])
def test_lpos_options(twin: Any, options: tuple[str, ...], resp: str) -> None:
    hello(twin, resp)
    fill(twin, "l", "a", "b", "c", "a", "b", "a", "c", "a")
    twin.same("LPOS", "l", "a", *options)
    twin.same("LPOS", "l", "zzz", *options)
    twin.same("LPOS", "missing", "a", *options)


# --------------------------------------------------------------------- move


@pytest.mark.parametrize(
    "ends", [("LEFT", "LEFT"), ("LEFT", "RIGHT"), ("RIGHT", "LEFT"), ("right", "right")]
)
def test_lmove_between_keys_and_onto_itself(twin: Any, ends: tuple[str, str]) -> None:
    fill(twin, "src", "a", "b", "c")
    fill(twin, "dst", "x")
    for _ in range(4):
        twin.same("LMOVE", "src", "dst", *ends)
        twin.same("LRANGE", "src", "0", "-1")
        twin.same("LRANGE", "dst", "0", "-1")
    twin.same("EXISTS", "src")
    twin.same("LMOVE", "dst", "dst", *ends)
    twin.same("LRANGE", "dst", "0", "-1")
    twin.same("LMOVE", "dst", "new", *ends)
    twin.same("LRANGE", "new", "0", "-1")
    twin.same("LMOVE", "dst", "dst", "UP", "LEFT")
    twin.same("LMOVE", "dst", "dst", "LEFT", "DOWN")
    twin.same("LMOVE", "missing", "dst", *ends)


def test_rpoplpush_rotates_and_keeps_a_single_elements_expiry(twin: Any) -> None:
    fill(twin, "l", "a", "b", "c")
    twin.same("RPOPLPUSH", "l", "l")
    twin.same("LRANGE", "l", "0", "-1")
    fill(twin, "one", "x")
    twin.same("EXPIRE", "one", "100")
    twin.same("RPOPLPUSH", "one", "one")
    twin.same("TTL", "one")
    twin.same("LMOVE", "one", "one", "LEFT", "RIGHT")
    twin.same("TTL", "one")
    twin.same("RPOPLPUSH", "one", "other")
    twin.same("EXISTS", "one")
    twin.same("TTL", "other")
    twin.same("RPOPLPUSH", "missing", "other")


def test_a_new_list_on_an_expired_key_starts_without_expiry(twin: Any) -> None:
    fill(twin, "l", "a")
    twin.same("PEXPIRE", "l", "100000")
    twin.same("RPUSH", "l", "b")
    twin.same("TTL", "l")
    twin.same("LPOP", "l", "2")
    twin.same("RPUSH", "l", "c")
    twin.same("TTL", "l")


# ------------------------------------------------------- differential fuzz

KEYS = ["a", "b"]
ELEMENTS = ["x", "y", "z", ""]
INDEXES = ["0", "1", "-1", "2", "-2", "5", "-5"]
key_ = st.sampled_from(KEYS)
el = st.sampled_from(ELEMENTS)
idx = st.sampled_from(INDEXES)
end = st.sampled_from(["LEFT", "RIGHT"])

COMMANDS = st.one_of(
    st.tuples(st.sampled_from(["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]), key_, el).map(list),
    st.tuples(st.sampled_from(["LPUSH", "RPUSH"]), key_, el, el, el).map(list),
    st.tuples(st.sampled_from(["LPOP", "RPOP"]), key_).map(list),
    st.tuples(st.sampled_from(["LPOP", "RPOP"]), key_, st.sampled_from(["0", "1", "2", "9"])).map(
        list
    ),
    st.tuples(st.just("LLEN"), key_).map(list),
    st.tuples(st.just("LINDEX"), key_, idx).map(list),
    st.tuples(st.just("LSET"), key_, idx, el).map(list),
    st.tuples(st.sampled_from(["LRANGE", "LTRIM"]), key_, idx, idx).map(list),
    st.tuples(st.just("LREM"), key_, idx, el).map(list),
    st.tuples(st.just("LINSERT"), key_, st.sampled_from(["BEFORE", "AFTER"]), el, el).map(list),
    st.tuples(st.just("LPOS"), key_, el, st.sampled_from(["RANK", "COUNT", "MAXLEN"]), idx).map(
        list
    ),
    st.tuples(st.just("LMOVE"), key_, key_, end, end).map(list),
    st.tuples(st.just("RPOPLPUSH"), key_, key_).map(list),
    st.tuples(st.just("LMPOP"), st.just("2"), key_, key_, end, st.just("COUNT"), idx).map(list),
    st.tuples(st.just("SET"), key_, el).map(list),
    st.tuples(st.just("DEL"), key_).map(list),
)


@pytest.mark.parametrize("resp", ["2", "3"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(COMMANDS, min_size=1, max_size=25))
def test_random_command_sequences_reply_as_redis(
    twin: Any, resp: str, commands: list[list[str]]
) -> None:
    hello(twin, resp)
    twin.same("FLUSHALL")
    for argv in commands:
        twin.same(*argv)
    for key in KEYS:
        twin.same("TYPE", key)
        ours, theirs = twin("LRANGE", key, "0", "-1")
        assert ours == theirs


# ------------------------------------------------------------- dirty/watch


def dirty(twin: Any) -> int:
    return int(twin.server.dirty)


def test_dirty_counts_as_redis_server_dirty(twin: Any) -> None:
    steps = [
        (("RPUSH", "l", "a", "b", "c", "a"), 4),
        (("LPUSHX", "missing", "a", "b"), 0),
        (("LPOP", "l", "2"), 2),
        (("LPOP", "l", "0"), 0),
        (("LSET", "l", "0", "z"), 1),
        (("LINSERT", "l", "BEFORE", "z", "q"), 1),
        (("LINSERT", "l", "BEFORE", "nope", "q"), 0),
        (("RPUSH", "l", "a", "a"), 2),
        (("LREM", "l", "0", "a"), 3),
        (("RPUSH", "l", "1", "2", "3"), 3),
        (("LTRIM", "l", "1", "-2"), 2),
        (("LMOVE", "l", "m", "LEFT", "RIGHT"), 1),
        (("RPOPLPUSH", "missing", "m"), 0),
        (("LMPOP", "2", "missing", "l", "LEFT", "COUNT", "9"), 2),
    ]
    for argv, changes in steps:
        before = dirty(twin)
        twin.same(*argv)
        assert dirty(twin) - before == changes, argv


def test_watch_fails_exec_after_a_list_write_of_the_watched_key(twin: Any) -> None:
    from snapkv.server.client import Client

    other = Client(twin.server)
    twin.server.add_client(other)
    run = twin.server.execute
    for argv in (
        ["RPUSH", "k", "v"],
        ["LMPOP", "1", "k", "LEFT"],
        ["RPOPLPUSH", "src", "k"],
    ):
        run(other, ["RPUSH", "src", "s"])
        run(other, ["RPUSH", "k", "seed"])
        assert run(twin.snapkv, ["WATCH", "k"]) == b"+OK\r\n"
        run(other, argv)
        run(twin.snapkv, ["MULTI"])
        run(twin.snapkv, ["LLEN", "k"])
        assert run(twin.snapkv, ["EXEC"]) == b"*-1\r\n", argv


def test_a_transaction_of_list_commands_replies_as_redis(twin: Any) -> None:
    fill(twin, "l", "a", "b")
    for argv in [
        ("MULTI",),
        ("RPUSH", "l", "c"),
        ("LPOP", "l"),
        ("LSET", "l", "9", "x"),
        ("LMOVE", "l", "m", "LEFT", "LEFT"),
        ("LRANGE", "l", "0", "-1"),
        ("EXEC",),
        ("LRANGE", "m", "0", "-1"),
    ]:
        twin.same(*argv)


# ----------------------------------------------------------------- redis-py


@pytest.fixture
def client_for(serve: Callable[..., Any]) -> Callable[[int], Any]:
    def make(protocol: int) -> Any:
        return serve(Store()).client(protocol=protocol, decode_responses=True)

    return make


@pytest.fixture
def serve() -> Any:
    from snapkv.server import Config
    from test_server_e2e import Running

    started: list[Any] = []

    def start(store: Store) -> Any:
        running = Running(store, Config(port=0))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_list_calls(client_for: Callable[[int], Any], protocol: int) -> None:
    r = client_for(protocol)
    assert r.rpush("q", "a", "b", "c") == 3
    assert r.lpush("q", "z") == 4
    assert r.lrange("q", 0, -1) == ["z", "a", "b", "c"]
    assert r.lpop("q") == "z" and r.rpop("q", 2) == ["c", "b"]
    assert r.lpop("missing") is None and r.lpop("missing", 2) is None
    assert r.lpushx("missing", "x") == 0 and r.rpushx("q", "d") == 2
    assert r.lindex("q", -1) == "d" and r.lindex("q", 9) is None
    assert r.lset("q", 0, "A") and r.llen("q") == 2
    with pytest.raises(redis.ResponseError, match="index out of range"):
        r.lset("q", 5, "x")
    with pytest.raises(redis.ResponseError, match="no such key"):
        r.lset("missing", 0, "x")
    assert r.linsert("q", "AFTER", "A", "B") == 3
    assert r.lpos("q", "B") == 1 and r.lpos("q", "zz") is None
    assert r.lpos("q", "A", count=0) == [0]
    assert r.lrem("q", 0, "B") == 1 and r.ltrim("q", 0, 0)
    assert r.lmove("q", "r", "LEFT", "RIGHT") == "A" and r.exists("q") == 0
    assert r.rpoplpush("r", "s") == "A"
    r.rpush("t", "1", "2", "3")
    assert r.lmpop(2, "missing", "t", direction="RIGHT", count=2) == ["t", ["3", "2"]]
    assert r.lmpop(1, "missing", direction="LEFT") is None
    r.set("str", "v")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        r.lpush("str", "x")


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pipelines_of_list_commands(
    client_for: Callable[[int], Any], protocol: int
) -> None:
    r = client_for(protocol)
    with r.pipeline(transaction=False) as pipe:
        for i in range(500):
            pipe.rpush("p", str(i))
        pipe.llen("p").lrange("p", -2, -1)
        replies = pipe.execute()
    assert replies[:3] == [1, 2, 3] and replies[-2:] == [500, ["498", "499"]]
    with r.pipeline(transaction=True) as pipe:
        pipe.lpop("p", 2).rpoplpush("p", "p").lindex("p", 0).set("x", "1").lpush("x", "y")
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            pipe.execute()
    assert r.lrange("p", 0, 1) == ["499", "2"]


def test_command_getkeys_finds_lmpop_and_lmove_keys(twin: Any) -> None:
    twin.same("COMMAND", "GETKEYS", "LMPOP", "2", "a", "b", "LEFT", "COUNT", "2")
    twin.same("COMMAND", "GETKEYS", "LMOVE", "a", "b", "LEFT", "RIGHT")
    twin.same("COMMAND", "GETKEYS", "RPOPLPUSH", "a", "b")
    twin.same("COMMAND", "GETKEYS", "LPUSH", "a", "x")


def test_binary_and_unicode_elements_round_trip(twin: Any) -> None:
    odd = ["\udcff\udcfe", "é", "😀", "", "\x00", "a b\r\n"]
    twin.same("RPUSH", "b", *odd)
    twin.same("LRANGE", "b", "0", "-1")
    twin.same("LPOS", "b", "\udcff\udcfe")
    twin.same("LREM", "b", "0", "")
    twin.same("LINSERT", "b", "AFTER", "😀", "\udc80")
    twin.same("LMPOP", "1", "b", "RIGHT", "COUNT", "10")
