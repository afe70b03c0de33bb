"""The blocking pops' replies that come at once, against the real redis-server (``twin``).

Everything here answers without waiting on either side: a key that holds
a value is popped at once, a refused request is refused, and inside MULTI
nothing ever waits. (What happens to a client that waits is played over
real sockets in test_blocking_e2e.py.) Replies are compared byte for byte,
in RESP2 and RESP3.
"""

from __future__ import annotations

from typing import Any

import pytest

from reference import parse
from snapkv.server import blocking
from snapkv.server.client import Client
from snapkv.server.cmd_blocking import parse_timeout

RESP = [2, 3]


def _fill(twin: Any) -> None:
    twin.same("RPUSH", "l1", "a", "b", "c", "d", "e", "f")
    twin.same("RPUSH", "l2", "x")
    twin.same("ZADD", "z1", "1", "one", "2", "two", "3.5", "three")
    twin.same("ZADD", "z2", "-1", "neg")
    twin.same("SET", "s", "string")


@pytest.mark.parametrize("resp", RESP)
def test_a_key_with_a_value_is_popped_at_once(twin: Any, resp: int) -> None:
    twin("HELLO", str(resp))  # (the servers name different versions)
    _fill(twin)
    for argv in (
        ("BLPOP", "missing", "l1", "l2", "0"),
        ("BRPOP", "l1", "1.5"),
        ("BLMPOP", "0", "3", "missing", "l1", "l2", "LEFT"),
        ("BLMPOP", "0", "1", "l1", "RIGHT", "COUNT", "2"),
        ("BLMOVE", "l2", "l1", "LEFT", "RIGHT", "0"),
        ("BRPOPLPUSH", "l1", "l1", "0"),
        ("BLMPOP", "0", "1", "l1", "LEFT", "COUNT", "10"),
        ("BZPOPMIN", "missing", "z1", "0"),
        ("BZPOPMAX", "z1", "z2", "0"),
        ("BZMPOP", "0", "2", "z2", "z1", "MIN", "COUNT", "1"),
        ("BZMPOP", "0", "1", "z1", "MAX", "COUNT", "9"),
        ("LRANGE", "l1", "0", "-1"),
        ("EXISTS", "l2", "z1", "z2"),
    ):
        twin.same(*argv)


def test_a_key_of_another_type_before_the_first_value_is_wrongtype(twin: Any) -> None:
    _fill(twin)
    for argv in (
        ("BLPOP", "s", "l1", "0"),
        ("BLPOP", "l1", "s", "0"),  # l1 first: popped, s never looked at
        ("BRPOP", "z1", "0"),
        ("BLMPOP", "0", "2", "missing", "z1", "LEFT"),
        ("BLMOVE", "s", "l1", "LEFT", "LEFT", "0"),
        ("BLMOVE", "l1", "s", "LEFT", "LEFT", "0"),  # a destination of another type
        ("BZPOPMIN", "l1", "0"),
        ("BZMPOP", "0", "1", "s", "MAX"),
    ):
        twin.same(*argv)


@pytest.mark.parametrize("resp", RESP)
def test_inside_multi_nothing_waits(twin: Any, resp: int) -> None:
    twin("HELLO", str(resp))  # (the servers name different versions)
    twin.same("MULTI")
    for argv in (
        ("BLPOP", "none", "0"),
        ("BRPOP", "none", "100"),
        ("BLMPOP", "0", "1", "none", "LEFT"),
        ("BLMOVE", "none", "d", "LEFT", "LEFT", "0"),
        ("BRPOPLPUSH", "none", "d", "0"),
        ("BZPOPMIN", "none", "0"),
        ("BZPOPMAX", "none", "0"),
        ("BZMPOP", "0", "1", "none", "MIN"),
        ("RPUSH", "none", "v"),
        ("BLPOP", "none", "0"),  # the block's own push: popped
    ):
        twin.same(*argv)
    twin.same("EXEC")
    assert twin.server.blocking.waiters == {}


@pytest.mark.parametrize(
    "timeout",
    [
        "abc",
        "",
        " 1",
        "1 ",
        "nan",
        "-1",
        "-0.5",
        "inf",
        "-inf",
        "1e30",
        "9223372036854775807",
        "1e5000",
        "1_0",
        "0x",
        "--1",
    ],
)
def test_timeouts_are_refused_with_redis_texts(twin: Any, timeout: str) -> None:
    twin.same("RPUSH", "l", "v")
    twin.same("BLPOP", "l", timeout)
    twin.same("BLMOVE", "l", "d", "LEFT", "LEFT", timeout)
    twin.same("BZPOPMIN", "l", timeout)


@pytest.mark.parametrize(
    "timeout", ["0", "0.5", ".5", "+1", "1e-400", "-0.0001", "0x10", "0x1p-2", "1E2", "Infinity"]
)
def test_timeouts_redis_accepts_are_accepted(twin: Any, timeout: str) -> None:
    twin.same("RPUSH", "l", "v1", "v2")
    twin.same("BLPOP", "l", timeout)  # at once (the list has values) or the same refusal
    twin.same("ZADD", "z", "1", "m")
    twin.same("BZMPOP", timeout, "1", "z", "MIN")


