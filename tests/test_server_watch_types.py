"""WATCH against writes that change nothing, and writes that do, for every type.

Redis marks a key modified (``signalModifiedKey``) where it counts a change
(``server.dirty``): a write command that changes nothing fails no WATCH.
Each case runs the same session on snapkv and on the real redis-server (the
``twin`` fixture) and compares the raw replies, EXEC's included.
"""

from __future__ import annotations

import pytest

from conftest import Twin

NO_OPS = {
    "hash": [("HSET", "k", "f", "v"), ("HDEL", "k", "missing"), ("HSETNX", "k", "f", "w")],
    "set": [
        ("SADD", "k", "m"),
        ("SREM", "k", "missing"),
        ("SPOP", "k", "0"),
        ("SMOVE", "k", "k", "m"),
    ],
    "list": [("RPUSH", "k", "a"), ("LREM", "k", "0", "missing"), ("LPUSHX", "nokey", "a")],
    "zset": [
        ("ZADD", "k", "1", "m"),
        ("ZADD", "k", "1", "m"),
        ("ZINCRBY", "k", "0", "m"),
        ("ZREM", "k", "missing"),
    ],
    "string": [("SET", "k", "v"), ("SETNX", "k", "w"), ("DEL", "missing")],
}
CHANGES = {
    "hash": ("HSET", "k", "f", "other"),
    "set": ("SADD", "k", "new"),
    "list": ("RPUSH", "k", "b"),
    "zset": ("ZADD", "k", "2", "m"),
    "string": ("SET", "k", "other"),
}


@pytest.mark.parametrize("kind", sorted(NO_OPS))
def test_a_write_that_changes_nothing_fails_no_watch(twin: Twin, kind: str) -> None:
    first, *no_ops = NO_OPS[kind]
    twin.same(*first)
    for no_op in no_ops:
        twin.same("WATCH", "k")
        twin.same(*no_op)
        twin.same("MULTI")
        twin.same("PING")
        assert twin.same("EXEC") == b"*1\r\n+PONG\r\n"


@pytest.mark.parametrize("kind", sorted(CHANGES))
def test_a_write_that_changes_the_key_fails_the_watch(twin: Twin, kind: str) -> None:
    twin.same(*NO_OPS[kind][0])
    twin.same("WATCH", "k")
    twin.same(*CHANGES[kind])
    twin.same("MULTI")
    twin.same("PING")
    assert twin.same("EXEC") == b"*-1\r\n"
