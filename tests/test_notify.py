"""Keyspace notifications against redis-server 7.0: the same commands, the same events.

Each side has a subscriber on ``__key*__:*`` (snapkv's a Client without a
connection, whose pushes collect in its outbox; redis-server's a socket),
the same command sequence runs on both, and the pmessages each subscriber
received are compared in order: channel and payload, so the event names,
the keys, the keyspaces, the ``new`` events and the order Redis raises them
in all count. redis-server's messages are read up to a sentinel PUBLISHed
after the sequence on a channel the pattern matches, so no wait is timed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference import Raw, parse, reply_end
from snapkv.server.client import Client

_PATTERN = "__key*__:*"
_SENTINEL = ("__keyspace@0__:sentinel", "end")

Event = tuple[bytes, bytes]


def _messages(data: bytes) -> list[Event]:
    """The (channel, payload) of each pmessage in ``data`` (RESP2 pushes)."""
    out, pos = [], 0
    while pos < len(data):
        end = reply_end(data, pos)
        assert end > 0, data
        kind, _pattern, channel, payload = parse(data[pos:end])
        assert kind == b"pmessage"
        out.append((channel, payload))
        pos = end
    return out


class Events:
    """Keyspace events of snapkv's dispatcher and of redis-server for the same commands."""

    def __init__(self, twin: Any, redis_port: int) -> None:
        self.twin = twin
        self.sub = Client(twin.server, addr="127.0.0.1:3000")
        twin.server.add_client(self.sub)
        twin.server.execute(self.sub, ["PSUBSCRIBE", _PATTERN])
        self.sub.outbox.clear()
        self.raw = Raw(redis_port)
        self.raw("PSUBSCRIBE", _PATTERN)

    def configure(self, flags: str) -> None:
        self.twin.same("CONFIG", "SET", "notify-keyspace-events", flags)

    def run(self, *commands: tuple[str, ...]) -> tuple[list[Event], list[Event]]:
        """Run ``commands`` on both; the events each subscriber got, snapkv's first."""
        for argv in commands:
            self.twin(*argv)
        ours = _messages(b"".join(self.sub.outbox))
        self.sub.outbox.clear()
        self.twin.raw("PUBLISH", *_SENTINEL)
        theirs: list[Event] = []
        while True:
            while (end := reply_end(self.raw.buf)) < 0:
                chunk = self.raw.sock.recv(65536)
                assert chunk, "redis-server closed the subscriber"
                self.raw.buf += chunk
            message, self.raw.buf = self.raw.buf[:end], self.raw.buf[end:]
            event = _messages(message)[0]
            if event == (_SENTINEL[0].encode(), _SENTINEL[1].encode()):
                return ours, theirs
            theirs.append(event)

    def same(self, *commands: tuple[str, ...]) -> list[Event]:
        ours, theirs = self.run(*commands)
        assert ours == theirs, f"{commands}:\nsnapkv {ours}\nredis  {theirs}"
        return ours

    def close(self) -> None:
        self.raw.close()


@pytest.fixture
def events(twin: Any, redis_port: int) -> Iterator[Events]:
    made = Events(twin, redis_port)
    made.configure("KEA")
    yield made
    made.close()
    twin.raw("CONFIG", "SET", "notify-keyspace-events", "")


def _cmd(*argv: str) -> tuple[str, ...]:
    return argv


# ------------------------------------------------------- command by command