def test_timeouts_are_milliseconds_rounded_up() -> None:
    assert parse_timeout("0") == 0
    assert parse_timeout("0.0001") == 1  # any positive timeout waits: never "forever"
    assert parse_timeout("1e-400") == 1  # a long double keeps what a double loses
    assert parse_timeout("-0.0001") == 0  # rounds up to zero: forever, as Redis
    assert parse_timeout("1.5") == 1500
    assert parse_timeout("0x1p-2") == 250


def test_arguments_are_checked_in_redis_order(twin: Any) -> None:
    for argv in (
        ("BLPOP", "k"),
        ("BLMOVE", "a", "b", "LEFT", "LEFT"),
        ("BLMOVE", "a", "b", "UP", "LEFT", "x"),  # the ends before the timeout
        ("BLMOVE", "a", "b", "LEFT", "DOWN", "-1"),
        ("BRPOPLPUSH", "a", "b"),
        ("BLMPOP", "0", "1", "k"),
        ("BLMPOP", "x", "0", "k", "LEFT"),  # numkeys before the timeout
        ("BLMPOP", "-1", "1", "k", "LEFT"),
        ("BLMPOP", "0", "2", "k", "LEFT"),
        ("BLMPOP", "0", "1", "k", "MIDDLE"),
        ("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "0"),
        ("BLMPOP", "0", "1", "k", "LEFT", "COUNT", "1", "COUNT", "1"),
        ("BLMPOP", "0", "1", "k", "LEFT", "LIMIT", "1"),
        ("BZMPOP", "0", "0", "k", "MIN"),
        ("BZMPOP", "0", "1", "k", "LEFT"),
        ("BZMPOP", "0", "1", "k", "MIN", "COUNT", "-3"),
        ("BZMPOP", "x", "1", "k", "MAX", "COUNT"),
        ("BZPOPMAX", "k"),
    ):
        twin.same(*argv)


@pytest.mark.parametrize(
    "name", ["blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop"]
)
def test_arity_flags_and_keys_are_redis(twin: Any, name: str) -> None:
    ours, theirs = (parse(reply)[0] for reply in twin("COMMAND", "INFO", name))
    assert ours[:2] == theirs[:2]  # name, arity
    assert set(ours[2]) == set(theirs[2])  # flags, movablekeys included
    assert ours[3:7] == theirs[3:7]  # first key, last key, step; categories
    getkeys = ("COMMAND", "GETKEYS", name, "0", "2", "a", "b", "MIN")
    if name in ("blmpop", "bzmpop"):
        twin.same(*getkeys)


def test_waiting_clients_are_registered_and_forgotten(twin: Any) -> None:
    """The registry at dispatcher level: the listener is there only while someone waits."""
    server = twin.server
    registry = blocking.registry(server)
    waiter = Client(server)
    server.add_client(waiter)
    assert registry.note not in server.key_listeners
    assert server.execute(waiter, ["BLPOP", "k", "k", "other", "0"]) == b""
    assert waiter.blocked is not None and waiter.blocked.kind == "keys"
    assert len(registry) == 1 and registry.note in server.key_listeners
    assert set(registry.waiting) == {(0, "k"), (0, "other")}  # a key named twice waits once
    assert blocking.unblock(server, waiter.id, error=False)
    assert waiter.outbox == [b"*-1\r\n"]
    assert not blocking.unblock(server, waiter.id, error=True)  # no longer waiting
    assert registry.waiting == {} and registry.note not in server.key_listeners
    server.execute(twin.snapkv, ["RPUSH", "k", "v"])
    assert waiter.outbox == [b"*-1\r\n"]  # forgotten: not served


def test_a_served_pop_counts_as_changes_and_fails_watch(twin: Any) -> None:
    server = twin.server
    waiter, watcher = Client(server), Client(server)
    for client in (waiter, watcher):
        server.add_client(client)
    server.execute(waiter, ["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"])
    server.execute(watcher, ["WATCH", "dst"])
    dirty = server.dirty
    server.execute(twin.snapkv, ["RPUSH", "src", "a", "b"])
    assert waiter.outbox == [b"$1\r\nb\r\n"]
    assert server.dirty == dirty + 2 + 1  # the push's two, the move's one
    server.execute(watcher, ["MULTI"])
    server.execute(watcher, ["GET", "x"])
    assert server.execute(watcher, ["EXEC"]) == b"*-1\r\n"  # the served move touched dst


#: Commands whose ACL categories follow from their group and flags alone (the
#: per-command ones, such as @dangerous on KEYS, come with access control).
CATEGORIZED = [
    "get",
    "set",
    "expire",
    "zadd",
    "hset",
    "sadd",
    "lpush",
    "publish",
    "subscribe",
    "multi",
    "exec",
    "ping",
    "echo",
    "del",
    "exists",
    "ttl",
    "type",
    "rename",
    "incr",
    "mget",
    "llen",
    "zrange",
    "hgetall",
    "smembers",
    "blpop",
    "bzpopmin",
    "blmpop",
    "select",
    "config",
    "eval",
    "evalsha",
    "fcall",
    "watch",
    "save",
    "bgsave",
    "time",
    "dump",
]


@pytest.mark.parametrize("name", CATEGORIZED)
def test_command_info_categories_are_redis_s_in_redis_s_order(twin: Any, name: str) -> None:
    ours, theirs = (parse(reply)[0] for reply in twin("COMMAND", "INFO", name))
    assert ours[6] == theirs[6]