# Each case: commands run in order on both servers, starting empty.
CASES = {
    "strings": [
        _cmd("SET", "a", "1"),
        _cmd("SET", "a", "2", "EX", "100"),
        _cmd("SET", "b", "1", "NX"),
        _cmd("SET", "b", "1", "NX"),
        _cmd("SET", "z", "1", "XX"),
        _cmd("SET", "b", "2", "KEEPTTL", "GET"),
        _cmd("SETNX", "c", "1"),
        _cmd("SETEX", "d", "100", "v"),
        _cmd("PSETEX", "e", "100000", "v"),
        _cmd("GETSET", "a", "5"),
        _cmd("GETSET", "f", "5"),
        _cmd("GETDEL", "f"),
        _cmd("GETDEL", "f"),
        _cmd("GETEX", "a", "EX", "100"),
        _cmd("GETEX", "a", "PERSIST"),
        _cmd("GETEX", "a", "PERSIST"),
        _cmd("GETEX", "a", "PXAT", "1"),
        _cmd("APPEND", "g", "x"),
        _cmd("APPEND", "g", "y"),
        _cmd("SETRANGE", "h", "2", "x"),
        _cmd("SETRANGE", "h", "0", ""),
        _cmd("INCR", "i"),
        _cmd("INCRBY", "i", "5"),
        _cmd("DECR", "i"),
        _cmd("DECRBY", "i", "2"),
        _cmd("INCRBYFLOAT", "j", "1.5"),
        _cmd("MSET", "k", "1", "l", "2", "k", "3"),
        _cmd("MSETNX", "k", "1", "m", "2"),
        _cmd("MSETNX", "m", "1", "n", "2"),
    ],
    "an expiry already past": [
        _cmd("SET", "a", "1", "PXAT", "1"),
        _cmd("EXISTS", "a"),  # redis-server finds it expired here at the latest
        _cmd("SET", "b", "1"),
        _cmd("EXPIRE", "b", "-1"),
        _cmd("SET", "b", "1"),
        _cmd("PEXPIREAT", "b", "1"),
    ],
    "generic": [
        _cmd("SET", "a", "1"),
        _cmd("SET", "b", "2"),
        _cmd("DEL", "a", "b", "zz", "a"),
        _cmd("SET", "a", "1"),
        _cmd("UNLINK", "a", "a"),
        _cmd("SET", "a", "1"),
        _cmd("SET", "b", "1"),
        _cmd("RENAME", "a", "b"),
        _cmd("RENAME", "b", "b"),
        _cmd("RENAMENX", "b", "c"),
        _cmd("SET", "d", "1"),
        _cmd("RENAMENX", "c", "d"),
        _cmd("COPY", "c", "e"),
        _cmd("COPY", "c", "e"),
        _cmd("COPY", "c", "e", "REPLACE"),
        _cmd("COPY", "c", "e", "DB", "2"),
        _cmd("MOVE", "e", "1"),
        _cmd("MOVE", "d", "1"),
        _cmd("SELECT", "1"),
        _cmd("SET", "x", "1"),
        _cmd("SELECT", "0"),
        _cmd("EXPIRE", "c", "100"),
        _cmd("EXPIRE", "c", "100", "NX"),
        _cmd("PEXPIRE", "c", "100000", "XX"),
        _cmd("EXPIREAT", "c", "99999999999"),
        _cmd("PEXPIREAT", "c", "99999999999999", "GT"),
        _cmd("PERSIST", "c"),
        _cmd("PERSIST", "c"),
        _cmd("EXPIRE", "zz", "10"),
        _cmd("FLUSHDB"),
        _cmd("SET", "a", "1"),
        _cmd("SWAPDB", "0", "1"),
        _cmd("FLUSHALL"),
    ],
    "lists": [
        _cmd("LPUSH", "l", "a", "b"),
        _cmd("RPUSH", "l", "c"),
        _cmd("LPUSHX", "l", "d"),
        _cmd("LPUSHX", "m", "d"),
        _cmd("RPUSHX", "l", "e"),
        _cmd("LINSERT", "l", "BEFORE", "a", "z"),
        _cmd("LINSERT", "l", "BEFORE", "nope", "z"),
        _cmd("LSET", "l", "0", "q"),
        _cmd("LREM", "l", "0", "nope"),
        _cmd("LREM", "l", "1", "q"),
        _cmd("LTRIM", "l", "0", "-1"),
        _cmd("LMOVE", "l", "d", "LEFT", "RIGHT"),
        _cmd("LMOVE", "l", "l", "RIGHT", "LEFT"),
        _cmd("RPOPLPUSH", "d", "d"),
        _cmd("RPOPLPUSH", "d", "e"),
        _cmd("LPOP", "l"),
        _cmd("RPOP", "l", "2"),
        _cmd("LMPOP", "2", "zz", "l", "LEFT", "COUNT", "1"),
        _cmd("LPOP", "l", "5"),
        _cmd("LPOP", "l"),
        _cmd("RPUSH", "l", "a", "b"),
        _cmd("LTRIM", "l", "5", "10"),
        _cmd("RPUSH", "l", "a", "a"),
        _cmd("LREM", "l", "0", "a"),
        _cmd("LMPOP", "1", "e", "RIGHT", "COUNT", "5"),
    ],
    "hashes": [
        _cmd("HSET", "h", "a", "1", "b", "2"),
        _cmd("HSET", "h", "a", "1"),
        _cmd("HSETNX", "h", "a", "1"),
        _cmd("HSETNX", "h", "c", "1"),
        _cmd("HMSET", "h", "d", "1"),
        _cmd("HINCRBY", "h", "x", "1"),
        _cmd("HINCRBYFLOAT", "h", "y", "1.5"),
        _cmd("HINCRBY", "g", "x", "1"),
        _cmd("HDEL", "h", "a", "zz"),
        _cmd("HDEL", "h", "zz"),
        _cmd("HDEL", "h", "b", "c", "d", "x", "y"),
    ],
    "sets": [
        _cmd("SADD", "s", "a", "b"),
        _cmd("SADD", "s", "a"),
        _cmd("SREM", "s", "a", "zz"),
        _cmd("SREM", "s", "zz"),
        _cmd("SMOVE", "s", "t", "b"),
        _cmd("SMOVE", "t", "t", "b"),
        _cmd("SADD", "s", "x", "b"),
        _cmd("SMOVE", "s", "t", "b"),
        _cmd("SMOVE", "s", "t", "nope"),
        _cmd("SPOP", "t"),
        _cmd("SADD", "u", "1", "2", "3"),
        _cmd("SPOP", "u", "0"),
        _cmd("SPOP", "u", "2"),
        _cmd("SPOP", "u", "5"),
        _cmd("SADD", "a", "1", "2"),
        _cmd("SADD", "b", "2", "3"),
        _cmd("SINTERSTORE", "d", "a", "b"),
        _cmd("SUNIONSTORE", "d", "a", "b"),
        _cmd("SDIFFSTORE", "d", "a", "b"),
        _cmd("SINTERSTORE", "d", "a", "zz"),
        _cmd("SINTERSTORE", "d", "a", "zz"),
        _cmd("SUNIONSTORE", "a", "a", "b"),
    ],
    "sorted sets": [
        _cmd("ZADD", "z", "1", "a", "2", "b"),
        _cmd("ZADD", "z", "1", "a"),
        _cmd("ZADD", "z", "3", "a"),
        _cmd("ZADD", "z", "INCR", "1", "a"),
        _cmd("ZINCRBY", "z", "1", "b"),
        _cmd("ZADD", "z", "NX", "5", "a"),
        _cmd("ZADD", "z", "XX", "5", "new"),
        _cmd("ZADD", "z", "XX", "CH", "5", "a"),
        _cmd("ZADD", "z", "GT", "1", "a"),
        _cmd("ZREM", "z", "a", "zz"),
        _cmd("ZREM", "z", "zz"),
        _cmd("ZADD", "y", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e"),
        _cmd("ZREMRANGEBYSCORE", "y", "10", "20"),
        _cmd("ZREMRANGEBYSCORE", "y", "1", "1"),
        _cmd("ZREMRANGEBYRANK", "y", "0", "0"),
        _cmd("ZPOPMIN", "y"),
        _cmd("ZPOPMAX", "y", "1"),
        _cmd("ZMPOP", "2", "zz", "y", "MAX", "COUNT", "5"),
        _cmd("ZPOPMIN", "y"),
        _cmd("ZADD", "a", "1", "x", "2", "y"),
        _cmd("ZADD", "b", "1", "y"),
        _cmd("ZUNIONSTORE", "d", "2", "a", "b"),
        _cmd("ZINTERSTORE", "d", "2", "a", "b"),
        _cmd("ZDIFFSTORE", "d", "2", "a", "b"),
        _cmd("ZDIFFSTORE", "d", "2", "a", "a"),
        _cmd("ZDIFFSTORE", "d", "2", "a", "a"),
        _cmd("ZRANGESTORE", "e", "a", "0", "-1"),
        _cmd("ZRANGESTORE", "e", "a", "5", "6"),
        _cmd("ZREMRANGEBYLEX", "b", "-", "+"),
    ],
    "sort": [
        _cmd("RPUSH", "l", "3", "1", "2"),
        _cmd("SORT", "l", "STORE", "d"),
        _cmd("SORT", "l", "STORE", "d"),
        _cmd("SORT", "zz", "STORE", "d"),
        _cmd("SORT", "zz", "STORE", "d"),
        _cmd("SORT", "l", "LIMIT", "0", "0", "STORE", "l"),
    ],
    "reads that miss": [
        _cmd("SET", "s", "1"),
        _cmd("HSET", "h", "f", "v"),
        _cmd("SADD", "a", "1"),
        _cmd("RPUSH", "l", "2", "1"),
        _cmd("GET", "zz"),
        _cmd("GET", "s"),
        _cmd("GETRANGE", "zz", "0", "1"),
        _cmd("STRLEN", "zz"),
        _cmd("MGET", "s", "zz", "h", "yy"),
        _cmd("GETEX", "zz", "PERSIST"),
        _cmd("GETDEL", "zz"),
        _cmd("GETSET", "zz", "1"),
        _cmd("SET", "yy", "1", "GET"),
        _cmd("EXISTS", "s", "zz", "xx"),
        _cmd("TOUCH", "zz", "s"),
        _cmd("TYPE", "zz"),
        _cmd("TTL", "zz"),
        _cmd("PTTL", "zz"),
        _cmd("EXPIRETIME", "zz"),
        _cmd("PEXPIRETIME", "zz"),
        _cmd("DUMP", "zz"),
        _cmd("OBJECT", "FREQ", "zz"),
        _cmd("COPY", "zz", "x"),
        _cmd("LLEN", "zz"),
        _cmd("LINDEX", "zz", "0"),
        _cmd("LRANGE", "zz", "0", "1"),
        _cmd("LPOS", "zz", "a"),
        _cmd("LPOS", "l", "nope"),
        _cmd("LPOP", "zz"),
        _cmd("RPOPLPUSH", "zz", "d"),
        _cmd("HGET", "zz", "f"),
        _cmd("HGET", "h", "zz"),
        _cmd("HMGET", "zz", "f", "g"),
        _cmd("HEXISTS", "zz", "f"),
        _cmd("HLEN", "zz"),
        _cmd("HSTRLEN", "zz", "f"),
        _cmd("HGETALL", "zz"),
        _cmd("HKEYS", "zz"),
        _cmd("HVALS", "zz"),
        _cmd("HRANDFIELD", "zz"),
        _cmd("HRANDFIELD", "zz", "2"),
        _cmd("HSCAN", "zz", "0"),
        _cmd("SMEMBERS", "zz"),
        _cmd("SISMEMBER", "zz", "a"),
        _cmd("SMISMEMBER", "zz", "a"),
        _cmd("SCARD", "zz"),
        _cmd("SRANDMEMBER", "zz"),
        _cmd("SRANDMEMBER", "zz", "3"),
        _cmd("SSCAN", "zz", "0"),
        _cmd("SINTER", "zz", "a", "yy"),
        _cmd("SUNION", "zz", "a", "zz"),
        _cmd("SDIFF", "a", "zz"),
        _cmd("SINTER", "zz", "s", "yy"),
        _cmd("SINTERCARD", "2", "zz", "yy"),
        _cmd("SUNIONSTORE", "d", "zz", "yy"),
        _cmd("ZSCORE", "zz", "a"),
        _cmd("ZMSCORE", "zz", "a"),
        _cmd("ZRANK", "zz", "a"),
        _cmd("ZREVRANK", "zz", "a"),
        _cmd("ZCARD", "zz"),
        _cmd("ZCOUNT", "zz", "0", "1"),
        _cmd("ZLEXCOUNT", "zz", "-", "+"),
        _cmd("ZRANGE", "zz", "0", "1"),
        _cmd("ZRANGEBYSCORE", "zz", "0", "1"),
        _cmd("ZREVRANGEBYLEX", "zz", "+", "-"),
        _cmd("ZRANDMEMBER", "zz"),
        _cmd("ZRANDMEMBER", "zz", "2"),
        _cmd("ZSCAN", "zz", "0"),
        _cmd("ZUNION", "2", "zz", "a"),
        _cmd("ZINTER", "2", "zz", "yy"),
        _cmd("ZDIFF", "2", "zz", "yy"),
        _cmd("ZINTERCARD", "2", "zz", "yy"),
        _cmd("ZUNIONSTORE", "d", "2", "zz", "yy"),
        _cmd("ZRANGESTORE", "d", "zz", "0", "1"),
        _cmd("ZPOPMIN", "zz"),
        _cmd("SORT", "zz"),
        _cmd("SORT_RO", "zz"),
        _cmd("SORT", "l", "BY", "w_*", "GET", "o_*", "GET", "#"),
        _cmd("SORT", "l", "BY", "nosort", "GET", "h->f"),
        _cmd("SORT", "zz", "STORE", "d"),
        _cmd("RANDOMKEY"),
        _cmd("DBSIZE"),
    ],
    "blocking pops served at once": [
        _cmd("RPUSH", "l", "a", "b", "c"),
        _cmd("BLPOP", "zz", "l", "0"),
        _cmd("BRPOP", "l", "0"),
        _cmd("BLMOVE", "l", "d", "LEFT", "RIGHT", "0"),
        _cmd("BRPOPLPUSH", "d", "e", "0"),
        _cmd("RPUSH", "l", "a", "b"),
        _cmd("BLMPOP", "0", "2", "zz", "l", "RIGHT", "COUNT", "5"),
        _cmd("ZADD", "z", "1", "a", "2", "b", "3", "c"),
        _cmd("BZPOPMIN", "z", "0"),
        _cmd("BZPOPMAX", "zz", "z", "0"),
        _cmd("BZMPOP", "0", "1", "z", "MIN", "COUNT", "3"),
        _cmd("MULTI"),
        _cmd("BLPOP", "zz", "0"),  # never waits inside a transaction
        _cmd("RPUSH", "l", "x"),
        _cmd("BLPOP", "l", "0"),
        _cmd("EXEC"),
    ],
    "a script": [
        _cmd(
            "EVAL",
            "redis.call('set', KEYS[1], '1'); redis.call('rpush', KEYS[2], 'x');"
            " redis.call('lpop', KEYS[2]); return redis.call('get', 'zz')",
            "2",
            "a",
            "l",
        ),
    ],
    "a transaction": [
        _cmd("MULTI"),
        _cmd("SET", "a", "1"),
        _cmd("LPUSH", "l", "x"),
        _cmd("LPOP", "l"),
        _cmd("DEL", "a"),
        _cmd("EXEC"),
    ],
}


@pytest.mark.parametrize("flags", ["KEA", "KEAn", "Kgl", "E$z", "Knh", "KEm", "AKEnm"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_command_raises_the_events_redis_raises(events: Events, case: str, flags: str) -> None:
    events.configure(flags)
    events.same(*CASES[case])


def test_restore_raises_new_and_restore_or_del_when_already_expired(events: Events) -> None:
    events.configure("KEAn")
    events.twin.same("RPUSH", "l", "a", "b")
    payload = events.twin.raw("DUMP", "l")
    value = parse(payload)
    assert isinstance(value, bytes)
    text = value.decode("utf-8", "surrogateescape")
    events.same(
        _cmd("RESTORE", "r", "0", text),
        _cmd("RESTORE", "r", "0", text, "REPLACE"),
        _cmd("RESTORE", "r", "100000", text, "REPLACE"),
        _cmd("RESTORE", "r", "1", text, "REPLACE", "ABSTTL"),
        _cmd("RESTORE", "q", "1", text, "ABSTTL"),
    )


def test_events_off_publish_nothing(events: Events) -> None:
    events.configure("")
    assert events.same(*CASES["strings"], *CASES["lists"]) == []
    events.configure("A")  # classes without K or E: still nothing
    assert events.same(_cmd("SET", "a", "1"), _cmd("DEL", "a")) == []


# ---------------------------------------------- random sequences, hypothesis

_KEYS = st.sampled_from(["a", "b", "c"])
_MEMBERS = st.sampled_from(["x", "y", "1", "2"])
_NUMBERS = st.sampled_from(["0", "1", "2", "-1"])


def _commands() -> st.SearchStrategy[tuple[str, ...]]:
    k, m, n = _KEYS, _MEMBERS, _NUMBERS

    def c(*parts: Any) -> st.SearchStrategy[tuple[str, ...]]:
        return st.tuples(*(p if isinstance(p, st.SearchStrategy) else st.just(p) for p in parts))

    side = st.sampled_from(["LEFT", "RIGHT"])
    return st.one_of(
        c("SET", k, n),
        c("SET", k, n, "EX", "100"),
        c("SET", k, n, st.sampled_from(["NX", "XX", "GET", "KEEPTTL"])),
        c("SETNX", k, n),
        c("GETSET", k, n),
        c("GETDEL", k),
        c("GETEX", k, st.sampled_from(["PERSIST", "EX"]), st.just("100")),
        c("APPEND", k, m),
        c("SETRANGE", k, n.map(lambda s: s.lstrip("-")), m),
        c("INCRBY", k, n),
        c("INCRBYFLOAT", k, n),
        c("MSET", k, n, k, m),
        c("MSETNX", k, n, k, m),
        c("DEL", k, k),
        c("RENAME", k, k),
        c("RENAMENX", k, k),
        c("COPY", k, k, st.sampled_from(["REPLACE", "DB"]), st.just("1")).map(
            lambda t: t[:4] if t[3] == "REPLACE" else t
        ),
        c("MOVE", k, "1"),
        c("EXPIRE", k, st.sampled_from(["100", "-1"])),
        c("PERSIST", k),
        c("LPUSH", k, m, m),
        c("RPUSHX", k, m),
        c("LPOP", k),
        c("RPOP", k, n.map(lambda s: s.lstrip("-"))),
        c("LMOVE", k, k, side, side),
        c("LINSERT", k, "BEFORE", m, m),
        c("LSET", k, n, m),
        c("LREM", k, n, m),
        c("LTRIM", k, n, n),
        c("HSET", k, m, n),
        c("HSETNX", k, m, n),
        c("HDEL", k, m, m),
        c("HINCRBY", k, m, n),
        c("SADD", k, m, m),
        c("SREM", k, m),
        c("SMOVE", k, k, m),
        c("SPOP", k, n.map(lambda s: s.lstrip("-"))),
        c(st.sampled_from(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), k, k, k),
        c("ZADD", k, st.sampled_from(["NX", "XX", "GT", "CH"]), n, m),
        c("ZADD", k, n, m, n, m),
        c("ZINCRBY", k, n, m),
        c("ZREM", k, m),
        c("ZREMRANGEBYSCORE", k, n, n),
        c("ZREMRANGEBYRANK", k, n, n),
        c(st.sampled_from(["ZPOPMIN", "ZPOPMAX"]), k),
        c("ZMPOP", "2", k, k, st.sampled_from(["MIN", "MAX"]), "COUNT", "2"),
        c(st.sampled_from(["ZUNIONSTORE", "ZINTERSTORE", "ZDIFFSTORE"]), k, "2", k, k),
        c("ZRANGESTORE", k, k, "0", n),
        c("SORT", k, "ALPHA", "STORE", k),
        # reads: keymiss (class m) on a miss
        c(st.sampled_from(["GET", "STRLEN", "TYPE", "TTL", "LLEN", "HLEN", "SCARD", "ZCARD"]), k),
        c("MGET", k, k),
        c("EXISTS", k, k),
        c("LRANGE", k, "0", n),
        c("HGET", k, m),
        c("HGETALL", k),
        c("SISMEMBER", k, m),
        c(st.sampled_from(["SINTER", "SUNION", "SDIFF"]), k, k),
        c("ZSCORE", k, m),
        c("ZRANGE", k, "0", n),
        c(st.sampled_from(["ZUNION", "ZINTER", "ZDIFF"]), "2", k, k),
    )


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    flags=st.sampled_from(["KEA", "KEAn", "AKEnm"]),
    commands=st.lists(_commands(), min_size=1, max_size=12),
)
def test_random_sequences_raise_the_same_events(
    events: Events, flags: str, commands: list[tuple[str, ...]]
) -> None:
    events.twin.same("FLUSHALL")
    events.configure(flags)
    events.same(*commands)
